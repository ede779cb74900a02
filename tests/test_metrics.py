"""Metric functions against hand-computed values on tiny arrays, and a loop-by-loop parity check."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli import metrics
from kmtalk_cli.errors import MotionError


def frames(*offsets) -> np.ndarray:
    """(T, V, 3) from nested per-frame lists of per-vertex offsets."""
    return np.asarray(offsets, dtype=np.float64)


ZERO = np.zeros((2, 3, 3))
# Frame 0: lip vertex 0 is off by (3, 4, 0) (squared 25), lip vertex 1 by (1, 0, 0) (squared 1),
# non-lip vertex 2 by 10 (ignored). Frame 1: lip vertex 1 is off by (0, 2, 0) (squared 4).
PRED = frames(
    [[3, 4, 0], [1, 0, 0], [10, 0, 0]],
    [[0, 0, 0], [0, 2, 0], [10, 0, 0]],
)
LIPS = np.array([0, 1])


def test_lve_paper_is_the_max_of_squared_distances_per_frame():
    np.testing.assert_allclose(metrics.lve_paper(PRED, ZERO, LIPS), [25.0, 4.0])


def test_lve_mm_is_the_max_true_distance_in_millimetres():
    np.testing.assert_allclose(metrics.lve_mm(PRED * 1e-3, ZERO, LIPS), [5.0, 2.0])
    np.testing.assert_allclose(metrics.lve_mm(PRED, ZERO, LIPS), [5000.0, 2000.0])


def test_one_millimetre_everywhere():
    gt = np.random.default_rng(0).normal(size=(3, 4, 3))
    pred = gt + np.array([0.0, 0.001, 0.0])
    np.testing.assert_allclose(metrics.lve_paper(pred, gt, np.array([1, 2])), 1e-6)
    np.testing.assert_allclose(metrics.lve_mm(pred, gt, np.array([1, 2])), 1.0)
    np.testing.assert_allclose(metrics.mve_mm(pred, gt), 1.0)


def test_mve_is_the_mean_distance_over_all_vertices():
    pred = frames([[0.001, 0, 0], [0, 0.003, 0]], [[0, 0, 0], [0, 0, 0.004]])
    np.testing.assert_allclose(metrics.mve_mm(pred, np.zeros_like(pred)), [2.0, 2.0])


def test_pooling_over_frames_differs_from_the_mean_of_sequence_means():
    lips = np.array([0])
    short = metrics.lve_paper(frames([[2, 0, 0]]), np.zeros((1, 1, 3)), lips)  # one frame of 4
    long = metrics.lve_paper(frames([[1, 0, 0]], [[0, 1, 0]], [[0, 0, 1]]), np.zeros((3, 1, 3)), lips)  # three of 1
    assert np.concatenate([short, long]).mean() == pytest.approx(7 / 4)
    assert np.mean([short.mean(), long.mean()]) == pytest.approx(5 / 2)


def test_fdd_is_signed_dyn_gt_minus_dyn_pred():
    template = np.zeros((2, 3))
    upper = np.array([0])
    # Vertex 0's squared displacement alternates 0, 1 (std 0.5) or 0, 4 (std 2); vertex 1 is not upper face.
    gt = frames([[0, 0, 0], [5, 0, 0]], [[1, 0, 0], [0, 0, 0]], [[0, 0, 0], [5, 0, 0]], [[1, 0, 0], [0, 0, 0]])
    still = np.zeros_like(gt)
    lively = gt * 2
    assert metrics.dynamics(gt, template, upper) == pytest.approx(0.5)
    assert metrics.fdd(still, gt, template, upper) == pytest.approx(0.5)  # prediction moves too little
    assert metrics.fdd(lively, gt, template, upper) == pytest.approx(0.5 - 2.0)  # too much
    assert metrics.fdd(gt, gt, template, upper) == 0.0


def test_fdd_is_measured_from_the_template_not_the_first_frame():
    upper = np.array([0])
    gt = frames([[1, 0, 0]], [[2, 0, 0]])  # squared displacements 1, 4 from a zero template: std 1.5
    assert metrics.dynamics(gt, np.zeros((1, 3)), upper) == pytest.approx(1.5)
    assert metrics.dynamics(gt, np.array([[1.0, 0, 0]]), upper) == pytest.approx(0.5)  # 0, 1


def test_longer_predictions_are_cut_to_the_ground_truth():
    gt = np.zeros((2, 3, 3))
    pred = np.concatenate([PRED, np.full((3, 3, 3), 100.0)])
    np.testing.assert_allclose(metrics.lve_paper(pred, gt, LIPS), [25.0, 4.0])
    template = np.zeros((3, 3))
    assert metrics.fdd(pred, gt, template, LIPS) == pytest.approx(metrics.fdd(PRED, gt, template, LIPS))


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (np.zeros((1, 3, 3)), np.zeros((2, 3, 3)), "fewer than the ground truth"),
        (np.zeros((2, 4, 3)), np.zeros((2, 3, 3)), "4 vertices per frame"),
        (np.zeros((2, 9)), np.zeros((2, 3, 3)), "expected non-empty"),
    ],
)
def test_mismatched_shapes_are_errors(pred, gt, message):
    with pytest.raises(MotionError, match=message):
        metrics.lve_paper(pred, gt, LIPS)


@pytest.mark.parametrize("idx", [np.array([], dtype=int), np.array([0, 3]), np.array([0.5])])
def test_bad_regions_are_errors(idx):
    with pytest.raises(MotionError, match="region"):
        metrics.lve_paper(ZERO, ZERO, idx)


def test_parity_with_a_loop_over_frames_and_vertices():
    """The vectorised forms equal the reference formulas written out one frame at a time."""
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(7, 12, 3)) * 0.01
    pred = gt + rng.normal(size=(9, 12, 3))[:7] * 0.001
    pred = np.concatenate([pred, rng.normal(size=(2, 12, 3))])  # two extra frames to be dropped
    template = rng.normal(size=(12, 3)) * 0.01
    lips, upper = np.array([1, 4, 5, 9]), np.array([0, 2, 3, 11])

    lve, mve = [], []
    for t in range(len(gt)):
        lve.append(max(float(np.sum((gt[t, v] - pred[t, v]) ** 2)) for v in lips))
        mve.append(np.mean([np.linalg.norm(gt[t, v] - pred[t, v]) for v in range(12)]) * 1000)

    def dyn(x):
        per_vertex = [np.std([np.sum((x[t, v] - template[v]) ** 2) for t in range(len(gt))]) for v in upper]
        return np.mean(per_vertex)

    np.testing.assert_allclose(metrics.lve_paper(pred, gt, lips), lve)
    np.testing.assert_allclose(metrics.lve_mm(pred, gt, lips), np.sqrt(lve) * 1000)
    np.testing.assert_allclose(metrics.mve_mm(pred, gt), mve)
    assert metrics.fdd(pred, gt, template, upper) == pytest.approx(dyn(gt) - dyn(pred[: len(gt)]))


def test_edit_distance_counts_substitutions_insertions_and_deletions() -> None:
    from kmtalk_cli.metrics import edit_distance

    assert edit_distance(("K", "AE", "T"), ("K", "AE", "T")) == 0
    assert edit_distance(("K", "AE", "T"), ("B", "AE", "T", "S")) == 2
    assert edit_distance((), ("AH",)) == 1 and edit_distance(("AH", "AH"), ()) == 2
