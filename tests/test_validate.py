"""Value checks: non-finite arrays, motions in the wrong unit, diverged offsets, option ranges."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.errors import KmtalkError, ModelError, MotionError
from kmtalk_cli.validate import check_motion_scale, check_offsets, count_bad_rows, require_finite, require_number


def _head() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-0.1, 0.1, size=(50, 3)).astype(np.float32)


def test_require_finite_counts_bad_rows() -> None:
    array = np.zeros((5, 6), np.float32)
    assert require_finite(array, "x") is not None
    array[2, 3] = np.nan
    array[4, 0] = np.inf
    assert count_bad_rows(array) == 2
    with pytest.raises(MotionError, match="2 of 5 rows"):
        require_finite(array, "Key-motion file k.npz")


def test_motion_in_metres_passes_and_millimetres_get_a_unit_hint() -> None:
    head = _head()
    motion = np.repeat(head[None], 4, axis=0) + 0.003
    assert check_motion_scale(motion, head, "m") is motion
    with pytest.raises(MotionError, match="millimetres"):
        check_motion_scale(motion * 1000, head, "Motion file take.npy")
    with pytest.raises(MotionError, match="centimetres"):
        check_motion_scale(motion * 100, head, "Motion file take.npy")


def test_a_vertex_far_from_rest_is_refused() -> None:
    head = _head()
    motion = np.repeat(head[None], 3, axis=0)
    motion[1, 7] += 5.0
    with pytest.raises(MotionError, match="diverged"):
        check_motion_scale(motion, head, "The motion")


def test_offsets_of_a_diverged_model() -> None:
    assert check_offsets(np.full((3, 9), 0.01), "m").shape == (3, 9)
    with pytest.raises(ModelError, match="diverged"):
        check_offsets(np.full((3, 9), 1e8), "Checkpoint c")
    with pytest.raises(ModelError, match="NaN"):
        check_offsets(np.array([[np.nan, 0, 0]]), "Checkpoint c")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 11.0])
def test_require_number(value: float) -> None:
    with pytest.raises(KmtalkError, match="--lr"):
        require_number(value, "--lr", low=0.0, high=10.0)
    assert require_number(3, "--lr", low=0.0, high=10.0) == 3.0


def test_checkpoints_with_nan_or_absurd_weights_are_neither_loaded_nor_saved(tmp_path) -> None:
    import torch

    from kmtalk_cli.backbones.checkpoint import check_weights, save_checkpoint

    check_weights({"w": torch.ones(3)}, "ok.safetensors")
    with pytest.raises(ModelError, match="damaged or diverged: tensor w holds a weight of 1e\\+08"):
        check_weights({"w": torch.tensor([1.0, 1e8])}, "c.safetensors")
    with pytest.raises(ModelError, match="tensor w holds NaN"):
        check_weights({"w": torch.tensor([float("nan")])}, "c.safetensors")
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(ModelError, match="Not saving best.safetensors: tensor weight"):
        save_checkpoint(model, tmp_path / "best.safetensors", {"kind": "backbone", "backbone": "x", "config": {}})
    assert list(tmp_path.iterdir()) == []


def test_offsets_or_a_collapsed_mesh_are_not_a_motion() -> None:
    head = _head()
    with pytest.raises(MotionError, match="vertex offsets"):
        check_motion_scale(np.full((2, 50, 3), 0.001, np.float32) * np.arange(3), head, "Motion file d.npy")
    with pytest.raises(MotionError, match="collapsed"):
        check_motion_scale(np.zeros((2, 50, 3), np.float32), head, "Motion file z.npy")
