"""Start-up cost: each command imports only what it needs (torch alone takes about a second)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "transformers", "scipy.signal")
#: espeak-ng is GPL and only in the optional ``synth`` extra; the learnt G2P loads only for words
#: CMUdict lacks. No core command may load either just to start.
OPTIONAL = ("espeakng_loader", "kmtalk_cli.alignment.espeak", "kmtalk_cli.alignment.g2p")
CORE_COMMANDS = ("align", "keymotions", "complete", "animate", "render", "export", "view", "train", "evaluate", "backbones")
#: The exporters' writers, the renderer and the trainer (``kmtalk_cli.export.fit``, the rig fit,
#: is used by the liveliness layer).
MODEL_STAGE_NEVER = (
    "kmtalk_cli.export.gltf", "kmtalk_cli.export.arkit", "kmtalk_cli.export.meshseq", "kmtalk_cli.export.visemes",
    "kmtalk_cli.render", "kmtalk_cli.training", "kmtalk_cli.evaluation", "transformers", "moderngl", "trimesh",
)


def loaded_after(args: list[str], cwd) -> set[str]:
    """The modules a fresh interpreter holds after running ``kmtalk ARGS``."""
    return loaded_after_all([args], cwd)


def loaded_after_all(runs: list[list[str]], cwd) -> set[str]:
    """The modules a fresh interpreter holds after running ``kmtalk ARGS`` for each ARGS in turn."""
    code = textwrap.dedent(
        f"""
        import sys
        from kmtalk_cli.cli import app
        for args in {runs!r}:
            try:
                app(args)
            except SystemExit:
                pass
        print("MODULES", " ".join(sorted(sys.modules)))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("MODULES ")), None)
    assert line is not None, done.stdout + done.stderr
    return set(line.split()[1:])


@pytest.mark.parametrize("args", [["--help"], ["align", "--help"], ["animate", "--help"]])
def test_help_imports_no_torch(args: list[str], tmp_path) -> None:
    loaded = loaded_after(args, tmp_path)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_align_imports_no_torch(speech_wav, tmp_path) -> None:
    speech = speech_wav(duration=1.0)
    loaded = loaded_after(["align", str(speech), "--text", "hello there", "-q"], tmp_path)
    assert (tmp_path / "speech.align.json").exists()
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not loaded & set(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_core_commands_start_without_espeak(tmp_path) -> None:
    """One interpreter asks every core command for its help (each imports its module then)."""
    loaded = loaded_after_all([[command, "--help"] for command in CORE_COMMANDS], tmp_path)
    assert {f"kmtalk_cli.commands.{c}" for c in ("align", "animate", "render", "export", "view", "train", "evaluate")} <= loaded
    assert not loaded & set(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_synth_without_espeak_says_how_to_install_it(tmp_path) -> None:
    """Without the ``synth`` extra, ``kmtalk synth`` stops before any work with one sentence."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["espeakng_loader"] = None  # as if the synth extra were not installed
        from kmtalk_cli.cli import app
        app(["synth", {str(tmp_path / "corpus")!r}, "--preset", "tiny"])
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode != 0
    message = done.stderr.strip()
    assert 'pip install "kmtalk[synth]"' in message and "Traceback" not in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "corpus").exists()


def test_animate_imports_neither_exporters_renderer_nor_trainer(speech_wav, tmp_path) -> None:
    speech = speech_wav(duration=1.0)
    loaded = loaded_after(["animate", str(speech), "--text", "hello there", "-q"], tmp_path)
    assert (tmp_path / "speech.npy").exists() and "torch" in loaded
    assert not {m for m in loaded if m.startswith(MODEL_STAGE_NEVER)}, sorted(m for m in loaded if m.startswith(MODEL_STAGE_NEVER))
    assert not loaded & set(OPTIONAL), sorted(loaded & set(OPTIONAL))


def test_a_checkpoints_description_is_read_without_torch(tmp_path) -> None:
    """``animate -c CKPT`` asks what the checkpoint holds before the model loads: torch must not
    be loaded by then, or the alignment worker would not start beside its import."""
    code = textwrap.dedent(
        """
        import sys
        from kmtalk_cli.checkpoint_info import read_checkpoint_info
        from kmtalk_cli.commands.animate import writes_keys
        from kmtalk_cli.weights import weights_dir
        path = weights_dir() / "selftalk-km.safetensors"
        assert read_checkpoint_info(path)["kind"] == "key-motion" and writes_keys(None, path, None)
        print("TORCH", "torch" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "TORCH False" in done.stdout, done.stdout + done.stderr
