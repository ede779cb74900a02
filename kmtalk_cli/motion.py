"""Mesh motion files: (T, V·3) or (T, V, 3) absolute vertex positions, the FaceFormer convention.

Readers accept both layouts and normalise to (T, V, 3) float32; every shape or value problem
becomes a :class:`MotionError` with one sentence naming the file and what is wrong.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import MotionError

#: Keys tried, in order, when a ``.npz`` holds more than one array.
NPZ_MOTION_KEYS = ("motion", "vertices", "vertice", "pred", "arr_0")


def as_vertex_sequence(array: np.ndarray, n_vertices: int | None = None, *, name: str = "motion") -> np.ndarray:
    """Validate a motion array and return it as (T, V, 3) float32.

    ``n_vertices`` (the template's) is needed to check a flat (T, V·3) array fully; without it
    the flat layout only has to be a multiple of 3.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise MotionError(f"{name} holds {array.dtype} values; expected numbers.")
    if array.ndim == 2:
        frames, width = array.shape
        if width % 3:
            raise MotionError(f"{name} has shape {array.shape}; the second axis must be V·3 (a multiple of 3).")
        array = array.reshape(frames, width // 3, 3)
    elif array.ndim != 3 or array.shape[-1] != 3:
        raise MotionError(f"{name} has shape {array.shape}; expected (T, V·3) or (T, V, 3).")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise MotionError(f"{name} is empty (shape {array.shape}).")
    if n_vertices is not None and array.shape[1] != n_vertices:
        raise MotionError(
            f"{name} has {array.shape[1]} vertices per frame but the template has {n_vertices}."
        )
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=(1, 2)).sum())
        raise MotionError(f"{name} contains NaN or infinite values in {bad} of {array.shape[0]} frames.")
    return array


def load_motion(path: Path, n_vertices: int | None = None) -> np.ndarray:
    """Read a ``.npy``/``.npz`` motion file and return (T, V, 3) float32."""
    path = Path(path)
    if not path.is_file():
        raise MotionError(f"Motion file {path} does not exist.")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise MotionError(f"Motion file {path} is not a readable .npy/.npz array ({exc}).") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = list(data.files)
            key = next((k for k in NPZ_MOTION_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise MotionError(
                    f"Motion file {path} holds arrays {keys}; name the motion one of {list(NPZ_MOTION_KEYS)}."
                )
            data = data[key]
    return as_vertex_sequence(data, n_vertices, name=f"Motion file {path}")


def write_motion_npy(motion: np.ndarray, path: Path, *, force: bool = False) -> Path:
    """Write a (T, V·3) or (T, V, 3) motion as float32 ``.npy`` at exactly ``path``, atomically,
    after checking that every value is finite (inside a transaction: with the run's other outputs)."""
    from .atomic import atomic_output
    from .validate import require_finite

    array = np.asarray(motion, dtype=np.float32)
    array = array.reshape(len(array), -1)
    require_finite(array, f"The motion for {path}")
    with atomic_output(Path(path), force=force) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)  # a handle, so numpy never appends its own suffix
    return Path(path)
