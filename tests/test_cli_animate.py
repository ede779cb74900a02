"""`kmtalk animate`, `keymotions` and `complete` end to end on generated speech."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from kmtalk_cli.cli import app
from kmtalk_cli.keymotions import read_key_motions

runner = CliRunner()
TINY = '{"audio": {"dim": 16, "layers": 1}, "d_model": 16, "key_motions": {"embed_dim": 16, "decoder_dim": 32, "decoder_layers": 1}}'


@pytest.fixture(scope="module")
def checkpoints(tiny_corpus, tmp_path_factory):
    """A plain and a key-motion FaceFormer, trained for one epoch on the tiny corpus."""
    root = tmp_path_factory.mktemp("runs")
    config = root / "tiny.json"
    config.write_text(TINY)
    out = {}
    for label, flag in (("plain", "--no-key-motions"), ("km", "--key-motions")):
        result = runner.invoke(app, ["train", "--data", str(tiny_corpus), "--out", str(root / label), "--config", str(config), flag, "--epochs", "1", "-q"])
        assert result.exit_code == 0, result.output
        out[label] = root / label / "best.safetensors"
    return out


def test_animate_with_key_motions_on_speech_without_a_transcript(checkpoints, speech_wav, tmp_path) -> None:
    speech = speech_wav(duration=1.5)
    result = runner.invoke(app, ["animate", str(speech), "-c", str(checkpoints["km"])])
    assert result.exit_code == 0, result.output
    motion = np.load(speech.with_suffix(".npy"))
    assert motion.shape == (45, 5080 * 3) and np.isfinite(motion).all()
    assert json.loads(speech.with_suffix(".align.json").read_text())["phones"]
    keys = read_key_motions(speech.with_suffix(".keys.npz"))
    assert keys.offsets.shape == (len(keys.frames.indices), 5080 * 3) and keys.frames.indices[0] == 0
    assert speech.with_suffix(".keys.npz").stat().st_size < 1.1 * keys.offsets.nbytes  # no absolute vertices beside the offsets (version 1)
    # Running again does not overwrite without --force.
    again = runner.invoke(app, ["animate", str(speech), "-c", str(checkpoints["km"])])
    assert again.exit_code == 1 and "--force" in again.output


def test_keymotions_then_complete_matches_animate(checkpoints, speech_wav, tmp_path) -> None:
    speech = speech_wav(duration=1.2)
    assert runner.invoke(app, ["align", str(speech), "-q"]).exit_code == 0
    alignment = speech.with_name(speech.stem + ".align.json")
    keys = tmp_path / "k.npz"
    done = runner.invoke(app, ["keymotions", str(speech), "-c", str(checkpoints["km"]), "--alignment", str(alignment), "-o", str(keys)])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["complete", str(speech), "--keys", str(keys), "-c", str(checkpoints["km"]), "-o", str(tmp_path / "two.npy")])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["animate", str(speech), "-c", str(checkpoints["km"]), "--alignment", str(alignment), "-o", str(tmp_path / "one.npy"), "--no-liveliness", "--no-gate"])
    assert done.exit_code == 0, done.output
    assert np.allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"), atol=1e-5)


def test_plain_checkpoint_and_rig(checkpoints, speech_wav) -> None:
    speech = speech_wav(duration=1.0)
    assert runner.invoke(app, ["animate", str(speech), "-c", str(checkpoints["plain"]), "-o", str(speech.with_name("p.npy"))]).exit_code == 0
    assert np.load(speech.with_name("p.npy")).shape == (30, 5080 * 3)
    assert runner.invoke(app, ["animate", str(speech), "-b", "rig", "-o", str(speech.with_name("r.npy"))]).exit_code == 0


def _alignment_file(path, phones, duration):
    from kmtalk_cli.alignment import Alignment, Segment, write_json

    write_json(Alignment((), tuple(Segment(*p) for p in phones), "textgrid", "forced", None, duration), path)
    return path


def test_bad_inputs_are_one_clear_line(checkpoints, speech_wav, tmp_path) -> None:
    speech = speech_wav(duration=1.0)
    km = str(checkpoints["km"])
    wrong = runner.invoke(app, ["animate", str(speech), "-c", str(checkpoints["plain"]), "--key-motions"])
    assert wrong.exit_code == 1 and "without key motions" in wrong.output
    long = _alignment_file(tmp_path / "long.json", [("SIL", 0.0, 0.2), ("AA", 0.2, 3.0)], 3.0)
    bad = runner.invoke(app, ["animate", str(speech), "-c", km, "--alignment", str(long)])
    assert bad.exit_code == 1 and "only 1.00 s long" in bad.output
    silent = _alignment_file(tmp_path / "silent.json", [("SIL", 0.0, 1.0)], 1.0)
    rest = tmp_path / "rest.npy"
    quiet = runner.invoke(app, ["animate", str(speech), "-c", km, "--alignment", str(silent), "-o", str(rest)])
    assert quiet.exit_code == 0 and "No speech" in quiet.output  # silence: the face at rest, with a warning
    from kmtalk_cli.face.template import bundled_template

    assert np.allclose(np.load(rest).reshape(30, -1, 3), bundled_template().vertices[None], atol=1e-6)
    with np.load(rest.with_suffix(".keys.npz")) as keys:
        assert keys["offsets"].shape == (0, 5080 * 3)
    missing = runner.invoke(app, ["animate", str(speech), "-c", str(tmp_path / "nope.safetensors")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    unknown = runner.invoke(app, ["animate", str(speech), "-b", "facefarmer"])
    assert unknown.exit_code == 1 and "Unknown backbone 'facefarmer'" in unknown.output and "faceformer" in unknown.output
    plain_keys = runner.invoke(app, ["keymotions", str(speech), "-c", str(checkpoints["plain"]), "-o", str(tmp_path / "k.npz")])
    assert plain_keys.exit_code == 1 and "trained without key motions" in plain_keys.output
    not_keys = tmp_path / "junk.npz"
    not_keys.write_bytes(b"not an npz")
    bad_keys = runner.invoke(app, ["complete", str(speech), "--keys", str(not_keys), "-c", km, "-o", str(tmp_path / "c.npy")])
    assert bad_keys.exit_code == 1 and "is not a key-motion .npz file" in bad_keys.output
    assert not speech.with_suffix(".npy").exists() and not (tmp_path / "c.npy").exists() and not (tmp_path / "k.npz").exists()
