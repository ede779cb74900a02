"""`kmtalk render` through Typer's CliRunner: one success path and every bad input the issue names."""

from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from kmtalk_cli import __version__
from kmtalk_cli.cli import app
from kmtalk_cli.face.template import bundled_template

runner = CliRunner()


def head_motion(frames: int = 6) -> np.ndarray:
    """The bundled head with the lower face moving, (T, V·3)."""
    head = bundled_template()
    lower = head.region("lower_face")
    motion = np.repeat(head.vertices[None], frames, axis=0).copy()
    motion[:, lower, 1] -= np.linspace(0, 0.01, frames)[:, None]
    return motion.reshape(frames, -1)


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_help():
    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    result = invoke("--help")
    assert result.exit_code == 0 and "render" in result.stdout


def test_render_finds_audio_beside_the_motion(tmp_path, speech_wav):
    np.save(tmp_path / "speech.npy", head_motion(8))
    speech_wav("speech.wav", duration=8 / 25)
    result = invoke("render", tmp_path / "speech.npy", "--size", 128, "--fps", 25, "--quiet")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "speech.mp4"
    assert "with audio" in result.stderr
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 8


def test_side_by_side_and_silent(tmp_path):
    np.save(tmp_path / "pred.npy", head_motion(4))
    np.save(tmp_path / "gt.npy", head_motion(4).reshape(4, -1, 3))
    out = tmp_path / "cmp.mp4"
    result = invoke("render", tmp_path / "pred.npy", "--side-by-side", tmp_path / "gt.npy", "-o", out, "--size", 96, "-q")
    assert result.exit_code == 0, result.stderr
    assert "silent" in result.stderr
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"][0] == 2 * meta["size"][1]


def write(tmp_path, array, name):
    path = tmp_path / name
    np.save(path, array)
    return path


def bad_inputs(tmp_path):
    vertices = bundled_template().n_vertices
    good = write(tmp_path, head_motion(3), "good.npy")
    (tmp_path / "exists.mp4").write_bytes(b"keep me")
    (tmp_path / "noise.wav").write_text("this is not audio")
    return {
        "vertex count": ([write(tmp_path, np.zeros((3, (vertices - 1) * 3)), "count.npy")], f"but the template has {vertices}"),
        "rank": ([write(tmp_path, np.zeros((3, 2, vertices, 3)), "rank.npy")], "expected (T, V·3)"),
        "nan": ([write(tmp_path, np.full((3, vertices * 3), np.nan), "nan.npy")], "NaN"),
        "empty": ([write(tmp_path, np.zeros((0, vertices * 3)), "empty.npy")], "empty"),
        "audio": ([good, "--audio", tmp_path / "noise.wav"], "could not be decoded"),
        "missing audio": ([good, "--audio", tmp_path / "absent.wav"], "does not exist"),
        "missing dir": ([good, "-o", tmp_path / "nowhere" / "x.mp4"], "does not exist"),
        "exists": ([good, "-o", tmp_path / "exists.mp4"], "--force"),
        "missing motion": ([tmp_path / "absent.npy"], "does not exist"),
        "template": ([good, "--template", tmp_path / "absent.ply"], "absent.ply"),
    }


@pytest.mark.parametrize(
    "case",
    ["vertex count", "rank", "nan", "empty", "audio", "missing audio", "missing dir", "exists", "missing motion", "template"],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, case):
    args, message = bad_inputs(tmp_path)[case]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = invoke("render", *args, "-q")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before


def test_unwritable_output_directory(tmp_path):
    good = write(tmp_path, head_motion(3), "good.npy")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        target = locked if not os.access(locked, os.W_OK) else "/proc"
        result = invoke("render", good, "-o", os.path.join(target, "x.mp4"), "-q")
        assert result.exit_code == 1
        assert "writ" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        locked.chmod(0o700)


def first_frame(path) -> np.ndarray:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.frombuffer(next(reader), dtype=np.uint8).reshape(h, w, 3)


def test_views_background_labels_and_the_head_pose_beside_the_motion(tmp_path):
    from kmtalk_cli.face.headpose import HeadPose, head_pose_path, write_head_pose

    motion = tmp_path / "take.npy"
    np.save(motion, head_motion(4))
    out = tmp_path / "profile.mp4"
    result = invoke("render", motion, "-o", out, "--size", 96, "--view", "profile", "--background", "#000000", "-q")
    assert result.exit_code == 0, result.stderr
    assert first_frame(out)[2, 2].max() < 16  # black background
    rotation = np.zeros((4, 3), np.float32)
    rotation[:, 1] = 0.5
    write_head_pose(HeadPose(30.0, rotation, np.zeros((4, 2), np.float32)), head_pose_path(motion))
    turned = tmp_path / "turned.mp4"
    result = invoke("render", motion, "-o", turned, "--size", 96, "--view", "profile", "--background", "#000000", "-q")
    assert result.exit_code == 0, result.stderr
    assert "take.head.npz" in result.stderr
    assert np.abs(first_frame(turned).astype(int) - first_frame(out).astype(int)).mean() > 3  # the head turned
    alone = tmp_path / "alone.mp4"
    result = invoke("render", motion, "-o", alone, "--size", 96, "--labels", "A,B", "-q")
    assert result.exit_code == 0 and "--labels names the panels of --side-by-side" in result.stderr
    labelled = tmp_path / "labelled.mp4"
    result = invoke("render", motion, "--side-by-side", motion, "-o", labelled, "--size", 128, "--labels", "TRUTH,MODEL", "-q")
    assert result.exit_code == 0, result.stderr
    frame = first_frame(labelled)
    assert (frame[:30, :60].min(axis=2) > 230).sum() > 10 and (frame[:30, 128:188].min(axis=2) > 230).sum() > 10


def test_bad_view_options_are_one_sentence(tmp_path):
    np.save(tmp_path / "take.npy", head_motion(2))
    result = invoke("render", tmp_path / "take.npy", "--background", "mauve-ish", "-q")
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "Colour 'mauve-ish'" in result.stderr
    result = invoke("render", tmp_path / "take.npy", "--view", "top", "-q")
    assert result.exit_code != 0 and "Traceback" not in result.stderr
