"""The bundled recipe's variant runs (tools/train_defaults.py) and their scoring (keymotion_gain.py):
options that a researcher types, so they must refuse bad input before anything is built."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _train_defaults():
    spec = importlib.util.spec_from_file_location("train_defaults", ROOT / "tools" / "train_defaults.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_set_values_are_json_and_a_bare_word_is_a_string() -> None:
    tool = _train_defaults()
    assert tool.key_motion_option("audio_guidance=false") == ("audio_guidance", False)
    assert tool.key_motion_option("key_noise=0.3") == ("key_noise", 0.3)
    assert tool.key_motion_option("completion_keys=predicted") == ("completion_keys", "predicted")


def test_a_variant_trains_with_its_seed() -> None:
    tool = _train_defaults()
    recipe = next(r for r in tool.RECIPES if r.name == "selftalk-km")
    args = recipe.train_args(Path("C"), Path("O"), Path("cfg.json"), 2)
    assert args[args.index("--seed") + 1] == "2"
    assert recipe.train_args(Path("C"), Path("O"), Path("cfg.json"))[args.index("--seed") + 1] == str(tool.SEED)


def test_variants_are_never_installed_and_bad_options_are_refused_before_any_work(tmp_path: Path) -> None:
    work = tmp_path / "work"
    cases = [
        (["--seed", "1", "--only", "selftalk-km"], "--no-install"),
        (["--set", "audio_guidance", "--no-install", "--only", "selftalk-km"], "KEY=VALUE"),
        (["--corpus", str(tmp_path / "none"), "--no-install", "--only", "selftalk-km"], "is not a corpus"),
    ]
    for args, said in cases:
        done = _run("tools/train_defaults.py", "--work", str(work), *args)
        assert done.returncode != 0, args
        assert said in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert not work.exists(), args  # nothing built, nothing installed


def test_scoring_a_missing_checkpoint_is_refused_before_a_corpus_is_built(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    done = _run("benchmarks/keymotion_gain.py", "--corpus", str(corpus), "--runs", str(tmp_path / "runs"),
                "--checkpoints", str(tmp_path / "nope.safetensors"))
    assert done.returncode != 0
    assert "No checkpoint at" in done.stderr and "Traceback" not in done.stderr
    assert not corpus.exists()
