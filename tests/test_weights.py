"""The bundled default weights: all six present, small, described truly by their cards, and usable
offline from the CLI on generated speech."""

import hashlib
import socket

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from kmtalk_cli.backbones.checkpoint import read_checkpoint_info
from kmtalk_cli.cli import app
from kmtalk_cli.weights import bundled_checkpoints, card_facts, find_bundled, read_card_facts

BACKBONES = ("faceformer", "codetalker", "selftalk")
BUNDLED = bundled_checkpoints()


def test_every_backbone_is_bundled_with_and_without_key_motions():
    for backbone in BACKBONES:
        for km in (False, True):
            assert find_bundled(backbone, km) is not None, f"no bundled {backbone}{' + KM' if km else ''}"
    assert sum(c.path.stat().st_size for c in BUNDLED) <= 42e6  # 40.8 MB: the + KM models carry the rig prior's basis


@pytest.mark.parametrize("bundled", BUNDLED, ids=lambda c: c.path.stem)
def test_card_matches_its_checkpoint(bundled):
    card = bundled.path.with_suffix(".md")
    assert card.is_file(), f"{bundled.path.name} has no model card"
    stated = read_card_facts(card)
    info = read_checkpoint_info(bundled.path)
    from safetensors import safe_open

    from kmtalk_cli.models import load_model

    n_params = sum(p.numel() for p in load_model(bundled.path).model.parameters())
    with safe_open(str(bundled.path), framework="pt") as fh:
        dtypes = {fh.get_slice(k).get_dtype() for k in fh.keys()}
    data = bundled.path.read_bytes()
    actual = card_facts(info, n_params, len(data), hashlib.sha256(data).hexdigest())
    assert stated == actual
    assert dtypes <= {"F16", "I64", "BOOL"}  # float weights stored in half precision
    assert bundled.path.stem == f"{info['backbone']}{'-km' if info['kind'] == 'key-motion' else ''}"
    assert stated["training"]["command"].startswith("kmtalk train")
    assert 0 < stated["metrics"]["test"]["lve_mm"] < 10


@pytest.fixture(scope="module")
def spoken_clip(tmp_path_factory):
    """A real synthetic sentence (espeak-ng) with its transcript, as a user would bring one."""
    from kmtalk_cli.alignment.espeak import synthesize

    folder = tmp_path_factory.mktemp("clip")
    text = "maybe we should paint the boat blue before summer"
    speech = synthesize(text, "en-us+m3", rate=160, pitch=50)
    path = folder / "clip.wav"
    sf.write(path, speech.samples, speech.sample_rate)
    (folder / "clip.txt").write_text(text)
    return path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("kmtalk tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("bundled", BUNDLED, ids=lambda c: c.path.stem)
def test_bundled_checkpoint_animates_speech_offline(bundled, spoken_clip, tmp_path, no_network):
    from kmtalk_cli import animate
    from kmtalk_cli.face.rig import lip_gap
    from kmtalk_cli.face.template import bundled_template

    result = animate(spoken_clip, backbone=bundled.backbone, key_motions=bundled.key_motions, text=spoken_clip.with_suffix(".txt").read_text())
    head = bundled_template()
    assert result.vertices.shape[1:] == head.vertices.shape and np.isfinite(result.vertices).all()
    # The mouth moves with the speech: the inner-lip gap varies by millimetres, the forehead barely.
    gap = lip_gap(result.vertices, head.landmarks) * 1000
    assert np.ptp(gap) > 2.0
    assert (result.key_motions is not None) == bundled.key_motions


def test_cli_animate_uses_the_bundled_default_offline(spoken_clip, tmp_path, no_network):
    out = tmp_path / "clip.npy"
    result = CliRunner().invoke(app, ["animate", str(spoken_clip), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape[1] == 3 * 5080
    assert "Aligning the speech" in result.output and "key motions" in result.output.lower()
    import json

    listed = {row["name"]: row for row in json.loads(CliRunner().invoke(app, ["backbones", "--json"]).output)}
    assert set(listed["faceformer"]["bundled"]) == {"faceformer", "faceformer + KM"}
    assert "SynthTalk_01_M" in listed["selftalk"]["styles"]
    styled = CliRunner().invoke(app, ["animate", str(spoken_clip), "-o", str(tmp_path / "styled.npy"), "--style", "SynthTalk_02_F", "--backbone", "selftalk", "--no-key-motions"])
    assert styled.exit_code == 0, styled.output


def test_two_minute_recording_animates_within_memory_with_progress(spoken_clip, tmp_path):
    """A long take through the real CLI process: bounded memory, progress on stderr, right length."""
    import os
    import resource
    import subprocess
    import sys

    speech, rate = sf.read(spoken_clip, dtype="float32")
    gap = np.zeros(int(0.4 * rate), np.float32)
    take = np.concatenate([np.concatenate([speech, gap])] * int(np.ceil(120 * rate / (len(speech) + len(gap)))))[: 120 * rate]
    wav = tmp_path / "take.wav"
    sf.write(wav, take, rate)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-m", "kmtalk_cli", "animate", str(wav)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"})
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    assert done.returncode == 0, done.stderr
    assert np.load(wav.with_suffix(".npy")).shape == (3600, 3 * 5080)
    for stage in ("Aligning the speech", "Predicting key motions", "Completing the motion"):
        assert stage in done.stderr
    assert peak_mb < 3000


def test_default_model_reproduces_the_figure_in_its_card(tmp_path):
    """Today's corpus code and model code give the default model's recorded lip error (±1%)."""
    from kmtalk_cli.data.synth import build_corpus
    from kmtalk_cli.weights.repro import REPRO_CHECKPOINT, REPRO_OPTIONS, REPRO_TOLERANCE, recorded_lve, repro_lve

    bundled = find_bundled(*REPRO_CHECKPOINT)
    assert bundled is not None
    recorded = recorded_lve(bundled.path.with_suffix(".md"))
    assert recorded is not None, "the default model's card records no reproducibility figure"
    build_corpus(tmp_path / "repro", REPRO_OPTIONS)
    measured = repro_lve(bundled.path, tmp_path / "repro")
    assert abs(measured - recorded) <= REPRO_TOLERANCE * recorded, f"measured {measured:.4f} mm, card says {recorded:.4f} mm"
