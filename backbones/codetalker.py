"""CodeTalker: a discrete motion prior (VQ-VAE over face components), then speech → codes.

Xing et al., "CodeTalker: Speech-Driven 3D Facial Animation with Discrete Motion Prior", CVPR
2023; upstream github.com/Doubiiu/CodeTalker at 1b7cb95 (MIT). Written from the paper's
description; no upstream code or weights are used.

Two training stages (``stages = ("prior", "speech")``):

* **prior** — :class:`MotionPrior`, a VQ-VAE over offsets. Encoder: ``Linear(V·3, hidden)`` +
  LeakyReLU(0.2) → Conv1d(k5, replicate padding) + LeakyReLU + InstanceNorm(affine=False) →
  Linear → pre-norm bidirectional transformer (bias-free qkv, GELU MLP). Each frame's output is
  split into ``n_components`` face components of ``code_dim`` and each is snapped to the nearest
  of ``n_codes`` codebook rows (L2; codebook loss + β·commitment, β = 0.25; straight-through).
  The decoder mirrors the encoder and ends in a zero-initialised ``Linear(hidden, V·3)``.
  Loss: L1 reconstruction + codebook + β·commitment.
* **speech** — audio features → ``Linear(F, d)``; a post-norm transformer decoder whose input
  token for frame ``t`` is built from frame ``t − 1`` (+ style + periodic positional encoding +
  conditioning), self-attention under FaceFormer's biased causal mask, cross-attention under
  the diagonal alignment mask; a zero-initialised bias-free ``feat_map`` predicts the component
  features, which are quantised with the frozen codebook and decoded by the frozen VQ decoder.
  Loss: MSE(offsets) + MSE(predicted features, stop-grad GT quantised features); teacher forcing.

Departures from the original, each deliberate:

* **The stage-2 token reads the previous frame's quantised component features** (``code_map``),
  not its re-decoded offsets. The original re-encodes ``Linear(V·3, d)`` of vertices that it
  obtains by running the bidirectional VQ decoder over the *whole prefix* at every step — O(T²)
  passes through the VQ decoder. Here generation is autoregressive over codes with a key/value
  cache and an ``attention_window`` (default 600, masked in training too, as in inference), and
  the code sequence is decoded once at the end (in overlapping windows when long): linear time.
  Teacher forcing feeds the GT quantised features of the target (which the feature loss needs
  anyway), so training and inference see the same kind of token.
* **Padding-aware everything**: replicate padding repeats each item's own last frame,
  InstanceNorm uses each item's valid frames, attention uses key padding masks; batches of any
  size give each item what it gets alone (the original runs batch 1).
* **Positions in the prior** (``prior_position``): the original's positional encoding adds the
  position-0 vector to every frame (a no-op). Default ``"alibi"``: a symmetric distance penalty
  ``−slope_h·|i − j|`` on the bidirectional attention, which generalises to any length and
  makes windowed decoding translation-invariant; ``"sinusoidal"`` is what the original meant;
  ``"none"`` is what it did.
* **Attention scale** ``1/√head_dim`` (``prior_attention_scale="head"``); ``"hidden"`` keeps the
  original's ``1/√hidden``.
* **Dead-code restart** (``code_restart``): codes unused for a while (EMA of their share) are
  re-seeded from the current batch's encoder outputs during prior training — the original has
  no EMA/reset and uses few of its codes. Every code starts dead, so the first prior batch
  seeds the whole codebook from encoder outputs (a data-dependent initialisation).
  Synchronised across DDP ranks.
* **Long clips** are encoded/decoded by the VQ-VAE in windows of ``prior_window`` frames with
  ``prior_context`` frames of context each side (the VQ-VAE's attention is quadratic).
* A projection between ``hidden`` and ``n_components·code_dim`` exists only when they differ
  (the original's BIWI model has a square 1024 → 1024 one).
* **Offset scale**: the network reads and writes offsets × ``offset_scale`` (100: centimetres
  for metre data) so its losses are O(1) and the vertex term is not negligible next to the
  feature term; ``decode`` returns metres.
* **Aligned cross-attention** is ``out(value(memory_t))``: with one allowed key the softmax
  weight is exactly 1, so query/key projections change nothing and are omitted.
* **Style None** = the mean style embedding (unseen speakers). **Conditioning**: KMTalk's
  key-motion sequence is added to every input token through a zero-initialised map.
* The ``default`` preset uses the small log-mel encoder instead of wav2vec2 (CPU training).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from . import register_backbone
from .attention import alibi_slopes, biased_causal_bias, periodic_positional_encoding
from .base import Backbone, BackboneConfig, Batch, frame_loop_threads, frame_mask, masked_mse

__all__ = ["CodeTalker", "CodeTalkerConfig", "MotionPrior", "Quantized", "VectorQuantizer"]

_Cache = tuple[Tensor, Tensor]
PRIOR_POSITIONS = ("alibi", "sinusoidal", "none")
ATTENTION_SCALES = ("head", "hidden")
# A period longer than any clip turns the periodic encoding into the plain sinusoidal one.
_NO_PERIOD = 1 << 30
# Dead-code restart: a code whose EMA share of tokens falls below DEAD_SHARE / n_codes is dead;
# with decay 0.95 an unused code dies after about 60 steps.
USAGE_DECAY = 0.95
DEAD_SHARE = 0.05


@dataclass(frozen=True)
class CodeTalkerConfig(BackboneConfig):
    """CodeTalker's sizes; the field defaults are the CPU ``default`` preset."""

    # Stage 1: the VQ-VAE motion prior.
    hidden: int = 256
    prior_layers: int = 2
    prior_heads: int = 4
    prior_ffn: int = 512
    conv_kernel: int = 5  # odd
    n_components: int = 8  # face components per frame
    code_dim: int = 32
    n_codes: int = 256
    beta: float = 0.25  # commitment weight
    code_restart: bool = True  # re-seed dead codes from encoder outputs while training the prior
    prior_position: str = "alibi"  # "alibi" | "sinusoidal" | "none" (the original's effective choice)
    prior_attention_scale: str = "head"  # "head": 1/√head_dim; "hidden": the original's 1/√hidden
    prior_window: int = 300  # longer clips go through the VQ-VAE in windows of this many frames
    prior_context: int = 60  # frames of context each side of a window
    # Stage 2: speech → codes.
    d_model: int = 128
    decoder_layers: int = 2
    decoder_heads: int = 4
    decoder_ffn: int = 256
    period: int = 30  # PPE and attention-bias period in frames (paper: 30 VOCASET, 25 BIWI)
    attention_window: int = 600  # keys this many frames back (or more) are masked
    dropout: float = 0.1
    motion_weight: float = 1.0
    feature_weight: float = 1.0
    offset_scale: float = 100.0  # network units per offset unit (metres → cm)

    @property
    def code_width(self) -> int:
        """Width of one frame's quantised features (all components)."""
        return self.n_components * self.code_dim

    def __post_init__(self) -> None:
        if self.hidden % self.prior_heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by prior_heads ({self.prior_heads})")
        if self.d_model % self.decoder_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by decoder_heads ({self.decoder_heads})")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be a positive odd number, got {self.conv_kernel}")
        sizes = (self.prior_layers, self.prior_ffn, self.n_components, self.code_dim, self.n_codes,
                 self.decoder_layers, self.decoder_ffn, self.period, self.attention_window, self.prior_window)
        if min(sizes) < 1:
            raise ValueError("layer counts, widths, n_codes, period and windows must be at least 1")
        if self.prior_context < 0:
            raise ValueError(f"prior_context must not be negative, got {self.prior_context}")
        if self.prior_position not in PRIOR_POSITIONS:
            raise ValueError(f"prior_position must be one of {', '.join(PRIOR_POSITIONS)}, got '{self.prior_position}'")
        if self.prior_attention_scale not in ATTENTION_SCALES:
            raise ValueError(
                f"prior_attention_scale must be one of {', '.join(ATTENTION_SCALES)}, got '{self.prior_attention_scale}'"
            )
        if self.offset_scale <= 0:
            raise ValueError(f"offset_scale must be positive, got {self.offset_scale}")


# -- stage 1: the VQ-VAE ----------------------------------------------------------------------


def _masked_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean absolute error over valid frames only ((B, T, D) tensors, (B, T) mask)."""
    weights = mask.to(prediction.dtype)[..., None]
    return ((prediction - target).abs() * weights).sum() / (weights.sum() * prediction.shape[-1]).clamp_min(1.0)


def _instance_norm(x: Tensor, mask: Tensor, eps: float = 1e-5) -> Tensor:
    """InstanceNorm1d(affine=False) over each item's valid frames; (B, T, C) with a (B, T) mask."""
    weights = mask.to(x.dtype)[..., None]
    count = weights.sum(1, keepdim=True).clamp_min(1.0)
    mean = (x * weights).sum(1, keepdim=True) / count
    var = ((x - mean).pow(2) * weights).sum(1, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + eps) * weights


def _in_windows(fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, lengths: Tensor, window: int, context: int) -> Tensor:
    """Apply a whole-sequence map ``fn(x, lengths)`` in windows with context, keeping each centre.

    Windows sit at fixed frame positions, so an item decodes the same in a padded batch as alone.
    """
    pieces = list(_window_centres(fn, x, lengths, window, context))
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)


def _window_centres(fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, lengths: Tensor, window: int, context: int) -> Iterator[Tensor]:
    """The centres :func:`_in_windows` joins, one window at a time."""
    n_frames = x.shape[1]
    if n_frames <= window:
        yield fn(x, lengths)
        return
    for start in range(0, n_frames, window):
        stop = min(n_frames, start + window)
        first, last = max(0, start - context), min(n_frames, stop + context)
        local = (lengths - first).clamp(1, last - first)  # items already finished decode garbage, masked later
        yield fn(x[:, first:last], local)[:, start - first : stop - first]


class _Squasher(nn.Module):
    """Conv1d with replicate padding + LeakyReLU + InstanceNorm, all blind to end padding."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel)
        self.kernel = kernel

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        n_frames, half = x.shape[1], self.kernel // 2
        # Replicate padding at each item's own ends: clamp source frames into [0, length − 1].
        source = torch.arange(-half, n_frames + half, device=x.device).clamp_min(0)
        source = torch.minimum(source[None, :], (lengths - 1).clamp_min(0)[:, None])
        padded = torch.gather(x, 1, source[..., None].expand(-1, -1, x.shape[-1]))
        h = self.conv(padded.transpose(1, 2)).transpose(1, 2)
        return _instance_norm(F.leaky_relu(h, 0.2), frame_mask(lengths, n_frames))


class _PriorBlock(nn.Module):
    """Pre-norm transformer block: LN → MHA (bias-free qkv) → residual; LN → GELU MLP → residual."""

    def __init__(self, width: int, heads: int, ffn: int, scale: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = scale
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """x (B, T, C), bias (B, H, T, T) additive (−inf on padded keys)."""
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.norm2(x))


class _PriorTransformer(nn.Module):
    """The VQ-VAE's bidirectional transformer, with key padding masks and a choice of positions."""

    def __init__(self, config: CodeTalkerConfig) -> None:
        super().__init__()
        width, heads = config.hidden, config.prior_heads
        scale = (width // heads if config.prior_attention_scale == "head" else width) ** -0.5
        self.position = config.prior_position
        self.blocks = nn.ModuleList(_PriorBlock(width, heads, config.prior_ffn, scale) for _ in range(config.prior_layers))
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        b, t, c = x.shape
        positions = torch.arange(t, device=x.device)
        if self.position == "sinusoidal":
            x = x + periodic_positional_encoding(positions, c, _NO_PERIOD).to(x.dtype)[None]
        padded = ~frame_mask(lengths, t)
        bias = x.new_zeros(b, 1, 1, t).masked_fill(padded[:, None, None, :], float("-inf"))
        if self.position == "alibi":
            distance = (positions[:, None] - positions[None, :]).abs().to(x.dtype)
            bias = bias - self.slopes.to(x.dtype)[None, :, None, None] * distance[None, None]
        for block in self.blocks:
            x = block(x, bias)
        return x


class _PriorCoder(nn.Module):
    """One half of the VQ-VAE: in-map (+LeakyReLU) → squasher → Linear → transformer → out-map."""

    def __init__(self, config: CodeTalkerConfig, in_map: nn.Module, out_map: nn.Module, activate_input: bool) -> None:
        super().__init__()
        self.in_map = in_map
        self.activate_input = activate_input
        self.squasher = _Squasher(config.hidden, config.conv_kernel)
        self.mid = nn.Linear(config.hidden, config.hidden)
        self.transformer = _PriorTransformer(config)
        self.out_map = out_map

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        x = self.in_map(x)
        if self.activate_input:
            x = F.leaky_relu(x, 0.2)
        x = self.mid(self.squasher(x, lengths))
        return self.out_map(self.transformer(x, lengths))


def _pass_gradient(z: Tensor, rows: Tensor) -> Tensor:
    """The straight-through estimator: ``rows`` forward, identity Jacobian to ``z`` backward."""
    return z + (rows - z).detach() if z.requires_grad else rows.detach()


@dataclass
class Quantized:
    """What the quantiser returns for a batch; the losses are masked means, the rest is for logging."""

    features: Tensor  # (B, T, C·D) codebook rows (straight-through when the input needs gradients)
    indices: Tensor  # (B, T, C) long
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: float
    usage: float  # share of the codebook used by this batch


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation of each face component, with dead-code restart for training."""

    def __init__(self, n_codes: int, code_dim: int, n_components: int) -> None:
        super().__init__()
        self.n_codes, self.code_dim, self.n_components = n_codes, code_dim, n_components
        self.codebook = nn.Parameter(torch.empty(n_codes, code_dim).uniform_(-1.0 / n_codes, 1.0 / n_codes))
        # EMA of each code's share of the tokens; only prior training with restart updates it.
        # It starts at zero, every code dead, so the first training batch seeds the whole codebook
        # from encoder outputs: rows of ±1/n_codes sit far from outputs of size ~0.1–1, and the
        # few codes nearest them absorbed every token until restarts caught up (measured on a
        # 3-clip corpus: ~80% of the feature variance lost to quantisation after 30 steps, and at
        # hidden 256 the codebook loss grew 20–30-fold while the reconstruction got worse).
        self.register_buffer("usage", torch.zeros(n_codes))

    def code_norms(self) -> Tensor:
        """‖code‖² for every code; frame-by-frame generation computes it once, not every frame."""
        return self.codebook.detach().pow(2).sum(1)

    def nearest(self, z: Tensor, code_norms: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(…, C·D) → component indices (…, C) and their codebook rows (…, C·D), no gradients."""
        flat = z.detach().reshape(-1, self.code_dim)
        codebook = self.codebook.detach()
        if code_norms is None:
            code_norms = self.code_norms()
        # ‖z‖² is the same for every code, so it is left out of the argmin.
        distance = code_norms[None, :] - 2.0 * flat @ codebook.T
        indices = distance.argmin(dim=1)
        rows = F.embedding(indices, self.codebook).reshape(z.shape)
        return indices.reshape(*z.shape[:-1], self.n_components), rows

    def straight_through(self, z: Tensor) -> Tensor:
        """Codebook rows whose gradient flows to ``z`` unchanged (exact rows when ``z`` needs none)."""
        return _pass_gradient(z, self.nearest(z)[1])

    def forward(self, z: Tensor, mask: Tensor, *, restart: bool = False) -> Quantized:
        """Quantise (B, T, C·D); ``restart`` re-seeds dead codes and tracks usage (prior training)."""
        tokens = z.detach()[mask].reshape(-1, self.code_dim)
        if restart:
            self._restart_dead(tokens)
        indices, rows = self.nearest(z)
        counts = torch.bincount(indices[mask].reshape(-1), minlength=self.n_codes).to(z.dtype)
        if restart:
            self._track(counts)
        share = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(share * torch.log(share.clamp_min(1e-10))).sum())
        return Quantized(
            features=_pass_gradient(z, rows),
            indices=indices,
            codebook_loss=masked_mse(rows, z.detach(), mask),
            commitment_loss=masked_mse(z, rows.detach(), mask),
            perplexity=float(perplexity),
            usage=float((counts > 0).to(z.dtype).mean()),
        )

    @torch.no_grad()
    def _restart_dead(self, tokens: Tensor) -> None:
        dead = self.usage < DEAD_SHARE / self.n_codes
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        if tokens.shape[0] > 0:
            n_tokens = tokens.shape[0]
            # Distinct tokens while there are enough: duplicated rows would only die again.
            if n_tokens >= n_dead:
                picks = torch.randperm(n_tokens, device=tokens.device)[:n_dead]
            else:
                picks = torch.randint(n_tokens, (n_dead,), device=tokens.device)
            self.codebook[dead] = tokens[picks].to(self.codebook.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(self.codebook.data, src=0)  # every rank takes rank 0's seeds
        self.usage[dead] = 1.0 / self.n_codes

    @torch.no_grad()
    def _track(self, counts: Tensor) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)  # identical usage on every rank → identical restarts
        share = counts / counts.sum().clamp_min(1.0)
        self.usage.mul_(USAGE_DECAY).add_(share.to(self.usage.dtype), alpha=1.0 - USAGE_DECAY)


@dataclass
class PriorOutput:
    offsets: Tensor  # (B, T, V·3) reconstruction, zero on padded frames
    quantized: Quantized


class MotionPrior(nn.Module):
    """Stage 1: offsets (B, T, V·3) ↔ per-frame face-component codes (B, T, C·D)."""

    def __init__(self, config: CodeTalkerConfig) -> None:
        super().__init__()
        self.config = config
        hidden, width = config.hidden, config.code_width
        project = width != hidden
        self.encoder = _PriorCoder(
            config, nn.Linear(config.vertex_dim, hidden), nn.Linear(hidden, width) if project else nn.Identity(), True
        )
        self.quantizer = VectorQuantizer(config.n_codes, config.code_dim, config.n_components)
        motion_out = nn.Linear(hidden, config.vertex_dim)
        nn.init.zeros_(motion_out.weight)
        nn.init.zeros_(motion_out.bias)
        self.decoder = _PriorCoder(config, nn.Linear(width, hidden) if project else nn.Identity(), motion_out, False)

    def encode(self, offsets: Tensor, lengths: Tensor) -> Tensor:
        """Offsets → continuous (pre-quantisation) component features (B, T, C·D)."""
        cfg = self.config
        return _in_windows(self.encoder, offsets * cfg.offset_scale, lengths, cfg.prior_window, cfg.prior_context)

    def decode(self, codes: Tensor, lengths: Tensor) -> Tensor:
        """Quantised features (B, T, C·D) → offsets (B, T, V·3), zero on padded frames."""
        cfg = self.config
        offsets = _in_windows(self.decoder, codes, lengths, cfg.prior_window, cfg.prior_context) / cfg.offset_scale
        return offsets * frame_mask(lengths, codes.shape[1])[..., None].to(offsets.dtype)

    def decode_pieces(self, codes: Tensor, piece: int) -> Iterator[Tensor]:
        """:meth:`decode` of full-length items, (B, ≤ ``piece``, V·3) at a time: the whole output is never held."""
        cfg = self.config
        lengths = torch.full((codes.shape[0],), codes.shape[1], device=codes.device)
        for centre in _window_centres(self.decoder, codes, lengths, cfg.prior_window, cfg.prior_context):
            for start in range(0, centre.shape[1], max(1, piece)):
                yield centre[:, start : start + piece] / cfg.offset_scale

    def forward(self, offsets: Tensor, lengths: Tensor, *, restart: bool = False) -> PriorOutput:
        quantized = self.quantizer(self.encode(offsets, lengths), frame_mask(lengths, offsets.shape[1]), restart=restart)
        return PriorOutput(self.decode(quantized.features, lengths), quantized)


# -- stage 2: speech → codes ------------------------------------------------------------------


class _DecoderLayer(nn.Module):
    """torch's post-norm ``TransformerDecoderLayer`` with a cacheable self-attention and the
    diagonal (alignment-masked) cross-attention computed as ``out(value(memory_t))``."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float, window: int) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.attention_dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.self_out = nn.Linear(d_model, d_model)
        self.cross_value = nn.Linear(d_model, d_model)
        self.cross_out = nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn, d_model))
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def cross(self, memory: Tensor) -> Tensor:
        """Cross-attention output for every frame at once (it depends on the audio only)."""
        return self.cross_out(self.cross_value(memory))

    def forward(self, x: Tensor, cross: Tensor, bias: Tensor, cache: _Cache | None = None) -> tuple[Tensor, _Cache]:
        """x (B, Q, d), ``cross`` for the same frames, bias (H, Q, K) with K = cached + Q keys.

        Returns the output and the keys/values the next query may still see (the last W − 1).
        """
        b, q_len, d = x.shape
        q, k, v = self.qkv(x).view(b, q_len, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.attention_dropout if self.training else 0.0
        )
        x = self.norm1(x + self.dropout(self.self_out(attended.transpose(1, 2).reshape(b, q_len, d))))
        x = self.norm2(x + self.dropout(cross))
        x = self.norm3(x + self.dropout(self.ffn(x)))
        keep = max(k.shape[2] - (self.window - 1), 0)
        return x, (k[:, :, keep:], v[:, :, keep:])


class _FrameStep(nn.Module):
    """One :class:`_DecoderLayer` for one new frame against key/value buffers that it extends:
    what :meth:`_DecoderLayer.forward` computes for one query, written out.

    The CPU ``scaled_dot_product_attention`` copies and rescales every cached key at each step, on
    top of ``torch.cat`` copying the whole cache; both grew with the clip (up to W keys). The scores
    are ``keys @ q`` (a matrix-vector product over the buffer as stored), not ``q @ keysᵀ``, which
    the CPU matmul first repacks. A module of its own (sharing the layer's weights) so that it can
    be compiled with TorchScript: see :func:`_compiled`.
    """

    def __init__(self, layer: _DecoderLayer) -> None:
        super().__init__()
        self.heads = layer.heads
        self.attention_dropout = layer.attention_dropout
        self.qkv, self.self_out, self.ffn, self.dropout = layer.qkv, layer.self_out, layer.ffn, layer.dropout
        self.norm1, self.norm2, self.norm3 = layer.norm1, layer.norm2, layer.norm3
        self.train(layer.training)

    def forward(self, x: Tensor, cross: Tensor, bias: Tensor, keys: Tensor, values: Tensor, slot: int, start: int) -> Tensor:
        """x and cross (B, 1, d); bias (H, 1, K) for the K = slot + 1 − start keys the frame sees;
        keys/values (B, H, capacity, hd), this frame's written at ``slot``."""
        b, d = x.shape[0], x.shape[2]
        head_dim = d // self.heads
        qkv = self.qkv(x).view(b, 1, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        keys[:, :, slot] = qkv[1, :, :, 0]
        values[:, :, slot] = qkv[2, :, :, 0]
        query = qkv[0].transpose(-1, -2) * head_dim**-0.5
        scores = torch.matmul(keys[:, :, start : slot + 1], query).transpose(-1, -2) + bias
        weights = F.dropout(torch.softmax(scores, dim=-1), self.attention_dropout, self.training)
        attended = torch.matmul(weights, values[:, :, start : slot + 1]).transpose(1, 2).reshape(b, 1, d)
        x = self.norm1(x + self.dropout(self.self_out(attended)))
        x = self.norm2(x + self.dropout(cross))
        return self.norm3(x + self.dropout(self.ffn(x)))


def _compiled(module: nn.Module) -> nn.Module:
    """``module`` compiled with TorchScript, or as it is where that fails.

    Why: a paper-vocaset CodeTalker frame runs about 150 small operations, and Python's overhead
    between them was a quarter of the frame (int8, 2 threads: 4.9 ms per frame scripted against
    6.4 eager; identical codes). ``torch.jit.script`` is deprecated from torch 2.13 and needs the
    source files; when it is gone or fails, the eager module computes the same.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(module)
    except Exception:  # noqa: BLE001 - any failure to compile leaves the (identical) eager module
        return module


class _FrameCache:
    """Every layer's keys/values for frame-by-frame decoding, in preallocated buffers.

    Growing a cache with ``torch.cat`` copied (and reallocated) all of it at every step. Here each
    frame's entries are written in place into 2·W slots (fewer for short clips); when the slots run
    out the last W − 1 entries, all a later query can see, move to the front: O(1) amortised.
    """

    def __init__(self, like: Tensor, n_layers: int, heads: int, n_frames: int, window: int) -> None:
        b, _, d = like.shape
        capacity = min(n_frames, 2 * window)
        self.keys = like.new_empty(n_layers, b, heads, capacity, d // heads)
        self.values = torch.empty_like(self.keys)
        self.window = window
        self.end = 0  # slots [0, end) are filled

    def next_slot(self) -> tuple[int, int]:
        """Make room for one more frame: its slot, and the first slot its query sees (≤ W keys)."""
        if self.end == self.keys.shape[3]:
            keep = self.window - 1  # capacity is 2·W here, so source and destination do not overlap
            self.keys[:, :, :, :keep] = self.keys[:, :, :, self.end - keep : self.end]
            self.values[:, :, :, :keep] = self.values[:, :, :, self.end - keep : self.end]
            self.end = keep
        self.end += 1
        return self.end - 1, max(0, self.end - self.window)


#: TorchScript-compiled frame steps per model, with the identity of the modules they were built
#: from (reduced precision replaces layers, so a changed identity means compiling again).
_COMPILED_STEPS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[int, ...], list[nn.Module]]] = weakref.WeakKeyDictionary()


@dataclass
class SpeechOutput:
    """A teacher-forced stage-2 pass: what the losses compare."""

    predicted: Tensor  # (B, T, C·D) continuous features from feat_map
    target_codes: Tensor  # (B, T, C·D) GT quantised features (no gradient)
    offsets: Tensor  # (B, T, V·3) decoded from the quantised prediction


@register_backbone("codetalker")
class CodeTalker(Backbone):
    description: ClassVar[str] = (
        "CodeTalker (CVPR 2023): VQ-VAE prior over face-component codes, then an autoregressive "
        "speech-to-code transformer; code-level key/value cache, batched, no length cap."
    )
    config_class: ClassVar[type[BackboneConfig]] = CodeTalkerConfig
    stages: ClassVar[tuple[str, ...]] = ("prior", "speech")
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {"audio": {"kind": "mel"}},
        "paper-vocaset": {
            "audio": {"kind": "wav2vec2", "preset": "base"},
            "fps": 30.0,
            "n_vertices": 5023,
            "n_styles": 8,
            "hidden": 1024,
            "prior_layers": 6,
            "prior_heads": 8,
            "prior_ffn": 1536,
            "n_components": 16,
            "code_dim": 64,
            "n_codes": 256,
            "d_model": 1024,
            "decoder_layers": 6,
            "decoder_heads": 4,
            "decoder_ffn": 2048,
            "period": 30,
        },
        "paper-biwi": {
            "audio": {"kind": "wav2vec2", "preset": "base"},
            "fps": 25.0,
            "n_vertices": 23370,
            "n_styles": 6,
            "hidden": 1024,
            "prior_layers": 6,
            "prior_heads": 8,
            "prior_ffn": 1536,
            "n_components": 8,
            "code_dim": 128,
            "n_codes": 256,
            "d_model": 1024,
            "decoder_layers": 12,
            "decoder_heads": 4,
            "decoder_ffn": 2048,
            "period": 25,
        },
    }

    config: CodeTalkerConfig

    def __init__(self, config: CodeTalkerConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.prior = MotionPrior(config)
        self.audio_feature_map = nn.Linear(self.feature_dim, d)
        self.code_map = nn.Linear(config.code_width, d)  # previous frame's quantised features → token
        self.style_embedding = nn.Embedding(config.n_styles, d) if config.n_styles > 0 else None
        self.condition_map = self.make_condition_map(d)
        self.input_dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            _DecoderLayer(d, config.decoder_heads, config.decoder_ffn, config.dropout, config.attention_window)
            for _ in range(config.decoder_layers)
        )
        self.feat_map = nn.Linear(d, config.code_width, bias=False)
        nn.init.zeros_(self.feat_map.weight)
        self._stage: str | None = None

    # -- stages ---------------------------------------------------------------------------------
    def enter_stage(self, stage: str) -> None:
        """Freeze or unfreeze the VQ-VAE for ``stage``: frozen and in eval mode while training speech."""
        if stage not in self.stages:
            raise ModelError(f"CodeTalker trains in stages 'prior' then 'speech'; '{stage}' is not one.")
        self._stage = stage
        for p in self.prior.parameters():
            p.requires_grad_(stage == "prior")
        if stage == "speech":
            self.prior.eval()

    def train(self, mode: bool = True) -> CodeTalker:
        super().train(mode)
        if self._stage == "speech":
            self.prior.eval()
        return self

    def trainable_parameters(self, stage: str = "speech") -> Iterable[nn.Parameter]:
        """``prior``: the VQ-VAE only. ``speech``: everything else (the VQ-VAE is frozen)."""
        self.enter_stage(stage)
        if stage == "prior":
            return list(self.prior.parameters())
        prior = {id(p) for p in self.prior.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in prior]

    # -- the interface ----------------------------------------------------------------------------
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

        With ``target`` the decoder is teacher-forced with the target's GT quantised features;
        without it, codes are generated frame by frame (cached) and decoded once at the end.
        """
        if target is not None:
            return self.teacher_forced(features, frame_lengths, target, condition=condition, style=style).offsets
        codes = self.generate_codes(features, frame_lengths, condition=condition, style=style)
        return self.prior.decode(codes, frame_lengths)

    def decode_pieces(self, features: Tensor, condition: Tensor | None, style: Tensor | None, piece: int) -> Iterator[Tensor]:
        """Codes generated frame by frame (small: C·D per frame), then the motion prior's decoder
        over them one window at a time, so the (T, V·3) output is never whole."""
        lengths = torch.full((features.shape[0],), features.shape[1], device=features.device)
        yield from self.prior.decode_pieces(self.generate_codes(features, lengths, condition=condition, style=style), piece)

    def loss(self, batch: Batch, stage: str = "speech", features: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """``prior``: L1 reconstruction + codebook + β·commitment (needs no audio).
        ``speech``: MSE(offsets) + MSE(features, GT quantised features), in network units.

        A stage other than the last one used is entered first (see :meth:`enter_stage`).
        """
        if stage != self._stage:
            self.enter_stage(stage)
        mask = batch.frame_mask
        scale = self.config.offset_scale
        if stage == "prior":
            out = self.prior(batch.offsets, batch.frame_lengths, restart=self.training and self.config.code_restart)
            q = out.quantized
            recon = _masked_l1(out.offsets * scale, batch.offsets * scale, mask)
            total = recon + q.codebook_loss + self.config.beta * q.commitment_loss
            parts = {
                "recon_l1": float(recon.detach()),
                "codebook": float(q.codebook_loss.detach()),
                "commitment": float(q.commitment_loss.detach()),
                "perplexity": q.perplexity,
                "code_usage": q.usage,
            }
        else:
            if features is None:
                features = self.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
            out = self.teacher_forced(
                features, batch.frame_lengths, batch.offsets, condition=batch.condition, style=batch.style
            )
            motion = masked_mse(out.offsets * scale, batch.offsets * scale, mask)
            feature = masked_mse(out.predicted, out.target_codes, mask)
            total = self.config.motion_weight * motion + self.config.feature_weight * feature
            parts = {"motion_mse": float(motion.detach()), "feature_mse": float(feature.detach())}
        parts["loss"] = float(total.detach())
        return total, parts

    # -- stage 2 ------------------------------------------------------------------------------------
    def teacher_forced(
        self,
        features: Tensor,
        frame_lengths: Tensor,
        target: Tensor,
        *,
        condition: Tensor | None = None,
        style: Tensor | None = None,
    ) -> SpeechOutput:
        """One parallel pass whose frame-t token reads the GT quantised features of frame t − 1."""
        batch, n_frames, _ = features.shape
        if target.shape != (batch, n_frames, self.config.vertex_dim):
            raise ModelError(
                f"Target offsets have shape {tuple(target.shape)}; expected ({batch}, {n_frames}, {self.config.vertex_dim})."
            )
        with torch.no_grad():
            _, target_codes = self.prior.quantizer.nearest(self.prior.encode(target.to(features.dtype), frame_lengths))
        predicted = self.predict_features(features, target_codes, condition=condition, style=style)
        codes = self.prior.quantizer.straight_through(predicted)
        return SpeechOutput(predicted, target_codes, self.prior.decode(codes, frame_lengths))

    def predict_features(
        self, features: Tensor, previous: Tensor, *, condition: Tensor | None = None, style: Tensor | None = None
    ) -> Tensor:
        """Continuous component features (B, T, C·D) for every frame, frame t reading ``previous[t − 1]``."""
        n_frames = features.shape[1]
        inputs, cross = self._frame_terms(features, condition, style)
        x = self.input_dropout(inputs + F.pad(self.code_map(previous[:, :-1]), (0, 0, 1, 0)))
        positions = torch.arange(n_frames, device=features.device)
        cfg = self.config
        bias = biased_causal_bias(positions, positions, cfg.decoder_heads, cfg.period, cfg.attention_window)
        for layer, layer_cross in zip(self.layers, cross):
            x, _ = layer(x, layer_cross, bias)
        return self.feat_map(x)

    @torch.no_grad()
    def generate_codes(
        self, features: Tensor, frame_lengths: Tensor, *, condition: Tensor | None = None, style: Tensor | None = None
    ) -> Tensor:
        """Quantised component features (B, T, C·D), one frame at a time with a key/value cache.

        Each step costs O(attention_window), so a clip costs time linear in its length.
        """
        n_frames = features.shape[1]
        cfg = self.config
        inputs, cross = self._frame_terms(features, condition, style)
        span = min(cfg.attention_window, n_frames)
        # Bias of the newest query against keys at distances span−1 … 0; a step uses its tail.
        bias_row = biased_causal_bias(
            torch.tensor([span - 1], device=features.device),
            torch.arange(span, device=features.device),
            cfg.decoder_heads,
            cfg.period,
            cfg.attention_window,
        )
        cache = _FrameCache(inputs, len(self.layers), cfg.decoder_heads, n_frames, cfg.attention_window)
        steps = list(zip(self._frame_steps(features.device), cross, cache.keys, cache.values))
        out = inputs.new_empty(inputs.shape[0], n_frames, cfg.code_width)
        quantizer = self.prior.quantizer
        code_norms = quantizer.code_norms()
        with frame_loop_threads(features.device, cfg.d_model):
            for t in range(n_frames):
                token = inputs[:, t : t + 1]
                if t > 0:
                    token = token + self.code_map(out[:, t - 1 : t])
                x = self.input_dropout(token)
                bias = bias_row[:, :, span - min(t + 1, span) :]
                slot, start = cache.next_slot()
                for step, layer_cross, keys, values in steps:
                    x = step(x, layer_cross[:, t : t + 1], bias, keys, values, slot, start)
                out[:, t : t + 1] = quantizer.nearest(self.feat_map(x), code_norms)[1]
        return out * frame_mask(frame_lengths, n_frames)[..., None].to(out.dtype)

    def _frame_steps(self, device: torch.device) -> list[nn.Module]:
        """The decoder layers as frame steps: TorchScript-compiled (and kept) for CPU inference,
        eager while training (dropout) or on other devices."""
        if self.training or device.type != "cpu":
            return [_FrameStep(layer) for layer in self.layers]
        built_from = tuple(id(m) for m in self.layers.modules()) + tuple(id(p) for p in self.layers.parameters())
        known = _COMPILED_STEPS.get(self)
        if known is None or known[0] != built_from:
            known = (built_from, [_compiled(_FrameStep(layer)) for layer in self.layers])
            _COMPILED_STEPS[self] = known
        return known[1]

    def _frame_terms(
        self, features: Tensor, condition: Tensor | None, style: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        """The part of every input token that does not depend on motion (style + PPE + condition),
        and each layer's cross-attention output."""
        batch, n_frames, _ = features.shape
        memory = self.audio_feature_map(features)
        cross = [layer.cross(memory) for layer in self.layers]
        pe = periodic_positional_encoding(torch.arange(n_frames, device=features.device), self.config.d_model, self.config.period)
        inputs = self._style_vectors(batch, style, memory)[:, None, :] + pe.to(memory.dtype)[None]
        if condition is not None:
            inputs = inputs + self.mapped_condition(condition, batch, n_frames, memory.dtype)
        return inputs, cross

    def _style_vectors(self, batch: int, style: Tensor | None, like: Tensor) -> Tensor:
        """(B, d) style embeddings; the mean over training subjects when ``style`` is None."""
        d = self.config.d_model
        style = self.checked_style(style, batch)
        if self.style_embedding is None:
            return like.new_zeros(batch, d)
        if style is None:
            return self.style_embedding.weight.mean(dim=0).expand(batch, d)
        return self.style_embedding(style)
