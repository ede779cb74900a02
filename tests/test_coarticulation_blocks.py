"""Coarticulation in blocks of frames (linear memory on long speech) equals the all-phones sum."""

from __future__ import annotations

import numpy as np

import kmtalk_cli.face.coarticulation as coarticulation
from kmtalk_cli.face.coarticulation import SpokenPhone, lip_channels


def test_blocks_with_nearby_phones_equal_all_phones_at_once(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    labels = ["M", "AA", "F", "IY", "SIL", "P", "UW", "S", "TH", "OW"]
    edges = np.cumsum(rng.uniform(0.04, 0.3, 400))
    edges[200] += 3.0  # a long pause inside
    phones = [SpokenPhone(labels[i % len(labels)], float(a), float(b)) for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
    times = np.arange(int(edges[-1] * 30)) / 30
    blocks = lip_channels(phones, times)
    monkeypatch.setattr(coarticulation, "_BLOCK", len(times) + 1)
    whole = lip_channels(phones, times)
    assert np.abs(blocks).max() > 0.1
    np.testing.assert_allclose(blocks, whole, atol=1e-12)
