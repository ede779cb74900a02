"""``animate``: speech → align → key motions → completion → vertices, composed from the stages.

Also the rig baseline (``backbone="rig"``): the articulatory rig driven by the aligner's phones
through dominance-function coarticulation, with no learned weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .weights import DEFAULT_BACKBONE

RIG = "rig"


@dataclass(frozen=True)
class Animation:
    """The result of :func:`animate`: absolute vertices (T, V, 3) at ``fps`` and how they were made."""

    vertices: np.ndarray
    fps: float
    alignment: Any  # Alignment | None
    key_motions: Any  # KeyMotions | None
    model: str
    template: Any  # FaceTemplate

    @property
    def motion(self) -> np.ndarray:
        """The (T, V·3) layout FaceFormer/CodeTalker/SelfTalk write."""
        return self.vertices.reshape(len(self.vertices), -1)


def resolve_model(backbone: str, checkpoint: Path | str | None, key_motions: bool | None, *, precision: str = "fp32") -> Any:
    """A :class:`~kmtalk_cli.models.LoadedModel` from ``checkpoint`` or the bundled weights.

    ``key_motions`` None means "whatever the checkpoint is" (or, bundled, with key motions);
    ``precision`` is passed to :func:`~kmtalk_cli.models.load_model`.
    """
    from .backbones import get_backbone
    from .models import load_model
    from .weights import bundled_checkpoints, find_bundled

    if checkpoint is None:
        get_backbone(backbone)  # an unknown name lists the backbones that exist
    if checkpoint is not None:
        loaded = load_model(checkpoint, precision=precision)
        if key_motions and not loaded.uses_key_motions:
            raise ModelError(
                f"Checkpoint {checkpoint} was trained without key motions; drop --key-motions or train with `kmtalk train --key-motions`."
            )
        return loaded
    want_km = True if key_motions is None else key_motions
    found = find_bundled(backbone, want_km)
    if found is None:
        have = ", ".join(c.label for c in bundled_checkpoints()) or "none"
        raise ModelError(
            f"There are no bundled weights for {backbone}{' + key motions' if want_km else ''} (bundled: {have}); "
            "pass --checkpoint with a model from `kmtalk train`."
        )
    return load_model(found.path, precision=precision)


def rig_motion(alignment: Any, template: Any, n_frames: int, fps: float, *, rig: Any = None, rest: np.ndarray | None = None) -> np.ndarray:
    """The rig baseline: coarticulated rig parameters from the phones, posed on ``template``
    (or, with a prebuilt ``rig``, on another identity ``rest`` of the same topology)."""
    from .face.coarticulation import SpokenPhone, animate_phones
    from .face.rig import build_rig

    phones = [SpokenPhone(p.label, p.start, p.end) for p in alignment.phones]
    params = animate_phones(phones, n_frames, fps)
    return (rig or build_rig(template)).pose(params, rest=rest).astype(np.float32)


def animate(
    speech: Any,
    *,
    backbone: str = DEFAULT_BACKBONE,
    checkpoint: Path | str | None = None,
    key_motions: bool | None = None,
    text: str | None = None,
    alignment: Any = None,
    style: str | None = None,
    template: Any = None,
    fps: float = 30.0,
    on_step: Callable[[str], None] | None = None,
    precision: str = "fp32",
    motion_path: Path | str | None = None,
) -> Animation:
    """Animate ``speech`` (a path or :class:`~kmtalk_cli.audio.Audio`) on ``template`` (default: the bundled head).

    The alignment is made with the built-in aligner when a key-motion model or the rig needs
    one and none is given (``text`` makes it a forced alignment). ``on_step`` hears the name of
    each stage as it starts (the CLI shows them as progress). ``precision`` (``fp32``, ``bf16``,
    ``int8``) is the model's CPU inference precision (:mod:`kmtalk_cli.precision`).

    With ``motion_path`` the motion is written there as it is completed, a (T, V·3) float32
    ``.npy``, and the result's vertices are a read-only memory map of that file: a long clip is
    never whole in memory (the caller makes the path atomic).
    """
    step = on_step or (lambda _: None)
    from .audio import Audio, load_audio
    from .face.template import bundled_template

    audio = speech if isinstance(speech, Audio) else load_audio(speech)
    face = template if template is not None else bundled_template()
    if backbone == RIG:
        if checkpoint is not None or key_motions:
            raise ModelError("The rig baseline has no weights and no key motions; drop --checkpoint/--key-motions.")
        alignment = alignment if alignment is not None else _align(audio, text, step)
        n_frames = max(1, int(round(audio.duration * fps)))
        return Animation(rig_motion(alignment, face, n_frames, fps), fps, alignment, None, RIG, face)
    step("Loading the model")
    model = resolve_model(backbone, checkpoint, key_motions, precision=precision)
    model.check_template(face.n_vertices)
    keys = None
    if model.uses_key_motions:
        alignment = alignment if alignment is not None else _align(audio, text, step)
        step("Predicting key motions")
        features = model.encode(audio)
        keys = model.predict_keys(audio, alignment, style=style, features=features)
        step("Completing the motion")
        pieces = model.complete_pieces(audio, keys, style=style, features=features)
    else:
        step(f"Predicting the motion ({model.backbone})")
        pieces = iter([model.predict_offsets(audio, style=style)])
    vertices = _assemble(pieces, face.vertices, model.n_frames(audio), motion_path)
    label = f"{model.backbone}{' + KM' if model.uses_key_motions else ''}{'' if model.precision == 'fp32' else f' ({model.precision})'}"
    return Animation(vertices, model.fps, alignment, keys, label, face)


def _assemble(pieces: Any, rest: np.ndarray, n_frames: int, path: Path | str | None) -> np.ndarray:
    """Offset pieces (n, V·3) plus the rest pose → vertices (T, V, 3): in memory, or streamed to
    ``path`` and mapped back read-only."""
    if path is None:
        return np.concatenate([p.reshape(len(p), -1, 3) + rest[None] for p in pieces], axis=0).astype(np.float32)
    from .npy_stream import NpyRowWriter

    flat_rest = rest.reshape(-1).astype(np.float32)
    with NpyRowWriter(path, n_frames, (flat_rest.size,)) as out:
        for piece in pieces:
            piece += flat_rest
            out.write(piece)
    return np.load(path, mmap_mode="r").reshape(n_frames, -1, 3)


def _align(audio: Any, text: str | None, step: Callable[[str], None]) -> Any:
    from .alignment import align

    step("Aligning the speech" + (" to its transcript" if text else " (recognising the words)"))
    return align(audio, text)
