"""Prosody analysed in blocks of frames (flat memory on long speech) equals one block."""

from __future__ import annotations

import numpy as np

import kmtalk_cli.face.liveliness as liveliness
from conftest import speech_like


def test_prosody_in_blocks_equals_all_frames_at_once(monkeypatch) -> None:
    samples = speech_like(4.0)
    blocks = liveliness.prosody(samples, 16000, 120, 30.0)
    monkeypatch.setattr(liveliness, "_FRAMES_PER_BLOCK", 7)
    small = liveliness.prosody(samples, 16000, 120, 30.0)
    monkeypatch.setattr(liveliness, "_FRAMES_PER_BLOCK", 10_000)
    whole = liveliness.prosody(samples, 16000, 120, 30.0)
    assert (whole.f0 > 0).any()
    for got in (blocks, small):
        np.testing.assert_array_equal(got.f0, whole.f0)
        np.testing.assert_allclose(got.loudness, whole.loudness, atol=1e-9)
