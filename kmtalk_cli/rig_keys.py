"""Key motions without learned weights: the rig baseline at the key frames, and completion by
interpolation, so ``kmtalk keymotions/complete --backbone rig`` work like the learned models.

``keymotions`` poses the articulatory rig from the aligner's phones (as ``animate --backbone rig``)
and keeps the face at the key frames; ``complete`` fills the frames between key frames with a
shape-preserving cubic (PCHIP) through the key motions, which never overshoots a key pose, so
hand-edited key motions come back exactly at their frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MotionError
from .keymotions import KeyMotions, select_key_frames


def rig_key_motions(alignment: Any, template: Any, n_frames: int, fps: float) -> KeyMotions:
    """The rig baseline's face offsets (K, V·3) at the phone-boundary key frames of ``alignment``."""
    from .models import has_speech, no_key_motions
    from .pipeline import rig_motion

    if not has_speech(alignment):
        return no_key_motions(n_frames, fps, template.n_vertices)
    frames = select_key_frames(alignment, n_frames, fps)
    motion = rig_motion(alignment, template, n_frames, fps)
    offsets = motion[frames.indices] - template.vertices[None]
    return KeyMotions(frames, offsets.reshape(len(frames.indices), -1).astype(np.float32))


def interpolate_key_motions(keys: KeyMotions, n_frames: int) -> np.ndarray:
    """Offsets (n_frames, V·3) through the key motions: PCHIP between key frames, held before the
    first and after the last; all zeros (the face at rest) when there are no key frames."""
    offsets = np.asarray(keys.offsets, dtype=np.float32)
    indices = np.asarray(keys.frames.indices, dtype=np.float64)
    if keys.frames.n_frames != n_frames or (len(indices) and indices.max() >= n_frames):
        raise MotionError(f"The key motions are for {keys.frames.n_frames} frames but the speech has {n_frames}.")
    if len(indices) == 0:
        return np.zeros((n_frames, offsets.shape[1]), dtype=np.float32)
    if len(indices) == 1:
        return np.repeat(offsets[:1], n_frames, axis=0)
    from scipy.interpolate import PchipInterpolator

    curve = PchipInterpolator(indices, offsets, axis=0, extrapolate=False)
    times = np.clip(np.arange(n_frames, dtype=np.float64), indices[0], indices[-1])
    return curve(times).astype(np.float32)


def complete_by_interpolation(audio: Any, keys: KeyMotions, template: Any) -> np.ndarray:
    """Absolute vertices (T, V, 3) on ``template`` through the key motions, T from the audio's length."""
    n_vertices = template.n_vertices
    if keys.offsets.shape[1] != n_vertices * 3:
        raise MotionError(f"The key motions have {keys.offsets.shape[1] // 3} vertices; the template has {n_vertices}.")
    n_frames = max(1, int(round(audio.duration * keys.frames.fps)))
    offsets = interpolate_key_motions(keys, n_frames)
    return (offsets.reshape(n_frames, n_vertices, 3) + template.vertices[None]).astype(np.float32)
