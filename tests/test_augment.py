import numpy as np
import pytest

from kmtalk_cli.augment import Augmentation, augment_speech, band_limit, coloured_noise, room_impulse_response
from kmtalk_cli.training import TrainingItem, collate

SR = 16000


def _tone_bursts(seconds: float = 1.0) -> np.ndarray:
    """A voiced buzz (200 Hz and its harmonics to 4 kHz) in bursts with silence between: a crude syllable train."""
    t = np.arange(int(seconds * SR)) / SR
    buzz = sum(np.sin(2 * np.pi * 200 * k * t) / k for k in range(1, 21))
    return (0.15 * buzz * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32)


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_augmentation_keeps_length_timing_and_range():
    x = _tone_bursts()
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = augment_speech(x, rng)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.abs(y).max() <= 0.99 + 1e-6
        # Timing is kept: the envelope still follows the bursts (no shift, no stretch).
        env_x = np.abs(x).reshape(20, -1).mean(1)
        env_y = np.abs(y).reshape(20, -1).mean(1)
        assert np.corrcoef(env_x, env_y)[0, 1] > 0.5


def test_each_transform_does_what_it_says():
    rng = np.random.default_rng(1)
    white = rng.standard_normal(SR)
    limited = band_limit(white, 300.0, 3400.0)
    assert _band_energy(limited, 5000, 8000) < 0.01 * _band_energy(white, 5000, 8000)
    assert _band_energy(limited, 800, 2500) > 0.8 * _band_energy(white, 800, 2500)

    ir = room_impulse_response(rng, 0.5)
    assert np.argmax(np.abs(ir)) == 0 and np.isclose(np.sum(ir**2), 1.0)
    late = np.sum(ir[int(0.45 * SR) :] ** 2) / np.sum(ir[int(0.02 * SR) : int(0.07 * SR)] ** 2)
    assert late < 1e-3  # decayed by about 60 dB over the rt60

    noise = coloured_noise(rng, SR)
    assert np.isclose(np.sqrt(np.mean(noise**2)), 1.0)

    only_noise = Augmentation(reverb=0, band_limit=0, noise=1, gain=0, snr_db=(10.0, 10.0))
    x = _tone_bursts()
    added = augment_speech(x, np.random.default_rng(2), only_noise) - x
    snr = 10 * np.log10(np.mean(x**2) / np.mean(added**2))
    assert snr == pytest.approx(10.0, abs=0.5)


def test_augmentation_is_reproducible_and_empty_safe():
    x = _tone_bursts()
    a = augment_speech(x, np.random.default_rng(5))
    b = augment_speech(x, np.random.default_rng(5))
    assert np.array_equal(a, b)
    assert augment_speech(np.zeros(0, np.float32), np.random.default_rng(0)).shape == (0,)


def test_collate_augments_only_when_asked():
    items = [TrainingItem(f"s{i}", "A", _tone_bursts(0.5 + 0.25 * i), np.zeros((15 + 8 * i, 6), np.float32), 0) for i in range(2)]
    plain = collate(items)
    assert np.array_equal(plain.audio[0, : len(items[0].audio)].numpy(), items[0].audio)
    noisy = collate(items, np.random.default_rng(0))
    assert noisy.audio.shape == plain.audio.shape
    assert not np.array_equal(noisy.audio.numpy(), plain.audio.numpy())
    assert float(noisy.audio[0, len(items[0].audio) :].abs().max()) == 0.0  # padding stays silent
