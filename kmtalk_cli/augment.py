"""Speech augmentation for training: make models trained on synthetic voices hold up on real rooms.

The synthetic corpus is clean, close-miked and level-matched; real recordings are not. Each
transform keeps the length and timing of the speech exactly (the targets and phone alignment
are frame-locked to it), so speed and pitch changes are left out and the corpus' several
voices supply that variety instead. Pure functions of the samples and a numpy ``Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Augmentation:
    """Probabilities and ranges of each transform (applied independently, in this order)."""

    reverb: float = 0.3
    rt60_seconds: tuple[float, float] = (0.15, 0.7)
    band_limit: float = 0.3
    low_cut_hz: tuple[float, float] = (60.0, 400.0)
    high_cut_hz: tuple[float, float] = (2800.0, 7000.0)
    noise: float = 0.5
    snr_db: tuple[float, float] = (8.0, 35.0)
    gain: float = 1.0
    gain_db: tuple[float, float] = (-18.0, 6.0)


def room_impulse_response(rng: np.random.Generator, rt60: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic room: direct sound, then exponentially decaying noise (−60 dB at ``rt60``)."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    tail[: int(0.002 * sample_rate)] = 0.0  # the first reflections arrive a little after the direct sound
    ir = 0.6 * tail / (np.abs(tail).max() + 1e-9)
    ir[0] = 1.0
    return ir / np.sqrt(np.sum(ir**2))


def _convolve_same(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    n = len(x) + len(ir) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]


def band_limit(x: np.ndarray, low_hz: float, high_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Keep ``low_hz``–``high_hz`` with soft (raised-cosine, half-octave) edges: phones, cheap mics."""
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / sample_rate)
    with np.errstate(divide="ignore"):
        octaves = np.log2(np.maximum(freqs, 1.0))

    def edge(cut: float, rising: bool) -> np.ndarray:
        d = (octaves - np.log2(cut)) / 0.5 * (1 if rising else -1)
        return np.clip(0.5 + 0.5 * np.sin(np.clip(d, -0.5, 0.5) * np.pi), 0.0, 1.0)

    return np.fft.irfft(spectrum * edge(low_hz, True) * edge(high_hz, False), len(x))


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White to brown noise (a random spectral slope), unit RMS: fans, traffic, hiss."""
    slope = rng.uniform(0.0, 2.0)  # power ∝ 1/f^slope
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    noise = np.fft.irfft(spectrum * freqs ** (-slope / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def augment_speech(samples: np.ndarray, rng: np.random.Generator, options: Augmentation = Augmentation()) -> np.ndarray:
    """One random degradation of ``samples`` (16 kHz mono float32); same length, same timing."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return np.asarray(samples, dtype=np.float32)
    level = np.sqrt(np.mean(x**2)) + 1e-12
    if rng.random() < options.reverb:
        x = _convolve_same(x, room_impulse_response(rng, rng.uniform(*options.rt60_seconds)))
    if rng.random() < options.band_limit:
        x = band_limit(x, rng.uniform(*options.low_cut_hz), rng.uniform(*options.high_cut_hz))
    x *= level / (np.sqrt(np.mean(x**2)) + 1e-12)
    if rng.random() < options.noise:
        snr = rng.uniform(*options.snr_db)
        x = x + coloured_noise(rng, len(x)) * level * 10 ** (-snr / 20)
    if rng.random() < options.gain:
        x *= 10 ** (rng.uniform(*options.gain_db) / 20)
    peak = np.abs(x).max()
    if peak > 0.99:  # a real recorder would have clipped; keep the waveform's shape instead
        x *= 0.99 / peak
    return x.astype(np.float32)
