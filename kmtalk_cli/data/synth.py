"""The synthetic talking-face corpus: exactly timed synthetic speech driving the rig, written as VOCASET.

Training, evaluation, the bundled weights and the tests all need talking-face data, and the
real corpora cannot be shipped. This builds one from nothing but the bundled head and
espeak-ng: subjects with their own face shape, voice and speaking style say generated
sentences; the phone timings espeak-ng reports drive the articulatory rig; every file lands in
the layout real data uses (``templates.pkl``, ``vertices_npy/``, ``wav/``), plus ground-truth
TextGrids, the rig controls per frame, region files, splits and a data card. Where the
optional MBROLA programs and voices are installed, subjects may speak with those instead
(``--voices mbrola|both``); their ``.pho`` durations are the phone timings.

The same options and seed give a byte-identical corpus: every sequence draws from its own
seed (seed, subject, sentence), sums run in fixed order, and no file records a time stamp.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..alignment.mbrola import MBROLA_DIR, VOICE_GENDER, PhoPhone, installed_voices, missing_reason
from ..alignment.phones import PHONES, SIL, VOWELS, espeak_to_arpabet, sampa_to_arpabet
from ..alignment.types import Alignment, Segment, fill_silence
from ..errors import OutputError
from ..face.coarticulation import ProsodyControls, SpeakingStyle, SpokenPhone, animate_phones
from ..face.rig import PARAMETERS, RIG_VERSION, Rig, build_rig
from ..face.template import FaceTemplate, bundled_template
from ..version import __version__
from .prosody import UtteranceProsody
from .sentences import generate_sentences

if TYPE_CHECKING:
    from ..alignment.espeak import Synthesis

#: espeak-ng's phoneme events run this far ahead of the acoustic boundaries (machine notes).
ESPEAK_EVENT_LEAD = 0.013
#: espeak-ng variants used for subjects, in order, with their gender (all ship with
#: espeakng-loader). Breathy variants (f2, f3, f5, ...) are left out: their noise source is not
#: reproducible between runs, which would break the byte-identical corpus.
VOICE_VARIANTS: tuple[tuple[str, str], ...] = (
    ("m1", "M"), ("f1", "F"), ("m3", "M"), ("f4", "F"), ("m2", "M"), ("Annie", "F"),
    ("m4", "M"), ("linda", "F"), ("m5", "M"), ("steph", "F"), ("m6", "M"), ("belinda", "F"),
)
#: What ``--voices`` accepts: espeak-ng's own voices, MBROLA voices, or subjects alternating between them.
VOICE_SETS: tuple[str, ...] = ("espeak", "mbrola", "both", "festival", "espeak+festival")
SUBJECT_PREFIX = "SynthTalk"
IDENTITY_KEYS: tuple[str, ...] = ("width", "height", "depth", "chin", "jaw_width", "lip_thickness", "mouth_width", "nose", "brow_height")


@dataclass(frozen=True)
class SynthOptions:
    """What to build; presets fill these, flags override them."""

    subjects: int = 12
    sentences: int = 40
    seed: int = 0
    fps: float = 30.0
    voices: str = "espeak"
    workers: int = 0  # 0: one per CPU core, at most 4
    max_words: int = 14
    prosody: bool = True  # hidden effort, accents, rate and phrasing shape speech and motion (data/prosody.py)
    voice_warp: bool = True  # each subject's vocal-tract length differs (resampling warp, exact timings)
    held_out_family: str = ""  # a voice family kept out of train/val/test: the "unseen" split
    effort_voice: bool = False  # effort heard beyond the level: pitch and brightness (data/prosody.py)


PRESETS: dict[str, SynthOptions] = {
    "tiny": SynthOptions(subjects=3, sentences=4, max_words=7),
    "vocaset-like": SynthOptions(subjects=12, sentences=40),
}


@dataclass(frozen=True)
class SubjectSpec:
    """One synthetic speaker: name, voice and the seeded coefficients of face and style."""

    name: str
    voice: str  # espeak-ng's name for it: "en-us+m1", or "mb-us1" for an MBROLA voice
    rate: int  # words per minute
    pitch: int  # espeak-ng 0..99
    identity: dict[str, float]
    style: SpeakingStyle
    engine: str = "espeak"  # "espeak" (the bundled library) or "mbrola" (system programs)
    warp: float = 1.0  # vocal-tract length factor: formants and pitch × warp, durations ÷ warp
    family: str = "espeak-male"  # voice family (see :func:`voice_family`), for held-out splits


@dataclass(frozen=True)
class UtteranceSpec:
    """One sequence to make: who says what, under which file name."""

    name: str
    subject: int
    sentence: int  # 1-based, as in VOCASET's sentenceNN
    text: str


@dataclass(frozen=True, eq=False)
class Utterance:
    """A finished sequence in memory: 16 kHz audio, true timings, rig controls and vertices."""

    name: str
    samples: np.ndarray  # (N,) float32, 16 kHz
    alignment: Alignment
    phones: tuple[SpokenPhone, ...]
    params: np.ndarray  # (T, P) float32
    vertices: np.ndarray  # (T, V, 3) float32
    prosody: UtteranceProsody | None = None  # the hidden variables, when drawn
    head: np.ndarray | None = None  # (T, 3) head rotation (nods on accents), when drawn


@dataclass(frozen=True)
class CorpusSummary:
    """What was built (for the CLI line, the data card and tests)."""

    path: Path
    subjects: tuple[str, ...]
    sequences: int
    frames: int
    seconds: float
    phone_counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Subjects: identity shape and speaking style
# --------------------------------------------------------------------------------------------


def subject_voice(i: int, voices: str, mbrola_voices: Sequence[str] = ()) -> tuple[str, str, str]:
    """Engine, voice name and gender of subject ``i``; with ``both``, even subjects use espeak-ng, odd ones MBROLA."""
    if voices in ("both", "espeak+festival"):
        other = "mbrola" if voices == "both" else "festival"
        engine, k = ("espeak", i // 2) if i % 2 == 0 else (other, i // 2)
    else:
        engine, k = voices, i
    if engine == "festival":
        from ..alignment.festival import VOICE_GENDER as FESTIVAL_GENDER
        from ..alignment.festival import installed_voices as festival_voices

        names = festival_voices() or ("kal_diphone",)
        voice = names[k % len(names)]
        return engine, f"festival:{voice}", FESTIVAL_GENDER.get(voice, "M")
    if engine == "mbrola":
        if not mbrola_voices:
            raise OutputError("No MBROLA voice was given for an MBROLA subject.")
        voice = mbrola_voices[k % len(mbrola_voices)]
        return engine, f"mb-{voice}", VOICE_GENDER.get(voice, "M")
    variant, gender = VOICE_VARIANTS[k % len(VOICE_VARIANTS)]
    return engine, f"en-us+{variant}", gender


#: Resampling warp range: ±12% vocal-tract length, about the spread between adult speakers.
WARP_RANGE = (0.88, 1.12)


def voice_family(engine: str, voice: str) -> str:
    """The family a voice belongs to: voices of one family share an engine and a source speaker type."""
    if engine in ("mbrola", "festival"):
        return engine
    variant = voice.split("+", 1)[-1]
    if variant[:1] == "m" and variant[1:].isdigit():
        return "espeak-male"
    if variant[:1] == "f" and variant[1:].isdigit():
        return "espeak-female"
    return "espeak-named"


def subject_warp(seed: int, i: int) -> float:
    """Subject ``i``'s vocal-tract warp, from a stream of its own (the other draws do not move)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A4B, i]))
    return float(rng.uniform(*WARP_RANGE))


def make_subjects(
    n: int, seed: int, voices: str = "espeak", mbrola_voices: Sequence[str] = (), warp: bool = False
) -> list[SubjectSpec]:
    """``n`` speakers whose voice, face and style differ visibly and measurably.

    Face, style, rate and pitch depend only on the seed and the subject's number, never on
    the voice set, so a subject looks the same whichever engine speaks for it. With ``warp``
    each subject's voice also gets its own vocal-tract length, so no two subjects share a voice.
    """
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5B7, i]))
        engine, voice, gender = subject_voice(i, voices, mbrola_voices)
        identity = {key: float(rng.uniform(-1.0, 1.0)) for key in IDENTITY_KEYS}
        style = SpeakingStyle(
            # A golden-ratio sequence (jittered) keeps any few subjects' jaw habits well apart.
            jaw_gain=float(0.7 + 0.6 * ((0.5 + i * 0.6180339887 + rng.uniform(-0.05, 0.05)) % 1.0)),
            round_gain=float(rng.uniform(0.75, 1.25)),
            spread_gain=float(rng.uniform(0.7, 1.3)),
            closure_gain=float(rng.uniform(0.9, 1.0)),
            lead=float(rng.uniform(0.0, 0.045)),
            asymmetry=float(rng.uniform(-0.15, 0.15)),
            coarticulation=float(rng.uniform(0.8, 1.25)),
            rest_smile=float(rng.uniform(0.0, 0.15)),
            blink_rate=float(rng.uniform(8.0, 25.0)),
            brow_expressiveness=float(rng.uniform(0.2, 1.0)),
            brow_probability=float(rng.uniform(0.1, 0.4)),
        )
        out.append(
            SubjectSpec(
                name=f"{SUBJECT_PREFIX}_{i + 1:02d}_{gender}",
                voice=voice,
                rate=int(rng.integers(145, 186)),
                pitch=int(rng.integers(30, 71)),
                identity=identity,
                style=style,
                engine=engine,
                warp=subject_warp(seed, i) if warp else 1.0,
                family=voice_family(engine, voice),
            )
        )
    return out


def identity_shape(rig: Rig, coefficients: dict[str, float]) -> np.ndarray:
    """A subject's rest shape (V, 3): smooth, plausible changes of proportions around the bundled head.

    Each coefficient in -1..1 scales one field; the lips keep touching at rest because every
    field near the mouth is zero on the contact line.
    """
    v = rig.rest
    x, y = v[:, 0], v[:, 1]
    c = {key: float(coefficients.get(key, 0.0)) for key in IDENTITY_KEYS}
    mouth, lips, y_contact = rig.masks["mouth"], rig.masks["lip_zone"], rig.masks["contact_y"]
    away_from_lips = 1.0 - lips
    mouth_x = float(np.average(x, weights=lips + 1e-12))
    d = np.zeros_like(v)
    d[:, 1] += c["chin"] * 0.09 * (y - y_contact) * np.clip(y_contact - y, 0, None) / 0.05 * rig.jaw_weight * away_from_lips
    d[:, 0] += c["jaw_width"] * 0.08 * x * rig.jaw_weight * away_from_lips
    d[:, 1] += c["lip_thickness"] * 0.25 * (y - y_contact) * lips
    d[:, 0] += c["mouth_width"] * 0.08 * (x - mouth_x) * mouth
    nose_base = v[int(np.argmax(rig.masks["nose"]))]
    d += c["nose"] * 0.08 * (v - nose_base) * rig.masks["nose"][:, None]
    d[:, 1] += c["brow_height"] * 0.0015 * np.clip(rig.masks["brow"], 0, 1)
    scale = np.array([1 + 0.03 * c["width"], 1 + 0.03 * c["height"], 1 + 0.03 * c["depth"]])
    return (v + d) * scale


# --------------------------------------------------------------------------------------------
# Speech
# --------------------------------------------------------------------------------------------


def _labels_with_stress(mnemonic: str) -> list[tuple[str, int]]:
    """ARPAbet labels of one espeak-ng mnemonic, each carrying the mnemonic's stress mark."""
    stress = 1 if mnemonic.startswith("'") else 2 if mnemonic.startswith(",") else 0
    return [(label, stress) for label in espeak_to_arpabet(mnemonic)]


def _tile(phones: Sequence[SpokenPhone], duration: float) -> tuple[SpokenPhone, ...]:
    """Phones laid over ``[0, duration]`` with ``SIL`` in the gaps, keeping each phone's stress."""
    tiled = fill_silence([Segment(p.label, p.start, p.end) for p in phones], duration)
    stresses = {(round(p.start, 9), p.label): p.stress for p in phones}
    return tuple(SpokenPhone(s.label, s.start, s.end, stresses.get((round(s.start, 9), s.label), 0)) for s in tiled)


def _event_spans(
    events: Sequence[tuple[str, float]], duration: float, words: Sequence[int | None]
) -> list[tuple[list[tuple[str, int | None]], float, float]]:
    """Each event's span on the acoustic clock, with zero-length phonemes folded into their neighbour.

    espeak-ng renders a liquid after a vowel (the ``l`` of "girl", "helmet") inside the vowel's
    own span and reports it with no samples of its own. Dropping it would lose a spoken phone
    (and break the word tier), so it shares the span of the phoneme it was rendered with.
    Every mnemonic keeps the word it was spoken in.
    """
    spans: list[tuple[list[tuple[str, int | None]], float, float]] = []
    for i, ((name, start), word) in enumerate(zip(events, words)):
        end = events[i + 1][1] if i + 1 < len(events) else duration
        start, end = min(start + ESPEAK_EVENT_LEAD, duration), min(end + ESPEAK_EVENT_LEAD, duration)
        if end > start:
            spans.append(([(name, word)], start, end))
        elif espeak_to_arpabet(name) and spans and espeak_to_arpabet(spans[-1][0][-1][0]):
            spans[-1][0].append((name, word))
    return spans


def _add_phone(out: list[SpokenPhone], owners: list[int | None], phone: SpokenPhone, word: int | None) -> None:
    """Append ``phone``, or lengthen the previous R over it when both are the one r of one word.

    espeak-ng writes an r-coloured vowel with its r (``e@``, ``A@``, ``U@``: EH R, AA R, UH R)
    and before a vowel speaks an r of its own after it, a linking r ("chair at", "far away") or
    the r inside "during", "Mary". That is one spoken r, so the phone tier gets one R spanning
    both; an R that starts the next word ("car race") stays a phone of that word.
    """
    if word is not None and out and phone.label == out[-1].label == "R" and owners[-1] == word:
        out[-1] = replace(out[-1], end=phone.end)
        return
    out.append(phone)
    owners.append(word)


def phones_from_events(
    events: Sequence[tuple[str, float]], duration: float, words: Sequence[int] | None = None
) -> tuple[SpokenPhone, ...]:
    """espeak-ng phoneme events (mnemonic, start s) → tiled ARPAbet phones with stress.

    Each phoneme lasts until the next event; pauses become SIL; a two-phone mnemonic (``@L``)
    or a span shared with a zero-length phoneme is split evenly. Times move by
    :data:`ESPEAK_EVENT_LEAD` onto the acoustic clock. ``words`` (espeak-ng's word of each
    event, :attr:`PhonemeEvent.word`) lets the two halves of one spoken r become one R.
    """
    out: list[SpokenPhone] = []
    owners: list[int | None] = []
    for names, start, end in _event_spans(events, duration, words if words is not None else [None] * len(events)):
        labels = [(label, stress, word) for name, word in names for label, stress in _labels_with_stress(name)]
        if not labels:
            _add_phone(out, owners, SpokenPhone(SIL, start, end), None)
            continue
        step = (end - start) / len(labels)
        for k, (label, stress, word) in enumerate(labels):
            _add_phone(out, owners, SpokenPhone(label, start + k * step, start + (k + 1) * step, stress), word)
    return _tile(out, duration)


def phones_from_pho(pho: Sequence[PhoPhone], duration: float) -> tuple[SpokenPhone, ...]:
    """MBROLA ``.pho`` phones (exact spans) → tiled ARPAbet phones, without stress (see :func:`_stress_from_text`)."""
    out: list[SpokenPhone] = []
    for phone in pho:
        start, end = min(phone.start, duration), min(phone.end, duration)
        labels = sampa_to_arpabet(phone.symbol)
        if end <= start or not labels:
            continue  # an unknown symbol becomes silence when tiled rather than a guessed phone
        step = (end - start) / len(labels)
        out.extend(SpokenPhone(label, start + k * step, start + (k + 1) * step) for k, label in enumerate(labels))
    return _tile(out, duration)


def _substitution_cost(a: str, b: str) -> int:
    """0 for the same phone, 1 for vowel↔vowel or consonant↔consonant, 2 (a gap pair) across classes."""
    if a == b:
        return 0
    return 1 if (a in VOWELS) == (b in VOWELS) else 2


def _match(expected: Sequence[str], spoken: Sequence[str]) -> list[int]:
    """For each spoken phone, the index of the expected phone it realises.

    The two sequences differ where the synthesiser pronounces a word otherwise than the
    phonemizer did on its own ("the" before a vowel, a linking r, British MBROLA dropping
    r), so they are aligned by edit distance in which a vowel may stand for a vowel and a
    consonant for a consonant; a spoken phone with no counterpart belongs with the phone
    before it. The result never decreases.
    """
    n, m = len(expected), len(spoken)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j - 1] + _substitution_cost(expected[i - 1], spoken[j - 1]),
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
            )
    owner: list[int | None] = [None] * m
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i][j] == cost[i - 1][j - 1] + _substitution_cost(expected[i - 1], spoken[j - 1]):
            owner[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i][j - 1] + 1:
            j -= 1  # an extra spoken phone: filled from its left neighbour below
        else:
            i -= 1  # an expected phone that was not spoken
    out: list[int] = []
    for index in owner:
        out.append(index if index is not None else out[-1] if out else 0)
    return out


def transcript_words(text: str) -> list[str]:
    """The words of a transcript as a words tier names them: lower case, outer punctuation dropped."""
    words = [w.strip(".,?!;:\"()").lower() for w in text.split()]
    return [w for w in words if w]


def _word_tier(text: str, phones: Sequence[SpokenPhone]) -> tuple[Segment, ...]:
    """Words over their phones: each word spans the spoken phones matched to its own pronunciation.

    Each word is phonemized on its own, because espeak-ng joins some word pairs ("in the",
    "on the") into one phoneme word and expands numbers into several; the concatenated
    pronunciations are then matched to the spoken phones, so every word boundary is a
    phone boundary.
    """
    from ..alignment.espeak import text_to_phonemes

    words = transcript_words(text)
    expected: list[str] = []
    word_of: list[int] = []
    for w, word in enumerate(words):
        labels = [label for part in text_to_phonemes(word, "en-us") for m in part for label in espeak_to_arpabet(m)]
        expected += labels
        word_of += [w] * len(labels)
    spoken = [p for p in phones if p.label != SIL]
    if not expected or not spoken:
        return ()
    spans: dict[int, list[SpokenPhone]] = {}
    for phone, index in zip(spoken, _match(expected, [p.label for p in spoken])):
        spans.setdefault(word_of[index], []).append(phone)
    return tuple(Segment(words[w], spans[w][0].start, spans[w][-1].end) for w in sorted(spans))


def _stress_from_text(text: str, phones: Sequence[SpokenPhone]) -> tuple[SpokenPhone, ...]:
    """MBROLA phones with the lexical stress espeak-ng gives the sentence (a .pho file has none).

    The animation weakens unstressed vowels and raises brows on stressed ones, so MBROLA
    subjects need the same stress marks espeak-ng subjects get from their events.
    """
    from ..alignment.espeak import text_to_phonemes

    expected = [pair for word in text_to_phonemes(text, "en-us") for m in word for pair in _labels_with_stress(m)]
    spoken = [k for k, p in enumerate(phones) if p.label != SIL]
    if not expected or not spoken:
        return tuple(phones)
    out = list(phones)
    for k, index in zip(spoken, _match([label for label, _ in expected], [phones[k].label for k in spoken])):
        label, stress = expected[index]
        if label == phones[k].label or (label in VOWELS and phones[k].label in VOWELS):
            out[k] = replace(phones[k], stress=stress)
    return tuple(out)


def warp_voice(samples: np.ndarray, rate: int, warp: float) -> np.ndarray:
    """16 kHz speech as if played ``warp`` times faster: formants and pitch × warp, durations ÷ warp.

    A vocal-tract length change by resampling: every time in the speech divides by ``warp``
    exactly, so the phone timings stay exact after the same division.
    """
    from ..audio import TARGET_RATE, resample

    return np.clip(resample(samples, int(round(rate * warp)), TARGET_RATE), -1.0, 1.0).astype(np.float32)


def _warp_phones(phones: Sequence[SpokenPhone], warp: float) -> tuple[SpokenPhone, ...]:
    return tuple(replace(p, start=p.start / warp, end=p.end / warp) for p in phones)


def _spoken_words(speech: Synthesis) -> int:
    """How many words espeak-ng said: distinct word positions among its phoneme events, pauses aside."""
    return len({e.word for e in speech.phonemes if e.word and not e.name.startswith("_")})


def _word_starts(speech: Synthesis, ssml: str) -> np.ndarray:
    """When each ``<prosody>`` word of ``ssml`` starts in ``speech`` (seconds); an unspoken word
    starts where the next one does (or at the end)."""
    from . import prosody as pros

    first: dict[int, float] = {}
    for event in speech.phonemes:
        if not event.name.startswith("_"):
            first.setdefault(event.word, event.start)
    starts = [first.get(pos, speech.duration) for pos in pros.ssml_word_positions(ssml)]
    return np.minimum.accumulate(np.asarray(starts, dtype=np.float64)[::-1])[::-1]


def _say_espeak(text: str, subject: SubjectSpec, plan: UtteranceProsody | None, effort_voice: bool = False) -> Synthesis:
    """espeak-ng's speech of ``text``, marked up with ``plan`` (:func:`prosody.to_ssml`) when given.

    espeak-ng's SSML stack sometimes skips words (their audio and their events) when the
    ``<prosody volume>`` changes from word to word: a sentence came out as "Hugh thought the vase
    was tiny", its middle clause gone, while its transcript and text kept all eleven words. Without
    the volume attribute it says every word, so when words are missing the sentence is spoken
    again without it and each word's loudness is put on the samples instead.

    ``effort_voice``: effort is heard beyond the level too: the utterance's pitch rises with its
    effort and each word's brightness with its loudness (:func:`prosody.apply_word_brightness`).
    """
    from ..alignment.espeak import synthesize
    from . import prosody as pros

    if plan is None:
        return synthesize(text, subject.voice, rate=subject.rate, pitch=subject.pitch)
    effort_pitch = pros.EFFORT_PITCH if effort_voice else 0.0
    ssml = pros.to_ssml(plan, effort_pitch=effort_pitch)
    speech = synthesize(ssml, subject.voice, rate=subject.rate, pitch=subject.pitch, ssml=True)
    if _spoken_words(speech) < len(plan.words):
        quiet = pros.to_ssml(plan, volume=False, effort_pitch=effort_pitch)
        again = synthesize(quiet, subject.voice, rate=subject.rate, pitch=subject.pitch, ssml=True)
        if _spoken_words(again) > _spoken_words(speech):
            starts = _word_starts(again, quiet)
            samples = pros.apply_word_loudness(again.samples, again.sample_rate, starts, plan)
            speech, ssml = replace(again, samples=samples), quiet
    if not effort_voice:
        return speech
    samples = pros.apply_word_brightness(speech.samples, speech.sample_rate, _word_starts(speech, ssml), plan)
    return replace(speech, samples=samples)


def _speak(
    text: str, subject: SubjectSpec, plan: UtteranceProsody | None = None, effort_voice: bool = False
) -> tuple[np.ndarray, tuple[SpokenPhone, ...], str]:
    """16 kHz samples, tiled true phones and a provenance note for one sentence in the subject's voice.

    ``plan`` (espeak-ng only): the sentence's hidden prosody, spoken through SSML (:func:`_say_espeak`).
    """
    from ..audio import TARGET_RATE

    warp = subject.warp
    warp_note = f", vocal tract × {warp:.3f}" if warp != 1.0 else ""
    if subject.engine == "festival":
        from ..alignment.festival import synthesize_festival

        voice = subject.voice.removeprefix("festival:")
        fs = synthesize_festival(text, voice)
        samples = warp_voice(fs.samples, fs.sample_rate, warp)
        spoken = tuple(SpokenPhone(label, start, end) for label, start, end in fs.segments if label != SIL and label in PHONES)
        phones = _stress_from_text(text, _tile(spoken, len(fs.samples) / fs.sample_rate))
        return samples, _tile(_warp_phones(phones, warp), len(samples) / TARGET_RATE), f"synthetic: Festival {voice} segment times (exact){warp_note}"
    if subject.engine == "mbrola":
        from ..alignment.mbrola import synthesize_mbrola

        voice = subject.voice.removeprefix("mb-")
        mb = synthesize_mbrola(text, voice, rate=subject.rate, pitch=subject.pitch)
        samples = warp_voice(mb.samples, mb.sample_rate, warp)
        phones = _stress_from_text(text, phones_from_pho(mb.phones, len(mb.samples) / mb.sample_rate))
        return samples, _tile(_warp_phones(phones, warp), len(samples) / TARGET_RATE), f"synthetic: MBROLA {voice} .pho durations (exact){warp_note}"
    speech = _say_espeak(text, subject, plan, effort_voice)
    samples = warp_voice(speech.samples, speech.sample_rate, warp)
    phones = phones_from_events(
        [(e.name, e.start) for e in speech.phonemes], speech.duration, [e.word for e in speech.phonemes]
    )
    note = f"synthetic: espeak-ng {subject.voice} event times + {ESPEAK_EVENT_LEAD * 1000:.0f} ms{warp_note}"
    return samples, _tile(_warp_phones(phones, warp), len(samples) / TARGET_RATE), note


def tier_by_word(tier: Sequence[Segment], words: Sequence[str]) -> list[Segment | None]:
    """The word tier laid over the transcript's words (None where a word got no phones)."""
    out: list[Segment | None] = [None] * len(words)
    k = 0
    for seg in tier:
        while k < len(words) and words[k] != seg.label:
            k += 1
        if k < len(words):
            out[k] = seg
            k += 1
    return out


@dataclass(frozen=True, eq=False)
class Performance:
    """What one utterance's motion is made of, before the rig: the speech, its true phones, the
    subject's style (with the utterance's mood) and the hidden prosody's controls. Benchmarks
    rebuild the motion from parts of it to see what each part is worth."""

    samples: np.ndarray  # (N,) float32, 16 kHz
    alignment: Alignment
    phones: tuple[SpokenPhone, ...]
    n_frames: int
    style: SpeakingStyle
    controls: ProsodyControls | None = None
    plan: UtteranceProsody | None = None
    head: np.ndarray | None = None  # (T, 3) head rotation (nods on accents), when drawn


def perform(
    spec: UtteranceSpec, subject: SubjectSpec, fps: float, seed: int, prosody: bool = False, effort_voice: bool = False
) -> Performance:
    """Speak one sentence and time its phones; with ``prosody`` draw its hidden variables
    (:mod:`.prosody`), which shape the speech through SSML (and with ``effort_voice`` its pitch
    and brightness) and the motion through the rig's prosody controls and a head nod per accent."""
    from ..audio import TARGET_RATE
    from . import prosody as pros

    plan = None
    if prosody and subject.engine == "espeak":
        prng = np.random.default_rng(np.random.SeedSequence([seed, 0x9205, spec.subject, spec.sentence]))
        plan = pros.draw_prosody(transcript_words(spec.text), prng)
    samples, phones, note = _speak(spec.text, subject, plan, effort_voice)
    duration = len(samples) / TARGET_RATE
    alignment = Alignment(
        words=_word_tier(spec.text, phones),
        phones=tuple(Segment(p.label, p.start, p.end) for p in phones),
        backend="textgrid",
        method="forced",
        transcript=spec.text,
        duration=duration,
        notes=(note,),
        source=None,
    )
    n_frames = max(1, int(round(duration * fps)))
    style, controls, head = subject.style, None, None
    if plan is not None:
        words = tier_by_word(alignment.words, [w.word for w in plan.words])
        controls = pros.controls(plan, phones, words)
        style = replace(style, rest_smile=style.rest_smile + pros.MOODS[plan.mood][1])
        head = pros.head_nods(controls.accents, n_frames, fps)
    return Performance(samples, alignment, phones, n_frames, style, controls, plan, head)


def make_utterance(
    spec: UtteranceSpec, subject: SubjectSpec, rig: Rig, rest: np.ndarray, fps: float, seed: int, prosody: bool = False,
    effort_voice: bool = False,
) -> Utterance:
    """Speak one sentence (:func:`perform`), animate the rig on the subject's face."""
    take = perform(spec, subject, fps, seed, prosody, effort_voice)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF4CE, spec.subject, spec.sentence]))
    params = animate_phones(take.phones, take.n_frames, fps, take.style, rng, prosody=take.controls)
    vertices = rig.pose(params, rest=rest).astype(np.float32)
    return Utterance(spec.name, take.samples, take.alignment, take.phones, params.astype(np.float32), vertices, take.plan, take.head)


# --------------------------------------------------------------------------------------------
# Corpus plan
# --------------------------------------------------------------------------------------------


def split_subjects(names: Sequence[str]) -> dict[str, list[str]]:
    """VOCASET's shape: 8 train / 2 val / 2 test of 12, scaled down for smaller corpora."""
    n = len(names)
    held = 2 if n >= 12 else 1 if n >= 3 else 0
    return {"train": list(names[: n - 2 * held]), "val": list(names[n - 2 * held : n - held]), "test": list(names[n - held :])}


def _phonemizer(voice: str) -> Callable[[str], list[str]]:
    from ..alignment.espeak import text_to_phonemes

    def run(text: str) -> list[str]:
        return [p for word in text_to_phonemes(text, voice) for m in word for p in espeak_to_arpabet(m)]

    return run


def plan_corpus(options: SynthOptions) -> tuple[list[SubjectSpec], list[UtteranceSpec], dict[str, list[str]]]:
    """Subjects, the utterances to make and the splits; sentences 21–40 (the second half) of
    val/test subjects come from a pool no train subject ever says, as in VOCASET.

    With ``held_out_family``, that family's subjects form an ``unseen`` split of their own (their
    second-half sentences; first halves go to ``extra``): no voice of the family is heard in
    training or validation, a generalisation test over voices.
    """
    mbrola_voices = installed_voices() if options.voices in ("mbrola", "both") else ()
    subjects = make_subjects(options.subjects, options.seed, options.voices, mbrola_voices, warp=options.voice_warp)
    unseen = [s.name for s in subjects if options.held_out_family and s.family == options.held_out_family]
    if options.held_out_family and not unseen:
        families = ", ".join(sorted({s.family for s in subjects}))
        raise OutputError(f"No subject speaks with voice family {options.held_out_family!r}; this corpus has {families}.")
    groups = split_subjects([s.name for s in subjects if s.name not in unseen])
    if unseen:
        groups["unseen"] = unseen
    n_sent = options.sentences
    first_half = n_sent // 2
    held_count = n_sent - first_half
    train_pool_size = max(n_sent, 3 * n_sent if len(groups["train"]) > 2 else n_sent)
    texts = generate_sentences(
        train_pool_size + held_count, options.seed, phonemize=_phonemizer("en-us"), max_words=options.max_words
    )
    train_pool, held_pool = texts[:train_pool_size], texts[train_pool_size:]
    utterances: list[UtteranceSpec] = []
    train_set = set(groups["train"])
    for i, subject in enumerate(subjects):
        for j in range(n_sent):
            if subject.name in train_set or j < first_half:
                text = train_pool[(i * n_sent + j) % len(train_pool)]
            else:
                text = held_pool[j - first_half]
            utterances.append(UtteranceSpec(f"{subject.name}_sentence{j + 1:02d}", i, j + 1, text))
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": [], **({"unseen": []} if unseen else {}), "extra": []}
    role = {name: part for part, names in groups.items() for name in names}
    for u in utterances:
        part = role[subjects[u.subject].name]
        if part != "train" and u.sentence <= first_half:
            part = "extra"
        splits[part].append(u.name)
    return subjects, utterances, {"subjects": groups, **splits}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _worker_state(subjects: Sequence[SubjectSpec]) -> tuple[Rig, list[np.ndarray]]:
    """Rig and subject rest shapes, built once per process."""
    key = tuple(s.name for s in subjects)
    if _WORKER.get("key") != key:
        rig = build_rig(bundled_template())
        _WORKER.update(key=key, rig=rig, rests=[identity_shape(rig, s.identity) for s in subjects])
    return _WORKER["rig"], _WORKER["rests"]  # type: ignore[return-value]


_Job = tuple[UtteranceSpec, list[SubjectSpec], float, int, str, bool]


def _make_and_write(job: _Job) -> dict:
    """Worker: make one utterance and write its files (seven with prosody); return its statistics."""
    from ..alignment.textgrid import write_textgrid
    from ..audio import TARGET_RATE, Audio, write_wav
    from ..face.headpose import HeadPose, write_head_pose

    spec, subjects, fps, seed, root, prosody, effort_voice = job
    rig, rests = _worker_state(subjects)
    utt = make_utterance(spec, subjects[spec.subject], rig, rests[spec.subject], fps, seed, prosody=prosody, effort_voice=effort_voice)
    out = Path(root)
    np.save(out / "vertices_npy" / f"{spec.name}.npy", utt.vertices.reshape(len(utt.vertices), -1))
    write_wav(Audio(utt.samples, TARGET_RATE), out / "wav" / f"{spec.name}.wav")
    # The transcript beside the speech, where `kmtalk align` and evaluation look for one.
    (out / "wav" / f"{spec.name}.txt").write_text(spec.text + "\n", encoding="utf-8")
    write_textgrid(utt.alignment, out / "alignments" / f"{spec.name}.TextGrid")
    np.save(out / "rig" / f"{spec.name}.npy", utt.params)
    if utt.prosody is not None:
        text = json.dumps(utt.prosody.to_json(), indent=1, sort_keys=True) + "\n"
        (out / "alignments" / f"{spec.name}.prosody.json").write_text(text, encoding="utf-8")
    if utt.head is not None:
        pose = HeadPose(fps, utt.head, np.zeros((len(utt.head), 2), np.float32))
        write_head_pose(pose, out / "head" / f"{spec.name}.head.npz", force=True)
    counts = Counter(p.label for p in utt.phones if p.label != SIL)
    return {
        "name": spec.name,
        "subject": subjects[spec.subject].name,
        "sentence": spec.sentence,
        "text": spec.text,
        "frames": int(len(utt.vertices)),
        "duration": round(float(len(utt.samples)) / TARGET_RATE, 6),
        "words_aligned": bool(utt.alignment.words),
        "phones": dict(sorted(counts.items())),
    }


def _make_subject(jobs: list[_Job]) -> list[dict]:
    """Worker task: all sentences of one subject, in sentence order."""
    return [_make_and_write(job) for job in jobs]


def _write_static(root: Path, template: FaceTemplate, rig: Rig, subjects: Sequence[SubjectSpec]) -> None:
    """templates.pkl, the topology mesh, region files and the rig description."""
    shapes = {s.name: identity_shape(rig, s.identity).astype(np.float32) for s in subjects}
    (root / "templates.pkl").write_bytes(pickle.dumps(shapes, protocol=4))
    with open(root / "template.obj", "w", encoding="utf-8") as fh:
        fh.write(f"# {template.name} rest shape: {template.n_vertices} vertices, {template.n_faces} faces (faces for templates.pkl)\n")
        np.savetxt(fh, template.vertices, fmt="v %.9g %.9g %.9g")
        np.savetxt(fh, template.faces.astype(np.int64) + 1, fmt="f %d %d %d")
    regions = root / "regions"
    regions.mkdir()
    for name in sorted(template.regions):
        text = ",".join(str(int(i)) for i in template.regions[name])
        (regions / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    if template.landmarks is not None:
        (root / "landmarks.txt").write_text(",".join(str(int(i)) for i in template.landmarks) + "\n", encoding="utf-8")
    info = {"format": "kmtalk-rig-params", "version": RIG_VERSION, "parameters": list(PARAMETERS), "range": [0.0, 1.0]}
    (root / "rig.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


def _timing_source(engines: set[str]) -> str:
    """Where the TextGrid timings come from, for the data card."""
    parts = []
    if "espeak" in engines:
        parts.append(f"espeak-ng phoneme events + {ESPEAK_EVENT_LEAD * 1000:.0f} ms")
    if "mbrola" in engines:
        parts.append("MBROLA .pho durations, rendered exactly")
    if "festival" in engines:
        parts.append("Festival segment end times (utt.save.segs), rendered exactly")
    return " and ".join(parts)


def _voice_source(engines: set[str]) -> str:
    """Which synthesisers spoke, for the data card."""
    return " or ".join(name for key, name in (("espeak", "espeak-ng"), ("mbrola", "MBROLA"), ("festival", "Festival")) if key in engines)


def _mbrola_licence(engines: set[str]) -> list[str]:
    """The data card's MBROLA licence lines, present only when an MBROLA voice spoke."""
    if "mbrola" not in engines:
        return []
    return [
        f"- MBROLA speech: rendered by the mbrola program (AGPL-3.0) with diphone voices from {MBROLA_DIR} (Debian",
        "  contrib/non-free, never bundled with kmtalk). The voices may be used only with mbrola and may not be sold or",
        "  built into a product that is sold without their owners' permission: no commercial use of the MBROLA sequences",
        "  or of anything trained on them. `--voices espeak` builds a corpus without them.",
    ]


def _prosody_section(options: SynthOptions) -> list[str]:
    """The data card's account of the hidden prosody and the voice warp."""
    lines = []
    if options.prosody:
        lines += [
            "## Hidden prosody (what the voice carries beyond the phones)",
            "",
            "Each espeak-ng utterance (MBROLA and Festival subjects speak without SSML, so without it) draws hidden variables",
            "from its own seed, stored in `alignments/<name>.prosody.json`:",
            "vocal effort (-1..1), articulation (-1 hypo .. 1 hyper), mood (neutral / bright / subdued), a rate factor, and",
            "per word its loudness (dB), emphasis (0..1, pitch accents on one or two content words), local rate and whether",
            "a phrase break follows. They shape the speech through SSML (`<prosody volume pitch rate>` per word, `<break>`):",
            "louder words are louder, accents are loud, high and slow, breaks are pauses. They shape the motion too:",
            "jaw and lip-shape targets scale by 2^(dB/12) × rate^-0.5 (closure and the f/v tuck stay complete), brows rise",
            "on accents (instead of random stressed syllables), a blink follows each phrase end, the mouth smiles a little",
            "more when the mood is bright, and `head/<name>.head.npz` holds a small nod (≤ 3°) per accent. The phone",
            "timings stay exact: espeak-ng counts the samples the markup changes. A rig driven by the phones alone cannot",
            "know any of this; a model that listens can (`benchmarks/prosody_audible.py` measures both sides).",
            *(
                [
                    "With `--effort-voice` effort is heard beyond the level (which a recording's gain hides): the utterance's pitch",
                    "rises 12% per unit of effort and each word's band above 1 kHz rises 0.5 dB per dB of its loudness.",
                ]
                if options.effort_voice
                else []
            ),
            "",
        ]
    if options.voice_warp:
        lines += [
            "## Voices",
            "",
            "Every subject's speech is resampled as if played faster or slower by its `vocal tract` factor (0.88–1.12):",
            "formants and pitch scale by it and durations by its inverse (the phone timings are divided by it exactly), so",
            "no two subjects share a voice. Families: espeak-male (m1–m6), espeak-female (f1, f4), espeak-named (Annie,",
            "linda, steph, belinda), festival (kal, with `--voices espeak+festival`), mbrola. `--held-out-family` keeps one",
            "family out of train/val/test as `unseen`.",
            "",
        ]
    return lines


def _datacard(options: SynthOptions, subjects: Sequence[SubjectSpec], records: Sequence[dict], splits: dict, counts: Counter) -> str:
    """DATACARD.md: how the corpus was made, so a number computed on it can be reproduced."""
    frames = sum(r["frames"] for r in records)
    seconds = sum(r["duration"] for r in records)
    engines = {s.engine for s in subjects}
    lines = [
        "# Synthetic talking-face corpus (kmtalk synth)",
        "",
        f"Built by kmtalk {__version__} with `kmtalk synth --subjects {options.subjects} --sentences {options.sentences} "
        f"--seed {options.seed} --fps {options.fps:g} --voices {options.voices}"
        + ("" if options.prosody else " --no-prosody")
        + ("" if options.voice_warp else " --no-voice-warp")
        + (" --effort-voice" if options.effort_voice else "")
        + (f" --held-out-family {options.held_out_family}" if options.held_out_family else "")
        + "`. The same command rebuilds it byte for byte.",
        "",
        "## Contents",
        "",
        f"- {len(subjects)} subjects, {len(records)} sequences, {frames} frames at {options.fps:g} fps, {seconds / 60:.1f} minutes of speech.",
        "- `templates.pkl`: subject → (V, 3) float32 rest shape in metres; `template.obj` gives the faces.",
        "- `vertices_npy/<subject>_sentenceNN.npy`: (T, V·3) float32 absolute positions in metres.",
        "- `wav/<same>.wav`: 16 kHz mono 16-bit speech, with its transcript in `wav/<same>.txt`. `alignments/<same>.TextGrid`: the true word and phone",
        f"  timings from {_timing_source(engines)} (MFA tier layout); each word spans the phones matched to its own pronunciation.",
        "- `rig/<same>.npy`: (T, P) float32 rig controls per frame, named in `rig.json` (ARKit names, 0–1).",
        "- `regions/*.txt`: vertex index files (`lips` for LVE, `upper_face` for FDD); `landmarks.txt`: 68 iBUG vertices.",
        "- `splits.json`: VOCASET-style subject split; val/test use sentences from the second half, never spoken by train subjects.",
        "- `metadata.json`: per-sequence text and timing, per-subject voice, identity and style coefficients.",
        "",
        "## How it was made",
        "",
        "Sentences come from kmtalk's built-in generator (templates and word lists, chosen greedily for phone coverage).",
        f"Each subject speaks with its own {_voice_source(engines)} voice, rate and pitch; the audio is resampled to 16 kHz.",
        "The bundled head's articulatory rig (jaw rotation, lip rounding, spreading, closure, labiodental tuck,",
        "brows, blinks) is driven by the phone timings through Cohen–Massaro dominance coarticulation, with",
        "per-subject face shape (proportions, lip thickness, jaw width, nose) and speaking style (gains, timing lead,",
        "asymmetry, blink rate, brow expressiveness). The motion is synthetic: it is plausible, not captured.",
        "",
        *_prosody_section(options),
        "## Subjects",
        "",
        "| subject | voice | family | vocal tract | rate | pitch | split |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    role = {name: part for part, names in splits["subjects"].items() for name in names}
    for s in subjects:
        lines.append(f"| {s.name} | {s.voice} | {s.family} | {s.warp:.3f} | {s.rate} | {s.pitch} | {role[s.name]} |")
    lines += ["", "## Phone coverage (ARPAbet, all sequences)", "", "| phone | count |", "|---|---:|"]
    for phone in PHONES:
        lines.append(f"| {phone} | {counts.get(phone, 0)} |")
    lines += [
        "",
        "## Licences",
        "",
        "- Face mesh: derived from menpo3d's template (BSD-3-Clause, Imperial College London); see `LICENSE-menpo3d.txt` in kmtalk.",
        "- Speech: synthesised with espeak-ng (GPL-3.0-or-later program; its output audio is not covered by the GPL)"
        + ("; Festival subjects with Festival (X11-style licence) and its voices kal and ked (festvox-kallpc16k, festvox-kdlpc16k, BSD-style) and CMU ARCTIC slt (festvox-us-slt-hts, BSD-3/EST)." if "festival" in engines else "."),
        *_mbrola_licence(engines),
        "- The corpus itself: generated data, free to use, share and modify (CC0-1.0 as far as kmtalk's authors hold rights)"
        + ("; the MBROLA speech stays under the voices' non-commercial terms." if "mbrola" in engines else "."),
        "",
    ]
    return "\n".join(lines)


def _check_voices(voices: str) -> None:
    """Refuse, before anything is written, a voice set this machine cannot speak."""
    if voices not in VOICE_SETS:
        raise OutputError(f"Unknown voices {voices!r}; choose one of {', '.join(VOICE_SETS)}.")
    if voices in ("festival", "espeak+festival"):
        from ..alignment.festival import missing_reason as festival_missing

        reason = festival_missing()
    else:
        reason = missing_reason() if voices != "espeak" else None
    if reason:
        raise OutputError(f"Cannot build a corpus with --voices {voices}: {reason}")


def _default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def build_corpus(
    out_dir: Path,
    options: SynthOptions = SynthOptions(),
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CorpusSummary:
    """Build the corpus in a temporary directory beside ``out_dir`` and rename it into place.

    A failed or interrupted build leaves nothing behind and never touches an existing corpus
    (unless ``force``, and then only after the new one is complete).
    """
    out_dir = Path(out_dir)
    _check_voices(options.voices)
    if options.subjects < 1 or options.sentences < 1:
        raise OutputError("A corpus needs at least one subject and one sentence.")
    if options.effort_voice and not options.prosody:
        raise OutputError("--effort-voice speaks the hidden prosody's effort and needs --prosody.")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"Output {out_dir} is a file; a corpus needs a directory name.")
    if out_dir.exists() and not force:
        raise OutputError(f"Output {out_dir} already exists; pass --force to replace it.")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"Output directory {parent} does not exist.")
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=parent))
    except OSError as exc:
        raise OutputError(f"Cannot write in {parent}: {exc.strerror}.") from None
    os.chmod(scratch, 0o755)  # mkdtemp makes it private; a corpus is meant to be shared
    try:
        subjects, utterances, splits = plan_corpus(options)
        for sub in ("vertices_npy", "wav", "alignments", "rig", *(("head",) if options.prosody else ())):
            (scratch / sub).mkdir()
        template = bundled_template()
        rig = build_rig(template)
        _write_static(scratch, template, rig, subjects)
        # espeak-ng's output depends on what the library spoke before in the same process, so
        # each subject's sentences are spoken, in order, by a fresh process of their own: the
        # audio then depends on the seed alone, never on scheduling or on the caller's history.
        tasks = [
            [(u, subjects, float(options.fps), options.seed, str(scratch), options.prosody, options.effort_voice) for u in utterances if u.subject == i]
            for i in range(len(subjects))
        ]
        workers = min(options.workers or _default_workers(), len(tasks))
        records: list[dict] = []
        total = len(utterances)
        if progress:
            progress(0, total)
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes=workers, maxtasksperchild=1) as pool:
            for batch in pool.imap(_make_subject, tasks):
                records.extend(batch)
                if progress:
                    progress(len(records), total)
        records.sort(key=lambda r: r["name"])
        counts: Counter[str] = Counter()
        for r in records:
            counts.update(r["phones"])
        (scratch / "splits.json").write_text(json.dumps(splits, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        metadata = {
            "format": "kmtalk-synth",
            "version": 1,
            "options": asdict(replace(options, workers=0)),
            "fps": options.fps,
            "subjects": {
                s.name: {"engine": s.engine, "voice": s.voice, "family": s.family, "warp": s.warp, "rate": s.rate, "pitch": s.pitch, "identity": s.identity, "style": asdict(s.style)}
                for s in subjects
            },
            "sequences": {r["name"]: {k: v for k, v in r.items() if k != "name"} for r in records},
        }
        (scratch / "metadata.json").write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (scratch / "DATACARD.md").write_text(_datacard(options, subjects, records, splits, counts), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.replace(scratch, out_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return CorpusSummary(
        path=out_dir,
        subjects=tuple(s.name for s in subjects),
        sequences=len(records),
        frames=sum(r["frames"] for r in records),
        seconds=math.fsum(r["duration"] for r in records),
        phone_counts=dict(sorted(counts.items())),
    )
