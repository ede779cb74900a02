"""The articulatory rig as a prior for key motions (``KeyMotionConfig.rig_prior``).

A key decoder learnt from a few hundred sentences starts from nothing, while the rig driven by
the same phone alignment already puts the lips in about the right place: on speech it never
heard, that rig beat every key decoder trained from scratch. With the prior, the face at a key
frame is a linear map of the rig's parameters there — initialised from the rig's displacement
fields (the jaw's rotation linearised), refined by training — plus the decoder's correction from
the audio: how loud, how fast and how emphatic the speech is, which the phones alone cannot tell.
Both parts are linear in what the decoder hands on, so key motions keep their compact form
(codes and a basis, :class:`~kmtalk_cli.keymotions.KeyMotions`).

It needs the face topology the rig is built on (the bundled head's); the rig parameters come
from the alignment alone, with the upper face at rest (blinks and brows are not phone-driven).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .errors import ModelError
from .keymotions import KeyFrames

#: Jaw opening at which the rig's jaw rotation is linearised (the middle of its range).
JAW_LINEARISED_AT = 0.5


def n_parameters() -> int:
    """How many rig parameters the prior reads per key frame."""
    from .face.rig import PARAMETERS

    return len(PARAMETERS)


@lru_cache(maxsize=4096)
def _rig_parameters(alignment: Any, n_frames: int, fps: float) -> np.ndarray:
    """(T, P) rig parameters, with mouthClose replaced by jawOpen × mouthClose: the closed-lip hold
    acts only through the jaw's rotation, so the product is what moves the face linearly."""
    from .face.coarticulation import animate_alignment
    from .face.rig import INDEX

    params = animate_alignment(alignment, n_frames, fps, upper_face=False).astype(np.float32)
    params[:, INDEX["mouthClose"]] *= params[:, INDEX["jawOpen"]]
    params.setflags(write=False)
    return params


def rig_parameters_at_keys(alignment: Any, frames: KeyFrames) -> np.ndarray:
    """(K, P) rig parameters at the key frames, from the phones of ``alignment`` (cached per sequence)."""
    params = _rig_parameters(alignment, int(frames.n_frames), float(frames.fps))
    return params[np.asarray(frames.indices, dtype=np.int64)]


def linear_rig_basis(n_vertices: int) -> np.ndarray:
    """(P, V·3) offsets per unit of each feature of :func:`rig_parameters_at_keys` on the bundled
    head: the rig's displacement fields, with the jaw's rotation and the closed-lip hold (per unit
    of jawOpen × mouthClose) taken as secants at mid-range."""
    from .face.rig import INDEX, PARAMETERS, build_rig
    from .face.template import bundled_template

    head = bundled_template()
    if head.n_vertices != n_vertices:
        raise ModelError(
            f"The rig prior needs the bundled face topology ({head.n_vertices} vertices); this model has {n_vertices}."
        )
    rig = build_rig(head)
    rows = rig.deltas.reshape(len(PARAMETERS), -1).copy()
    jaw = np.zeros(len(PARAMETERS))
    jaw[INDEX["jawOpen"]] = JAW_LINEARISED_AT
    held = jaw.copy()
    held[INDEX["mouthClose"]] = 1.0
    rows[INDEX["jawOpen"]] = ((rig.pose(jaw) - rig.rest) / JAW_LINEARISED_AT).reshape(-1)
    rows[INDEX["mouthClose"]] = ((rig.pose(held) - rig.pose(jaw)) / JAW_LINEARISED_AT).reshape(-1)
    return rows.astype(np.float32)
