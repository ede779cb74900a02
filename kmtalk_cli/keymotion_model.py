"""KMTalk on any backbone: a key-motion decoder plus cross-modal motion completion.

1. **Key-motion decoder** — predicts the face (offsets) at the key frames from the backbone's own
   audio features gathered there (the paper's design), plus the phones on either side of each
   key frame (our extension; ``phone_context``) and the speaker style. The key tokens attend to
   each other, so each key motion knows its neighbours. With ``rig_prior`` (an extension, off by
   default) the decoder adds to the articulatory rig's face at each key (:mod:`kmtalk_cli.rig_prior`).
2. **Completion** — the key motions become a conditioning sequence (B, T, ``embed_dim``): every
   frame gets the key motions *interpolated* between the previous and the next key frame
   (projected to ``embed_dim``), its distances to both in frames, and a learned key / non-key
   embedding. The backbone adds it to its decoder tokens through ``condition_map``; the audio
   features still drive it (``audio_guidance``). Interpolating gives causal backbones
   (FaceFormer, CodeTalker) the *next* key motion, which their masks would otherwise hide.
   With ``residual`` (default) the backbone predicts what to *add* to that interpolation:
   interpolated true key motions are already close to the truth, and a backbone asked to
   rebuild them from a narrow embedding used them poorly. Every backbone stage, CodeTalker's
   motion prior included, then learns the residual.

Why completion was inert, and what changed. With ``residual`` the untrained backbone outputs
zero, so the keys sit in place by construction, and a completion learnt from the *true* keys
has almost nothing to add: on the phone-driven corpus their interpolation was within 0.41 mm
of the truth, so it learnt a residual near zero and no use for the audio (the frozen audio
encoder, trained for key frames only, did not help). At test time the keys come from the
decoder and carry its errors, which such a completion passes straight through: interpolating
the predicted keys scored within ±0.04 mm of the full models. Completion can now learn from keys
with a decoder's kind of error (``key_noise``, :func:`corrupt_keys`): a wrong overall amplitude
per sequence and single keys pulled towards other shapes. Repairing those needs the audio, and
on a corpus with hidden prosody (loudness and rate change the amplitude) the audio holds what
repairs them. ``key_noise`` 0 (the default until a full-size run shows the gain) is the old form;
``benchmarks/paper_protocol.py`` trains both.

Nothing here knows which backbone it wraps. Training goes in ``stages``: the backbone's own
pre-stages (CodeTalker's motion prior), then with ``schedule: staged`` ``keys`` (decoder and
audio encoder on ground-truth key frames) and ``complete`` (completion from ground-truth key
motions, on the audio features as ``keys`` left them; ``key_dropout`` hides some), or with
``schedule: joint`` one ``joint`` stage in which every step learns both (the sum of the two
losses, the audio encoder learning from both), and last ``refine`` (the key decoder alone,
everything else frozen, selected by the free-running lip error of the whole model). Given as
many optimiser steps as a plain backbone, the staged form leaves completion half of them and the
key decoder less than half; the joint form gives each all of them, for a dearer step. With ``joint``,
``completion_keys: predicted`` conditions completion on the decoder's own (detached) keys
instead of the true ones: the keys it will be given at test time.

``key_dropout`` is 0 and ``refine`` trains the key decoder alone: hiding keys taught completion
to "repair" keys that are really there, and refining the backbone on the decoder's over-fitted
training keys hurt unseen speakers. ``completion_trains_encoder`` is False: training the encoder
in ``complete`` moved the features away from what the key decoder had learnt. The measurements
are in ``docs/design-notes.md``. Long clips are decoded in windows (:mod:`kmtalk_cli.windowed`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import rig_prior
from .alignment.phones import LABELS
from .backbones.base import Backbone, Batch, check_field_types, masked_mse
from .errors import ModelError
from .keymotions import KeyFrames, KeyMotions, select_key_frames

KEY_DECODERS = ("transformer", "linear")
SCHEDULES = ("staged", "joint")
COMPLETION_KEYS = ("true", "predicted")
RETIRED_OPTIONS = frozenset({"key_weight"})  # read from older checkpoints, no longer used


@dataclass(frozen=True)
class KeyMotionConfig:
    rule: str = "boundaries"
    embed_dim: int = 64  # width of the conditioning sequence
    decoder: str = "transformer"  # "linear": a per-frame read-out, no attention, no context (ablation)
    decoder_dim: int = 128
    decoder_layers: int = 2
    decoder_heads: int = 4
    phone_context: bool = True
    phone_dim: int = 32
    audio_guidance: bool = True
    key_dropout: float = 0.0  # share of key frames hidden in the ``complete`` stage (see the module notes)
    key_noise: float = 0.0  # > 0: completion learns from keys carrying a key decoder's kind of error (:func:`corrupt_keys`)
    residual: bool = True  # the backbone adds to the interpolated key motions instead of replacing them
    completion_trains_encoder: bool = False  # staged: False lets the audio encoder learn in ``keys`` only (see notes); joint: both always
    offset_scale: float = 100.0  # the decoder predicts centimetres
    rig_prior: bool = False  # the keys add to a linear map of the rig's parameters there (:mod:`kmtalk_cli.rig_prior`)
    schedule: str = "joint"  # keys and completion learn in the same steps; "staged": keys first, then completion (see notes)
    completion_keys: str = "true"  # "predicted": ``joint`` completion learns from the decoder's own keys
    key_window: int = 0  # > 0: the decoder reads the audio features this many frames either side of a key too

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyMotionConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k not in RETIRED_OPTIONS}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelError(f"Unknown key-motion option(s): {', '.join(unknown)}.")
        config = cls(**dict(data))
        try:
            check_field_types(config)
        except ValueError as exc:
            raise ModelError(f"Bad key-motion option: {exc}.") from None
        if config.decoder not in KEY_DECODERS:
            raise ModelError(f"Unknown key-motion decoder '{config.decoder}'; choose from {', '.join(KEY_DECODERS)}.")
        if config.schedule not in SCHEDULES:
            raise ModelError(f"Unknown key-motion schedule '{config.schedule}'; choose from {', '.join(SCHEDULES)}.")
        if config.completion_keys not in COMPLETION_KEYS:
            raise ModelError(f"Unknown completion_keys '{config.completion_keys}'; choose from {', '.join(COMPLETION_KEYS)}.")
        if config.key_window < 0:
            raise ModelError(f"key_window counts frames either side of a key and cannot be negative; got {config.key_window}.")
        if config.completion_keys == "predicted" and config.schedule != "joint":
            raise ModelError("completion_keys 'predicted' needs schedule 'joint' (staged completion trains before the key decoder is final).")
        return config


def _sinusoid(positions: Tensor, dim: int) -> Tensor:
    div = torch.exp(torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions.to(torch.float32)[..., None] * div
    return torch.cat([angles.sin(), angles.cos()], dim=-1)[..., :dim]


class KeyMotionDecoder(nn.Module):
    """Audio features (+ phone context, style) at key frames → offsets at key frames."""

    def __init__(self, config: KeyMotionConfig, feature_dim: int, n_vertices: int, n_styles: int) -> None:
        super().__init__()
        self.config = config
        d = config.decoder_dim
        self.inp = nn.Linear((2 * config.key_window + 1) * feature_dim, d)
        self.phones = nn.Embedding(len(LABELS), config.phone_dim) if config.phone_context else None
        self.phone_map = nn.Linear(2 * config.phone_dim, d) if config.phone_context else None
        self.style = nn.Embedding(n_styles, d) if n_styles > 0 else None
        if config.decoder == "transformer":
            layer = nn.TransformerEncoderLayer(d, config.decoder_heads, 2 * d, dropout=0.1, batch_first=True)
            self.encoder: nn.Module | None = nn.TransformerEncoder(layer, config.decoder_layers, enable_nested_tensor=False)
        else:
            self.encoder = None
        self.out = nn.Linear(d, n_vertices * 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # Rig parameters at the key → offsets; zero until :meth:`init_rig_prior` (checkpoints carry it).
        self.prior = nn.Linear(rig_prior.n_parameters(), n_vertices * 3, bias=False) if config.rig_prior else None
        if self.prior is not None:
            nn.init.zeros_(self.prior.weight)

    def init_rig_prior(self) -> None:
        """Start the prior map from the rig's own displacement fields (a new model, before training)."""
        basis = torch.from_numpy(rig_prior.linear_rig_basis(self.out.out_features // 3))
        with torch.no_grad():
            self.prior.weight.copy_(basis.T)

    def forward(
        self, key_features: Tensor, key_frames: Tensor, context: Tensor, key_mask: Tensor, style: Tensor | None, prior: Tensor | None = None
    ) -> Tensor:
        """(B, K, F) features, (B, K) frame indices, (B, K, 2) phone ids, (B, K) valid, with
        ``rig_prior`` (B, K, P) rig parameters → (B, K, V·3) offsets."""
        offsets = self.out(self.hidden(key_features, key_frames, context, key_mask, style)) / self.config.offset_scale
        if self.prior is not None:
            if prior is None:
                raise ModelError("This key decoder adds to the rig and needs the rig's parameters at the key frames.")
            offsets = offsets + self.prior(prior)
        return offsets

    def hidden(self, key_features: Tensor, key_frames: Tensor, context: Tensor, key_mask: Tensor, style: Tensor | None) -> Tensor:
        """The (B, K, decoder_dim) state the linear ``out`` maps to offsets: the key motions' code."""
        x = self.inp(key_features)
        if self.config.decoder == "linear":
            return x
        x = x + _sinusoid(key_frames, x.shape[-1])
        if self.phones is not None:
            x = x + self.phone_map(self.phones(context).flatten(-2))
        if self.style is not None:
            emb = self.style(style) if style is not None else self.style.weight.mean(0, keepdim=True).expand(x.shape[0], -1)
            x = x + emb[:, None]
        return self.encoder(x, src_key_padding_mask=~key_mask)


class KeyMotionEmbedding(nn.Module):
    """Key motions → the (B, T, embed_dim) conditioning sequence a backbone completes from."""

    def __init__(self, config: KeyMotionConfig, n_vertices: int) -> None:
        super().__init__()
        self.scale = config.offset_scale
        self.project = nn.Linear(n_vertices * 3, config.embed_dim)
        self.kind = nn.Embedding(2, config.embed_dim)  # 0: in between (masked), 1: a key frame
        self.distance = nn.Linear(2, config.embed_dim)

    def forward(self, key_offsets: Tensor, key_mask_t: Tensor) -> Tensor:
        """``key_offsets`` (B, T, V·3) valid where ``key_mask_t`` (B, T) is True (other rows ignored)."""
        interp, d_prev, d_next = interpolate_keys(key_offsets, key_mask_t)
        dist = torch.stack([d_prev, d_next], -1).clamp(max=60.0) / 30.0
        return self.project(interp * self.scale) + self.kind(key_mask_t.long()) + self.distance(dist)


def corrupt_keys(keys: Tensor, valid: Tensor, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Ground-truth key motions (B, K, D) with the errors a key decoder makes, for completion to repair.

    Completion learnt from true keys has nothing to add: their interpolation is already close
    to the truth, so it learns a residual near zero and ignores the audio. A decoder's keys
    err in two ways this copies: the whole sequence too small or too large (it misjudges the
    speaker's effort: a gain exp(N(0, noise)) per sequence), and single keys pulled towards
    another shape of the same sequence (a blend U(0, noise) towards a random valid key).
    Repairing both needs the audio: how loud and how fast the voice is, what was said when.
    """
    if noise <= 0:
        return keys
    b, k, _ = keys.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=keys.device)  # noqa: E731
    gain = torch.exp(noise * torch.randn(b, 1, 1, generator=generator, device=keys.device))
    counts = valid.sum(1, keepdim=True).clamp_min(1)
    # A random valid key per key: valid keys come first in every row (see ``_key_tensors``).
    other = (rand(b, k) * counts).long().clamp(max=k - 1)
    partner = torch.gather(keys, 1, other[..., None].expand_as(keys))
    blend = (noise * rand(b, k, 1)).to(keys.dtype)
    return gain * ((1 - blend) * keys + blend * partner)


def key_features(features: Tensor, frames: Tensor, window: int = 0) -> Tensor:
    """The (B, K, (2·window + 1)·F) audio features at key frames (B, K) of (B, T, F) ``features``:
    each key's own frame, and with ``window`` the frames either side (held at the clip's ends)."""
    b, k = frames.shape
    n, f = features.shape[1], features.shape[2]
    shifts = torch.arange(-window, window + 1, device=frames.device)
    at = (frames[..., None] + shifts).clamp(0, n - 1).reshape(b, -1)
    return torch.gather(features, 1, at[..., None].expand(-1, -1, f)).reshape(b, k, -1)


def interpolate_keys(key_offsets: Tensor, key_mask_t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Linear interpolation of key rows between the previous and next key frame of every frame.

    Returns the interpolated (B, T, D) sequence and the distances (in frames) to the previous
    and the next key frame (0 at key frames). Before the first / after the last key the nearest
    key is held.
    """
    b, t, _ = key_offsets.shape
    idx = torch.arange(t, device=key_offsets.device).expand(b, t)
    big = torch.full_like(idx, t * 4)
    prev = torch.where(key_mask_t, idx, -big).cummax(dim=1).values
    nxt = torch.where(key_mask_t, idx, big).flip(1).cummin(dim=1).values.flip(1)
    has_prev, has_next = prev >= 0, nxt < t
    prev_c = torch.where(has_prev, prev, torch.where(has_next, nxt, idx))
    next_c = torch.where(has_next, nxt, prev_c)
    span = (next_c - prev_c).clamp_min(1).to(key_offsets.dtype)
    w = ((idx - prev_c).to(key_offsets.dtype) / span).clamp(0, 1)[..., None]
    gather = lambda i: torch.gather(key_offsets, 1, i[..., None].expand(-1, -1, key_offsets.shape[-1]))  # noqa: E731
    interp = gather(prev_c) * (1 - w) + gather(next_c) * w
    d_prev = torch.where(has_prev, idx - prev, torch.full_like(idx, 60)).to(key_offsets.dtype)
    d_next = torch.where(has_next, nxt - idx, torch.full_like(idx, 60)).to(key_offsets.dtype)
    return interp, d_prev, d_next


class KeyMotionModel(nn.Module):
    """A backbone with KMTalk's key motions. Trains with :func:`kmtalk_cli.training.train`."""

    uses_alignment = True
    #: Read as tensors by windowed inference (:mod:`kmtalk_cli.windowed`), so kept in fp32.
    fp32_modules = ("key_decoder.out", "key_decoder.prior", "embedding.project")

    def __init__(self, backbone: Backbone, config: KeyMotionConfig) -> None:
        super().__init__()
        if backbone.config.condition_dim != config.embed_dim:
            raise ModelError(
                f"The backbone's condition_dim ({backbone.config.condition_dim}) must equal the key-motion embed_dim ({config.embed_dim})."
            )
        self.backbone = backbone
        self.km_config = config
        n_vertices, n_styles = backbone.config.n_vertices, backbone.config.n_styles
        self.key_decoder = KeyMotionDecoder(config, backbone.feature_dim, n_vertices, n_styles)
        self.embedding = KeyMotionEmbedding(config, n_vertices)
        own = ("keys", "complete") if config.schedule == "staged" else ("joint",)
        self.stages = (*backbone.stages[:-1], *own, "refine")

    @property
    def config(self):  # noqa: ANN201 - the backbone's config (fps, vertices, regions)
        return self.backbone.config

    # -- pieces ---------------------------------------------------------------------------------
    def key_frames(self, alignments: Sequence[Any] | None, frame_lengths: Tensor) -> list[KeyFrames]:
        if alignments is None or any(a is None for a in alignments):
            raise ModelError("Key motions need a phone alignment for every sequence (the corpus has no alignments/ TextGrids).")
        fps = float(self.backbone.config.fps)
        return [select_key_frames(a, int(n), fps, self.km_config.rule) for a, n in zip(alignments, frame_lengths.tolist())]

    def _key_tensors(self, keys: list[KeyFrames], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        k = max(len(kf.indices) for kf in keys)
        frames = torch.zeros(len(keys), k, dtype=torch.long, device=device)
        context = torch.zeros(len(keys), k, 2, dtype=torch.long, device=device)
        valid = torch.zeros(len(keys), k, dtype=torch.bool, device=device)
        for b, kf in enumerate(keys):
            n = len(kf.indices)
            frames[b, :n] = torch.from_numpy(kf.indices).to(device)
            context[b, :n] = torch.from_numpy(kf.context_ids()).to(device)
            valid[b, :n] = True
        return frames, context, valid

    def rig_parameters(self, alignments: Sequence[Any], keys: list[KeyFrames], device: torch.device) -> Tensor | None:
        """(B, K, P) rig parameters at the key frames (padded like :meth:`_key_tensors`), or None without ``rig_prior``."""
        if not self.km_config.rig_prior:
            return None
        out = torch.zeros(len(keys), max(len(kf.indices) for kf in keys), rig_prior.n_parameters(), device=device)
        for b, (alignment, kf) in enumerate(zip(alignments, keys)):
            out[b, : len(kf.indices)] = torch.from_numpy(rig_prior.rig_parameters_at_keys(alignment, kf)).to(device)
        return out

    def predict_key_offsets(
        self, features: Tensor, keys: list[KeyFrames], style: Tensor | None, alignments: Sequence[Any] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(B, K, V·3) key offsets, with the (B, K) frames and validity they belong to."""
        frames, context, valid = self._key_tensors(keys, features.device)
        gathered = key_features(features, frames, self.km_config.key_window)
        prior = self.rig_parameters(alignments, keys, features.device) if alignments is not None else None
        return self.key_decoder(gathered, frames, context, valid, style, prior), frames, valid

    def condition(self, key_offsets: Tensor, frames: Tensor, valid: Tensor, n_frames: int) -> tuple[Tensor, Tensor]:
        """Scatter (B, K, V·3) key offsets onto the timeline: the (B, T, embed_dim) conditioning
        sequence, and the key motions interpolated over all frames (B, T, V·3) — the base the
        backbone's output is added to when ``residual`` is on (zeros otherwise)."""
        b = key_offsets.shape[0]
        # One spare frame at the end receives the padding and dropped keys, then is cut off.
        timeline = key_offsets.new_zeros(b, n_frames + 1, key_offsets.shape[-1])
        mask_t = torch.zeros(b, n_frames + 1, dtype=torch.bool, device=key_offsets.device)
        target = torch.where(valid, frames, torch.full_like(frames, n_frames))
        timeline.scatter_(1, target[..., None].expand(-1, -1, key_offsets.shape[-1]), key_offsets)
        mask_t.scatter_(1, target, valid)
        timeline, mask_t = timeline[:, :n_frames], mask_t[:, :n_frames]
        base = interpolate_keys(timeline, mask_t)[0] if self.km_config.residual else torch.zeros_like(timeline)
        return self.embedding(timeline, mask_t), base

    def _guided(self, features: Tensor) -> Tensor:
        return features if self.km_config.audio_guidance else torch.zeros_like(features)

    # -- training -------------------------------------------------------------------------------
    def trainable_parameters(self, stage: str) -> Iterable[nn.Parameter]:
        if stage in self.backbone.stages[:-1]:
            return self.backbone.trainable_parameters(stage)
        if stage == "keys":
            return [*self.key_decoder.parameters(), *self.backbone.audio_encoder.parameters()]
        if stage == "refine":
            return list(self.key_decoder.parameters())
        params = [*self.embedding.parameters(), *self.backbone.trainable_parameters(self.backbone.stages[-1])]
        if stage == "joint":
            params = [*self.key_decoder.parameters(), *self.backbone.audio_encoder.parameters(), *params]
            return list({id(p): p for p in params}.values())
        if self.km_config.completion_trains_encoder:
            return params
        encoder = {id(p) for p in self.backbone.audio_encoder.parameters()}
        return [p for p in params if id(p) not in encoder]

    def _encoder_learns(self, stage: str) -> bool:
        return stage in ("keys", "joint") or (stage == "complete" and self.km_config.completion_trains_encoder)

    def loss(self, batch: Batch, stage: str = "keys", features: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        keys = self.key_frames(batch.alignments, batch.frame_lengths)
        frames, _, valid = self._key_tensors(keys, batch.offsets.device)
        target_keys = torch.gather(batch.offsets, 1, frames[..., None].expand(-1, -1, batch.offsets.shape[-1]))
        if stage in self.backbone.stages[:-1]:  # e.g. CodeTalker's prior, learnt on what completion adds
            _, base = self.condition(self._completion_keys(target_keys, valid), frames, valid, batch.offsets.shape[1])
            return self.backbone.loss(self._residual_batch(batch, base, None), stage)
        if features is None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and self._encoder_learns(stage)):
                features = self.backbone.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        if stage in ("keys", "refine", "joint"):
            scale = self.km_config.offset_scale
            predicted, _, _ = self.predict_key_offsets(features, keys, batch.style, batch.alignments)
            key_loss = masked_mse(predicted * scale, target_keys * scale, valid)
            if stage != "joint":
                return key_loss, {"key": float(key_loss.detach())}
            source = predicted.detach() if self.km_config.completion_keys == "predicted" else target_keys
            completion, parts = self._completion_loss(batch, source, frames, valid, features)
            return key_loss + completion, {**parts, "key": float(key_loss.detach())}
        return self._completion_loss(batch, target_keys, frames, valid, features)

    def _completion_loss(self, batch: Batch, keys: Tensor, frames: Tensor, valid: Tensor, features: Tensor) -> tuple[Tensor, dict[str, float]]:
        """The backbone's loss for completing ``keys`` (B, K, V·3) at ``frames`` into the whole sequence."""
        drop = torch.rand(valid.shape, device=valid.device) < self.km_config.key_dropout
        ends = (frames == 0) | (frames == (batch.frame_lengths[:, None] - 1))
        cond, base = self.condition(self._completion_keys(keys, valid), frames, valid & (~drop | ends), batch.offsets.shape[1])
        completion, backbone_parts = self.backbone.loss(
            self._residual_batch(batch, base, cond), self.backbone.stages[-1], features=self._guided(features)
        )
        return completion, {**{f"backbone_{k}": v for k, v in backbone_parts.items()}, "completion": float(completion.detach())}

    def _completion_keys(self, target_keys: Tensor, valid: Tensor) -> Tensor:
        """The keys completion learns from: the true ones, corrupted while training (``key_noise``)."""
        return corrupt_keys(target_keys, valid, self.km_config.key_noise) if self.training else target_keys

    @staticmethod
    def _residual_batch(batch: Batch, base: Tensor, condition: Tensor | None) -> Batch:
        """The batch the backbone learns from: targets minus the interpolated key motions."""
        base = base * batch.frame_mask[..., None].to(base.dtype)
        return dataclasses.replace(batch, offsets=batch.offsets - base, condition=condition, base=base)

    # -- inference ------------------------------------------------------------------------------
    def encode(self, audio: Tensor, n_frames: int) -> Tensor:
        """(1, n_frames, F) audio features of one clip, shared by key motions and completion (inference: eval mode)."""
        self.eval()
        return self.backbone.encode_clip(audio, n_frames)[0]


    @torch.no_grad()
    def predict_keys(
        self, audio: Tensor, n_frames: int, *, alignment: Any, style: int | None = None, features: Tensor | None = None
    ) -> KeyMotions:
        """Key frames from ``alignment`` and the face there, decoded in windows of keys (:mod:`kmtalk_cli.windowed`)."""
        from .windowed import decode_key_motions

        self.eval()
        features = self.encode(audio, n_frames) if features is None else features
        keys = self.key_frames([alignment], torch.tensor([n_frames]))
        style_t = None if style is None else torch.tensor([style], device=features.device)
        prior = self.rig_parameters([alignment], keys, features.device)
        return decode_key_motions(self, features, keys[0], style_t, None if prior is None else prior[0])

    def complete_pieces(
        self, audio: Tensor, n_frames: int, keys: KeyMotions, *, style: int | None = None, features: Tensor | None = None
    ) -> Iterator[Tensor]:
        """Completed offsets in consecutive pieces of frames (bounded memory on long audio)."""
        from .windowed import complete_in_windows

        self.eval()
        if keys.frames.n_frames != n_frames or (len(keys.frames.indices) and keys.frames.indices.max() >= n_frames):
            raise ModelError(f"The key motions are for {keys.frames.n_frames} frames but the speech has {n_frames}.")
        if keys.dim != self.backbone.config.vertex_dim:
            raise ModelError(f"The key motions have {keys.dim // 3} vertices; the model has {self.backbone.config.n_vertices}.")
        features = self.encode(audio, n_frames) if features is None else features
        style_t = None if style is None else torch.tensor([style], device=features.device)
        return complete_in_windows(self, features, keys, style_t)

    @torch.no_grad()
    def complete(
        self, audio: Tensor, n_frames: int, keys: KeyMotions, *, style: int | None = None, target: Tensor | None = None
    ) -> Tensor:
        """Full offsets (n_frames, V·3) from given key motions (predicted or edited by a user).

        ``target`` (n_frames, V·3), true offsets, teacher-forces an autoregressive backbone (each
        frame reads the true residual of the one before), as the backbone's ``decode`` does: a
        diagnostic (``benchmarks/exposure_bias.py``), not something a user has.
        """
        if target is None:
            return torch.cat(list(self.complete_pieces(audio, n_frames, keys, style=style)), dim=0)
        return self.complete_whole(audio, n_frames, keys, style=style, target=target)

    @torch.no_grad()
    def complete_whole(
        self, audio: Tensor, n_frames: int, keys: KeyMotions, *, style: int | None = None, target: Tensor | None = None
    ) -> Tensor:
        """:meth:`complete` in one pass over the whole clip, as in training (the reference the windows are checked against)."""
        self.eval()
        features, frame_lengths = self.backbone.encode_clip(audio, n_frames)
        if keys.frames.n_frames != n_frames or (len(keys.frames.indices) and keys.frames.indices.max() >= n_frames):
            raise ModelError(f"The key motions are for {keys.frames.n_frames} frames but the speech has {n_frames}.")
        device = features.device
        frames = torch.from_numpy(keys.frames.indices).to(device)[None]
        valid = torch.ones_like(frames, dtype=torch.bool)
        offsets = torch.from_numpy(np.asarray(keys.offsets, dtype=np.float32)).to(device)[None]
        cond, base = self.condition(offsets, frames, valid, n_frames)
        style_t = None if style is None else torch.tensor([style], device=device)
        residual = None if target is None else target.to(device).reshape(1, n_frames, -1) - base
        return (self.backbone.decode(self._guided(features), frame_lengths, condition=cond, style=style_t, target=residual) + base)[0]

    @torch.no_grad()
    def predict(self, audio: Tensor, n_frames: int, *, style: int | None = None, alignment: Any = None) -> Tensor:
        if alignment is None:
            raise ModelError("This model uses key motions and needs a phone alignment of the speech.")
        features = self.encode(audio, n_frames)
        keys = self.predict_keys(audio, n_frames, alignment=alignment, style=style, features=features)
        return torch.cat(list(self.complete_pieces(audio, n_frames, keys, style=style, features=features)), dim=0)


def recorded_key_motions(info: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's key-motion options; those written before ``schedule`` existed were all trained staged."""
    return {"schedule": "staged", **(info.get("key_motions") or {})}


def load_keymotion_model(path: Path | str) -> tuple[KeyMotionModel, dict[str, Any]]:
    from .backbones import create_backbone
    from .backbones.checkpoint import load_state, read_checkpoint_info, resolve_checkpoint_path

    path = resolve_checkpoint_path(path)
    info = read_checkpoint_info(path)
    if info.get("kind") != "key-motion":
        raise ModelError(f"Checkpoint {path} holds a plain backbone, not a key-motion model; use it without key motions.")
    backbone = create_backbone(info["backbone"], info["config"])
    model = KeyMotionModel(backbone, KeyMotionConfig.from_dict(recorded_key_motions(info)))
    load_state(path, model)
    model.eval()
    return model, info
