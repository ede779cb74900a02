"""ARKit weights in Live Link Face's CSV layout and as JSON."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from kmtalk_cli.errors import MotionError, OutputError
from kmtalk_cli.export.arkit import (
    ARKIT_BLENDSHAPES,
    LIVE_LINK_ROTATIONS,
    RIG_TO_ARKIT,
    arkit_table,
    live_link_header,
    timecode,
    write_arkit_json,
    write_live_link_csv,
)
from kmtalk_cli.export.fit import RigFit
from kmtalk_cli.face.rig import INDEX, PARAMETERS


def make_fit(frames: int = 4, fps: float = 30.0) -> RigFit:
    rng = np.random.default_rng(0)
    weights = rng.uniform(0, 1, (frames, len(PARAMETERS))).astype(np.float32)
    return RigFit(
        names=PARAMETERS,
        weights=weights,
        residual_mm=np.full(frames, 0.25, dtype=np.float32),
        max_residual_mm=0.5,
        fps=fps,
        morph_weights=weights,
        morph_max_residual_mm=0.6,
    )


def test_the_live_link_face_header():
    header = live_link_header()
    assert header[:2] == ["Timecode", "BlendShapeCount"] and len(header) == 2 + 52 + 9
    assert header[2:5] == ["EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft"]
    assert header[16:21] == ["JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose"]
    assert header[53] == "TongueOut" and header[54:] == list(LIVE_LINK_ROTATIONS)
    assert len(set(ARKIT_BLENDSHAPES)) == 52


def test_every_rig_control_has_its_arkit_column():
    assert set(RIG_TO_ARKIT) == set(PARAMETERS)
    assert all(RIG_TO_ARKIT[name] in ARKIT_BLENDSHAPES for name in PARAMETERS)


@pytest.mark.parametrize(
    ("frame", "fps", "expected"),
    [
        (0, 30, "00:00:00:00.000"),
        (29, 30, "00:00:00:29.000"),
        (30, 30, "00:00:01:00.000"),
        (61, 60, "00:00:01:01.000"),
        (3600 * 25 + 25 * 61 + 3, 25, "01:01:01:03.000"),
        (2, 29.97, "00:00:00:02.002"),  # nominal 30 fps frames with the 29.97 drift as sub-frames
    ],
)
def test_timecodes(frame, fps, expected):
    assert timecode(frame, fps) == expected


def test_csv_rows_hold_the_weights_in_their_columns(tmp_path):
    fit = make_fit(frames=5)
    path = write_live_link_csv(fit, tmp_path / "take.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == live_link_header() and len(body) == 5
    assert all(len(row) == len(header) for row in body)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d:\d\d\.\d\d\d", row[0]) for row in body)
    assert {row[1] for row in body} == {"61"}
    col = {name: i for i, name in enumerate(header)}
    values = np.array([[float(x) for x in row[2:]] for row in body])
    np.testing.assert_allclose(values[:, col["JawOpen"] - 2], fit.weights[:, INDEX["jawOpen"]], atol=1e-6)
    np.testing.assert_allclose(values[:, col["BrowInnerUp"] - 2], fit.weights[:, INDEX["browInnerUp"]], atol=1e-6)
    # ARKit convention: mouthClose never exceeds jawOpen.
    closed = fit.weights[:, INDEX["mouthClose"]] * fit.weights[:, INDEX["jawOpen"]]
    np.testing.assert_allclose(values[:, col["MouthClose"] - 2], closed, atol=1e-6)
    for untouched in ("TongueOut", "CheekPuff", "JawLeft", "HeadYaw", "RightEyeRoll"):
        assert not values[:, col[untouched] - 2].any()


def test_json_form(tmp_path):
    fit = make_fit(frames=3, fps=25.0)
    doc = json.loads(write_arkit_json(fit, tmp_path / "take.arkit.json").read_text())
    assert doc["format"] == "kmtalk-arkit" and doc["fps"] == 25.0 and doc["frames"] == 3
    assert doc["names"] == list(PARAMETERS)
    assert np.array(doc["weights"]).shape == (3, len(PARAMETERS))
    np.testing.assert_allclose(np.array(doc["weights"]), fit.arkit_weights, atol=1e-5)
    assert doc["residual_mm"] == [0.25] * 3 and doc["max_residual_mm"] == 0.5


def test_existing_outputs_are_kept_without_force(tmp_path):
    path = tmp_path / "take.csv"
    path.write_text("keep me")
    with pytest.raises(OutputError, match="--force"):
        write_live_link_csv(make_fit(), path)
    assert path.read_text() == "keep me"
    write_live_link_csv(make_fit(), path, force=True)
    assert path.read_text().startswith("Timecode,")


def test_unknown_controls_and_bad_shapes_are_refused():
    with pytest.raises(MotionError, match="no ARKit blendshape"):
        arkit_table(np.zeros((2, 1)), ("lipWiggle",))
    with pytest.raises(MotionError, match="shape"):
        arkit_table(np.zeros((2, 3)), ("jawOpen",))


def test_a_head_pose_fills_the_head_eye_rotation_and_eye_look_columns(tmp_path):
    from kmtalk_cli.face.headpose import HeadPose

    fit = make_fit(frames=3)
    rotation = np.array([[0.05, 0.1, -0.02], [0.0, 0.0, 0.0], [-0.05, -0.1, 0.02]])
    gaze = np.array([[np.radians(15.0), np.radians(12.5)], [0.0, 0.0], [np.radians(-45.0), np.radians(-5.0)]])
    path = write_live_link_csv(fit, tmp_path / "take.csv", head_pose=HeadPose(30.0, rotation, gaze))
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = {name: i for i, name in enumerate(rows[0])}
    values = np.array([[float(x) for x in row[2:]] for row in rows[1:]])
    get = lambda name: values[:, col[name] - 2]  # noqa: E731
    np.testing.assert_allclose(get("HeadYaw"), rotation[:, 1], atol=1e-6)
    np.testing.assert_allclose(get("HeadPitch"), rotation[:, 0], atol=1e-6)
    np.testing.assert_allclose(get("HeadRoll"), rotation[:, 2], atol=1e-6)
    np.testing.assert_allclose(get("LeftEyeYaw"), gaze[:, 0], atol=1e-6)
    np.testing.assert_allclose(get("RightEyePitch"), gaze[:, 1], atol=1e-6)
    # Looking towards the face's left: out for the left eye, in for the right one; capped at 1.
    np.testing.assert_allclose(get("EyeLookOutLeft"), [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(get("EyeLookInRight"), [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(get("EyeLookInLeft"), [0.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(get("EyeLookDownLeft"), [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(get("EyeLookUpRight"), [0.0, 0.0, 0.2], atol=1e-6)
    # The blendshapes from the fit are unchanged.
    np.testing.assert_allclose(get("JawOpen"), fit.weights[:, INDEX["jawOpen"]], atol=1e-6)
    with pytest.raises(MotionError, match="frames"):
        write_live_link_csv(fit, tmp_path / "other.csv", head_pose=HeadPose.still(4, 30.0))
