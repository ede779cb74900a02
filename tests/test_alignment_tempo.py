from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.alignment.tempo import slow_down


def test_slowed_speech_lasts_longer_at_the_same_pitch() -> None:
    rate = 16_000
    t = np.arange(rate) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    slow = slow_down(tone, 0.6, rate)
    assert slow is not None and slow.dtype == np.float32
    assert len(slow) / rate == pytest.approx(1 / 0.6, rel=0.02)
    middle = slow[len(slow) // 4 : 3 * len(slow) // 4]
    peak = np.argmax(np.abs(np.fft.rfft(middle * np.hanning(len(middle))))) * rate / len(middle)
    assert peak == pytest.approx(220.0, abs=3.0)


def test_tempo_outside_what_atempo_does_in_one_pass_is_refused() -> None:
    with pytest.raises(ValueError):
        slow_down(np.zeros(100, np.float32), 0.3)


def test_without_ffmpeg_there_is_no_slowed_speech(monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    def missing() -> str:
        raise RuntimeError("no ffmpeg")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    assert slow_down(np.zeros(1600, np.float32), 0.6) is None
