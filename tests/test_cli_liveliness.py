"""`kmtalk animate` writes the liveliness layer's head pose beside the motion; `kmtalk export` reads it."""

from __future__ import annotations

import csv

import numpy as np
from typer.testing import CliRunner

from kmtalk_cli.cli import app
from kmtalk_cli.face.headpose import read_head_pose

runner = CliRunner()


def test_animate_writes_the_head_pose_and_export_uses_it(speech_wav, tmp_path):
    speech = speech_wav(duration=2.0)
    result = runner.invoke(app, ["animate", str(speech), "--backbone", "rig", "--seed", "5", "-q"])
    assert result.exit_code == 0, result.output
    motion = np.load(speech.with_suffix(".npy"))
    pose = read_head_pose(speech.with_name("speech.head.npz"))
    assert pose.n_frames == len(motion) and np.ptp(pose.rotation, axis=0).max() > 0.002

    result = runner.invoke(app, ["export", str(speech.with_suffix(".npy")), "--format", "arkit-csv", "-q"])
    assert result.exit_code == 0, result.output
    with open(speech.with_suffix(".csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    yaw = np.array([float(r[rows[0].index("HeadYaw")]) for r in rows[1:]])
    np.testing.assert_allclose(yaw, pose.rotation[:, 1], atol=1e-6)


def test_no_liveliness_writes_no_head_pose(speech_wav):
    speech = speech_wav(duration=1.0)
    result = runner.invoke(app, ["animate", str(speech), "--backbone", "rig", "--no-liveliness", "-q"])
    assert result.exit_code == 0, result.output
    assert speech.with_suffix(".npy").is_file()
    assert not speech.with_name("speech.head.npz").exists()


def test_no_gate_changes_a_learned_models_lips(speech_wav, tmp_path):
    speech = speech_wav(duration=1.5)
    for flag in ("--gate", "--no-gate"):
        out = tmp_path / f"{flag.strip('-')}.npy"
        result = runner.invoke(app, ["animate", str(speech), "--no-liveliness", flag, "-o", str(out), "-q"])
        assert result.exit_code == 0, result.output
    gated, plain = np.load(tmp_path / "gate.npy"), np.load(tmp_path / "no-gate.npy")
    assert gated.shape == plain.shape and not np.allclose(gated, plain)
