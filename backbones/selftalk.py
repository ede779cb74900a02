"""SelfTalk-style backbone: a one-shot facial animator kept honest by a lip reader.

Peng et al., "SelfTalk: A Self-Supervised Commutative Training Diagram to Comprehend 3D Talking
Faces", ACM MM 2023. Reference code: psyai-net/SelfTalk_release @ f9b5e0a (CC BY-NC 4.0). Nothing
here is copied from it; it re-implements the behaviour the paper describes.

**Faithful.** Frame features → ``Linear`` to ``d_model`` → a non-autoregressive
``nn.TransformerDecoder`` (1 layer, 4 heads, FFN 2·d, post-norm, ReLU, dropout 0.1) called with
the same sequence as target and memory, ``decoder(x, x)``: no causal mask, no positional
encoding, no speaker style → zero-initialised ``Linear(d, V·3)`` → offsets. Training loss
``w_vertex·MSE(offsets) + w_velocity·MSE(Δoffsets) + CTC(lip reading of the predicted lips)``;
the lip reader is ``Linear`` over the flattened lip-vertex offsets → transformer → CTC head, and
is used only in training (:meth:`SelfTalk.predict` never runs it, so it needs no alignment).
The paper presets build the paper's reader (``nn.Transformer`` layout, d 1024, 6 + 6 layers).

**Departures** (each decided, for the reason given):

* *Audio*: the shared encoders. The default is the CPU log-mel encoder; the paper presets build
  wav2vec2-large, resampled to the motion fps before its transformer. The original's BIWI
  pair concatenation (50 Hz → 2 × 1024 at 25 fps) is not reproduced. There is no frozen second
  wav2vec2 ("speech recognizer").
* *Local attention*: the animator attends within ±``attention_window`` frames (a band mask, in
  training and prediction alike). Long clips are decoded in chunks of ``chunk_frames`` with
  ``attention_window · n_layers`` frames of context each side, which gives exactly the banded
  result in linear time and bounded memory. ``attention_window = 0`` restores the paper's full,
  quadratic attention.
* *Batches*: padding is masked in attention and in the losses (the original supports batch 1 only).
* *Units and weights*: the output layer predicts offsets in ``1/offset_scale`` metres
  (centimetres by default) and the losses are measured in those units; lip offsets enter the
  reader in the same units, so its inputs are O(1). ``w_vertex = w_velocity = 1`` keeps the
  original's 1 : 1 ratio (1000 : 1000 in BIWI units). The vertex MSE averages over every
  coordinate while the CTC is per item, so per lip coordinate the CTC gradient is ~10⁴ times
  the MSE's (measured on a synthetic corpus); ``w_ctc = 1e-4`` makes the two the same order,
  and 1e-2 visibly slowed the vertex fit. ``w_ctc_gt`` only scales the reader's own gradient
  (Adam undoes it), and 1e-3 keeps it small under global gradient clipping.
* *CTC targets*: no ASR teacher can be downloaded. The targets are the alignment's phones
  (``SIL`` dropped; class ``PHONES.index + 1``, blank 0, so 40 classes; only phones whose
  centre falls inside the item's frames), not greedy ASR characters from a 33-symbol vocabulary. The original's MSE
  between lip features and ASR hidden states has no counterpart and is absent.
* *Reader training*: the reader learns from CTC on the **ground-truth** lips (``w_ctc_gt``). The
  CTC on the **predicted** lips (``w_ctc``) reaches only the animator: the reader's weights are
  detached in that pass, so the reader stays a judge of real lip motion rather than learning to
  read the animator's mistakes. In the original the reader learns only through predicted lips.
* *Reader rate and shape*: it runs at the motion fps (there is no 50 Hz ASR sequence to match),
  with a ±``lip_attention_window`` band and, in the default preset, a temporal convolution
  (``lip_conv_kernel``) before it, which tells it frame order (the original has no positional
  information at all). The default reader is a small encoder only.
* *CTC robustness*: items without an alignment or without phones skip the CTC terms; so do
  items with more phones than frames can hold (CTC needs ``T ≥ phones + repeats``). Skipped
  items are counted in the logging dict instead of being zeroed silently (``zero_infinity``).
* *Style*: ``style`` is accepted and ignored, as in the original (no speaker conditioning);
  ``style=None`` and every style index give the same output.
* *Conditioning*: the key-motion ``condition_map(condition)`` is added to ``x`` before
  ``decoder(x, x)``, so it reaches target and memory alike. When the prediction is added to a
  ``batch.base`` (the interpolated key motions), the lip reader reads base + prediction: the
  remainder alone is not a mouth anyone could read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..alignment.phones import PHONES, SIL, normalize_arpabet
from ..errors import AlignmentError, ModelError
from ..metrics import edit_distance
from . import register_backbone
from .base import Backbone, BackboneConfig, Batch, frame_mask, masked_mse, masked_velocity_mse

__all__ = ["N_CLASSES", "LipReader", "SelfTalk", "SelfTalkConfig", "ctc_targets", "greedy_phones", "phone_error_rate"]

#: CTC classes: blank (0) plus the 39 ARPAbet phones.
N_CLASSES = len(PHONES) + 1
_PHONE_CLASS = {phone: i + 1 for i, phone in enumerate(PHONES)}


@dataclass(frozen=True)
class SelfTalkConfig(BackboneConfig):
    """Sizes and loss weights. Defaults are the CPU ``default`` preset."""

    d_model: int = 256  # animator width (paper: 512 VOCASET, 1024 BIWI); its FFN is 2·d_model
    n_heads: int = 4
    n_layers: int = 1
    dropout: float = 0.1
    attention_window: int = 150  # ± frames the animator sees; 0 = full attention (the paper's)
    chunk_frames: int = 600  # query frames per chunk when decoding long clips
    offset_scale: float = 100.0  # the model predicts (and the losses measure) offsets × this (cm)
    lip_dim: int = 128
    lip_heads: int = 4
    lip_ff: int = 256
    lip_encoder_layers: int = 2
    lip_decoder_layers: int = 0  # > 0 gives the paper's nn.Transformer(lip, lip) layout
    lip_conv_kernel: int = 5  # temporal conv before the reader's attention; ≤ 1 = none (paper)
    lip_attention_window: int = 30  # ± frames the reader sees; 0 = full attention (paper)
    lip_dropout: float = 0.1
    w_vertex: float = 1.0
    w_velocity: float = 1.0
    w_ctc: float = 1e-4  # CTC of the reader on predicted lips (trains the animator only)
    w_ctc_gt: float = 1e-3  # CTC of the reader on ground-truth lips (trains the reader only)


def attention_block_mask(lengths: Tensor, total: int, window: int, n_heads: int) -> Tensor:
    """(B·n_heads, total, total) bool, True where attention is blocked.

    Keys past an item's length are blocked, and keys further than ``window`` frames away when
    ``window > 0``. A padded query may see itself, so no row is fully blocked (which would give
    NaNs that leak into the gradients even though those rows are never used).
    """
    pos = torch.arange(total, device=lengths.device)
    valid = pos[None, :] < lengths[:, None]  # (B, T)
    allowed = valid[:, None, :].expand(-1, total, -1)
    if window > 0:
        allowed = allowed & ((pos[:, None] - pos[None, :]).abs() <= window)[None]
    allowed = allowed | (torch.eye(total, dtype=torch.bool, device=lengths.device)[None] & ~valid[:, :, None])
    return (~allowed).repeat_interleave(n_heads, dim=0)


class LipReader(nn.Module):
    """Lip-vertex offsets (B, T, L·3) → per-frame phone logits (B, T, N_CLASSES)."""

    def __init__(self, config: SelfTalkConfig) -> None:
        super().__init__()
        d = config.lip_dim
        self.heads = config.lip_heads
        self.window = config.lip_attention_window
        self.inp = nn.Linear(len(config.lip_vertices) * 3, d)
        kernel = config.lip_conv_kernel
        self.conv = nn.Conv1d(d, d, kernel, padding=kernel // 2) if kernel > 1 else None

        def encoder_layer() -> nn.TransformerEncoderLayer:
            return nn.TransformerEncoderLayer(d, config.lip_heads, config.lip_ff, config.lip_dropout, batch_first=True)

        def decoder_layer() -> nn.TransformerDecoderLayer:
            return nn.TransformerDecoderLayer(d, config.lip_heads, config.lip_ff, config.lip_dropout, batch_first=True)

        self.encoder = nn.TransformerEncoder(
            encoder_layer(), config.lip_encoder_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.decoder = (
            nn.TransformerDecoder(decoder_layer(), config.lip_decoder_layers, norm=nn.LayerNorm(d))
            if config.lip_decoder_layers > 0
            else None
        )
        self.head = nn.Linear(d, N_CLASSES)

    def forward(self, lips: Tensor, lengths: Tensor) -> Tensor:
        total = lips.shape[1]
        valid = frame_mask(lengths, total)[..., None].to(lips.dtype)
        x = self.inp(lips) * valid
        if self.conv is not None:
            # Zeroed padding keeps an item's frames identical in a batch and alone.
            x = (x + self.conv(x.transpose(1, 2)).transpose(1, 2)) * valid
        mask = attention_block_mask(lengths, total, self.window, self.heads)
        memory = self.encoder(x, mask=mask)
        # nn.Transformer(lip, lip): the decoder reads the lips again with the encoding as memory.
        hidden = memory if self.decoder is None else self.decoder(x, memory, tgt_mask=mask, memory_mask=mask)
        return self.head(hidden)


def ctc_targets(alignment: Any, n_frames: int, fps: float) -> list[int]:
    """CTC classes of an alignment's phones inside the first ``n_frames`` frames; SIL is dropped.

    Class ``PHONES.index(label) + 1`` (0 is the blank). A phone counts when its centre falls
    before ``n_frames / fps`` seconds, so a clip cut from longer audio keeps only its own phones.
    ``None`` (no alignment) gives no targets.
    """
    if alignment is None:
        return []
    limit = n_frames / fps
    classes = []
    for segment in alignment.phones:
        label = normalize_arpabet(segment.label)
        if label is None:
            raise AlignmentError(f"Alignment phone label {segment.label!r} is not an ARPAbet phone or silence.")
        if label != SIL and (segment.start + segment.end) / 2 < limit:
            classes.append(_PHONE_CLASS[label])
    return classes


def _ctc_fits(targets: Sequence[int], n_frames: int) -> bool:
    """CTC needs a frame per label plus a blank between equal neighbours."""
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    return len(targets) + repeats <= n_frames


def greedy_phones(logits: Tensor, n_frames: int) -> list[int]:
    """Best-path CTC decoding of one item's (T, C) logits: collapse repeats, drop blanks."""
    best = logits[:n_frames].argmax(-1).tolist()
    return [c for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]


def phone_error_rate(logits: Tensor, lengths: Tensor, targets: Sequence[Sequence[int]]) -> float:
    """Edits between greedy decodes and targets over the total target length (batch-pooled PER)."""
    edits = sum(edit_distance(greedy_phones(lg, int(n)), t) for lg, n, t in zip(logits, lengths, targets))
    return edits / max(1, sum(len(t) for t in targets))


@register_backbone("selftalk")
class SelfTalk(Backbone):
    """Non-autoregressive transformer animator with a lip-reading (CTC) consistency loss."""

    description: ClassVar[str] = "SelfTalk: one-shot transformer decoder + lip-reading CTC consistency (ACM MM'23)"
    config_class: ClassVar[type[BackboneConfig]] = SelfTalkConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "default": {"audio": {"kind": "mel"}},
        "paper-vocaset": {
            "fps": 30.0,
            "n_vertices": 5023,
            "audio": {"kind": "wav2vec2", "preset": "large"},
            "d_model": 512,
            "lip_dim": 1024,
            "lip_heads": 8,
            "lip_ff": 2048,
            "lip_encoder_layers": 6,
            "lip_decoder_layers": 6,
            "lip_conv_kernel": 0,
            "lip_attention_window": 0,
        },
        "paper-biwi": {
            "fps": 25.0,
            "n_vertices": 23370,
            "audio": {"kind": "wav2vec2", "preset": "large"},
            "d_model": 1024,
            "lip_dim": 1024,
            "lip_heads": 8,
            "lip_ff": 2048,
            "lip_encoder_layers": 6,
            "lip_decoder_layers": 6,
            "lip_conv_kernel": 0,
            "lip_attention_window": 0,
        },
    }

    def __init__(self, config: SelfTalkConfig) -> None:
        super().__init__(config)
        _check(config)
        d = config.d_model
        self.feature_map = nn.Linear(self.feature_dim, d)
        self.condition_map = self.make_condition_map(d)
        layer = nn.TransformerDecoderLayer(d, config.n_heads, 2 * d, config.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.n_layers)
        self.vertex_map = nn.Linear(d, config.vertex_dim)
        nn.init.zeros_(self.vertex_map.weight)
        nn.init.zeros_(self.vertex_map.bias)
        self.lip_reader = LipReader(config) if config.lip_vertices else None
        lips = torch.tensor(config.lip_vertices, dtype=torch.long)
        # Columns of the flattened (V·3) offsets that hold the lip vertices' x, y, z.
        self.register_buffer("lip_columns", (lips[:, None] * 3 + torch.arange(3)).reshape(-1), persistent=False)

    # -- the animator -------------------------------------------------------------------------
    def _tokens(self, features: Tensor, condition: Tensor | None) -> Tensor:
        x = self.feature_map(features)
        if condition is not None:
            x = x + self.mapped_condition(condition, x.shape[0], x.shape[1], x.dtype)
        return x

    def _animate(self, x: Tensor, lengths: Tensor, unit: float = 1.0) -> Tensor:
        """Tokens (B, T, d) → offsets (B, T, V·3) in model units × ``unit``, chunked when the window allows.

        Scaling inside the loop saves a copy of the (large) output on long clips.
        """
        total = x.shape[1]
        window = self.config.attention_window
        step = max(1, self.config.chunk_frames) if window > 0 else max(1, total)
        reach = window * self.config.n_layers  # the input frames one output frame depends on
        out = x.new_zeros(x.shape[0], total, self.config.vertex_dim)
        for start in range(0, total, step):
            stop = min(total, start + step)
            lo, hi = max(0, start - reach), min(total, stop + reach)
            span_lengths = (lengths - lo).clamp(0, hi - lo)
            mask = attention_block_mask(span_lengths, hi - lo, window, self.config.n_heads)
            span = x[:, lo:hi]
            hidden = self.decoder(span, span, tgt_mask=mask, memory_mask=mask)[:, start - lo : stop - lo]
            valid = frame_mask(span_lengths, hi - lo)[:, start - lo : stop - lo, None].to(x.dtype)
            out[:, start:stop] = self.vertex_map(hidden) * (valid * unit)
        return out

    def decode(
        self,
        features: Tensor,
        frame_lengths: Tensor,
        *,
        condition: Tensor | None = None,
        style: Tensor | None = None,
        target: Tensor | None = None,
    ) -> Tensor:
        """Features → offsets in metres, in one shot. ``style`` and ``target`` are ignored:
        SelfTalk has no speaker conditioning and nothing to teacher-force."""
        return self._animate(self._tokens(features, condition), frame_lengths, 1.0 / self.config.offset_scale)

    def exact_context(self) -> int | None:
        """Banded attention: an output frame reads ``attention_window`` frames each side per layer."""
        return self.config.attention_window * self.config.n_layers if self.config.attention_window > 0 else None

    def decode_window(self, features: Tensor, condition: Tensor | None, style: Tensor | None, keep: slice) -> Tensor:
        """The animator over the whole span, the (large) vertex map only on the frames kept."""
        x = self._tokens(features, condition)
        mask = self._window_mask(x)
        hidden = self.decoder(x, x, tgt_mask=mask, memory_mask=mask)[:, keep]
        scale = self.config.offset_scale  # folded into the map: no second pass over the (large) output
        return F.linear(hidden, self.vertex_map.weight / scale, self.vertex_map.bias / scale)

    def _window_mask(self, x: Tensor) -> Tensor:
        """:func:`attention_block_mask` of a full span as an additive float mask (−inf where
        blocked), kept for the last few span lengths: the windows of a long clip share one, and
        the attention takes a float mask three times faster than a boolean one (same result to
        float rounding)."""
        key = (x.shape[0], x.shape[1], x.dtype, x.device)
        cache = self.__dict__.setdefault("_window_masks", {})
        mask = cache.pop(key, None)
        if mask is None:
            lengths = torch.full((x.shape[0],), x.shape[1], device=x.device)
            blocked = attention_block_mask(lengths, x.shape[1], self.config.attention_window, self.config.n_heads)
            mask = torch.zeros(blocked.shape, dtype=x.dtype, device=x.device).masked_fill_(blocked, float("-inf"))
        cache[key] = mask  # most recent last
        while len(cache) > 4:
            cache.pop(next(iter(cache)))
        return mask

    # -- training -----------------------------------------------------------------------------
    def loss(self, batch: Batch, stage: str = "main", features: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """Weighted sum of the vertex and velocity MSEs (in model units, cm² by default) and, with
        lip vertices, the two CTC terms.

        Parts: ``vertex``, ``velocity``, ``loss``; with a lip reader also ``ctc_items`` (items
        with usable phones) and ``ctc_skipped`` (items with phones that do not fit their
        frames), and when ``ctc_items > 0`` ``ctc``/``per`` (CTC and phone error rate of the
        reader on the predicted lips) and ``ctc_gt``/``per_gt`` (the same on the true lips).
        """
        if stage not in self.stages:
            raise ModelError(f"SelfTalk has no training stage '{stage}'; it has: {', '.join(self.stages)}.")
        if features is None:
            features = self.encode_audio(batch.audio, batch.audio_lengths, batch.frame_lengths)
        config = self.config
        prediction = self._animate(self._tokens(features, batch.condition), batch.frame_lengths)
        total_frames = prediction.shape[1]
        target = batch.offsets[:, :total_frames] * config.offset_scale
        mask = batch.frame_mask[:, :total_frames]
        vertex = masked_mse(prediction, target, mask)
        vel = masked_velocity_mse(prediction, target, mask)
        total = config.w_vertex * vertex + config.w_velocity * vel
        parts = {"vertex": vertex.item(), "velocity": vel.item()}
        if self.lip_reader is not None:
            whole = 0.0 if batch.base is None else batch.base[:, :total_frames] * config.offset_scale  # read whole lips
            lip_loss, lip_parts = self._lip_consistency(self.lip_reader, prediction + whole, target + whole, batch)
            total = total + lip_loss
            parts.update(lip_parts)
        parts["loss"] = total.item()
        return total, parts

    def _lip_consistency(
        self, reader: LipReader, prediction: Tensor, target: Tensor, batch: Batch
    ) -> tuple[Tensor, dict[str, float]]:
        """CTC of the reader on GT lips (trains it) and on predicted lips (trains the animator)."""
        lengths = batch.frame_lengths.tolist()
        alignments = batch.alignments or [None] * len(lengths)
        targets = [ctc_targets(a, n, self.config.fps) for a, n in zip(alignments, lengths)]
        keep = [i for i, t in enumerate(targets) if t and _ctc_fits(t, lengths[i])]
        parts = {"ctc_items": float(len(keep)), "ctc_skipped": float(sum(1 for t in targets if t) - len(keep))}
        if not keep:
            return prediction.new_zeros(()), parts
        index = torch.tensor(keep, device=prediction.device)
        kept_lengths = batch.frame_lengths[index]
        n = int(kept_lengths.max())
        kept_targets = [targets[i] for i in keep]
        gt_logits = reader(target[index, :n][..., self.lip_columns], kept_lengths)
        frozen = {name: p.detach() for name, p in reader.named_parameters()}
        pred_logits = functional_call(reader, frozen, (prediction[index, :n][..., self.lip_columns], kept_lengths))
        ctc_gt = self._ctc(gt_logits, kept_lengths, kept_targets)
        ctc = self._ctc(pred_logits, kept_lengths, kept_targets)
        with torch.no_grad():
            parts.update(
                ctc=ctc.item(),
                ctc_gt=ctc_gt.item(),
                per=phone_error_rate(pred_logits, kept_lengths, kept_targets),
                per_gt=phone_error_rate(gt_logits, kept_lengths, kept_targets),
            )
        return self.config.w_ctc * ctc + self.config.w_ctc_gt * ctc_gt, parts

    @staticmethod
    def _ctc(logits: Tensor, lengths: Tensor, targets: list[list[int]]) -> Tensor:
        log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, C)
        flat = torch.tensor([c for t in targets for c in t], dtype=torch.long, device=logits.device)
        target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long, device=logits.device)
        return F.ctc_loss(log_probs, flat, lengths, target_lengths, blank=0, reduction="mean", zero_infinity=True)


def _check(config: SelfTalkConfig) -> None:
    """One clear sentence for sizes that cannot build."""
    if config.d_model % config.n_heads:
        raise ModelError(f"SelfTalk d_model ({config.d_model}) must be divisible by n_heads ({config.n_heads}).")
    if config.n_layers < 1 or config.attention_window < 0 or config.offset_scale <= 0:
        raise ModelError("SelfTalk needs n_layers ≥ 1, attention_window ≥ 0 and offset_scale > 0.")
    bad = [i for i in config.lip_vertices if not 0 <= i < config.n_vertices]
    if bad:
        raise ModelError(f"SelfTalk lip vertex {bad[0]} is outside the {config.n_vertices}-vertex mesh.")
    if config.lip_vertices and (config.lip_dim % config.lip_heads or config.lip_encoder_layers < 1):
        raise ModelError("SelfTalk's lip reader needs lip_dim divisible by lip_heads and at least one encoder layer.")
    if config.lip_conv_kernel > 1 and config.lip_conv_kernel % 2 == 0:
        raise ModelError(f"SelfTalk lip_conv_kernel must be odd so frames stay aligned, got {config.lip_conv_kernel}.")
