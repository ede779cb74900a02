"""The articulatory gate: where the phones leave the mouth no choice, the rig's shape wins.

Some mouth shapes are obligatory: the lips close on m/b/p, the lower lip meets the upper
teeth on f/v, and in a pause the mouth goes back to rest. A regression model trained on
other voices can miss them on speech it has never heard (a slit on every "m", a jaw left
hanging in a pause, a clip that ends open). The alignment already says when they happen, and
the articulatory rig driven by that alignment (:func:`kmtalk_cli.pipeline.rig_motion`) makes
them by construction, so after completion the gate blends the lower face towards the rig's
pose with a weight that is 1 through those phones and pauses and fades out over a few tens of
milliseconds around them. Everywhere else — vowels, most consonants, the whole upper face —
the model's motion is kept as it is.

The weight follows the rig's own timing: the mouth leads the sound by
:data:`~kmtalk_cli.face.coarticulation.SpeakingStyle.lead`, a pause is gated from
:data:`REST_DELAY` after it starts (the rig is back at rest by then) until just before the next
phone, and the first and last frames are gated fully (the rig rests there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .coarticulation import SpeakingStyle
from .rig import Rig, smoothstep

#: Phones whose mouth shape is obligatory: lip closure and the labiodental tuck.
OBLIGATORY = frozenset({"P", "B", "M", "F", "V"})
#: A silence at least this long (s) is a pause the mouth rests in.
MIN_PAUSE = 0.25
#: Seconds over which the weight rises before and falls after an obligatory phone.
RAMP = 0.08
#: Seconds after a pause starts by which the weight is fully on (the rig is at rest by then).
REST_DELAY = 0.10
#: Seconds at the clip's ends over which the weight goes from 1 (at the first/last frame) to 0.
END_RAMP = 0.10


def _window(times: np.ndarray, start: float, end: float, rise: float, fall: float) -> np.ndarray:
    """1 on [start, end], C1 ramps of ``rise`` before and ``fall`` after, 0 beyond."""
    up = smoothstep(times, start - rise, start) if rise > 0 else (times >= start).astype(np.float64)
    down = 1.0 - smoothstep(times, end, end + fall) if fall > 0 else (times <= end).astype(np.float64)
    return np.minimum(up, down)


def gate_weights(phones: Sequence, n_frames: int, fps: float, *, lead: float = SpeakingStyle().lead) -> np.ndarray:
    """(T,) weights 0..1 of the rig's lower face: 1 through obligatory phones, pauses and at the ends.

    ``phones`` are alignment segments (``label``, ``start``, ``end``; silence is ``SIL``).
    """
    from ..alignment.phones import SIL

    times = np.arange(n_frames, dtype=np.float64) / fps
    shown = times + lead  # the mouth shows now what is heard a moment later
    w = np.zeros(n_frames)
    for p in phones:
        if p.label in OBLIGATORY:
            w = np.maximum(w, _window(shown, p.start, p.end, RAMP, RAMP))
        elif p.label == SIL and p.end - p.start >= MIN_PAUSE:
            start = p.start + REST_DELAY if p.start > 0 else -1.0
            w = np.maximum(w, _window(shown, start, p.end - RAMP, REST_DELAY, RAMP))
    last = (n_frames - 1) / fps
    ends = 1.0 - smoothstep(np.minimum(times, last - times), 0.0, END_RAMP)
    return np.clip(np.maximum(w, ends), 0.0, 1.0)


def lower_face_mask(rig: Rig) -> np.ndarray:
    """(V,) 0..1: where the rig's lower-face controls move the face (jaw, lips and around them)."""
    parts = [rig.jaw_weight, rig.masks.get("mouth", 0.0), rig.masks.get("lip_zone", 0.0)]
    return np.clip(np.maximum.reduce([np.broadcast_to(np.asarray(p, dtype=np.float64), rig.jaw_weight.shape) for p in parts]), 0.0, 1.0)


def apply_gate(
    vertices: np.ndarray, rig: Rig, params: np.ndarray, weights: np.ndarray, mask: np.ndarray, rest: np.ndarray | None = None, *,
    chunk: int = 256, copy: bool = True,
) -> np.ndarray:
    """``vertices`` (T, V, 3) blended towards the rig posed with ``params`` (T, P) on ``rest`` by
    ``weights`` (T,) × ``mask`` (V,); ``copy`` False blends a C-contiguous float32 ``vertices`` in place.

    Only gated frames and masked vertices are posed and blended (the rig is cut down to the
    masked vertices once), a few hundred frames at a time, so minutes of motion cost no more
    memory than the motion itself.
    """
    given = np.asarray(vertices)
    in_place = not copy and given.dtype == np.float32 and given.flags.c_contiguous
    out = given if in_place else np.array(given, dtype=np.float32, order="C", copy=True)
    w = np.asarray(weights, dtype=np.float64)
    if out.shape[0] != len(w) or np.asarray(params).shape[0] != len(w):
        raise ValueError(f"Motion ({out.shape[0]} frames), rig parameters and gate weights ({len(w)}) differ in length.")
    cols = np.flatnonzero(np.asarray(mask) > 0)
    rows = np.flatnonzero(w > 0)
    if not len(rows) or not len(cols):
        return out
    m = np.asarray(mask, dtype=np.float32)[cols]
    part = restricted(rig, cols)
    part_rest = None if rest is None else np.asarray(rest, dtype=np.float64).reshape(-1, 3)[cols]
    flat = out.reshape(len(out), -1)  # a view; rows and coordinates taken with plain indices (far cheaper than np.ix_)
    coords = (cols[:, None] * 3 + np.arange(3)).ravel()
    for i in range(0, len(rows), chunk):  # in float32, as the motion is: within 1e-7 m of float64
        r = rows[i : i + chunk]
        target = part.pose(np.asarray(params)[r], rest=part_rest, exact=False)
        block = flat.take(r, axis=0).take(coords, axis=1).reshape(target.shape)
        target -= block
        target *= (w[r].astype(np.float32)[:, None] * m[None, :])[..., None]
        block += target
        for row, values in zip(r, block.reshape(len(r), -1)):
            flat[row, coords] = values
    return out


def restricted(rig: Rig, cols: np.ndarray) -> Rig:
    """The same rig on the vertices ``cols`` only: posing it gives exactly those vertices of the full pose."""
    return dataclasses.replace(
        rig, rest=rig.rest[cols], deltas=rig.deltas[:, cols], jaw_weight=rig.jaw_weight[cols], close_mask=rig.close_mask[cols],
        masks={k: v[cols] if np.ndim(v) and len(v) == rig.n_vertices else v for k, v in rig.masks.items()},
    )
