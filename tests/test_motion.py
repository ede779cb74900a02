import numpy as np
import pytest

from kmtalk_cli.errors import MotionError
from kmtalk_cli.motion import as_vertex_sequence, load_motion


def test_flat_and_3d_layouts_load_to_the_same_frames(tmp_path):
    frames = np.random.default_rng(0).normal(size=(5, 4, 3)).astype(np.float32)
    np.save(tmp_path / "flat.npy", frames.reshape(5, 12))
    np.save(tmp_path / "cube.npy", frames.astype(np.float64))
    np.savez(tmp_path / "named.npz", vertices=frames, other=np.zeros(3))
    np.savez(tmp_path / "single.npz", frames.reshape(5, 12))
    for name in ("flat.npy", "cube.npy", "named.npz", "single.npz"):
        loaded = load_motion(tmp_path / name, n_vertices=4)
        assert loaded.shape == (5, 4, 3) and loaded.dtype == np.float32
        np.testing.assert_allclose(loaded, frames, rtol=1e-6)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((5, 13)), "multiple of 3"),
        (np.zeros(12), "expected (T, V·3)"),
        (np.zeros((2, 3, 4, 3)), "expected (T, V·3)"),
        (np.zeros((0, 12)), "empty"),
        (np.zeros((5, 15)), "5 vertices per frame but the template has 4"),
        (np.array([["a", "b", "c"]]), "expected numbers"),
    ],
)
def test_bad_shapes_are_named(array, message):
    with pytest.raises(MotionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        as_vertex_sequence(array, 4)


def test_nan_frames_are_counted():
    frames = np.zeros((6, 4, 3))
    frames[2, 1, 0] = np.nan
    frames[4, 0, 2] = np.inf
    with pytest.raises(MotionError, match="2 of 6 frames"):
        as_vertex_sequence(frames, 4)


def test_unreadable_and_ambiguous_files(tmp_path):
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(MotionError, match="not a readable"):
        load_motion(tmp_path / "junk.npy")
    with pytest.raises(MotionError, match="does not exist"):
        load_motion(tmp_path / "missing.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 3)), b=np.zeros((2, 3)))
    with pytest.raises(MotionError, match="name the motion"):
        load_motion(tmp_path / "two.npz")
