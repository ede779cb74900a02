"""FaceFormer: an autoregressive transformer decoder over frame-rate speech features.

Fan et al., "FaceFormer: Speech-Driven 3D Facial Animation with Transformers", CVPR 2022;
upstream github.com/EvelynFan/FaceFormer at dfaea81 (MIT). Written from the paper and a reading
of the upstream behaviour; no upstream code or weights are used.

Kept from the original: audio feature map ``Linear(F, d)``; motion encoder ``Linear(V·3, d)`` on
offsets; one-hot style → ``Linear(n_styles, d, bias=False)`` added to every input token (the
start token *is* the style); periodic positional encoding plus dropout; self-attention under the
periodic ALiBi causal bias; cross-attention under the alignment mask (frame ``i`` sees audio
token ``i`` only); post-norm decoder layers (4 heads, FFN 2·d, ReLU, dropout 0.1); a
zero-initialised ``Linear(d, V·3)`` so an untrained model outputs the template.

Departures, each deliberate:

* **Own decoder layer with a key/value cache**: free-running decoding costs O(T·W) instead of
  re-running the decoder over the whole prefix at every frame (O(T²) passes).
* **Attention window** ``attention_window`` (W, default 600): keys W or more frames back are
  masked, in training as in inference, so both see the same attention. Clips up to W frames get
  the original mask exactly. PPE and bias are computed on demand: no 600-frame cap.
* **Batches with padding**: the self-attention is causal and the cross-attention diagonal, so
  padding at the end cannot reach a valid frame; an item in a batch decodes as it does alone.
* **Free-running training by default**, as FaceFormer trains (``autoregressive_training``):
  each frame reads the model's own previous output, through the same cache as inference, so it
  costs O(T·W) and about 1.4× a teacher-forced step at the default size. ``False`` trains
  teacher-forced in one parallel pass over ``[start, target[:-1]]``, as CodeTalker does, which
  is faster but leaves the model unused to its own errors (exposure bias: measured with
  ``benchmarks/exposure_bias.py``, figures in ``docs/design-notes.md``). The teacher-forced
  start token is the style embedding, as
  in the free-running path (the original's validation-only teacher forcing fed
  ``vertice_map(0) + style``).
* **Cross-attention** is computed as ``out_proj(value_proj(memory_i))``: with one allowed key the
  softmax weight is exactly 1, so the query/key projections cannot change anything and are
  omitted (8,320 parameters fewer at d=64, 33,024 at d=128). Dropout on that single weight is kept.
* **Alignment**: the shared audio encoders already resample to the motion rate, so BIWI's
  "two 50 Hz tokens per frame" mask becomes the diagonal too.
* **Offset scale**: the network reads and writes offsets × ``offset_scale`` (100: centimetres
  for metre data) so its outputs and the loss are O(1); ``decode`` returns metres. The loss is
  the masked MSE in those units (10⁴ × the MSE in metres).
* **Velocity term** ``velocity_weight`` exists but defaults to 0: FaceFormer's loss is MSE only,
  and keeping it so keeps the "backbone vs backbone + key motions" comparison honest.
* **Style None** means the mean style embedding (unseen speakers); the original needs a training
  subject. **Conditioning**: KMTalk's key-motion sequence is added to every input token through a
  zero-initialised map.
* The ``default`` preset uses the small log-mel encoder instead of wav2vec2 (CPU training).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from . import register_backbone
from .attention import biased_causal_bias, periodic_positional_encoding
from .base import Backbone, BackboneConfig, Batch, frame_loop_threads, frame_mask, masked_mse, masked_velocity_mse

__all__ = ["FaceFormer", "FaceFormerConfig"]

_Cache = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class FaceFormerConfig(BackboneConfig):
    """FaceFormer's sizes; the field defaults are the CPU ``default`` preset."""

    d_model: int = 128  # decoder width (paper: 64 VOCASET, 128 BIWI)
    n_heads: int = 4
    n_layers: int = 1
    ffn_multiplier: int = 2  # FFN width = ffn_multiplier · d_model
    dropout: float = 0.1
    period: int = 30  # PPE and attention-bias period in frames (paper: 30 VOCASET, 25 BIWI)
    attention_window: int = 600  # keys this many frames back (or more) are masked
    offset_scale: float = 100.0  # network units per offset unit (metres → cm)
    velocity_weight: float = 0.0  # weight of the velocity MSE (0 = FaceFormer's loss)
    autoregressive_training: bool = True  # False: teacher-forced training (faster, exposure bias)

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if min(self.n_layers, self.ffn_multiplier, self.period, self.attention_window) < 1:
            raise ValueError("n_layers, ffn_multiplier, period and attention_window must be at least 1")
        if self.offset_scale <= 0:
            raise ValueError(f"offset_scale must be positive, got {self.offset_scale}")


class _BiasedSelfAttention(nn.Module):
    """Multi-head self-attention under an additive bias, usable whole-sequence or one step at a time.

    It returns the keys/values the next query may still see (the last ``window − 1``), so a
    parallel pass and a cached step share one code path.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, window: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.window = window
        self.in_proj = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def forward(self, x: Tensor, bias: Tensor, cache: _Cache | None = None) -> tuple[Tensor, _Cache]:
        """x (B, Q, d), bias (H, Q, K) with K = cached keys + Q → (B, Q, d) and the new cache."""
        q, k, v = (self._heads(part) for part in self.in_proj(x).chunk(3, dim=-1))
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        # Written out (as torch's attention computes it): for one query per step this beats
        # F.scaled_dot_product_attention's CPU path, whose fixed overhead dominates at that size.
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5 + bias.to(q.dtype)
        weights = F.dropout(torch.softmax(scores, dim=-1), self.dropout, training=self.training)
        out = weights @ v
        b, h, t, dh = out.shape
        keep = max(k.shape[2] - (self.window - 1), 0)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * dh)), (k[:, :, keep:], v[:, :, keep:])


class _AlignedCrossAttention(nn.Module):
    """Cross-attention under FaceFormer's alignment mask: frame ``i`` attends to audio token ``i`` only.

    With a single allowed key the softmax weight is exactly 1 whatever the query and key, so the
    attention is ``out_proj(value_proj(memory_i))`` and is computed for all frames at once. The
    attention dropout torch would apply to that weight (per head) is kept.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.value_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, memory: Tensor) -> Tensor:
        v = self.value_proj(memory)
        if self.training and self.dropout > 0:
            b, t, d = v.shape
            weight = F.dropout(v.new_ones(b, t, self.n_heads, 1), self.dropout, training=True)
            v = (v.view(b, t, self.n_heads, -1) * weight).view(b, t, d)
        return self.out_proj(v)


class _DecoderLayer(nn.Module):
    """torch's post-norm ``TransformerDecoderLayer`` (ReLU FFN, dropout) with a cacheable self-attention."""

    def __init__(self, d_model: int, n_heads: int, ffn_dim: int, dropout: float, window: int) -> None:
        super().__init__()
        self.self_attn = _BiasedSelfAttention(d_model, n_heads, dropout, window)
        self.cross_attn = _AlignedCrossAttention(d_model, n_heads, dropout)
        self.linear1 = nn.Linear(d_model, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x: Tensor, cross: Tensor, bias: Tensor, cache: _Cache | None = None) -> tuple[Tensor, _Cache]:
        """x (B, Q, d); ``cross`` the layer's cross-attention output for the same frames."""
        attended, cache = self.self_attn(x, bias, cache)
        x = self.norm1(x + self.dropout1(attended))
        x = self.norm2(x + self.dropout2(cross))
        x = self.norm3(x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x))))))
        return x, cache


@register_backbone("faceformer")
class FaceFormer(Backbone):
    description: ClassVar[str] = (
        "FaceFormer (CVPR 2022): autoregressive transformer decoder with periodic positional "
        "encoding and biased causal attention; key/value-cached, batched, no length cap."
    )
    config_class: ClassVar[type[BackboneConfig]] = FaceFormerConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {"audio": {"kind": "mel"}},
        "paper-vocaset": {
            "audio": {"kind": "wav2vec2", "preset": "base"},
            "d_model": 64,
            "period": 30,
            "fps": 30.0,
            "n_vertices": 5023,
            "n_styles": 8,
        },
        "paper-biwi": {
            "audio": {"kind": "wav2vec2", "preset": "base"},
            "d_model": 128,
            "period": 25,
            "fps": 25.0,
            "n_vertices": 23370,
            "n_styles": 6,
        },
    }

    # Free-running decoding composes motion_encoder ∘ motion_decoder from their weights.
    fp32_modules: ClassVar[tuple[str, ...]] = ("motion_encoder", "motion_decoder", "style_embedding")

    config: FaceFormerConfig

    def __init__(self, config: FaceFormerConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.audio_feature_map = nn.Linear(self.feature_dim, d)
        self.motion_encoder = nn.Linear(config.vertex_dim, d)
        self.style_embedding = nn.Linear(config.n_styles, d, bias=False) if config.n_styles > 0 else None
        self.condition_map = self.make_condition_map(d)
        self.input_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            _DecoderLayer(d, config.n_heads, config.ffn_multiplier * d, config.dropout, config.attention_window)
            for _ in range(config.n_layers)
        )
        self.motion_decoder = nn.Linear(d, config.vertex_dim)
        nn.init.zeros_(self.motion_decoder.weight)
        nn.init.zeros_(self.motion_decoder.bias)

    # -- the interface ----------------------------------------------------------------------
    def decode(
        self,
        features: Tensor,
        frame_lengths: Tensor,
        *,
        condition: Tensor | None = None,
        style: Tensor | None = None,
        target: Tensor | None = None,
    ) -> Tensor:
        """Features (B, T, F) → offsets (B, T, V·3), zero on padded frames.

        With ``target`` the decoder is teacher-forced in one parallel pass, unless the model is
        training with ``autoregressive_training`` set; without it, it runs free (cached).
        """
        hidden = self._hidden(features, condition, style, target)
        return self._offsets(hidden).masked_fill_(~frame_mask(frame_lengths, features.shape[1])[..., None], 0.0)

    def decode_pieces(self, features: Tensor, condition: Tensor | None, style: Tensor | None, piece: int) -> Iterator[Tensor]:
        """Free-running decoding into the small hidden states (B, T, d) (the key/value cache is
        bounded by the attention window), the (large) offsets mapped from them a piece at a time."""
        hidden = self._hidden(features, condition, style, None)
        for start in range(0, hidden.shape[1], max(1, piece)):
            yield self._offsets(hidden[:, start : start + piece])

    def _hidden(self, features: Tensor, condition: Tensor | None, style: Tensor | None, target: Tensor | None) -> Tensor:
        """The decoder's per-frame states (B, T, d): teacher-forced in one pass with ``target``
        (unless training with ``autoregressive_training``), else free-running (cached)."""
        batch, n_frames, _ = features.shape
        memory = self.audio_feature_map(features)
        cross = [layer.cross_attn(memory) for layer in self.layers]
        inputs = self._frame_inputs(batch, n_frames, memory, condition, style)
        if target is not None and not (self.training and self.config.autoregressive_training):
            return self._teacher_forced(inputs, cross, target)
        return self._free_running(inputs, cross)

    def _offsets(self, hidden: Tensor) -> Tensor:
        """Hidden states → offsets in metres, the scale folded into the map: one pass over the (large) output."""
        scale = self.config.offset_scale
        return F.linear(hidden, self.motion_decoder.weight / scale, self.motion_decoder.bias / scale)

    def loss(self, batch: Batch, stage: str = "main", features: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """Masked MSE of offsets in network units (× ``offset_scale``), plus the optional velocity term."""
        if stage not in self.stages:
            raise ModelError(f"FaceFormer has one training stage, 'main'; '{stage}' is not one.")
        if features is None:
            features = self.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        prediction = self.decode(
            features, batch.frame_lengths, condition=batch.condition, style=batch.style, target=batch.offsets
        )
        scale = self.config.offset_scale
        mask = batch.frame_mask
        mse = masked_mse(prediction * scale, batch.offsets * scale, mask)
        total, parts = mse, {"mse": float(mse.detach())}
        if self.config.velocity_weight > 0:
            vel = masked_velocity_mse(prediction * scale, batch.offsets * scale, mask)
            total = total + self.config.velocity_weight * vel
            parts["velocity"] = float(vel.detach())
        parts["loss"] = float(total.detach())
        return total, parts

    def attention_bias(self, n_frames: int, device: torch.device | str = "cpu") -> Tensor:
        """(H, T, T) self-attention bias of a whole-sequence pass: periodic ALiBi, causal, windowed."""
        positions = torch.arange(n_frames, device=device)
        cfg = self.config
        return biased_causal_bias(positions, positions, cfg.n_heads, cfg.period, cfg.attention_window)

    # -- decoding -----------------------------------------------------------------------------
    def _frame_inputs(
        self, batch: int, n_frames: int, like: Tensor, condition: Tensor | None, style: Tensor | None
    ) -> Tensor:
        """The part of every input token that does not depend on motion: style + condition + PPE."""
        pe = periodic_positional_encoding(torch.arange(n_frames, device=like.device), self.config.d_model, self.config.period)
        inputs = self._style_vectors(batch, style, like)[:, None, :] + pe.to(like.dtype)[None]
        if condition is not None:
            inputs = inputs + self.mapped_condition(condition, batch, n_frames, like.dtype)
        return inputs

    def _style_vectors(self, batch: int, style: Tensor | None, like: Tensor) -> Tensor:
        """(B, d) style embeddings; the mean over training subjects when ``style`` is None."""
        d = self.config.d_model
        style = self.checked_style(style, batch)
        if self.style_embedding is None:
            return like.new_zeros(batch, d)
        if style is None:
            return self.style_embedding.weight.mean(dim=1).expand(batch, d)
        return self.style_embedding(F.one_hot(style, self.config.n_styles).to(like.dtype))

    def _teacher_forced(self, inputs: Tensor, cross: list[Tensor], target: Tensor) -> Tensor:
        """One parallel pass over tokens [start, target[0], …, target[T−2]]."""
        batch, n_frames, _ = inputs.shape
        if target.shape != (batch, n_frames, self.config.vertex_dim):
            raise ModelError(
                f"Target offsets have shape {tuple(target.shape)}; expected ({batch}, {n_frames}, {self.config.vertex_dim})."
            )
        previous = self.motion_encoder(target[:, :-1].to(inputs.dtype) * self.config.offset_scale)
        x = self.input_dropout(inputs + F.pad(previous, (0, 0, 1, 0)))
        bias = self.attention_bias(n_frames, inputs.device)
        for layer, layer_cross in zip(self.layers, cross):
            x, _ = layer(x, layer_cross, bias)
        return x

    def _free_running(self, inputs: Tensor, cross: list[Tensor]) -> Tensor:
        """Frame-by-frame decoding from the model's own outputs, with a key/value cache per layer.

        Re-encoding frame t's output, ``motion_encoder(motion_decoder(h_t))``, is one affine map of
        ``h_t``; composing it once keeps the per-frame cost independent of the vertex count.
        The offsets themselves are decoded from all hidden states in one batched product.
        """
        n_frames = inputs.shape[1]
        cfg = self.config
        span = min(cfg.attention_window, n_frames)
        # Bias of the newest query against keys at distances span−1 … 0; a step uses its tail.
        bias_row = biased_causal_bias(
            torch.tensor([span - 1], device=inputs.device),
            torch.arange(span, device=inputs.device),
            cfg.n_heads,
            cfg.period,
            cfg.attention_window,
        )
        reencode_weight = self.motion_encoder.weight @ self.motion_decoder.weight
        reencode_bias = self.motion_encoder.weight @ self.motion_decoder.bias + self.motion_encoder.bias
        caches: list[_Cache | None] = [None] * len(self.layers)
        hidden: list[Tensor] = []
        with frame_loop_threads(inputs.device, cfg.d_model):
            for t in range(n_frames):
                token = inputs[:, t : t + 1]
                if t > 0:
                    token = token + F.linear(hidden[-1], reencode_weight, reencode_bias)
                x = self.input_dropout(token)
                bias = bias_row[:, :, span - min(t + 1, span) :]
                for i, (layer, layer_cross) in enumerate(zip(self.layers, cross)):
                    x, caches[i] = layer(x, layer_cross[:, t : t + 1], bias, caches[i])
                hidden.append(x)
        return torch.cat(hidden, dim=1)
