"""``animate``: speech → align → key motions → completion → vertices, composed from the stages.

Also the rig baseline (``backbone="rig"``): the articulatory rig driven by the aligner's phones
through dominance-function coarticulation, with no learned weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError, MotionError
from .weights import DEFAULT_BACKBONE

RIG = "rig"
#: Frame rate of the rig baseline's key motions (the bundled models' rate).
RIG_FPS = 30.0


@dataclass(frozen=True)
class Animation:
    """The result of :func:`animate`: absolute vertices (T, V, 3) at ``fps`` and how they were made."""

    vertices: np.ndarray
    fps: float
    alignment: Any  # Alignment | None
    key_motions: Any  # KeyMotions | None
    model: str
    template: Any  # FaceTemplate
    #: Head rotation and gaze beside the face-local vertices (:mod:`kmtalk_cli.face.headpose`); None: a still head.
    head_pose: Any = None

    @property
    def motion(self) -> np.ndarray:
        """The (T, V·3) layout FaceFormer/CodeTalker/SelfTalk write."""
        return self.vertices.reshape(len(self.vertices), -1)


def resolve_model(backbone: str | None, checkpoint: Path | str | None, key_motions: bool | None, *, precision: str = "fp32") -> Any:
    """A :class:`~kmtalk_cli.models.LoadedModel` from ``checkpoint`` or the bundled weights.

    ``backbone`` None means the default (or the checkpoint's); a name that differs from the
    checkpoint's backbone is refused rather than ignored. ``key_motions`` None means "whatever
    the checkpoint is" (or, bundled, with key motions); ``precision`` is passed to
    :func:`~kmtalk_cli.models.load_model`.
    """
    from .backbones import get_backbone
    from .models import load_model
    from .weights import bundled_checkpoints, find_bundled

    if checkpoint is None:
        backbone = backbone or DEFAULT_BACKBONE
        get_backbone(backbone)  # an unknown name lists the backbones that exist
    if checkpoint is not None:
        from .checkpoint_info import read_checkpoint_info

        held = str(read_checkpoint_info(checkpoint).get("backbone"))
        if backbone is not None and backbone != held:
            raise ModelError(f"Checkpoint {checkpoint} holds a {held} model, not {backbone}; drop --backbone or pass --backbone {held}.")
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


def rig_motion(
    alignment: Any, template: Any, n_frames: int, fps: float, *, rig: Any = None, rest: np.ndarray | None = None, upper_face: bool = True
) -> np.ndarray:
    """The rig baseline: coarticulated rig parameters from the phones, posed on ``template``
    (or, with a prebuilt ``rig``, on another identity ``rest`` of the same topology).
    ``upper_face`` False leaves out the corpus's random blinks and brow raises (the liveliness
    layer adds its own)."""
    from .face.coarticulation import animate_alignment
    from .face.rig import build_rig

    params = animate_alignment(alignment, n_frames, fps, upper_face=upper_face)
    return (rig or build_rig(template)).pose(params, rest=rest).astype(np.float32)


def load(backbone: str | None = None, checkpoint: Path | str | None = None, key_motions: bool | None = None, *, precision: str = "fp32") -> Any:
    """The model :func:`animate` would load (None for the rig baseline), to load once and reuse over many files."""
    if backbone == RIG:
        if checkpoint is not None or key_motions:
            raise ModelError("The rig baseline has no weights and no key motions; drop --checkpoint/--key-motions.")
        return None
    return resolve_model(backbone, checkpoint, key_motions, precision=precision)


def key_motions_for(audio: Any, model: Any, *, alignment: Any = None, text: str | None = None, style: str | None = None,
                    on_step: Callable[[str], None] | None = None, template: Any = None) -> tuple[Any, Any]:
    """The key-motion stage: align (unless ``alignment`` is given), then predict the face at
    the key frames; with no model (the rig baseline) the rig's face on ``template`` (default:
    the bundled head) at the key frames. Returns ``(alignment, key motions)``."""
    step = on_step or (lambda _: None)
    alignment = alignment if alignment is not None else _align(audio, text, step)
    step("Predicting key motions")
    if model is None:
        from .face.template import bundled_template
        from .rig_keys import rig_key_motions

        head = template if template is not None else bundled_template()
        return alignment, rig_key_motions(alignment, head, max(1, int(round(audio.duration * RIG_FPS))), RIG_FPS)
    return alignment, model.predict_keys(audio, alignment, style=style)


def complete(
    audio: Any, keys: Any, model: Any, template: Any, *, style: str | None = None, on_step: Callable[[str], None] | None = None,
    motion_path: Path | str | None = None, layer: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> np.ndarray:
    """The completion stage: absolute vertices (T, V, 3) on ``template`` from key motions and the
    audio; with no model (the rig baseline) a shape-preserving cubic through the key motions.

    Completion runs in windows (:mod:`kmtalk_cli.windowed`); with ``motion_path`` each window is
    written there as it is done (a (T, V·3) float32 ``.npy``) and the result is a read-only
    memory map of that file, so a long clip is never whole in memory (the caller makes the path
    atomic). ``layer(vertices, first_frame)`` edits each window on its way (the liveliness layer).
    """
    step = on_step or (lambda _: None)
    step("Completing the motion")
    if model is None:
        from .rig_keys import complete_by_interpolation

        from .validate import require_finite

        vertices = require_finite(complete_by_interpolation(audio, keys, template), "The interpolated motion")
        if motion_path is None and layer is None:
            return vertices
        return _assemble([vertices - template.vertices[None]], template.vertices, len(vertices), motion_path, layer)
    model.check_template(template.n_vertices)
    if keys.dim != model.n_vertices * 3:
        raise MotionError(f"The key motions have {keys.dim // 3} vertices; the model has {model.n_vertices}.")
    from .overlap import ahead

    pieces = ahead(model.complete_pieces(audio, keys, style=style))  # the next window is made while this one is layered and written
    return _assemble(pieces, template.vertices, model.n_frames(audio), motion_path, layer)


def animate(
    speech: Any,
    *,
    backbone: str | None = None,
    checkpoint: Path | str | None = None,
    key_motions: bool | None = None,
    text: str | None = None,
    alignment: Any = None,
    style: str | None = None,
    template: Any = None,
    fps: float = 30.0,
    on_step: Callable[[str], None] | None = None,
    precision: str = "fp32",
    model: Any = None,
    liveliness: bool = True,
    seed: int = 0,
    gate: bool = True,
    motion_path: Path | str | None = None,
) -> Animation:
    """Animate ``speech`` (a path or :class:`~kmtalk_cli.audio.Audio`) on ``template`` (default: the bundled head).

    The alignment is made with the built-in aligner when a key-motion model or the rig needs
    one and none is given (``text`` makes it a forced alignment). ``on_step`` hears the name of
    each stage as it starts (the CLI shows them as progress). ``precision`` (``fp32``, ``bf16``,
    ``int8``) is the model's CPU inference precision (:mod:`kmtalk_cli.precision`). ``model``
    (from :func:`load`) skips loading, so a batch loads it once. ``liveliness`` adds blinks, brow
    raises, head motion and gaze from the speech's prosody (:func:`add_liveliness`), drawn from ``seed``.
    ``gate`` holds a learned model's lower face to the rig's on m/b/p, f/v, in pauses and at the
    ends (:func:`add_gate`; it needs an alignment, made here for plain models too). With
    ``motion_path`` the motion is streamed to that ``.npy`` as it is made (see :func:`complete`):
    the gate and the liveliness layer are applied a window at a time on the way.
    """
    step = on_step or (lambda _: None)
    from .audio import Audio, load_audio
    from .face.template import bundled_template

    audio = speech if isinstance(speech, Audio) else load_audio(speech)
    face = template if template is not None else bundled_template()
    if backbone == RIG:
        load(backbone, checkpoint, key_motions)  # refuses weights and key motions
        alignment = alignment if alignment is not None else _align(audio, text, step)
        n_frames = max(1, int(round(audio.duration * fps)))
        anim = Animation(rig_motion(alignment, face, n_frames, fps, upper_face=not liveliness), fps, alignment, None, RIG, face)
        anim = add_liveliness(anim, audio, seed) if liveliness else anim
        if motion_path is None:
            return anim
        from .npy_stream import NpyRowWriter

        with NpyRowWriter(motion_path, n_frames, (face.vertices.size,)) as out:
            out.write(anim.vertices)
        return dataclasses.replace(anim, vertices=np.load(motion_path, mmap_mode="r").reshape(n_frames, -1, 3))
    ahead = None
    if model is None:
        ahead = _align_ahead(audio, text, alignment, checkpoint, key_motions, gate, bundled_rig=(gate or liveliness) and face is bundled_template())
        step("Loading the model")
        try:
            model = resolve_model(backbone, checkpoint, key_motions, precision=precision)
            model.check_template(face.n_vertices)
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            raise
    model.check_template(face.n_vertices)
    keys = None
    n_frames = model.n_frames(audio)
    if ahead is not None:
        if model.uses_key_motions or gate:
            step("Aligning the speech" + (" to its transcript" if text else " (recognising the words)"))
            if model.uses_key_motions:
                model.encode(audio)  # the audio features need no alignment: made here while the worker aligns
            alignment = ahead.result()
            if ahead.rig() is not None:
                _keep_rig(face, ahead.rig())
        else:
            ahead.cancel()

    def layers() -> Callable[[np.ndarray, int], np.ndarray] | None:
        chain = ([GateLayer.of(alignment, n_frames, model.fps, face)] if gate else []) + (
            [LivelinessLayer.of(audio, alignment, n_frames, model.fps, face, seed)] if liveliness else []
        )
        return _chained(chain)

    if model.uses_key_motions:
        from .overlap import beside

        alignment = alignment if alignment is not None else _align(audio, text, step)
        building = beside(layers)  # the gate's and liveliness's curves (NumPy) while the model predicts the keys
        _, keys = key_motions_for(audio, model, alignment=alignment, text=text, style=style, on_step=step)
        layer = building.result()
        vertices = complete(audio, keys, model, face, style=style, on_step=step, motion_path=motion_path, layer=layer)
    else:
        from .overlap import ahead

        if gate and alignment is None:
            alignment = _align(audio, text, step)
        layer = layers()
        step(f"Predicting the motion ({model.backbone})")
        pieces = ahead(model.predict_pieces(audio, style=style))  # in windows, made while the last one is layered and written
        vertices = _assemble(pieces, face.vertices, n_frames, motion_path, layer)
    label = f"{model.backbone}{' + KM' if model.uses_key_motions else ''}{'' if model.precision == 'fp32' else f' ({model.precision})'}"
    head_pose = layer.head_pose if isinstance(layer, _Chain) else None
    return Animation(vertices, model.fps, alignment, keys, label, face, head_pose=head_pose)


def _assemble(
    pieces: Any, rest: np.ndarray, n_frames: int, path: Path | str | None, layer: Callable[[np.ndarray, int], np.ndarray] | None
) -> np.ndarray:
    """Offset pieces (n, V·3), in frame order, plus the rest pose (and ``layer``) → vertices (T, V, 3):
    in memory, or streamed to the ``.npy`` at ``path`` and mapped back read-only."""
    rest = np.asarray(rest, dtype=np.float32)

    def vertex_pieces() -> Any:
        start = 0
        for piece in pieces:  # each piece is ours: add in place instead of copying the large array
            v = np.asarray(piece, dtype=np.float32).reshape(len(piece), -1, 3)
            v += rest[None]
            yield layer(v, start) if layer is not None else v
            start += len(v)

    if path is None:
        return np.concatenate(list(vertex_pieces()), axis=0)
    from .npy_stream import NpyRowWriter
    from .overlap import ahead

    with NpyRowWriter(path, n_frames, (rest.size,)) as out:
        for v in ahead(vertex_pieces()):  # the next window is layered while this one is written (the kernel may make a writer wait)
            out.write(v)
    return np.load(path, mmap_mode="r").reshape(n_frames, -1, 3)


@dataclass(frozen=True)
class _Chain:
    """Window layers applied in order; the head pose is the liveliness layer's, if there is one."""

    layers: tuple[Any, ...]

    def __call__(self, vertices: np.ndarray, start: int) -> np.ndarray:
        for layer in self.layers:
            vertices = layer(vertices, start)
        return vertices

    @property
    def head_pose(self) -> Any:
        return next((layer.head_pose for layer in self.layers if isinstance(layer, LivelinessLayer)), None)


def _chained(layers: list[Any]) -> _Chain | None:
    return _Chain(tuple(layers)) if layers else None


_RIGS: dict[int, tuple[Any, Any]] = {}


def _keep_rig(template: Any, rig: Any) -> None:
    """Remember ``rig`` (built elsewhere, e.g. by the alignment worker) as ``template``'s."""
    _RIGS[id(template)] = (template, rig)


def _rig_of(template: Any) -> Any:
    """The rig on ``template`` (see :func:`~kmtalk_cli.export.fit.rig_for`), built once per template object."""
    from .export.fit import rig_for

    cached = _RIGS.get(id(template))
    if cached is None or cached[0] is not template:
        cached = _RIGS[id(template)] = (template, rig_for(template))
    return cached[1]


@dataclass(frozen=True)
class GateLayer:
    """The articulatory gate (:mod:`kmtalk_cli.face.gate`) of one clip, applied a window of
    frames at a time: rig parameters and gate weights per frame, the lower-face mask."""

    rig: Any
    params: np.ndarray  # (T, P)
    weights: np.ndarray  # (T,)
    mask: np.ndarray  # (V,)
    rest: np.ndarray  # (V, 3)

    @classmethod
    def of(cls, alignment: Any, n_frames: int, fps: float, template: Any) -> GateLayer:
        from .face.coarticulation import animate_alignment
        from .face.gate import gate_weights, lower_face_mask

        if alignment is None:
            raise ModelError("The articulatory gate needs the speech's alignment.")
        rig = _rig_of(template)
        params = animate_alignment(alignment, n_frames, fps, upper_face=False)
        return cls(rig, params, gate_weights(alignment.phones, n_frames, fps), lower_face_mask(rig), template.vertices)

    def __call__(self, vertices: np.ndarray, start: int) -> np.ndarray:
        """Frames ``start …`` of the motion, (n, V, 3), gated (in place when they are float32: the window is the caller's to give)."""
        from .face.gate import apply_gate

        stop = start + len(vertices)
        return apply_gate(vertices, self.rig, self.params[start:stop], self.weights[start:stop], self.mask, rest=self.rest, copy=False)


def add_gate(anim: Animation) -> Animation:
    """The articulatory gate (:mod:`kmtalk_cli.face.gate`) on ``anim``: its lower face blended
    towards the rig driven by its alignment wherever the phones make the mouth shape obligatory."""
    import dataclasses

    layer = GateLayer.of(anim.alignment, len(anim.vertices), anim.fps, anim.template)
    return dataclasses.replace(anim, vertices=layer(np.array(anim.vertices, dtype=np.float32), 0))


@dataclass(frozen=True)
class LivelinessLayer:
    """The liveliness layer of one clip (:func:`add_liveliness`), applied a window of frames at a
    time as the motion is assembled; ``rig`` None: the template has no rig, head pose only."""

    live: Any  # Liveliness
    rig: Any

    @classmethod
    def of(cls, audio: Any, alignment: Any, n_frames: int, fps: float, template: Any, seed: int) -> LivelinessLayer:
        import warnings

        from .errors import KmtalkWarning, TemplateError
        from .face.liveliness import liveliness

        live = liveliness(audio.samples, audio.sample_rate, alignment, n_frames, fps, seed)
        try:
            rig = _rig_of(template)
        except TemplateError as exc:
            warnings.warn(KmtalkWarning(f"No blinks or brow raises on this template ({exc}); head motion only."), stacklevel=2)
            rig = None
        return cls(live, rig)

    @property
    def head_pose(self) -> Any:
        return self.live.head_pose

    def __call__(self, vertices: np.ndarray, start: int) -> np.ndarray:
        """Frames ``start …`` of the motion, (n, V, 3), with the blinks and brow raises there (in place
        when they are float32: the window is the caller's to give)."""
        import dataclasses

        from .face.liveliness import apply_liveliness

        if self.rig is None:
            return vertices
        stop = start + len(vertices)
        part = dataclasses.replace(self.live, blink=self.live.blink[start:stop], brow=self.live.brow[start:stop])
        return apply_liveliness(vertices, self.rig, part, copy=False)


def add_liveliness(anim: Animation, audio: Any, seed: int = 0) -> Animation:
    """The liveliness layer (:mod:`kmtalk_cli.face.liveliness`) on ``anim``: blinks and brow raises
    added to its vertices through the rig's fields, head rotation and gaze as its ``head_pose``.

    On a template the rig cannot be placed on, the face is left as it is (with a warning) and
    only the head pose is added.
    """
    import dataclasses

    layer = LivelinessLayer.of(audio, anim.alignment, len(anim.vertices), anim.fps, anim.template, seed)
    return dataclasses.replace(anim, vertices=layer(np.array(anim.vertices, dtype=np.float32), 0), head_pose=layer.head_pose)


def _align_ahead(
    audio: Any, text: str | None, alignment: Any, checkpoint: Any, key_motions: bool | None, gate: bool, *, bundled_rig: bool = False
) -> Any:
    """An alignment started in a worker process to overlap the model's loading
    (:mod:`kmtalk_cli.align_ahead`), when the model surely needs one (the gate, or bundled
    key-motion weights) and torch is not loaded yet (a cold start: with torch loaded there is
    little to overlap); else None. With ``bundled_rig`` the worker builds the bundled head's rig too."""
    import sys

    needed = gate or (checkpoint is None and key_motions is not False)
    if alignment is not None or not needed or "torch" in sys.modules:
        return None
    from .align_ahead import AlignAhead

    return AlignAhead(audio, text, bundled_rig=bundled_rig)


def _align(audio: Any, text: str | None, step: Callable[[str], None]) -> Any:
    from .alignment import align

    step("Aligning the speech" + (" to its transcript" if text else " (recognising the words)"))
    return align(audio, text)
