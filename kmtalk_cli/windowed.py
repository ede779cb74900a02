"""Key motions and completion in windows: linear time and bounded memory on long audio.

Whole-clip inference of a key-motion model held several (T, V·3) arrays at once (the key
motions scattered on the timeline, their interpolation, the backbone's output) and ran the key
decoder's attention over every key of the clip. Here:

* **Key motions** are decoded in windows of :data:`KEY_WINDOW` keys with :data:`KEY_CONTEXT`
  keys of context each side (the decoder attends across keys, so a key sees its neighbours as
  before; absolute frame positions are kept, so a window is the whole clip when it fits). The
  result is the decoder's last hidden state per key — a code of ``decoder_dim`` numbers — and the
  linear map to offsets (:class:`~kmtalk_cli.keymotions.KeyMotions`).
* **Completion** walks the frames in windows. Each frame's previous and next key come from a
  search over the key indices, the conditioning sequence is built from the keys' projections
  (projection and interpolation are both linear, so they commute), and the interpolated key
  motions (the residual's base) are expanded only for the window's own frames. A backbone whose
  output depends on a bounded neighbourhood (:meth:`~kmtalk_cli.backbones.base.Backbone.exact_context`,
  e.g. SelfTalk's banded attention) is decoded per window with that much context each side,
  which gives exactly the whole-clip result; an autoregressive one is decoded in one pass and
  hands its output over in pieces (:meth:`~kmtalk_cli.backbones.base.Backbone.decode_pieces`:
  FaceFormer maps its small per-frame states to offsets a piece at a time), each with its base.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .keymotions import KeyFrames, KeyMotions

#: Key tokens decoded together, and keys of context each side of them.
KEY_WINDOW = 384
KEY_CONTEXT = 64
#: Output frames completed per window (20 s at 30 fps).
FRAME_WINDOW = 600
#: Distances to the neighbouring keys are clipped here (frames), as in training.
MAX_DISTANCE = 60


@dataclass(frozen=True)
class Neighbours:
    """For frames ``lo … hi-1``: the previous and next key (indices into the keys), the
    interpolation weight of the next one, the distances in frames, and which frames are keys."""

    prev: np.ndarray  # (n,) int64, -1 with no keys at all
    next: np.ndarray  # (n,) int64
    weight: np.ndarray  # (n,) float32
    distances: np.ndarray  # (n, 2) float32, clipped to MAX_DISTANCE
    is_key: np.ndarray  # (n,) bool


def neighbours(indices: np.ndarray, lo: int, hi: int) -> Neighbours:
    """What linear interpolation between key frames needs for frames ``lo … hi-1``.

    Before the first and after the last key the nearest key is held; a frame with no key on a
    side is :data:`MAX_DISTANCE` frames from it.
    """
    t = np.arange(lo, hi, dtype=np.int64)
    k = len(indices)
    after = np.searchsorted(indices, t, side="right")  # keys at or before t: after - 1
    at_or_after = np.searchsorted(indices, t, side="left")
    has_prev, has_next = after > 0, at_or_after < k
    prev = np.where(has_prev, after - 1, np.where(has_next, at_or_after, -1))
    nxt = np.where(has_next, at_or_after, prev)
    if k == 0:
        weight = np.zeros(len(t), dtype=np.float32)
        d_prev = d_next = np.full(len(t), MAX_DISTANCE, dtype=np.float32)
        return Neighbours(prev, nxt, weight, np.stack([d_prev, d_next], -1), np.zeros(len(t), dtype=bool))
    f_prev, f_next = indices[np.clip(prev, 0, None)], indices[np.clip(nxt, 0, None)]
    span = np.maximum(f_next - f_prev, 1)
    weight = np.clip((t - f_prev) / span, 0.0, 1.0).astype(np.float32)
    d_prev = np.where(has_prev, t - np.where(has_prev, f_prev, 0), MAX_DISTANCE)
    d_next = np.where(has_next, np.where(has_next, f_next, 0) - t, MAX_DISTANCE)
    distances = np.minimum(np.stack([d_prev, d_next], -1), MAX_DISTANCE).astype(np.float32)
    return Neighbours(prev, nxt, weight, distances, (d_prev == 0) & has_prev)


def interpolate_rows(rows: np.ndarray | Tensor, near: Neighbours) -> Tensor:
    """Rows per key (K, D) → rows per frame (n, D), linearly between each frame's keys; zeros with no keys."""
    rows = torch.as_tensor(rows)
    if len(rows) == 0:
        return rows.new_zeros(len(near.prev), rows.shape[-1])
    w = torch.from_numpy(near.weight)[:, None].to(rows.dtype)
    return rows[torch.from_numpy(near.prev)] * (1 - w) + rows[torch.from_numpy(near.next)] * w


@torch.no_grad()
def decode_key_motions(model: Any, features: Tensor, frames: KeyFrames, style: Tensor | None, prior: Tensor | None = None) -> KeyMotions:
    """Key motions of one clip (``features`` (1, T, F)) as codes and the decoder's output map, in
    windows of keys; with a rig prior, ``prior`` (K, P) holds the rig's parameters at the keys,
    which join the codes (the prior map joins the basis)."""
    from .keymotion_model import key_features

    decoder = model.key_decoder
    n = len(frames.indices)
    index = torch.from_numpy(frames.indices).to(features.device)
    context = torch.from_numpy(frames.context_ids()).to(features.device)
    codes = features.new_empty(n, decoder.out.in_features)
    for start in range(0, n, KEY_WINDOW):
        stop = min(n, start + KEY_WINDOW)
        lo, hi = max(0, start - KEY_CONTEXT), min(n, stop + KEY_CONTEXT)
        at = index[lo:hi][None]
        valid = torch.ones_like(at, dtype=torch.bool)
        hidden = decoder.hidden(key_features(features, at, decoder.config.key_window), at, context[lo:hi][None], valid, style)
        codes[start:stop] = hidden[0, start - lo : stop - lo]
    scale = decoder.config.offset_scale
    basis = (decoder.out.weight.detach().T / scale).contiguous()
    bias = decoder.out.bias.detach() / scale
    if decoder.prior is not None:
        codes = torch.cat([codes, prior.to(codes)], dim=1)
        basis = torch.cat([basis, decoder.prior.weight.detach().T], dim=0).contiguous()
    return KeyMotions(frames, codes.cpu().numpy(), basis.cpu().numpy(), bias.cpu().numpy())


def frame_windows(n_frames: int, window: int, context: int | None) -> Iterator[tuple[int, int, int, int]]:
    """``(start, stop, lo, hi)``: output frames ``start … stop-1`` decoded from input frames
    ``lo … hi-1``; one window over everything when ``context`` is None."""
    if context is None:
        yield 0, n_frames, 0, n_frames
        return
    for start in range(0, n_frames, max(1, window)):
        stop = min(n_frames, start + window)
        yield start, stop, max(0, start - context), min(n_frames, stop + context)


@torch.no_grad()
def complete_in_windows(
    model: Any, features: Tensor, keys: KeyMotions, style: Tensor | None, *, window: int = FRAME_WINDOW
) -> Iterator[Tensor]:
    """Completed offsets of one clip, (≤ ``window``, V·3) at a time, in frame order."""
    n_frames = features.shape[1]
    backbone, embedding, config = model.backbone, model.embedding, model.km_config
    device = features.device
    codes = torch.from_numpy(np.asarray(keys.codes, dtype=np.float32)).to(device)
    # project(offsets · scale) per key, without its bias: offsets are codes @ basis + bias.
    weight = embedding.project.weight.detach()
    if keys.basis is not None:
        basis = torch.from_numpy(keys.basis).to(device)
        bias = torch.from_numpy(keys.bias).to(device)
        projected = (codes @ (basis @ weight.T) + bias @ weight.T) * embedding.scale
    else:
        projected = codes @ weight.T * embedding.scale
    guided = features if config.audio_guidance else torch.zeros_like(features)
    context = backbone.exact_context()
    for start, stop, lo, hi in frame_windows(n_frames, window, context):
        near = neighbours(keys.frames.indices, lo, hi)
        condition = (
            interpolate_rows(projected, near)
            + embedding.project.bias
            + embedding.kind(torch.from_numpy(near.is_key).long().to(device))
            + embedding.distance(torch.from_numpy(near.distances).to(device) / 30.0)
        )
        if context is not None:
            residuals = iter([backbone.decode_window(guided[:, lo:hi], condition[None], style, slice(start - lo, stop - lo))])
        else:  # decoded in one pass, handed over in pieces (the backbone may never hold the whole output)
            residuals = backbone.decode_pieces(guided, condition[None], style, window)
        a = start
        for residual in residuals:
            piece = residual[0]
            b = a + len(piece)
            if config.residual and len(keys.frames.indices):
                piece = _add_base(piece, keys, codes, near, a - lo, b - lo)
            yield piece
            a = b


def _add_base(piece: Tensor, keys: KeyMotions, codes: Tensor, near: Neighbours, a: int, b: int) -> Tensor:
    """``piece`` plus the key motions interpolated over frames ``a … b-1`` of ``near``, with one
    pass over the (large) output."""
    part = Neighbours(near.prev[a:b], near.next[a:b], near.weight[a:b], near.distances[a:b], near.is_key[a:b])
    rows = interpolate_rows(codes, part)
    if keys.basis is None:
        return piece + rows
    out = torch.addmm(piece, rows, torch.from_numpy(keys.basis).to(rows.device))
    return out.add_(torch.from_numpy(keys.bias).to(rows.device))
