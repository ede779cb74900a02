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
#: Pitch rise (%) of a fully emphasised word, and how much an accent slows it.
ACCENT_PITCH = 35.0
ACCENT_SLOWING = 0.8
#: Head nod (radians of pitch) of a fully emphasised word.
NOD_RADIANS = math.radians(3.0)


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


def to_ssml(prosody: UtteranceProsody, *, volume: bool = True) -> str:
    """SSML for espeak-ng: every word in its own ``<prosody>``, a ``<break>`` after phrase ends.

    Volume is a linear amplitude change in espeak-ng (+100% ≈ +6 dB), pitch and rate are relative.
    ``volume`` False leaves loudness out, for :func:`apply_word_loudness` to put on the samples.
    """
    pitch0 = MOODS[prosody.mood][0]
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


def apply_word_loudness(
    samples: np.ndarray, rate: int, word_starts: Sequence[float], prosody: UtteranceProsody
) -> np.ndarray:
    """``samples`` with each word's loudness (dB) applied from its first phoneme (``word_starts``,
    seconds, one per word of ``prosody``) to the next word's, as ``<prosody volume>`` would have."""
    gain = np.ones(len(samples), dtype=np.float64)
    ramp = max(1, int(LOUDNESS_RAMP * rate))
    level = 1.0
    for start, word in zip(word_starts, prosody.words):
        i = min(len(samples), max(0, int(round(start * rate))))
        target = 10.0 ** (word.loudness_db / 20.0)
        gain[i:] = target
        j = min(len(samples), i + ramp)
        gain[i:j] = np.linspace(level, target, j - i, endpoint=False)
        level = target
    return np.clip(samples * gain, -1.0, 1.0).astype(np.float32)


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
    hyper = 1.0 + 0.15 * prosody.articulation
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
