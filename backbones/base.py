"""The one interface every backbone implements, and the batch that flows into it.

A backbone maps speech to per-frame vertex *offsets* from the subject's rest shape, in two
steps the key-motion scheme needs to reach separately:

* :meth:`Backbone.encode_audio` — speech → frame-rate features ``(B, T, feature_dim)``;
* :meth:`Backbone.decode` — features (+ an optional **conditioning sequence** ``(B, T, C)``
  and an optional style) → offsets ``(B, T, V·3)``.

The conditioning sequence is how KMTalk's key motions reach *any* backbone without special
cases: a backbone built with ``condition_dim = C > 0`` adds ``condition_map(condition)`` (a
zero-initialised linear map to its model width) to the tokens its decoder reads at every
frame, so an untrained conditioning path leaves the backbone exactly as it was.

Shapes: ``B`` batch, ``N`` audio samples at 16 kHz, ``T`` motion frames at ``config.fps``,
``V`` vertices. Padding is at the end; ``frame_lengths``/``audio_lengths`` give the valid part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .audio_encoders import AudioEncoderConfig, build_audio_encoder

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class BackboneConfig:
    """Fields every backbone shares; each backbone subclasses it with its own sizes.

    ``lip_vertices`` and ``upper_face_vertices`` are the template's region indices (LVE/FDD
    masks); they travel in the config so a checkpoint is usable with nothing but its file.
    """

    n_vertices: int = 5080
    fps: float = 30.0
    n_styles: int = 0
    condition_dim: int = 0
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    lip_vertices: tuple[int, ...] = ()
    upper_face_vertices: tuple[int, ...] = ()

    @property
    def vertex_dim(self) -> int:
        return self.n_vertices * 3

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackboneConfig:
        """Rebuild from :meth:`to_dict` output (or a user's JSON); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("audio"), Mapping):
            values["audio"] = AudioEncoderConfig.from_dict(values["audio"])
        for key in ("lip_vertices", "upper_face_vertices"):
            if key in values:
                values[key] = tuple(int(i) for i in values[key])
        return cls(**values)

    def replace(self, **changes: Any) -> BackboneConfig:
        if isinstance(changes.get("audio"), Mapping):
            changes["audio"] = dataclasses.replace(self.audio, **changes["audio"])
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def check_field_types(config: Any) -> None:
    """Raise ValueError naming the first field of the config dataclass ``config`` whose value is
    not of its default's kind (a user's JSON saying ``"d_model": "big"`` or ``"rig_prior": "yes"``):
    otherwise the mistake surfaces later as an unrelated error deep inside a layer."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if default is None:
            continue
        if dataclasses.is_dataclass(default):
            check_field_types(value)
            continue
        kinds: tuple[type, ...] = {bool: (bool,), int: (int,), float: (int, float), str: (str,), tuple: (tuple, list)}.get(type(default), ())
        wrong_bool = isinstance(value, bool) and type(default) is not bool
        if kinds and (not isinstance(value, kinds) or wrong_bool):
            kind = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", tuple: "a list"}[type(default)]
            raise ValueError(f"{f.name} must be {kind}, got {value!r}")


@dataclass
class Batch:
    """A padded training/evaluation batch. Everything is a tensor except names and alignments.

    ``alignments`` (one :class:`~kmtalk_cli.alignment.types.Alignment` per item, or ``None``)
    carry the phone timings: SelfTalk derives its CTC targets from them and the key-motion
    scheme its key frames. ``base`` is set when the model predicts only what to add to another
    motion (key-motion completion adds to the interpolated key motions; ``offsets`` then holds
    the remainder): a loss that judges the whole face, like SelfTalk's lip reading, adds it back.
    """

    audio: Tensor  # (B, N) float32, 16 kHz, zero padded
    audio_lengths: Tensor  # (B,) long
    offsets: Tensor  # (B, T, V·3) float32 target offsets, zero padded
    frame_lengths: Tensor  # (B,) long
    style: Tensor | None = None  # (B,) long subject index, or None
    condition: Tensor | None = None  # (B, T, C)
    base: Tensor | None = None  # (B, T, V·3) motion the prediction is added to (see below)
    alignments: list[Any] | None = None
    names: list[str] = field(default_factory=list)

    @property
    def frame_mask(self) -> Tensor:
        """(B, T) bool, True on valid frames."""
        return frame_mask(self.frame_lengths, self.offsets.shape[1])

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            f.name: (v.to(device) if isinstance(v, Tensor) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }
        return Batch(**moved)

    def with_condition(self, condition: Tensor | None) -> Batch:
        return dataclasses.replace(self, condition=condition)


def frame_mask(lengths: Tensor, total: int) -> Tensor:
    """(B, total) bool mask, True where the frame index is below the item's length."""
    return torch.arange(total, device=lengths.device)[None, :] < lengths[:, None]


def masked_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over valid frames only ((B, T, D) tensors, (B, T) mask)."""
    weights = mask.to(prediction.dtype)[..., None]
    squared = (prediction - target).pow(2) * weights
    return squared.sum() / (weights.sum() * prediction.shape[-1]).clamp_min(1.0)


def velocity(x: Tensor) -> Tensor:
    """Frame-to-frame difference along T: (B, T, D) → (B, T−1, D)."""
    return x[:, 1:] - x[:, :-1]


def masked_velocity_mse(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """MSE of frame differences, counting only pairs of valid frames."""
    return masked_mse(velocity(prediction), velocity(target), mask[:, 1:] & mask[:, :-1])


class Backbone(nn.Module):
    """Base class of all backbones. Subclasses set the class attributes and the abstract methods.

    ``stages`` names the training stages in order (CodeTalker: ``("prior", "speech")``);
    :meth:`loss` and :meth:`trainable_parameters` take the stage so one generic training loop
    runs them all.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type[BackboneConfig]] = BackboneConfig
    #: Named size presets (``default`` is the CPU size; ``paper-vocaset``/``paper-biwi`` the papers').
    presets: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}
    stages: ClassVar[tuple[str, ...]] = ("main",)
    #: Layers whose weights the code reads as tensors instead of calling the layer, so a
    #: reduced-precision inference mode (``kmtalk_cli.precision``) must leave them as they are.
    fp32_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.audio_encoder = build_audio_encoder(config.audio, fps=config.fps)

    # -- the interface ----------------------------------------------------------------------
    @property
    def feature_dim(self) -> int:
        """Width of :meth:`encode_audio`'s output."""
        return self.audio_encoder.out_dim

    def encode_audio(self, audio: Tensor, audio_lengths: Tensor, frame_lengths: Tensor) -> Tensor:
        """Speech (B, N) → frame-rate features (B, max(frame_lengths), feature_dim)."""
        return self.audio_encoder(audio, audio_lengths, frame_lengths)

    def decode(
        self,
        features: Tensor,
        frame_lengths: Tensor,
        *,
        condition: Tensor | None = None,
        style: Tensor | None = None,
        target: Tensor | None = None,
    ) -> Tensor:
        """Features (B, T, F) → offsets (B, T, V·3).

        ``target`` (offsets) is given in training for teacher forcing; autoregressive backbones
        decode from their own outputs when it is ``None``. ``style`` None means the average
        style (for unseen speakers).
        """
        raise NotImplementedError

    def exact_context(self) -> int | None:
        """Frames of input each side of a window that make :meth:`decode_window` give exactly the
        whole-clip output there; None when an output frame depends on the whole past
        (autoregressive decoders), so a clip is decoded in one pass."""
        return None

    def decode_window(self, features: Tensor, condition: Tensor | None, style: Tensor | None, keep: slice) -> Tensor:
        """Offsets (B, frames in ``keep``, V·3) of frames ``keep`` of a span of features (B, S, F)
        decoded alone (inference; long clips are cut into spans by :mod:`kmtalk_cli.windowed`)."""
        lengths = torch.full((features.shape[0],), features.shape[1], device=features.device)
        return self.decode(features, lengths, condition=condition, style=style)[:, keep]

    def decode_pieces(self, features: Tensor, condition: Tensor | None, style: Tensor | None, piece: int) -> Iterator[Tensor]:
        """The whole clip's offsets (B, T, V·3) in consecutive pieces of at most ``piece`` frames,
        for backbones decoded in one pass (:meth:`exact_context` None); one whose large output is
        a map of small per-frame states overrides it so the (T, V·3) output is never whole."""
        whole = self.decode_window(features, condition, style, slice(0, features.shape[1]))
        for start in range(0, whole.shape[1], max(1, piece)):
            yield whole[:, start : start + piece]

    def loss(self, batch: Batch, stage: str = "main", features: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """Training loss for ``stage`` and named float parts for logging.

        ``features`` lets a caller that already ran :meth:`encode_audio` (the key-motion
        scheme) share them instead of encoding twice.
        """
        raise NotImplementedError

    def trainable_parameters(self, stage: str = "main") -> Iterable[nn.Parameter]:
        return (p for p in self.parameters() if p.requires_grad)

    @torch.no_grad()
    def predict(
        self,
        audio: Tensor,
        n_frames: int,
        *,
        condition: Tensor | None = None,
        style: int | None = None,
    ) -> Tensor:
        """One clip: audio (N,) → offsets (n_frames, V·3). ``condition`` is (n_frames, C)."""
        was_training = self.training
        self.eval()
        try:
            features, frame_lengths = self.encode_clip(audio, n_frames)
            device = features.device
            style_t = None if style is None else torch.tensor([style], device=device)
            cond = None if condition is None else condition.reshape(1, n_frames, -1).to(device)
            return self.decode(features, frame_lengths, condition=cond, style=style_t)[0]
        finally:
            self.train(was_training)

    def predict_pieces(self, audio: Tensor, n_frames: int, *, style: int | None = None, piece: int = 600) -> Iterator[Tensor]:
        """:meth:`predict` (inference, no condition) in consecutive pieces of at most ``piece``
        frames: in windows with :meth:`exact_context` frames of context each side when that is
        bounded, else through :meth:`decode_pieces`; the (T, V·3) output is never whole."""
        self.eval()
        features, _ = self.encode_clip(audio, n_frames)
        style_t = None if style is None else torch.tensor([style], device=features.device)
        context = self.exact_context()
        if context is None:
            for part in self.decode_pieces(features, None, style_t, piece):
                yield part[0]
            return
        for start in range(0, n_frames, max(1, piece)):
            stop = min(n_frames, start + piece)
            lo, hi = max(0, start - context), min(n_frames, stop + context)
            yield self.decode_window(features[:, lo:hi], None, style_t, slice(start - lo, stop - lo))[0]

    def encode_clip(self, audio: Tensor, n_frames: int) -> tuple[Tensor, Tensor]:
        """One clip's audio (N,) → its features (1, n_frames, F) and frame lengths (1,), on the model's device."""
        device = next(self.parameters()).device
        audio = audio.reshape(1, -1).to(device)
        frame_lengths = torch.tensor([n_frames], device=device)
        return self.encode_audio(audio, torch.tensor([audio.shape[1]], device=device), frame_lengths), frame_lengths

    # -- helpers for subclasses ---------------------------------------------------------------
    def mapped_condition(self, condition: Tensor, batch: int, n_frames: int, dtype: torch.dtype) -> Tensor:
        """``condition_map(condition)`` after checking the model has one and the shape fits."""
        if getattr(self, "condition_map", None) is None:
            raise ModelError(f"This {type(self).__name__} was built without a conditioning input (condition_dim = 0).")
        if condition.shape[:2] != (batch, n_frames) or condition.shape[-1] != self.config.condition_dim:
            raise ModelError(
                f"The conditioning sequence has shape {tuple(condition.shape)}; "
                f"expected ({batch}, {n_frames}, {self.config.condition_dim})."
            )
        return self.condition_map(condition.to(dtype))

    def checked_style(self, style: Tensor | None, batch: int) -> Tensor | None:
        """Style indices as a (B,) long tensor after range checks; None stays None (the average)."""
        if style is None:
            return None
        if self.config.n_styles <= 0:
            raise ModelError(f"This {type(self).__name__} has no speaker styles (n_styles = 0); predict without a style.")
        style = style.reshape(-1).long()
        if style.numel() != batch:
            raise ModelError(f"Got {style.numel()} style indices for a batch of {batch}.")
        n = self.config.n_styles
        if bool(((style < 0) | (style >= n)).any()):
            raise ModelError(f"Style index {style.tolist()} is out of range; this model has {n} training styles.")
        return style

    def make_condition_map(self, width: int) -> nn.Linear | None:
        """The zero-initialised map from the conditioning sequence to the model width."""
        if self.config.condition_dim <= 0:
            return None
        layer = nn.Linear(self.config.condition_dim, width)
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
        return layer


#: Width (model dimension) from which a frame-by-frame loop keeps every CPU thread.
SPLIT_WIDTH = 512


@contextlib.contextmanager
def frame_loop_threads(device: torch.device, width: int) -> Iterator[None]:
    """Threads for a frame-by-frame decoding loop whose per-frame products are ``width`` wide.

    Narrow loops run on one thread: their operations are far too small to split, and with other
    work on the cores a second thread turned each into a wait (measured 5–20× slower on a loaded
    2-core machine). Wide ones (paper-size CodeTalker, d = 1024) keep every thread: each frame
    streams tens of MB of weights and cached keys, and a second core adds memory bandwidth
    (6.6 against 9.2 ms per frame at 2 threads, int8).
    """
    before = torch.get_num_threads()
    if device.type != "cpu" or before == 1 or width >= SPLIT_WIDTH:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def n_frames_for(n_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Motion frames covering ``n_samples`` of audio (at least one)."""
    return max(1, int(round(n_samples / sample_rate * fps)))
