"""FaceFormer's temporal biases, shared by FaceFormer and CodeTalker's stage 2.

* Periodic positional encoding (PPE): a sinusoidal code over positions ``0 … period−1`` that
  repeats every ``period`` frames, so no position is ever out of range (no 600-frame cap).
* The biased causal mask: head ``h`` penalises attending ``i − j`` frames back by
  ``slope_h · floor((i − j) / period)`` (ALiBi slopes ``2^(−8(h+1)/H)``), future frames are
  blocked, and frames more than ``window`` back are blocked too so decoding cost stays linear.

Both are computed for any length on demand instead of from fixed tables.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def alibi_slopes(n_heads: int) -> Tensor:
    """The geometric ALiBi slopes; for 4 heads 1/4, 1/16, 1/64, 1/256 as in FaceFormer."""

    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return torch.tensor(power_of_two(n_heads))
    closest = 2 ** math.floor(math.log2(n_heads))
    extra = power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(power_of_two(closest) + extra)


def periodic_positional_encoding(positions: Tensor, dim: int, period: int) -> Tensor:
    """(len(positions), dim) sinusoidal codes of ``positions mod period``."""
    pos = (positions % period).to(torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(len(positions), dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe.to(positions.device)


def biased_causal_bias(
    query_positions: Tensor, key_positions: Tensor, n_heads: int, period: int, window: int | None = None
) -> Tensor:
    """(n_heads, Q, K) additive attention bias: periodic ALiBi for past keys, −inf for the future
    (and for keys more than ``window`` frames back)."""
    distance = query_positions[:, None] - key_positions[None, :]  # (Q, K), ≥ 0 for the past
    slopes = alibi_slopes(n_heads).to(query_positions.device)
    bias = -slopes[:, None, None] * torch.div(distance.clamp_min(0), period, rounding_mode="floor")[None].to(torch.float32)
    blocked = distance < 0
    if window is not None:
        blocked = blocked | (distance >= window)
    return bias.masked_fill(blocked[None], float("-inf"))
