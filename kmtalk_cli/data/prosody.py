"""Hidden prosody of a synthetic utterance: what the voice carries beyond its phones, and the face shows.

A corpus whose motion is a function of phone labels and timings alone lets a phone-driven rig
score like an oracle. Real speakers open the jaw wider when they speak up, reduce when they
hurry, raise the brows and nod on a pitch accent and blink at the end of a phrase; a listener
hears all of it. So every utterance draws hidden variables (vocal effort, mood, articulation,
speaking rate per word, pitch accents, phrase breaks) from its own seed, and they shape both
sides at once:

- the speech, through espeak-ng's SSML (``<prosody volume pitch rate>`` per word, ``<break>``);
- the motion, through :class:`~kmtalk_cli.face.coarticulation.ProsodyControls` (an amplitude
  gain per phone, brow raises at accents, blinks at phrase ends) and a head nod per accent.

Every mapping is written so the motion follows what is audible: a word's articulation gain
grows with its loudness in decibels and shrinks with its local rate, and accents are loud,
high and slow. The drawn values are stored beside the TextGrids (``alignments/<name>.prosody.json``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from xml.sax.saxutils import escape

import numpy as np

from ..alignment.phones import SIL, VOWELS
from ..alignment.types import Segment
from ..face.coarticulation import ProsodyControls, SpokenPhone

#: Moods: (pitch offset in %, resting smile added to the subject's own).
MOODS: dict[str, tuple[int, float]] = {"neutral": (0, 0.0), "bright": (12, 0.12), "subdued": (-10, 0.0)}
#: Loudness (dB) per unit of utterance effort (-1..1) and per unit of word emphasis (0..1).
EFFORT_DB = 6.0
EMPHASIS_DB = 6.0
#: Articulation gain = 2 ** (dB / GAIN_DB_PER_OCTAVE) × (1 / local rate) ** RATE_EXPONENT.
GAIN_DB_PER_OCTAVE = 12.0
RATE_EXPONENT = 0.5
GAIN_RANGE = (0.5, 1.7)
#: Hyper-articulation (+1) opens every word this much more, hypo-articulation (-1) this much less.
ARTICULATION_GAIN = 0.15
#: Pitch rise (%) of a fully emphasised word, and how much an accent slows it.
ACCENT_PITCH = 35.0
ACCENT_SLOWING = 0.8
#: Head nod (radians of pitch) of a fully emphasised word.
NOD_RADIANS = math.radians(3.0)
#: With ``effort_voice``: pitch rise (%) per unit of utterance effort, and the boost (dB) of the
#: band above BRIGHT_HZ per dB of a word's loudness. Speaking up raises the pitch and flattens the
#: spectrum (the Lombard effect), so effort is audible in a recording of unknown level.
EFFORT_PITCH = 12.0
BRIGHTNESS_DB_PER_DB = 0.5
BRIGHT_HZ = 1000.0
BRIGHT_PEAK = 0.99  # the highest sample a brightened utterance may reach


@dataclass(frozen=True)
class WordProsody:
    """One word's hidden variables: how loud (dB), how emphasised (0..1), how fast (× the subject's rate)."""

    word: str
    loudness_db: float
    emphasis: float
    rate: float
    phrase_end: bool = False  # a pause follows the word

    @property
    def gain(self) -> float:
        """Jaw and lip amplitude for this word: louder opens more, faster reaches less far."""
        g = 2.0 ** (self.loudness_db / GAIN_DB_PER_OCTAVE) * (1.0 / self.rate) ** RATE_EXPONENT
        return float(np.clip(g, *GAIN_RANGE))


@dataclass(frozen=True)
class UtteranceProsody:
    """The hidden variables of one utterance: overall effort, articulation, mood, rate, and per word."""

    effort: float  # -1 soft .. 1 loud
    articulation: float  # -1 hypo (fast, reduced) .. 1 hyper (slow, careful)
    mood: str
    rate: float  # × the subject's rate
    words: tuple[WordProsody, ...]

    def to_json(self) -> dict:
        """A plain dict with rounded numbers (stable bytes for a byte-identical corpus)."""
        out = asdict(self)
        for key in ("effort", "articulation", "rate"):
            out[key] = round(out[key], 4)
        for word, w in zip(out["words"], self.words):
            word.update(loudness_db=round(w.loudness_db, 3), emphasis=round(w.emphasis, 4), rate=round(w.rate, 4), gain=round(w.gain, 4))
        return out


def _content(word: str) -> bool:
    return len(word.strip(".,?!;:\"()")) > 3


def draw_prosody(words: Sequence[str], rng: np.random.Generator) -> UtteranceProsody:
    """Hidden variables for an utterance of ``words`` (transcript words, in order)."""
    effort = float(rng.uniform(-1.0, 1.0))
    articulation = float(rng.uniform(-1.0, 1.0))
    mood = str(rng.choice(sorted(MOODS)))
    rate = float(rng.uniform(0.85, 1.2) * (1.0 - 0.12 * articulation))
    n = len(words)
    candidates = [i for i, w in enumerate(words) if _content(w)] or list(range(n))
    n_accents = min(len(candidates), int(rng.integers(1, 3)))
    accented = set(int(i) for i in rng.choice(candidates, size=n_accents, replace=False)) if n else set()
    breaks = {int(rng.integers(2, n - 2))} if n >= 6 and rng.uniform() < 0.6 else set()
    out = []
    drift = 0.0
    for i, word in enumerate(words):
        drift = 0.6 * drift + float(rng.normal(0.0, 0.08))  # local rate wanders smoothly
        emphasis = float(rng.uniform(0.6, 1.0)) if i in accented else 0.0
        local = rate * math.exp(drift) * (ACCENT_SLOWING if emphasis else 1.0)
        loud = EFFORT_DB * effort + EMPHASIS_DB * emphasis + float(rng.normal(0.0, 1.5))
        out.append(WordProsody(word, loud, emphasis, float(np.clip(local, 0.6, 1.6)), i in breaks))
    return UtteranceProsody(effort, articulation, mood, rate, tuple(out))


def to_ssml(prosody: UtteranceProsody, *, volume: bool = True, effort_pitch: float = 0.0) -> str:
    """SSML for espeak-ng: every word in its own ``<prosody>``, a ``<break>`` after phrase ends.

    Volume is a linear amplitude change in espeak-ng (+100% ≈ +6 dB), pitch and rate are relative.
    ``volume`` False leaves loudness out, for :func:`apply_word_loudness` to put on the samples.
    ``effort_pitch`` (% per unit of effort) raises the whole utterance's pitch with its effort.
    """
    pitch0 = MOODS[prosody.mood][0] + effort_pitch * prosody.effort
    parts = []
    for w in prosody.words:
        level = f'volume="{round(100.0 * (10.0 ** (w.loudness_db / 20.0) - 1.0)):+d}%" ' if volume else ""
        pitch = round(pitch0 + ACCENT_PITCH * w.emphasis)
        parts.append(f'<prosody {level}pitch="{pitch:+d}%" rate="{round(100 * w.rate)}%">{escape(w.word)}</prosody>')
        if w.phrase_end:
            parts.append('<break time="250ms"/>')
    return "<speak>" + " ".join(parts) + "</speak>"


def ssml_word_positions(ssml: str) -> list[int]:
    """Where each ``<prosody>`` word starts in ``ssml``, 1-based: the positions espeak-ng's
    phoneme events name their word by (:attr:`~kmtalk_cli.alignment.espeak.PhonemeEvent.word`)."""
    return [m.start(1) + 1 for m in re.finditer(r"<prosody[^>]*>([^<]*)</prosody>", ssml)]


#: Seconds over which the gain moves from one word's loudness to the next (no clicks).
LOUDNESS_RAMP = 0.005


def _word_curve(n: int, rate: int, word_starts: Sequence[float], values: Sequence[float], before: float) -> np.ndarray:
    """(n,) per-sample value: ``before`` until the first word, then each word's value from its
    start (seconds) to the next word's, reached over a short ramp (no clicks)."""
    curve = np.full(n, before, dtype=np.float64)
    ramp = max(1, int(LOUDNESS_RAMP * rate))
    level = before
    for start, target in zip(word_starts, values):
        i = min(n, max(0, int(round(start * rate))))
        curve[i:] = target
        j = min(n, i + ramp)
        curve[i:j] = np.linspace(level, target, j - i, endpoint=False)
        level = target
    return curve


def apply_word_loudness(
    samples: np.ndarray, rate: int, word_starts: Sequence[float], prosody: UtteranceProsody
) -> np.ndarray:
    """``samples`` with each word's loudness (dB) applied from its first phoneme (``word_starts``,
    seconds, one per word of ``prosody``) to the next word's, as ``<prosody volume>`` would have."""
    gain = _word_curve(len(samples), rate, word_starts, [10.0 ** (w.loudness_db / 20.0) for w in prosody.words], 1.0)
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)


def apply_word_brightness(
    samples: np.ndarray, rate: int, word_starts: Sequence[float], prosody: UtteranceProsody, db_per_db: float = BRIGHTNESS_DB_PER_DB
) -> np.ndarray:
    """``samples`` with the band above :data:`BRIGHT_HZ` raised by ``db_per_db`` × each word's
    loudness (dB), so a louder word is brighter and a soft one duller; the level below is kept.
    Where the boost would pass full scale the whole utterance is turned down instead of clipped
    (clipping is broadband noise, which would say "loud" in every band)."""
    from scipy.signal import butter, sosfiltfilt

    high = sosfiltfilt(butter(2, BRIGHT_HZ, "highpass", fs=rate, output="sos"), samples.astype(np.float64))
    boosts = [10.0 ** (db_per_db * w.loudness_db / 20.0) - 1.0 for w in prosody.words]
    out = samples + _word_curve(len(samples), rate, word_starts, boosts, 0.0) * high
    peak = float(np.abs(out).max(initial=0.0))
    return (out * (BRIGHT_PEAK / peak if peak > BRIGHT_PEAK else 1.0)).astype(np.float32)


def _word_of(phones: Sequence[SpokenPhone], words: Sequence[Segment | None]) -> list[int | None]:
    """Index of the word each phone lies in (by its midpoint), None for silence and strays."""
    out: list[int | None] = []
    for p in phones:
        mid = 0.5 * (p.start + p.end)
        hit = [k for k, w in enumerate(words) if w is not None and w.start <= mid < w.end] if p.label != SIL else []
        out.append(hit[0] if hit else None)
    return out


def controls(prosody: UtteranceProsody, phones: Sequence[SpokenPhone], words: Sequence[Segment | None]) -> ProsodyControls:
    """What the rig takes from the prosody: a gain per phone, accents and phrase ends in time.

    ``words`` is the word tier laid over the prosody's words (None where a word got no phones).
    """
    owner = _word_of(phones, words)
    hyper = 1.0 + ARTICULATION_GAIN * prosody.articulation
    gains = tuple(1.0 if k is None or k >= len(prosody.words) else float(np.clip(prosody.words[k].gain * hyper, *GAIN_RANGE)) for k in owner)
    accents: list[tuple[float, float]] = []
    ends: list[float] = []
    last = max((k for k, seg in enumerate(words) if seg is not None), default=-1)
    for k, (w, seg) in enumerate(zip(prosody.words, words)):
        if seg is None:
            continue
        if w.emphasis > 0:
            vowels = [p for p, o in zip(phones, owner) if o == k and p.label in VOWELS]
            stressed = [p for p in vowels if p.stress == 1] or vowels
            at = stressed[0].start if stressed else seg.start
            accents.append((at, w.emphasis))
        if w.phrase_end or k == last:
            ends.append(seg.end)
    return ProsodyControls(gains=gains, accents=tuple(accents), phrase_ends=tuple(ends))


def head_nods(accents: Sequence[tuple[float, float]], n_frames: int, fps: float) -> np.ndarray:
    """(T, 3) head rotation: a downward nod (pitch) peaking just after each accent, smooth and small."""
    t = np.arange(n_frames) / fps
    rotation = np.zeros((n_frames, 3), np.float32)
    for at, strength in accents:
        x = (t - (at + 0.08)) / 0.18
        rotation[:, 0] += (NOD_RADIANS * strength * np.exp(-0.5 * x * x)).astype(np.float32)
    return rotation
