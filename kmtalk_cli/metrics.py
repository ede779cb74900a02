"""Talking-face metrics with pinned definitions: LVE (paper and true-mm forms), FDD and MVE.

Inputs are (T, V, 3) vertex positions in metres. The "paper" LVE reproduces CodeTalker's
``cal_metric.py``, which the CodeTalker and SelfTalk papers report: per frame, the maximum over
lip vertices of the *squared* L2 error (no square root), averaged over every frame of every test
sequence pooled. Papers print it ×1e-5 (VOCASET) or ×1e-4 (BIWI) and call it "mm", but it is in
squared length units, so :func:`lve_mm` gives the true L2 value in millimetres beside it.

Frame-level metrics return one value per frame so callers pool over all frames of all
sequences, as the reference does; a mean of per-sequence means weights short sequences more.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from .errors import MotionError

__all__ = ["dynamics", "fdd", "lve_mm", "lve_paper", "mve_mm"]

MM_PER_M = 1000.0


def _check_indices(indices: np.ndarray, n_vertices: int, what: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
        raise MotionError(f"The {what} region must be a non-empty list of vertex indices.")
    if idx.min() < 0 or idx.max() >= n_vertices:
        raise MotionError(f"The {what} region has vertex index {int(idx.max())}, outside 0..{n_vertices - 1}.")
    return idx


def _paired(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 (T, V, 3) pair; a longer prediction is cut to the GT length (as cal_metric does)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    for array, what in ((pred, "prediction"), (gt, "ground truth")):
        if array.ndim != 3 or array.shape[-1] != 3 or array.shape[0] == 0:
            raise MotionError(f"The {what} has shape {array.shape}; expected non-empty (T, V, 3).")
    if pred.shape[1] != gt.shape[1]:
        raise MotionError(f"The prediction has {pred.shape[1]} vertices per frame but the ground truth has {gt.shape[1]}.")
    if len(pred) < len(gt):
        raise MotionError(f"The prediction has {len(pred)} frames, fewer than the ground truth's {len(gt)}.")
    return pred[: len(gt)], gt


def _squared_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, V) squared L2 distance per vertex and frame."""
    return np.sum((gt - pred) ** 2, axis=-1)


def lve_paper(pred: np.ndarray, gt: np.ndarray, lip_idx: np.ndarray) -> np.ndarray:
    """(T,) per frame, max over lip vertices of the squared L2 error, in m² (CodeTalker's LVE)."""
    pred, gt = _paired(pred, gt)
    idx = _check_indices(lip_idx, gt.shape[1], "lip")
    return _squared_errors(pred[:, idx], gt[:, idx]).max(axis=1)


def lve_mm(pred: np.ndarray, gt: np.ndarray, lip_idx: np.ndarray) -> np.ndarray:
    """(T,) per frame, max over lip vertices of the true L2 error, in millimetres."""
    return np.sqrt(lve_paper(pred, gt, lip_idx)) * MM_PER_M


def mve_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T,) per frame, mean over all vertices of the L2 error, in millimetres."""
    pred, gt = _paired(pred, gt)
    return np.sqrt(_squared_errors(pred, gt)).mean(axis=1) * MM_PER_M


def dynamics(vertices: np.ndarray, template: np.ndarray, upper_idx: np.ndarray) -> float:
    """Mean over upper-face vertices of the std over time of the squared displacement norm (m²)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    if template.shape != vertices.shape[1:]:
        raise MotionError(f"The template has shape {template.shape}; the motion's frames are {vertices.shape[1:]}.")
    idx = _check_indices(upper_idx, vertices.shape[1], "upper-face")
    displacement = np.sum((vertices[:, idx] - template[idx]) ** 2, axis=-1)  # (T, |upper|)
    return float(displacement.std(axis=0).mean())


def fdd(pred: np.ndarray, gt: np.ndarray, template: np.ndarray, upper_idx: np.ndarray) -> float:
    """Signed dyn(GT) − dyn(pred) for one sequence, in m²: positive when the prediction moves less."""
    pred, gt = _paired(pred, gt)
    return dynamics(gt, template, upper_idx) - dynamics(pred, template, upper_idx)


def edit_distance(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Levenshtein distance between two label sequences (phones): the numerator of a phone error rate."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]
