"""Shared fixtures: everything is generated in tmp dirs, nothing touches the network."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


def speech_like(duration: float, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-rate modulated harmonic signal: enough like speech for I/O tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * rate)) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)).clip(0, None)
    signal = 0.3 * voice * envelope + 0.01 * rng.normal(size=t.size)
    return signal.astype(np.float32)


@pytest.fixture
def speech_wav(tmp_path):
    def make(name: str = "speech.wav", duration: float = 1.0, rate: int = 16_000):
        path = tmp_path / name
        sf.write(path, speech_like(duration, rate), rate)
        return path

    return make


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A real synthetic corpus (3 subjects × 3 short sentences, the bundled head), built once."""
    from kmtalk_cli.data.synth import SynthOptions, build_corpus

    root = tmp_path_factory.mktemp("corpus") / "tiny"
    build_corpus(root, SynthOptions(subjects=3, sentences=3, max_words=7, workers=1))
    return root


@pytest.fixture(scope="session")
def two_voice_corpus(tmp_path_factory):
    """Like ``tiny_corpus`` with a fourth subject, so two voices train (val and test keep one each).

    From one training voice no backbone carries lip motion over to the unseen val voice (lip
    motion correlation −0.1 to −0.2 for CodeTalker); FaceFormer and SelfTalk still beat the
    motionless face there through early, nearly still outputs, which CodeTalker's code sequences
    cannot produce. With two voices all three beat it by a wide margin.
    """
    from kmtalk_cli.data.synth import SynthOptions, build_corpus

    root = tmp_path_factory.mktemp("corpus") / "two-voices"
    build_corpus(root, SynthOptions(subjects=4, sentences=3, max_words=7, workers=1))
    return root


@pytest.fixture(scope="session")
def head():
    """The bundled head template (cached and read-only, so one is shared by every test)."""
    from kmtalk_cli.face.template import bundled_template

    return bundled_template()


@pytest.fixture(scope="session")
def rig(head):
    """The articulatory rig of the bundled head."""
    from kmtalk_cli.face.rig import build_rig

    return build_rig(head)


@pytest.fixture
def benchmark(monkeypatch):
    """Load ``benchmarks/NAME.py`` as a module (benchmarks import each other by bare name)."""
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
