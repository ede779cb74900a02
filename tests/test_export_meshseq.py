"""OBJ and PLY sequences: one mesh per frame, read back with the template loaders, written atomically."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.errors import MotionError, OutputError
from kmtalk_cli.export.meshseq import frame_name, write_obj_sequence, write_ply_sequence
from kmtalk_cli.face.template import read_mesh



def motion(head, frames: int = 3) -> np.ndarray:
    lower = head.region("lower_face")
    out = np.repeat(head.vertices[None], frames, axis=0).copy()
    out[:, lower, 1] -= np.linspace(0, 0.01, frames, dtype=np.float32)[:, None]
    return out


def test_frame_names_are_zero_padded():
    assert frame_name("take", 7, 300, ".obj") == "take_00007.obj"
    assert frame_name("take", 123456, 200000, ".ply") == "take_123456.ply"


@pytest.mark.parametrize(("writer", "suffix", "atol"), [(write_obj_sequence, ".obj", 1e-6), (write_ply_sequence, ".ply", 0.0)])
def test_every_frame_reads_back(tmp_path, head, writer, suffix, atol):
    frames = motion(head)
    paths = writer(frames, head.faces, tmp_path / "seq", "take")
    assert [p.name for p in paths] == [f"take_0000{i}{suffix}" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == [p.name for p in paths]
    for i, path in enumerate(paths):
        vertices, faces = read_mesh(path)
        np.testing.assert_allclose(vertices, frames[i], atol=atol)
        np.testing.assert_array_equal(faces, head.faces)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_an_existing_sequence_is_replaced_only_with_force(tmp_path, head):
    folder = tmp_path / "seq"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    with pytest.raises(OutputError, match="--force"):
        write_ply_sequence(motion(head), head.faces, folder, "take")
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]
    write_ply_sequence(motion(head), head.faces, folder, "take", force=True)
    assert sorted(p.name for p in folder.iterdir()) == ["take_00000.ply", "take_00001.ply", "take_00002.ply"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_empty_folder_is_filled_without_force(tmp_path, head):
    (tmp_path / "seq").mkdir()
    write_obj_sequence(motion(head, 1), head.faces, tmp_path / "seq")
    assert [p.name for p in (tmp_path / "seq").iterdir()] == ["seq_00000.obj"]


def test_a_failure_leaves_nothing_behind(tmp_path, head):
    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_obj_sequence(motion(head), head.faces, tmp_path / "seq", progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_bad_targets_and_meshes(tmp_path, head):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        write_obj_sequence(motion(head), head.faces, tmp_path / "file")
    with pytest.raises(OutputError, match="does not exist"):
        write_obj_sequence(motion(head), head.faces, tmp_path / "missing" / "seq")
    with pytest.raises(MotionError, match="no faces"):
        write_obj_sequence(motion(head), np.zeros((0, 3), dtype=np.int32), tmp_path / "seq")
    with pytest.raises(MotionError, match="do not index"):
        write_ply_sequence(motion(head)[:, :10], head.faces, tmp_path / "seq")
