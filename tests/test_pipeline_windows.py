"""The gate and liveliness layers give the same motion a window at a time as over the whole clip,
so the streamed ``animate`` equals the in-memory one."""

from __future__ import annotations

import numpy as np

from kmtalk_cli.alignment.types import Alignment, Segment
from kmtalk_cli.audio import Audio
from kmtalk_cli.face.template import bundled_template
from kmtalk_cli.pipeline import GateLayer, LivelinessLayer, _assemble, _chained
from conftest import speech_like


def test_layers_applied_in_windows_equal_the_whole_clip(tmp_path) -> None:
    face = bundled_template()
    n, fps = 90, 30.0
    labels = ["SIL", "M", "AA", "F", "IY", "P", "SIL"]
    times = np.linspace(0, n / fps, len(labels) + 1)
    alignment = Alignment(
        words=(), phones=tuple(Segment(lab, float(a), float(b)) for lab, a, b in zip(labels, times[:-1], times[1:])),
        duration=n / fps, backend="textgrid", method="forced", transcript=None,
    )
    samples = speech_like(n / fps)
    audio = Audio(samples=samples, sample_rate=16000, source=None)
    layer = _chained([GateLayer.of(alignment, n, fps, face), LivelinessLayer.of(audio, alignment, n, fps, face, seed=3)])
    offsets = np.random.default_rng(0).normal(0, 2e-3, (n, face.n_vertices * 3)).astype(np.float32)
    whole = _assemble(iter([offsets.copy()]), face.vertices, n, None, layer)
    streamed = _assemble(iter([offsets[a : a + 25].copy() for a in range(0, n, 25)]), face.vertices, n, tmp_path / "m.npy", layer)
    assert np.abs(whole - face.vertices[None]).max() > 1e-3  # the layers and offsets did move the face
    assert np.allclose(streamed, whole, atol=1e-6)
    assert np.array_equal(np.load(tmp_path / "m.npy").reshape(n, -1, 3), np.asarray(streamed))
