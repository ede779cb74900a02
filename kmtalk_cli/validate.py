"""Value checks shared by every reader and writer: nothing non-finite or absurd passes silently.

Shapes are each reader's business; this module answers the questions every stage asks of its
numbers: are they finite, is a face motion plausibly in metres, is a CLI number in range. Each
check raises a :class:`~kmtalk_cli.errors.KmtalkError` subclass with one sentence naming the
data and, where it helps, the likely cause (a unit, a diverged model).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import KmtalkError, ModelError, MotionError

#: A vertex further than this (metres) from its rest position is not a face motion. Jaw opening
#: and head turns move vertices by centimetres; a whole head is about 0.2 m across.
MAX_OFFSET_M = 0.5
#: A motion smaller than this share of its template is offsets or a collapsed mesh, not a face.
MIN_SIZE_RATIO = 0.2
#: Ratios of a motion's size to its template's that point to a unit mistake, largest first.
UNIT_HINTS = ((1000.0, "millimetres"), (100.0, "centimetres"))


def count_bad_rows(array: np.ndarray) -> int:
    """Rows (first axis) holding at least one NaN or infinite value; 0 for a finite array."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return 0
    bad = ~np.isfinite(array.reshape(len(array), -1) if array.ndim > 1 else array)
    return int(bad.any(axis=1).sum()) if bad.ndim > 1 else int(bad.sum())


def require_finite(array: np.ndarray, what: str, error: type[KmtalkError] = MotionError) -> np.ndarray:
    """Return ``array`` unchanged, or raise ``error`` if it holds NaN or infinity.

    The message counts the bad rows (frames, key frames, samples), so ``what`` should read as the
    subject of a sentence: ``"Key-motion file take.keys.npz"``.
    """
    array = np.asarray(array)
    bad = count_bad_rows(array)
    if bad:
        total = len(array) if array.ndim else 1
        raise error(f"{what} contains NaN or infinite values in {bad} of {total} {'rows' if array.ndim > 1 else 'values'}.")
    return array


def unit_hint(size: float, reference: float) -> str:
    """``" (it looks like millimetres; divide by 1000)"``, or ``""`` when no unit explains the ratio."""
    if reference <= 0 or not math.isfinite(size) or size <= 0:
        return ""
    ratio = size / reference
    for factor, unit in UNIT_HINTS:
        if 0.5 * factor <= ratio <= 2.0 * factor:
            return f" (it looks like {unit}; divide by {factor:g} to get metres)"
    return ""


def _extent(vertices: np.ndarray) -> float:
    """The diagonal of the bounding box of (..., V, 3) points."""
    flat = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    return float(np.linalg.norm(flat.max(axis=0) - flat.min(axis=0)))


def check_motion_scale(vertices: np.ndarray, template: np.ndarray, what: str) -> np.ndarray:
    """Refuse absolute vertices (T, V, 3) that cannot be a motion of ``template`` (V, 3) in metres.

    Three tests: the motion's size matches the template's (a factor of 1000 is a motion in
    millimetres, said so; a small fraction is offsets without the template), and no vertex strays more than :data:`MAX_OFFSET_M` from its rest
    position (a diverged model). Returns ``vertices`` unchanged.
    """
    vertices = np.asarray(vertices)
    require_finite(vertices, what)
    head = _extent(template)
    size = _extent(vertices[0])
    hint = unit_hint(size, head)
    if hint:
        raise MotionError(f"{what} is {size / head:.0f} times the size of the template{hint}.")
    if head > 0 and size < MIN_SIZE_RATIO * head:
        raise MotionError(
            f"{what} spans {size:.3g} m, a small fraction of the template's {head:.3g} m: it looks like vertex offsets "
            "(or a collapsed mesh), but motions hold absolute positions (template + offsets)."
        )
    worst = max_offset(vertices, template)
    if worst > MAX_OFFSET_M:
        raise MotionError(
            f"{what} moves a vertex {worst:.3g} m from its rest position; a face motion stays within "
            f"{MAX_OFFSET_M:g} m (wrong units, or a model that diverged)."
        )
    return vertices


def max_offset(vertices: np.ndarray, template: np.ndarray) -> float:
    """The largest distance (metres) of any vertex in (T, V, 3) from its rest position, chunked
    over frames so a long motion needs no second full-size array."""
    vertices = np.asarray(vertices)
    rest = np.asarray(template, dtype=np.float32)[None]
    worst = 0.0
    for start in range(0, len(vertices), 256):
        chunk = np.asarray(vertices[start:start + 256], dtype=np.float32).reshape(-1, rest.shape[1], 3)
        worst = max(worst, float(np.abs(chunk - rest).max(initial=0.0)))
    return worst


def check_offsets(offsets: np.ndarray, what: str, error: type[KmtalkError] = ModelError) -> np.ndarray:
    """Refuse predicted offsets (T, V·3) that are non-finite or move a vertex more than
    :data:`MAX_OFFSET_M`: what a damaged or diverged checkpoint produces."""
    offsets = np.asarray(offsets)
    if count_bad_rows(offsets):
        raise error(f"{what} gave NaN or infinite vertex offsets; the checkpoint is damaged or its training diverged.")
    worst = float(np.abs(offsets).max(initial=0.0))
    if worst > MAX_OFFSET_M:
        raise error(
            f"{what} moves a vertex {worst:.3g} m, far beyond any face motion (at most {MAX_OFFSET_M:g} m); "
            "the checkpoint is damaged or its training diverged."
        )
    return offsets


def require_number(value: float, name: str, *, low: float | None = None, high: float | None = None) -> float:
    """A finite number within [low, high], else a :class:`KmtalkError` naming the option."""
    value = float(value)
    if not math.isfinite(value):
        raise KmtalkError(f"{name} must be a finite number; got {value}.")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low:g} and {high:g}" if low is not None and high is not None else (f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise KmtalkError(f"{name} must be {span}; got {value:g}.")
    return value
