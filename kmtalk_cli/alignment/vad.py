"""Energy-based speech/silence detection: the last-resort aligner and the long-audio splitter.

When no model can find phones we still know *when* someone speaks, which is enough to open
and close the mouth; and splitting minutes of audio at its quietest points keeps every
decoder pass short, so time and memory grow linearly with the length of the recording.
"""

from __future__ import annotations

import numpy as np

from .phones import SIL
from .types import Segment

FRAME = 0.010  # seconds, the same 100 frames/s the decoders use
WINDOW = 0.025
#: Label for voiced stretches in the energy fallback: a neutral open vowel moves the jaw.
SPEECH_LABEL = "AH"


def frame_db(samples: np.ndarray, rate: int) -> np.ndarray:
    """Level of each 10 ms frame (25 ms window) in dB full scale, DC removed."""
    hop, win = int(round(FRAME * rate)), int(round(WINDOW * rate))
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0)
    x = x - x.mean()
    n = max(1, 1 + (x.size - win) // hop) if x.size >= win else 1
    padded = np.pad(x, (0, max(0, (n - 1) * hop + win - x.size)))
    power = np.empty(n)
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    starts = np.arange(n) * hop
    power[:] = (csum[starts + win] - csum[starts]) / win
    return 10.0 * np.log10(power + 1e-12)


def speech_mask(samples: np.ndarray, rate: int, *, min_silence: float = 0.15, min_speech: float = 0.05) -> np.ndarray:
    """Per-frame speech flags from a threshold between the noise floor and the speech level.

    The threshold adapts to each recording (quiet studio or noisy phone), and short gaps or
    blips are smoothed away so a stop consonant's closure does not count as a pause.
    """
    db = frame_db(samples, rate)
    if db.size == 0:
        return np.zeros(0, dtype=bool)
    floor, loud = np.percentile(db, 10), np.percentile(db, 95)
    if loud < -60.0 or loud - floor < 6.0:
        # Silent or uniformly loud without dynamics (steady noise): no speech to find.
        return np.zeros(db.size, dtype=bool) if loud < -60.0 else np.ones(db.size, dtype=bool)
    mask = db > max(floor + 0.3 * (loud - floor), -55.0)
    mask = _fill_runs(mask, False, int(min_silence / FRAME))
    mask = _fill_runs(mask, True, int(min_speech / FRAME))
    return mask


def _fill_runs(mask: np.ndarray, value: bool, max_len: int) -> np.ndarray:
    """Flip interior runs of ``value`` no longer than ``max_len`` frames."""
    out = mask.copy()
    runs = _runs(mask)
    for i, (v, a, b) in enumerate(runs):
        if v == value and b - a <= max_len and 0 < i < len(runs) - 1:
            out[a:b] = not value
    return out


def _runs(mask: np.ndarray) -> list[tuple[bool, int, int]]:
    """(value, start, end) for each run of equal flags."""
    if mask.size == 0:
        return []
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), mask.size]
    return [(bool(mask[a]), a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def speech_regions(samples: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of speech."""
    duration = samples.shape[0] / rate
    return [(a * FRAME, min(b * FRAME, duration)) for v, a, b in _runs(speech_mask(samples, rate)) if v]


def energy_segments(samples: np.ndarray, rate: int, *, syllable: float = 0.2) -> tuple[Segment, ...]:
    """Speech stretches cut into syllable-sized pieces at level dips, labelled ``AH``.

    Splitting long stretches at dips makes the mouth open and close roughly once per
    syllable instead of gaping through a whole sentence.
    """
    db = frame_db(samples, rate)
    out: list[Segment] = []
    for start, end in speech_regions(samples, rate):
        a, b = int(round(start / FRAME)), int(round(end / FRAME))
        cuts = [a]
        step = max(1, int(syllable / FRAME))
        while b - cuts[-1] > 2 * step:
            lo, hi = cuts[-1] + step // 2, min(cuts[-1] + 2 * step, b - step // 2)
            cuts.append(lo + int(np.argmin(db[lo:hi])) if hi > lo else cuts[-1] + step)
        cuts.append(b)
        for x, y in zip(cuts[:-1], cuts[1:]):
            if y > x:
                out.append(Segment(SPEECH_LABEL, x * FRAME, min(y * FRAME, end)))
    return tuple(out)


def split_points(samples: np.ndarray, rate: int, max_chunk: float) -> list[float]:
    """Cut times (seconds) so no chunk exceeds ``max_chunk``, each at the quietest frame.

    Each cut is searched in the last half of the allowed window, preferring the middle of a
    pause, so words are rarely cut.
    """
    duration = samples.shape[0] / rate
    if duration <= max_chunk:
        return []
    db = frame_db(samples, rate)
    # Smooth over 100 ms so a pause beats a single quiet frame inside a plosive.
    kernel = np.ones(10) / 10.0
    smooth = np.convolve(db, kernel, mode="same")
    cuts: list[float] = []
    start = 0.0
    while duration - start > max_chunk:
        lo = int((start + max_chunk * 0.5) / FRAME)
        hi = min(int((start + max_chunk) / FRAME), smooth.size)
        cut = (lo + int(np.argmin(smooth[lo:hi]))) * FRAME if hi > lo else start + max_chunk
        cuts.append(cut)
        start = cut
    return cuts


def silence_segments(duration: float) -> tuple[Segment, ...]:
    """One ``SIL`` over the whole clip (what an aligner returns for no speech at all)."""
    return (Segment(SIL, 0.0, duration),)
