"""Every command under bad input: one clear line, a non-zero exit, nothing lost, nothing non-finite.

Each case builds its inputs in a fresh folder, runs one command line in-process, and checks:
the exit code; one ``error:`` line (or Typer's usage error for a value out of range) and no
traceback; every file that was there before is byte-identical; no new file appears (hidden
temporaries included) unless the case expects it; and no written array holds NaN or infinity.
Most cases fail before any model work, so the whole table runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from conftest import speech_like
from kmtalk_cli.cli import app
from kmtalk_cli.face.template import bundled_template
from kmtalk_cli.weights import find_bundled

runner = CliRunner()
FPS = 30
N_V = bundled_template().n_vertices


class Work:
    """The inputs one case may use, generated lazily in its own folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def p(self, name: str) -> str:
        return str(self.root / name)

    def speech(self, name: str = "speech.wav", seconds: float = 1.0) -> str:
        sf.write(self.root / name, speech_like(seconds), 16_000)
        return self.p(name)

    def silence(self, name: str = "quiet.wav", seconds: float = 1.0) -> str:
        sf.write(self.root / name, np.zeros(int(16_000 * seconds), np.float32), 16_000)
        return self.p(name)

    def motion(self, name: str = "take.npy", frames: int = 30, scale: float = 1.0, nan_row: int | None = None) -> str:
        rest = bundled_template().vertices
        wobble = 0.002 * np.sin(np.arange(frames) / 3.0)[:, None, None]
        motion = ((rest[None] + wobble) * scale).astype(np.float32).reshape(frames, -1)
        if nan_row is not None:
            motion[nan_row, 5] = np.nan
        np.save(self.root / name, motion)
        return self.p(name)

    def keys(self, name: str = "k.keys.npz", *, nan_row: int | None = None, n_frames: int = 30, n_vertices: int = N_V, order: bool = True) -> str:
        indices = np.array([0, 9, 18, n_frames - 1] if order else [0, 18, 9, n_frames - 1])
        offsets = np.full((4, n_vertices * 3), 0.001, np.float32)
        if nan_row is not None:
            offsets[nan_row] = np.nan
        left = np.array(["SIL", "AA", "M", "AA"], dtype="<U3")
        np.savez(self.root / name, indices=indices, left=left, right=left, offsets=offsets, fps=np.float64(FPS),
                 n_frames=np.int64(n_frames), rule=np.array("boundaries"))
        return self.p(name)

    def truncated_keys(self) -> str:
        whole = Path(self.keys("whole.keys.npz")).read_bytes()
        (self.root / "cut.keys.npz").write_bytes(whole[: len(whole) // 2])
        (self.root / "whole.keys.npz").unlink()
        return self.p("cut.keys.npz")

    def alignment(self, name: str = "a.align.json", *, nan: bool = False, nan_duration: bool = False) -> str:
        data = {
            "format": "kmtalk-alignment", "version": 1, "backend": "textgrid", "method": "forced", "transcript": "ma",
            "duration": 1.0, "source": None, "notes": [], "words": [["ma", 0.2, 0.6]],
            "phones": [["SIL", 0.0, 0.2], ["M", 0.2, 0.4], ["AA", 0.4, 0.6], ["SIL", 0.6, 1.0]],
        }
        if nan:
            data["phones"][1][1] = float("nan")
        if nan_duration:
            data["duration"] = float("nan")
        (self.root / name).write_text(json.dumps(data))
        return self.p(name)

    def file(self, name: str, content: bytes = b"not what you think") -> str:
        (self.root / name).write_bytes(content)
        return self.p(name)

    def folder(self, name: str) -> str:
        (self.root / name).mkdir(exist_ok=True)
        return self.p(name)

    def checkpoint(self, name: str = "ck.safetensors", *, damage: str | None = None, label: str = "faceformer") -> str:
        """A copy of a bundled checkpoint; ``damage`` "nan" or "huge" spoils one tensor's values."""
        from safetensors import safe_open
        from safetensors.torch import save_file

        source = find_bundled(label, False).path
        if damage is None:
            (self.root / name).write_bytes(Path(source).read_bytes())
            return self.p(name)
        with safe_open(str(source), framework="pt") as fh:
            metadata = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 8)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[:4] = float("nan") if damage == "nan" else 1e8
        save_file(tensors, str(self.root / name), metadata=metadata)
        return self.p(name)


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Work], list[str]]
    message: str  # a regex the error must match
    code: int = 1
    creates: tuple[str, ...] = field(default=())  # files (relative) a case may create


LONG = "x" * 300
CASES: list[Case] = [
    # -- animate: the output rule, --export, sources, checkpoints, before any work --------------
    Case("animate-o-unexpected-suffix", lambda w: ["animate", w.speech(), "-o", w.p("take.motion")], r"must end in \.npy"),
    Case("animate-o-suffix-force-keeps-file", lambda w: ["animate", w.speech(), "-o", w.file("take.motion", b"precious"), "--force"], r"must end in \.npy"),
    Case("animate-render-o-mp4", lambda w: ["animate", w.speech(), "--render", "-o", w.p("talk.mp4")], r"-o names the motion.*talk\.npy"),
    Case("animate-export-upper-and-unknown", lambda w: ["animate", w.speech(), "--export", "GLB,fbx"], r"Unknown export format 'fbx'"),
    Case("animate-export-empty", lambda w: ["animate", w.speech(), "--export", " , "], r"No export format"),
    Case("animate-text-and-alignment", lambda w: ["animate", w.speech(), "--text", "ma", "--alignment", w.alignment()], r"--text or --alignment, not both"),
    Case("animate-name-too-long", lambda w: ["animate", w.speech(), "-o", w.p(LONG + ".npy")], r"limited to 255 bytes"),
    Case("animate-o-below-a-file", lambda w: ["animate", w.speech(), "-o", w.file("plain") + "/x.npy"], r"is a file, not a directory"),
    Case("animate-o-missing-folder", lambda w: ["animate", w.speech(), "-o", w.p("nowhere/x.npy")], r"does not exist"),
    Case("animate-o-is-a-folder", lambda w: ["animate", w.speech(), "-o", w.folder("dir.npy")], r"is a directory"),
    Case("animate-existing-output", lambda w: ["animate", w.speech(), "-o", w.file("old.npy", b"old")], r"already exists; pass --force"),
    Case("animate-existing-sibling", lambda w: [w.file("speech.align.json", b"{}"), "animate", w.speech(), "-b", "rig"][1:], r"speech\.align\.json already exists"),
    Case("animate-existing-video", lambda w: [w.file("speech.mp4", b"old"), "animate", w.speech(), "-b", "rig", "--render"][1:], r"speech\.mp4 already exists"),
    Case("animate-existing-export", lambda w: [w.file("speech.glb", b"old"), "animate", w.speech(), "-b", "rig", "--export", "glb"][1:], r"speech\.glb already exists"),
    Case("animate-checkpoint-empty-folder", lambda w: ["animate", w.speech(), "-c", w.folder("run")], r"is a directory without best\.safetensors"),
    Case("animate-checkpoint-missing", lambda w: ["animate", w.speech(), "-c", w.p("nope.safetensors")], r"does not exist"),
    Case("animate-checkpoint-junk", lambda w: ["animate", w.speech(), "-c", w.file("junk.safetensors")], r"not a readable safetensors"),
    Case("animate-checkpoint-nan-weights", lambda w: ["animate", w.speech(), "-c", w.checkpoint(damage="nan")], r"damaged.*NaN"),
    Case("animate-checkpoint-huge-weights", lambda w: ["animate", w.speech(), "-c", w.checkpoint(damage="huge")], r"damaged"),
    Case("animate-backbone-vs-checkpoint", lambda w: ["animate", w.speech(), "-b", "selftalk", "-c", w.checkpoint()], r"holds a faceformer model, not selftalk"),
    Case("animate-rig-with-checkpoint", lambda w: ["animate", w.speech(), "-b", "rig", "-c", w.checkpoint()], r"rig baseline has no weights"),
    Case("animate-unknown-backbone", lambda w: ["animate", w.speech(), "-b", "facefarmer"], r"Unknown backbone 'facefarmer'"),
    Case("animate-missing-speech", lambda w: ["animate", w.p("nope.wav")], r"does not exist|not found"),
    Case("animate-speech-not-audio", lambda w: ["animate", w.file("text.wav", b"hello, not audio at all" * 40)], r"(?i)audio|recognis|read"),
    Case("animate-speech-empty", lambda w: ["animate", w.file("empty.wav", b"")], r"(?i)empty|no audio|0 bytes|not"),
    Case("animate-bad-precision", lambda w: ["animate", w.speech(), "--precision", "fp8"], r"(?i)precision"),
    Case("animate-alignment-missing", lambda w: ["animate", w.speech(), "--alignment", w.p("none.align.json")], r"does not exist"),
    Case("animate-alignment-nan-times", lambda w: ["animate", w.speech(), "-b", "rig", "--alignment", w.alignment(nan=True)], r"not a finite number"),
    # -- keymotions ------------------------------------------------------------------------------
    Case("keymotions-o-npy", lambda w: ["keymotions", w.speech(), "-o", w.p("k.npy")], r"must end in \.npz"),
    Case("keymotions-text-and-alignment", lambda w: ["keymotions", w.speech(), "--text", "ma", "--alignment", w.alignment()], r"not both"),
    Case("keymotions-existing", lambda w: ["keymotions", w.speech(), "-o", w.file("k.npz", b"old")], r"already exists"),
    Case("keymotions-rig-with-checkpoint", lambda w: ["keymotions", w.speech(), "-b", "rig", "-c", w.checkpoint()], r"rig baseline has no weights"),
    Case("keymotions-missing-speech", lambda w: ["keymotions", w.p("nope.wav")], r"does not exist|not found"),
    Case("keymotions-checkpoint-folder", lambda w: ["keymotions", w.speech(), "-c", w.folder("run")], r"is a directory"),
    Case("keymotions-name-too-long", lambda w: ["keymotions", w.speech(), "-o", w.p(LONG + ".npz")], r"255 bytes"),
    # -- complete --------------------------------------------------------------------------------
    Case("complete-truncated-keys", lambda w: ["complete", w.speech(), "-k", w.truncated_keys(), "-b", "rig"], r"unreadable or truncated"),
    Case("complete-nan-keys", lambda w: ["complete", w.speech(), "-k", w.keys(nan_row=2), "-b", "rig"], r"NaN or infinite values in 1 of 4"),
    Case("complete-nan-keys-model", lambda w: ["complete", w.speech(), "-k", w.keys(nan_row=0)], r"NaN or infinite"),
    Case("complete-missing-keys", lambda w: ["complete", w.speech(), "-k", w.p("none.npz")], r"does not exist"),
    Case("complete-junk-keys", lambda w: ["complete", w.speech(), "-k", w.file("junk.npz")], r"not a key-motion"),
    Case("complete-keys-out-of-order", lambda w: ["complete", w.speech(), "-k", w.keys(order=False), "-b", "rig"], r"out of order"),
    Case("complete-keys-other-length", lambda w: ["complete", w.speech(seconds=2.0), "-k", w.keys(), "-b", "rig"], r"are for 30 frames but the speech has 60"),
    Case("complete-keys-other-vertices", lambda w: ["complete", w.speech(), "-k", w.keys(n_vertices=10), "-b", "rig"], r"10 vertices"),
    Case("complete-o-suffix", lambda w: ["complete", w.speech(), "-k", w.keys(), "-o", w.p("c.motion")], r"must end in \.npy"),
    Case("complete-rig-with-checkpoint", lambda w: ["complete", w.speech(), "-k", w.keys(), "-b", "rig", "-c", w.checkpoint()], r"no weights"),
    Case("complete-existing", lambda w: ["complete", w.speech(), "-k", w.keys(), "-o", w.file("c.npy", b"old")], r"already exists"),
    # -- render ----------------------------------------------------------------------------------
    Case("render-gif", lambda w: ["render", w.motion(), "-o", w.p("video.gif")], r"must end in \.mp4"),
    Case("render-millimetres", lambda w: ["render", w.motion(scale=1000.0)], r"millimetres"),
    Case("render-centimetres", lambda w: ["render", w.motion(scale=100.0)], r"centimetres"),
    Case("render-nan-motion", lambda w: ["render", w.motion(nan_row=3)], r"NaN or infinite values in 1 of 30"),
    Case("render-bad-shape", lambda w: [np.save(w.root / "bad.npy", np.zeros((5, 7), np.float32)), "render", w.p("bad.npy")][1:], r"multiple of 3"),
    Case("render-missing-motion", lambda w: ["render", w.p("none.npy")], r"does not exist"),
    Case("render-junk-motion", lambda w: ["render", w.file("junk.npy")], r"not a readable"),
    Case("render-empty-motion", lambda w: [np.save(w.root / "e.npy", np.zeros((0, N_V * 3), np.float32)), "render", w.p("e.npy")][1:], r"empty"),
    Case("render-wrong-vertex-count", lambda w: [np.save(w.root / "v.npy", np.zeros((3, 30), np.float32)), "render", w.p("v.npy")][1:], r"10 vertices"),
    Case("render-fps-nan", lambda w: ["render", w.motion(), "--fps", "nan"], r"--fps", 2),
    Case("render-fps-zero", lambda w: ["render", w.motion(), "--fps", "0"], r"--fps", 2),
    Case("render-size-tiny", lambda w: ["render", w.motion(), "--size", "10"], r"--size", 2),
    Case("render-existing", lambda w: ["render", w.motion(), "-o", w.file("take.mp4", b"old")], r"already exists"),
    Case("render-side-by-side-mm", lambda w: ["render", w.motion(), "--side-by-side", w.motion("gt.npy", scale=1000.0)], r"gt\.npy.*millimetres"),
    Case("render-missing-audio", lambda w: ["render", w.motion(), "--audio", w.p("none.wav")], r"does not exist|not found"),
    Case("render-o-below-a-file", lambda w: ["render", w.motion(), "-o", w.file("plain") + "/v.mp4"], r"is a file"),
    Case("render-name-too-long", lambda w: ["render", w.motion(), "-o", w.p(LONG + ".mp4")], r"255 bytes"),
    # -- export ----------------------------------------------------------------------------------
    Case("export-smoothing-huge", lambda w: ["export", w.motion(), "--format", "arkit-csv", "--smoothing", "1e30"], r"--smoothing", 2),
    Case("export-smoothing-nan", lambda w: ["export", w.motion(), "--format", "arkit-csv", "--smoothing", "nan"], r"--smoothing", 2),
    Case("export-fps-huge", lambda w: ["export", w.motion(), "--format", "glb", "--fps", "1e9"], r"--fps", 2),
    Case("export-unknown-format", lambda w: ["export", w.motion(), "--format", "fbx"], r"Unknown export format 'fbx'"),
    Case("export-glb-as-gltf", lambda w: ["export", w.motion(), "--format", "glb", "-o", w.p("x.gltf")], r"must end in \.glb"),
    Case("export-csv-as-txt", lambda w: ["export", w.motion(), "--format", "arkit-csv", "-o", w.p("x.txt")], r"must end in \.csv"),
    Case("export-json-as-csv", lambda w: ["export", w.motion(), "--format", "arkit-json", "-o", w.p("x.csv")], r"must end in \.json"),
    Case("export-visemes-as-txt", lambda w: ["export", w.alignment(), "--format", "visemes", "-o", w.p("v.txt")], r"must end in \.tsv or \.json"),
    Case("export-millimetres", lambda w: ["export", w.motion(scale=1000.0), "--format", "glb,arkit-csv"], r"millimetres"),
    Case("export-integer-zeros", lambda w: [np.save(w.root / "z.npy", np.zeros((3, N_V * 3), np.int16)), "export", w.p("z.npy"), "--format", "glb"][1:], r"collapsed mesh"),
    Case("render-offsets-not-positions", lambda w: [np.save(w.root / "d.npy", np.full((3, N_V * 3), 0.002, np.float32)), "render", w.p("d.npy")][1:], r"vertex offsets"),
    Case("export-nan-motion", lambda w: ["export", w.motion(nan_row=0), "--format", "obj"], r"NaN"),
    Case("export-visemes-nan-time", lambda w: ["export", w.alignment(nan=True), "--format", "visemes"], r"(?i)nan"),
    Case("export-visemes-nan-duration", lambda w: ["export", w.alignment(nan_duration=True), "--format", "visemes"], r"(?i)nan|finite"),
    Case("export-visemes-without-alignment", lambda w: ["export", w.motion(), "--format", "visemes"], r"needs its alignment"),
    Case("export-alignment-as-glb", lambda w: ["export", w.alignment(), "--format", "glb"], r"only be exported as visemes"),
    Case("export-text-source", lambda w: ["export", w.file("notes.bin"), "--format", "glb"], r"neither a motion"),
    Case("export-existing", lambda w: ["export", w.motion(), "--format", "glb", "-o", w.file("old.glb", b"old")], r"already exists"),
    Case("export-missing-audio", lambda w: ["export", w.motion(), "--format", "glb", "--audio", w.p("none.wav")], r"does not exist"),
    Case("export-obj-onto-file", lambda w: ["export", w.motion(), "--format", "obj", "-o", w.file("seq", b"old")], r"is a file"),
    Case("export-o-below-a-file", lambda w: ["export", w.motion(), "--format", "glb", "-o", w.file("plain") + "/x.glb"], r"is a file"),
    # -- align -----------------------------------------------------------------------------------
    Case("align-o-txt", lambda w: ["align", w.speech(), "-o", w.p("a.txt")], r"must end in \.json"),
    Case("align-textgrid-suffix", lambda w: ["align", w.speech(), "--textgrid", w.p("a.txt")], r"must end in \.TextGrid"),
    Case("align-text-and-transcript", lambda w: ["align", w.speech(), "--text", "a", "--transcript", w.file("t.txt", b"a")], r"not both"),
    Case("align-missing-speech", lambda w: ["align", w.p("none.wav")], r"does not exist|not found"),
    Case("align-missing-transcript", lambda w: ["align", w.speech(), "--transcript", w.p("none.txt")], r"does not exist"),
    Case("align-o-below-a-file", lambda w: ["align", w.speech(), "-o", w.file("plain") + "/a.json"], r"is a file"),
    Case("align-existing", lambda w: ["align", w.speech(), "-o", w.file("a.json", b"{}")], r"already exists"),
    Case("align-name-too-long", lambda w: ["align", w.speech(), "-o", w.p(LONG + ".json")], r"255 bytes|too long"),
    # -- synth, train, evaluate, view --------------------------------------------------------------
    Case("synth-onto-a-file", lambda w: ["synth", w.file("corpus", b"old"), "--force", "--preset", "tiny"], r"is a file"),
    Case("export-obj-below-a-file", lambda w: ["export", w.motion(), "--format", "obj", "-o", w.file("plain") + "/seq"], r"is a file"),
    Case("synth-fps-nan", lambda w: ["synth", w.p("corpus"), "--fps", "nan"], r"--fps", 2),
    Case("synth-subjects-zero", lambda w: ["synth", w.p("corpus"), "--subjects", "0"], r"--subjects", 2),
    Case("synth-seed-negative", lambda w: ["synth", w.p("corpus"), "--seed", "-1"], r"--seed", 2),
    Case("train-lr-nan", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--lr", "nan"], r"--lr", 2),
    Case("train-lr-negative", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--lr", "-1"], r"--lr", 2),
    Case("train-lr-absurd", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--lr", "100"], r"--lr", 2),
    Case("train-epochs-zero", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--epochs", "0"], r"--epochs", 2),
    Case("train-batch-huge", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--batch-size", "10000000"], r"--batch-size", 2),
    Case("train-max-minutes-nan", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--max-minutes", "nan"], r"--max-minutes", 2),
    Case("train-out-is-a-file", lambda w: ["train", "--data", w.folder("data"), "--out", w.file("run", b"old")], r"is a file"),
    Case("train-aligner-phones-without-key-motions", lambda w: ["train", "--data", w.folder("data"), "--out", w.p("run"), "--alignments", "aligner"], r"--key-motions"),
    Case("train-data-missing", lambda w: ["train", "--data", w.p("nodata"), "--out", w.p("run")], r"(?i)does not exist|not a"),
    Case("evaluate-missing-source", lambda w: ["evaluate", w.p("none.safetensors"), "--data", w.folder("data")], r"does not exist"),
    Case("evaluate-style-and-mode", lambda w: ["evaluate", w.checkpoint(), "--data", w.folder("data"), "--style", "a", "--style-mode", "own"], r"not both"),
    Case("evaluate-junk-checkpoint", lambda w: ["evaluate", w.file("junk.safetensors"), "--data", w.folder("data"), "-o", w.p("rep")], r"not a readable safetensors"),
    Case("view-o-txt", lambda w: ["view", w.file("a.glb"), "-o", w.p("page.txt")], r"must end in \.html"),
    Case("view-missing-glb", lambda w: ["view", w.p("none.glb")], r"does not exist|not found"),
    Case("view-port-huge", lambda w: ["view", w.file("a.glb"), "--serve", "--port", "70000"], r"--port", 2),
    Case("view-junk-glb", lambda w: ["view", w.file("junk.glb")], r"(?i)glb|gltf|not"),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) → sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_finite_outputs(root: Path, names: set[str]) -> None:
    for name in names:
        path = root / name
        if path.suffix in (".npy", ".npz"):
            data = np.load(path, allow_pickle=False)
            arrays = [data[k] for k in data.files] if hasattr(data, "files") else [data]
            for array in arrays:
                if array.dtype.kind == "f":
                    assert np.isfinite(array).all(), f"{name} holds non-finite values"


def check_failure(result, case: Case) -> None:  # noqa: ANN001
    text = result.output
    assert "Traceback" not in text and result.exception is None or isinstance(result.exception, SystemExit), text
    assert result.exit_code == case.code, text
    if case.code == 1:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.stderr
        assert re.search(case.message, errors[0]), errors[0]
    else:  # Typer's usage error: a value out of range, named with its option
        assert re.search(case.message, " ".join(text.split())), text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    work = Work(tmp_path)
    args = case.build(work)
    before = snapshot(tmp_path)
    result = runner.invoke(app, args)
    check_failure(result, case)
    after = snapshot(tmp_path)
    for name, digest in before.items():
        assert after.get(name) == digest, f"{name} was changed or removed"
    new = set(after) - set(before) - set(case.creates)
    assert not new, f"unexpected files: {sorted(new)}"
    assert_finite_outputs(tmp_path, set(after) - set(before))


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 80 and len({c.id for c in CASES}) == len(CASES)


# -- fault injection: a full disk, Ctrl-C at each stage, two runs on one output ----------------------

import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def kmtalk(args: list[str], cwd: Path, *, file_limit: int | None = None) -> subprocess.Popen:
    """``kmtalk ARGS`` in a subprocess; ``file_limit`` (bytes) makes every larger write fail as on a full disk."""

    def limit() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    script = Path(sys.executable).with_name("kmtalk")  # the console script users run
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "kmtalk_cli"]
    return subprocess.Popen(
        [*command, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=limit, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def one_error_line(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), stderr


@pytest.mark.parametrize(
    "args",
    [
        ["export", "take.npy", "--format", "obj", "-o", "seq", "--force", "-q"],
        ["export", "take.npy", "--format", "glb", "-o", "old.glb", "--force", "-q"],
        ["animate", "speech.wav", "-b", "rig", "-o", "old.npy", "--force", "-q"],
        ["export", "take.npy", "--format", "arkit-csv,obj", "-o", "multi", "-q"],  # the CSV fits, the OBJs do not: neither lands
    ],
    ids=["export-obj", "export-glb", "animate", "export-two-formats"],
)
def test_a_full_disk_is_one_line_and_leaves_the_old_files(args: list[str], tmp_path: Path) -> None:
    work = Work(tmp_path)
    work.speech()
    work.motion(frames=60)
    for name in ("old.npy", "old.glb", "old.align.json"):
        work.file(name, b"precious")
    (tmp_path / "seq").mkdir()
    work.file("seq/frame.obj", b"precious")
    before = snapshot(tmp_path)
    run = kmtalk(args, tmp_path, file_limit=200_000)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    one_error_line(stderr, r"disk is full")
    assert snapshot(tmp_path) == before


OLD = {"speech.npy": b"old motion", "speech.keys.npz": b"old keys", "speech.align.json": b"old alignment", "speech.mp4": b"old video"}


def _interrupt_when(tmp_path: Path, ready: Callable[[], bool], timeout: float = 90.0) -> tuple[int, str]:
    run = kmtalk(["animate", "speech.wav", "--render", "--force", "-q"], tmp_path)
    began = time.monotonic()
    while run.poll() is None and not ready() and time.monotonic() - began < timeout:
        time.sleep(0.002)
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    return run.returncode, stderr


def _staged(tmp_path: Path, suffix: str) -> Callable[[], bool]:
    return lambda: any(p.name.startswith(".") and p.name.endswith(suffix) for p in tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["starting", "predicting", "staging-outputs", "rendering"])
def test_ctrl_c_at_each_stage_of_animate_render_keeps_every_old_output(stage: str, tmp_path: Path) -> None:
    work = Work(tmp_path)
    work.speech(seconds=2.0)
    for name, content in OLD.items():
        work.file(name, content)
    began = time.monotonic()
    ready = {
        "starting": lambda: time.monotonic() - began > 0.8,
        "predicting": lambda: time.monotonic() - began > 4.0,
        "staging-outputs": _staged(tmp_path, ".part.npy"),
        "rendering": _staged(tmp_path, ".part.mp4"),
    }[stage]
    code, stderr = _interrupt_when(tmp_path, ready)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert not [name for name in files if name.startswith(".")], files  # no temporaries left
    if code == 0:  # the run finished before the signal: then every output is new
        assert all((tmp_path / name).read_bytes() != content for name, content in OLD.items())
        return
    assert code in (1, 130), stderr
    assert "Traceback" not in stderr and "Interrupted" in stderr, stderr
    assert all((tmp_path / name).read_bytes() == content for name, content in OLD.items())


def test_two_runs_on_one_output_at_once_land_whole(tmp_path: Path) -> None:
    work = Work(tmp_path)
    work.speech("one.wav", seconds=1.0)
    work.speech("two.wav", seconds=2.0)
    runs = [kmtalk(["animate", name, "-b", "rig", "-o", "same.npy", "--force", "-q"], tmp_path) for name in ("one.wav", "two.wav")]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in results), results
    frames = len(np.load(tmp_path / "same.npy"))
    duration = json.loads((tmp_path / "same.align.json").read_text())["duration"]
    assert frames in (30, 60) and frames == round(duration * FPS)  # motion and alignment from the same run
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_two_runs_without_force_one_wins_the_other_says_so(tmp_path: Path) -> None:
    work = Work(tmp_path)
    work.speech("one.wav", seconds=1.0)
    work.speech("two.wav", seconds=2.0)
    runs = [kmtalk(["animate", name, "-b", "rig", "-o", "same.npy", "-q"], tmp_path) for name in ("one.wav", "two.wav")]
    results = sorted((run.wait(timeout=120), run.stderr.read()) for run in runs)
    assert [code for code, _ in results] == [0, 1], results
    one_error_line(results[1][1], r"already exists|appeared while writing")
    frames = len(np.load(tmp_path / "same.npy"))
    assert frames == round(json.loads((tmp_path / "same.align.json").read_text())["duration"] * FPS)


# -- what should work and did not: silence, the rig in two steps, a run folder, honest warnings ------


def test_silence_gives_the_face_at_rest_with_a_warning(tmp_path: Path) -> None:
    work = Work(tmp_path)
    result = runner.invoke(app, ["animate", work.silence(), "-q"])
    assert result.exit_code == 0, result.output
    assert "No speech was found" in result.stderr and "face stays at rest" in result.stderr
    motion = np.load(tmp_path / "quiet.npy").reshape(30, -1, 3)
    assert np.allclose(motion, bundled_template().vertices[None], atol=1e-6)
    with np.load(tmp_path / "quiet.keys.npz") as keys:
        assert len(keys["indices"]) == 0
    done = runner.invoke(app, ["complete", work.p("quiet.wav"), "-k", work.p("quiet.keys.npz"), "-o", work.p("again.npy")])
    assert done.exit_code == 0, done.output
    assert np.array_equal(np.load(tmp_path / "again.npy"), np.load(tmp_path / "quiet.npy"))


def test_keymotions_and_complete_with_the_rig(tmp_path: Path) -> None:
    work = Work(tmp_path)
    speech, timing = work.speech(), work.alignment()
    keys = runner.invoke(app, ["keymotions", speech, "-b", "rig", "--alignment", timing, "-o", work.p("r.keys.npz")])
    assert keys.exit_code == 0, keys.output
    done = runner.invoke(app, ["complete", speech, "-k", work.p("r.keys.npz"), "-b", "rig", "-o", work.p("r.npy")])
    assert done.exit_code == 0, done.output
    whole = runner.invoke(app, ["animate", speech, "-b", "rig", "--no-liveliness", "--alignment", timing, "-o", work.p("whole.npy")])
    assert whole.exit_code == 0, whole.output
    with np.load(tmp_path / "r.keys.npz") as stored:
        indices = stored["indices"]
    completed, rig = np.load(tmp_path / "r.npy"), np.load(tmp_path / "whole.npy")
    assert len(indices) > 4 and np.allclose(completed[indices], rig[indices], atol=1e-6)  # the rig's face at every key frame
    assert np.abs(completed - rig).mean() < 0.0005 and np.abs(completed - rig).max() < 0.02  # and near it between them


def test_a_training_run_folder_works_as_a_checkpoint(tmp_path: Path) -> None:
    work = Work(tmp_path)
    run = Path(work.folder("run"))
    work.checkpoint("run/best.safetensors")
    result = runner.invoke(app, ["animate", work.speech(), "-c", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "speech.npy").shape == (30, N_V * 3)


def test_render_warns_about_lengths_that_do_not_belong_together(tmp_path: Path) -> None:
    work = Work(tmp_path)
    motion = work.motion(frames=10)
    result = runner.invoke(app, ["render", motion, "--audio", work.speech(seconds=3.0), "--size", "64", "--renderer", "software", "-q"])
    assert result.exit_code == 0, result.output
    assert "audio lasts 3.00 s but the motion 0.33 s" in result.stderr
    result = runner.invoke(app, ["render", motion, "--side-by-side", work.motion("gt.npy", frames=60), "--no-audio",
                                 "--size", "64", "--renderer", "software", "-q", "-o", work.p("pair.mp4")])
    assert result.exit_code == 0, result.output
    assert "has 60 frames but" in result.stderr
