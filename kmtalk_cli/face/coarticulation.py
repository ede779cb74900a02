"""Phones to rig controls: viseme targets blended by Cohen–Massaro dominance functions.

A mouth never holds one shape per phone: each phone pulls the controls towards its target
with an influence that rises before it and decays after it, strong for phones whose shape is
obligatory (lip closure for P/B/M, the tuck for F/V) and weak for phones the mouth barely
cares about (schwa, H). The blended curves are smooth and bend near phone boundaries, which is
what KMTalk's key motions sample. The upper face (blinks, brow raises) is driven separately,
by seeded events.

References: M. M. Cohen and D. W. Massaro, "Modeling coarticulation in synthetic visual
speech", 1993 (dominance D = α·exp(-θ·|τ|^c), value = Σ D·T / Σ D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..alignment.phones import SIL, VOWELS
from .rig import INDEX, PARAMETERS, smoothstep

#: The symmetric lip channels the visemes are written in; split into left/right at the end.
CHANNELS: tuple[str, ...] = ("jaw", "close", "press", "pucker", "funnel", "stretch", "roll", "upper_up")


@dataclass(frozen=True)
class SpokenPhone:
    """One phone as spoken: ARPAbet label, times (s) and lexical stress (0 none, 1 primary, 2 secondary)."""

    label: str
    start: float
    end: float
    stress: int = 0


@dataclass(frozen=True)
class Viseme:
    """Target per channel and how strongly the phone insists on it (its dominance)."""

    targets: dict[str, float]
    strength: float = 1.0  # α for the channels in ``targets``
    # Phones leave the channels they do not name to their neighbours.
    free_strength: float = 0.08
    # Channels the phone sets only loosely (a bilabial's jaw: the lips close whatever the jaw does).
    loose: tuple[str, ...] = ()
    loose_factor: float = 0.06  # their dominance, as a share of ``strength``


def _v(strength: float = 1.0, loose: tuple[str, ...] = (), loose_factor: float = 0.06, **targets: float) -> Viseme:
    return Viseme(targets=targets, strength=strength, loose=loose, loose_factor=loose_factor)


# Targets are rig values 0..1. Diphthongs are written as two visemes (onset, offset).
VISEMES: dict[str, tuple[Viseme, ...]] = {
    SIL: (_v(0.7, jaw=0.0, close=0.0, press=0.0, pucker=0.0, funnel=0.0, stretch=0.0, roll=0.0, upper_up=0.0),),
    "P": (_v(loose=("jaw",), strength=6.0, jaw=0.05, close=1.0, press=0.8, roll=0.0, funnel=0.0, upper_up=0.0),),
    "B": (_v(loose=("jaw",), strength=6.0, jaw=0.06, close=1.0, press=0.6, roll=0.0, funnel=0.0, upper_up=0.0),),
    "M": (_v(loose=("jaw",), strength=5.5, jaw=0.05, close=1.0, press=0.5, roll=0.0, funnel=0.0, upper_up=0.0),),
    # Labiodentals: the lower lip tucks up under the upper teeth, which needs the jaw nearly
    # shut; less loosely than for bilabials (whose lips close whatever the jaw does), yet not so
    # firmly that the neighbouring vowels lose their opening.
    "F": (_v(7.0, ("jaw",), 0.6, jaw=0.02, close=0.0, press=0.0, roll=1.0, upper_up=0.0, funnel=0.0, pucker=0.0, stretch=0.0),),
    "V": (_v(6.5, ("jaw",), 0.6, jaw=0.03, close=0.0, press=0.0, roll=0.95, upper_up=0.0, funnel=0.0, pucker=0.0, stretch=0.0),),
    # Dentals: the tongue tip between the teeth needs the jaw a little open, the lips relaxed.
    "TH": (_v(2.5, jaw=0.16, close=0.0, roll=0.0),),
    "DH": (_v(1.5, jaw=0.14, close=0.0, roll=0.0),),
    "T": (_v(1.5, jaw=0.14, close=0.0),),
    "D": (_v(1.2, jaw=0.15, close=0.0),),
    "N": (_v(1.0, jaw=0.15, close=0.0),),
    "L": (_v(1.0, jaw=0.20, close=0.0),),
    "S": (_v(3.0, jaw=0.08, close=0.0, stretch=0.30),),
    "Z": (_v(2.5, jaw=0.09, close=0.0, stretch=0.25),),
    "K": (_v(0.8, jaw=0.20, close=0.0),),
    "G": (_v(0.8, jaw=0.20, close=0.0),),
    "NG": (_v(0.8, jaw=0.18, close=0.0),),
    "HH": (_v(0.3, jaw=0.25, close=0.0),),
    # Postalveolars: teeth close together, lips protruded and a little rounded.
    "SH": (_v(3.0, jaw=0.10, close=0.0, roll=0.0, pucker=0.50, funnel=0.60, stretch=0.0),),
    "ZH": (_v(3.0, jaw=0.10, close=0.0, roll=0.0, pucker=0.50, funnel=0.60, stretch=0.0),),
    "CH": (_v(3.0, jaw=0.09, close=0.0, roll=0.0, pucker=0.45, funnel=0.55, stretch=0.0),),
    "JH": (_v(3.0, jaw=0.10, close=0.0, roll=0.0, pucker=0.45, funnel=0.55, stretch=0.0),),
    "R": (_v(2.0, jaw=0.12, close=0.0, pucker=0.45, funnel=0.20, stretch=0.0),),
    "W": (_v(6.0, jaw=0.06, close=0.0, roll=0.0, pucker=1.0, funnel=0.1, stretch=0.0),),
    "Y": (_v(1.5, jaw=0.10, close=0.0, stretch=0.45, pucker=0.0),),
    "AA": (_v(1.4, jaw=0.62, close=0.0, pucker=0.0, stretch=0.05, press=0.0),),
    "AE": (_v(1.3, jaw=0.50, close=0.0, pucker=0.0, stretch=0.40, press=0.0),),
    "AH": (_v(0.6, jaw=0.38, close=0.0, pucker=0.0, stretch=0.05, press=0.0),),
    "AO": (_v(1.4, jaw=0.48, close=0.0, pucker=0.30, funnel=0.55, stretch=0.0, press=0.0),),
    "EH": (_v(1.0, jaw=0.36, close=0.0, pucker=0.0, stretch=0.35, press=0.0),),
    "IH": (_v(0.9, jaw=0.22, close=0.0, pucker=0.0, stretch=0.40, press=0.0),),
    "IY": (_v(1.6, jaw=0.12, close=0.0, pucker=0.0, funnel=0.0, stretch=0.80, press=0.0),),
    "UH": (_v(1.2, jaw=0.22, close=0.0, pucker=0.55, funnel=0.2, stretch=0.0, press=0.0),),
    "UW": (_v(2.2, jaw=0.10, close=0.0, pucker=1.0, funnel=0.1, stretch=0.0, press=0.0),),
    "ER": (_v(1.2, jaw=0.25, close=0.0, pucker=0.35, funnel=0.25, stretch=0.0, press=0.0),),
    "AY": (_v(1.4, jaw=0.58, close=0.0, pucker=0.0, stretch=0.10), _v(1.2, jaw=0.16, close=0.0, pucker=0.0, stretch=0.60)),
    "AW": (_v(1.4, jaw=0.58, close=0.0, pucker=0.0, stretch=0.10), _v(1.6, jaw=0.14, close=0.0, pucker=0.85, funnel=0.2, stretch=0.0)),
    "OY": (_v(1.4, jaw=0.35, close=0.0, pucker=0.6, funnel=0.5), _v(1.2, jaw=0.14, close=0.0, pucker=0.0, stretch=0.55)),
    "EY": (_v(1.2, jaw=0.36, close=0.0, pucker=0.0, stretch=0.35), _v(1.2, jaw=0.15, close=0.0, pucker=0.0, stretch=0.65)),
    "OW": (_v(1.4, jaw=0.40, close=0.0, pucker=0.35, funnel=0.65, stretch=0.0), _v(1.6, jaw=0.14, close=0.0, pucker=0.85, funnel=0.2, stretch=0.0)),
}

#: Per channel: time constants (s) of the dominance rise before and decay after a phone.
#: Rounding anticipates far ahead (the lips round through "str" in "straw").
TIME_CONSTANTS: dict[str, tuple[float, float]] = {
    "jaw": (0.060, 0.055),
    "close": (0.028, 0.025),
    "press": (0.028, 0.025),
    "pucker": (0.140, 0.070),
    "funnel": (0.120, 0.070),
    "stretch": (0.080, 0.060),
    "roll": (0.045, 0.040),
    "upper_up": (0.050, 0.045),
}
#: Silences from the first to the second length (s) go from bridged to held at rest, their
#: dominance growing by up to this factor.
PAUSE_SECONDS = (0.15, 0.25)
PAUSE_REST_GAIN = 7.0
#: Share of the channels' time constants with which a held rest's dominance fades into speech.
PAUSE_REACH = 0.4
#: Rounds the corner of |τ| at the phone centre, so curves have no kinks (bounded acceleration).
_SMOOTH = 0.015


@dataclass(frozen=True)
class SpeakingStyle:
    """How one subject speaks: gains, timing and upper-face habits (all seeded per subject)."""

    jaw_gain: float = 1.0
    round_gain: float = 1.0
    spread_gain: float = 1.0
    closure_gain: float = 1.0
    lead: float = 0.02  # s the mouth moves ahead of the sound
    asymmetry: float = 0.0  # >0: the left side moves more
    coarticulation: float = 1.0  # scales the time constants (larger = more blended)
    rest_smile: float = 0.0
    blink_rate: float = 15.0  # per minute
    brow_expressiveness: float = 0.5
    brow_probability: float = 0.3  # chance a stressed syllable gets a brow raise


@dataclass(frozen=True)
class ProsodyControls:
    """What the voice's prosody adds to the motion (the synthetic corpus draws it, see ``data/prosody.py``).

    ``gains``: one per phone, scales its jaw and lip-shape targets (effort, rate); closure and the
    labiodental tuck stay obligatory. ``accents``: (time s, strength 0..1) of pitch accents, which
    raise the brows instead of the style's random stressed syllables. ``phrase_ends``: times (s)
    after which a blink follows.
    """

    gains: tuple[float, ...] = ()
    accents: tuple[tuple[float, float], ...] = ()
    phrase_ends: tuple[float, ...] = ()


#: Channels a phone's prosody gain scales (closure, press and the tuck must happen whatever the effort).
GAINED_CHANNELS: tuple[str, ...] = ("jaw", "pucker", "funnel", "stretch", "upper_up")


def _targets(phones: Sequence[SpokenPhone], gains: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Anchors (times, per-channel targets, per-channel strengths, durations, reaches) for the dominance sum."""
    centres, targets, strengths, durations, reaches = [], [], [], [], []
    for i, phone in enumerate(phones):
        gain = gains[i] if i < len(gains) else 1.0
        visemes = VISEMES.get(phone.label, VISEMES["AH"] if phone.label in VOWELS else VISEMES[SIL])
        dur = max(phone.end - phone.start, 1e-3)
        reduced = phone.label in VOWELS and phone.stress == 0
        # A pause long enough to be heard as one is a rest the mouth returns to, not a gap
        # that the neighbouring phones bridge.
        pause = float(smoothstep(np.asarray(dur), *PAUSE_SECONDS)) if phone.label == SIL else 0.0
        rest = 1.0 + PAUSE_REST_GAIN * pause
        spots = (0.5,) if len(visemes) == 1 else (0.3, 0.8)
        for vis, where in zip(visemes, spots):
            t = np.zeros(len(CHANNELS))
            s = np.full(len(CHANNELS), vis.free_strength)
            for k, name in enumerate(CHANNELS):
                if name in vis.targets:
                    value = vis.targets[name]
                    # Unstressed vowels are weaker and smaller (schwa is barely articulated).
                    t[k] = value * (0.75 if reduced and name == "jaw" else 1.0) * (gain if name in GAINED_CHANNELS else 1.0)
                    s[k] = vis.strength * rest * (0.5 if reduced else 1.0) * (vis.loose_factor if name in vis.loose else 1.0)
            centres.append(phone.start + where * dur)
            targets.append(t)
            strengths.append(s)
            durations.append(dur / len(visemes))
            # A held rest reaches less far into the speech around it than a phone does.
            reaches.append(1.0 - (1.0 - PAUSE_REACH) * pause)
    return np.asarray(centres), np.asarray(targets), np.asarray(strengths), np.asarray(durations), np.asarray(reaches)


def lip_channels(
    phones: Sequence[SpokenPhone], times: np.ndarray, style: SpeakingStyle = SpeakingStyle(), gains: Sequence[float] = ()
) -> np.ndarray:
    """Blended channel values (T, len(CHANNELS)) at ``times`` (s, audio clock); ``gains``: see :class:`ProsodyControls`."""
    times = np.asarray(times, dtype=np.float64)
    if not phones:
        return np.zeros((len(times), len(CHANNELS)))
    centres, targets, strengths, durations, reaches = _targets(phones, gains)
    t_all = times + style.lead  # the mouth shows now what is heard a moment later
    out = np.zeros((len(times), len(CHANNELS)))
    # Frames in blocks, each with only the phones that can reach it: a phone's influence falls by
    # e^-50 within 50 time constants of its edges, far below the rest term, so the result is the
    # all-phones sum to float precision in time and memory linear in the length (minutes of
    # speech held a frames × phones matrix of gigabytes).
    slowest = max(max(pair) for pair in TIME_CONSTANTS.values()) * style.coarticulation * float(reaches.max())
    near = 50.0 * slowest
    first, last = centres - 0.35 * durations, centres + 0.35 * durations
    for a in range(0, len(t_all), _BLOCK):
        block = t_all[a : a + _BLOCK]
        keep = (last >= block[0] - near) & (first <= block[-1] + near)
        t = block[:, None]
        for k, name in enumerate(CHANNELS):
            before, after = TIME_CONSTANTS[name]
            tau = t - centres[None, keep]
            # Inside a phone its influence holds; it decays from its edges, more slowly for long phones.
            edge = np.maximum(np.abs(tau) - 0.35 * durations[None, keep], 0.0)
            edge = np.sqrt(edge * edge + _SMOOTH * _SMOOTH) - _SMOOTH
            theta = np.where(tau < 0, before, after) * style.coarticulation * reaches[None, keep]
            dom = strengths[None, keep, k] * np.exp(-edge / theta)
            total = dom.sum(axis=1) + 1e-4  # a whisper of rest keeps the sum defined in long gaps
            out[a : a + _BLOCK, k] = (dom * targets[None, keep, k]).sum(axis=1) / total
    return out


#: Frames per block in :func:`lip_channels`.
_BLOCK = 512


#: Time (s) over which the mouth leaves rest after the first frame and returns to it by the last.
END_RAMP = 0.1


def ends_envelope(n_frames: int, fps: float, ramp: float = END_RAMP) -> np.ndarray:
    """(T,) weights, 0 on the first and last frames and 1 from ``ramp`` inside them (C1 ramps).

    A clip cut in mid-word would otherwise start or end with the mouth open; every channel's
    rest value is 0, so scaling the channels by this puts both ends at rest.
    """
    t = np.arange(n_frames, dtype=np.float64) / fps
    last = (n_frames - 1) / fps
    return smoothstep(t, 0.0, ramp) * smoothstep(last - t, 0.0, ramp)


def lower_face_params(channels: np.ndarray, style: SpeakingStyle = SpeakingStyle()) -> np.ndarray:
    """Channels → rig parameters (T, P): gains applied, left/right split by the subject's asymmetry."""
    c = {name: channels[:, k] for k, name in enumerate(CHANNELS)}
    p = np.zeros((channels.shape[0], len(PARAMETERS)))
    left, right = 1.0 + style.asymmetry, 1.0 - style.asymmetry
    p[:, INDEX["jawOpen"]] = c["jaw"] * style.jaw_gain
    p[:, INDEX["mouthClose"]] = c["close"] * style.closure_gain
    p[:, INDEX["mouthPucker"]] = c["pucker"] * style.round_gain
    p[:, INDEX["mouthFunnel"]] = c["funnel"] * style.round_gain
    p[:, INDEX["mouthRollLower"]] = c["roll"]
    for side, gain in (("Left", left), ("Right", right)):
        p[:, INDEX[f"mouthStretch{side}"]] = c["stretch"] * style.spread_gain * gain
        p[:, INDEX[f"mouthPress{side}"]] = c["press"] * style.closure_gain
        p[:, INDEX[f"mouthUpperUp{side}"]] = c["upper_up"] * gain
        # Spreading lifts the corners a little; a resting smile is part of some faces' style.
        p[:, INDEX[f"mouthSmile{side}"]] = (style.rest_smile + 0.15 * c["stretch"]) * gain
    return np.clip(p, 0.0, 1.0)


def _bump(times: np.ndarray, start: float, rise: float, fall: float) -> np.ndarray:
    """A raised-cosine pulse, exactly zero outside [start, start + rise + fall]."""
    t = times - start
    up = (t >= 0) & (t < rise)
    down = (t >= rise) & (t <= rise + fall)
    out = np.zeros_like(times)
    out[up] = 0.5 - 0.5 * np.cos(np.pi * t[up] / rise)
    out[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - rise) / fall)
    return out


@dataclass(frozen=True)
class UpperFaceEvents:
    """The seeded events behind the upper-face tracks (kept so tests and datacards can see them)."""

    blinks: tuple[tuple[float, float], ...]  # (start, duration) s
    brow_raises: tuple[tuple[float, float], ...]


def upper_face_events(
    phones: Sequence[SpokenPhone],
    duration: float,
    style: SpeakingStyle,
    rng: np.random.Generator,
    prosody: ProsodyControls | None = None,
) -> UpperFaceEvents:
    """Blinks as a Poisson process with a refractory gap; brow raises at phrase starts and on some stressed vowels.

    With ``prosody``, brow raises follow its accents instead of random stressed vowels, and a
    blink follows every phrase end that leaves time for one.
    """
    blinks: list[tuple[float, float]] = []
    rate = max(style.blink_rate, 0.1) / 60.0
    t = float(rng.uniform(0.2, 1.5))
    while t < duration:
        t += float(rng.exponential(1.0 / rate))
        if t >= duration:
            break
        blinks.append((t, float(rng.uniform(0.10, 0.25))))
        t += 0.8
    raises: list[tuple[float, float]] = []
    if prosody is not None:
        for end in prosody.phrase_ends:
            at, dur = end + float(rng.uniform(0.03, 0.12)), float(rng.uniform(0.12, 0.25))
            if at + dur <= duration and all(abs(at - b) > 0.5 for b, _ in blinks):
                blinks.append((at, dur))
        blinks.sort()
        for at, strength in prosody.accents:
            if not raises or at - 0.12 > raises[-1][0] + raises[-1][1]:
                raises.append((max(at - 0.12, 0.0), 0.35 + 0.35 * strength))
        return UpperFaceEvents(tuple(blinks), tuple(raises))
    previous = SIL
    for phone in phones:
        if phone.label in VOWELS:
            phrase_start = previous == SIL
            if phrase_start or (phone.stress == 1 and rng.uniform() < style.brow_probability):
                if not raises or phone.start > raises[-1][0] + raises[-1][1]:
                    raises.append((max(phone.start - 0.12, 0.0), float(rng.uniform(0.35, 0.7))))
        if phone.label != SIL or phone.end - phone.start > 0.15:
            previous = phone.label
    return UpperFaceEvents(tuple(blinks), tuple(raises))


def upper_face_params(
    events: UpperFaceEvents, times: np.ndarray, style: SpeakingStyle, rng: np.random.Generator
) -> np.ndarray:
    """Blink and brow tracks (T, P); exactly zero away from events."""
    times = np.asarray(times, dtype=np.float64) + style.lead
    p = np.zeros((len(times), len(PARAMETERS)))
    for start, dur in events.blinks:
        depth = float(rng.uniform(0.85, 1.0))
        pulse = _bump(times, start, 0.4 * dur, 0.6 * dur) * depth  # fast close, slower open
        p[:, INDEX["eyeBlinkLeft"]] += pulse
        p[:, INDEX["eyeBlinkRight"]] += pulse * (1.0 - 0.3 * abs(style.asymmetry))
    for start, dur in events.brow_raises:
        amp = style.brow_expressiveness * float(rng.uniform(0.5, 1.0))
        pulse = _bump(times, start, 0.35 * dur, 0.65 * dur) * amp
        p[:, INDEX["browInnerUp"]] += pulse
        p[:, INDEX["browOuterUpLeft"]] += pulse * 0.7 * (1.0 + style.asymmetry)
        p[:, INDEX["browOuterUpRight"]] += pulse * 0.7 * (1.0 - style.asymmetry)
    return np.clip(p, 0.0, 1.0)


def animate_phones(
    phones: Sequence[SpokenPhone],
    n_frames: int,
    fps: float,
    style: SpeakingStyle = SpeakingStyle(),
    rng: np.random.Generator | None = None,
    prosody: ProsodyControls | None = None,
    *,
    upper_face: bool = True,
) -> np.ndarray:
    """Rig parameters (n_frames, P) for a phone sequence: lips by coarticulation, upper face by events.

    This is the rig baseline on its own (no learned weights); the corpus uses it as ground truth,
    with the utterance's ``prosody`` (which the rig driven by an aligner does not know).
    ``upper_face`` False leaves blinks and brows at rest.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    times = np.arange(n_frames, dtype=np.float64) / fps
    channels = lip_channels(phones, times, style, prosody.gains if prosody else ()) * ends_envelope(n_frames, fps)[:, None]
    lower = lower_face_params(channels, style)
    if not upper_face:
        return lower
    duration = n_frames / fps
    events = upper_face_events(phones, duration, style, rng, prosody)
    upper = upper_face_params(events, times, style, rng)
    return np.clip(lower + upper, 0.0, 1.0)


def animate_alignment(alignment: Any, n_frames: int, fps: float, *, upper_face: bool = True) -> np.ndarray:
    """:func:`animate_phones` for the phones of an alignment (anything with ``.phones`` of
    label/start/end): the rig driven by an aligner, as the rig baseline, the gate and the rig prior use it."""
    phones = [SpokenPhone(p.label, p.start, p.end) for p in alignment.phones]
    return animate_phones(phones, n_frames, fps, upper_face=upper_face)
