"""A living upper face at inference: blinks, brow raises, gaze shifts and head motion from the speech.

Learned models predict the mouth; what they cannot learn from a corpus whose upper face is
random (blinks average away under regression) is added here, as production tools do, from
what the speech itself says:

* **prosody** — the voice's F0 (autocorrelation pitch) and loudness per motion frame;
* **pitch accents** — words whose F0 peak and loudness stand out from the speaker's own
  range: brow raises and small head nods go there;
* **phrase boundaries** — the alignment's pauses (or, with no alignment, the quiet stretches):
  blinks cluster there, the gaze returns to the listener at phrase ends and wanders off at
  phrase starts.

Blinks keep human timing: about 15–20 a minute, each 100–400 ms (quick to close, slower to
open). Head rotation follows F0 and loudness slowly, with a drift of a degree or two; gaze
holds fixations of 0.6–2.5 s between quick saccades. Everything is a pure function of
(audio, alignment, frame count, fps, seed): the same seed gives the same face.

Blinks and brows deform the face through the rig's ``eyeBlink*`` and ``brow*`` displacement
fields (:func:`apply_liveliness`); head rotation and gaze are rigid and travel beside the
motion as a :class:`~kmtalk_cli.face.headpose.HeadPose`, never baked into the vertices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .headpose import HeadPose
from .rig import INDEX, Rig

#: Blinks per minute a seed draws its rate from (conversation: about 15–20).
BLINK_RATE = (15.0, 20.0)
#: Blink durations (s), closing and opening together.
BLINK_SECONDS = (0.12, 0.35)
#: Shortest gap (s) between the starts of two blinks.
BLINK_REFRACTORY = 0.8
#: Chance that a phrase boundary gets a blink shortly after the pause begins.
BOUNDARY_BLINK = 0.7
#: A pause at least this long (s) ends a phrase.
PHRASE_PAUSE = 0.15
#: How far (in standard deviations over the clip's words) a word's pitch and loudness must stand out to be an accent.
ACCENT_Z = 0.8
#: Largest brow raise (browInnerUp weight) on the strongest accent.
BROW_PEAK = 0.55
#: Head motion amplitudes (radians): slow drift per axis (pitch, yaw, roll) and a nod per accent.
DRIFT = np.radians([1.0, 1.6, 0.7])
NOD = np.radians(1.6)
#: Head pitch per semitone of F0 above the speaker's median (higher voice, head up).
PITCH_PER_SEMITONE = np.radians(0.12)
#: Gaze: fixation lengths (s) and how far an averted fixation looks (radians, yaw and pitch).
FIXATION = (0.6, 2.5)
GAZE_AWAY = np.radians([7.0, 4.0])
#: F0 search range (Hz) and the normalised autocorrelation a voiced frame must reach.
F0_RANGE = (70.0, 400.0)
VOICING = 0.5


@dataclass(frozen=True)
class Prosody:
    """Per motion frame: F0 in Hz (0 where unvoiced) and loudness in dB (floored 50 dB below the peak)."""

    f0: np.ndarray
    loudness: np.ndarray

    @property
    def voiced(self) -> np.ndarray:
        return self.f0 > 0


@dataclass(frozen=True)
class Liveliness:
    """Curves (T,) for the face — blink and brow weights 0..1 — and the rigid head pose.

    ``blinks``, ``accents`` and ``boundaries`` are the events behind them, in seconds, kept so
    tests and reports can see why the face moved: blinks as (start, duration), accents as
    (time, strength 0..1), boundaries as (pause start, pause end).
    """

    blink: np.ndarray
    brow: np.ndarray
    head_pose: HeadPose
    blinks: tuple[tuple[float, float], ...]
    accents: tuple[tuple[float, float], ...]
    boundaries: tuple[tuple[float, float], ...]


#: Frames analysed together by :func:`prosody`.
_FRAMES_PER_BLOCK = 1024


def prosody(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> Prosody:
    """F0 by normalised autocorrelation and loudness, in a 40 ms window centred on each frame."""
    x = np.asarray(samples).ravel()
    x = x if x.dtype == np.float32 else x.astype(np.float64)  # float32 audio stays so: blocks are widened below
    win = int(round(0.04 * sample_rate))
    centres = np.round(np.arange(n_frames) / fps * sample_rate).astype(int)
    padded = np.pad(x, (win, win))
    size = 1 << int(np.ceil(np.log2(2 * win)))
    lo, hi = int(sample_rate / F0_RANGE[1]), min(int(sample_rate / F0_RANGE[0]), win - 1)
    energy, best, peak = np.zeros(n_frames), np.zeros(n_frames, dtype=np.int64), np.zeros(n_frames)
    window = np.hanning(win)[None, :]
    for a in range(0, n_frames, _FRAMES_PER_BLOCK):  # frames are independent: blocks keep memory flat in the length
        b = min(n_frames, a + _FRAMES_PER_BLOCK)
        idx = centres[a:b, None] + win // 2 + np.arange(win)[None, :]
        frames = padded[np.clip(idx, 0, len(padded) - 1)].astype(np.float64)
        frames = frames - frames.mean(axis=1, keepdims=True)
        energy[a:b] = (frames**2).sum(axis=1)
        spec = np.fft.rfft(frames * window, n=size, axis=1)
        ac = np.fft.irfft(np.abs(spec) ** 2, n=size, axis=1)[:, :win]
        norm = ac[:, lo : hi + 1] / np.maximum(ac[:, :1], 1e-12)
        best[a:b] = norm.argmax(axis=1)
        peak[a:b] = norm[np.arange(b - a), best[a:b]]
    db = 10.0 * np.log10(energy / win + 1e-12)
    loud = np.maximum(db, db.max(initial=-120.0) - 50.0)
    f0 = sample_rate / (lo + best).astype(np.float64)
    voiced = (peak >= VOICING) & (loud > loud.max(initial=0.0) - 35.0)
    return Prosody(np.where(voiced, f0, 0.0), loud)


def _speech_spans(alignment, samples: np.ndarray, sample_rate: int) -> list[tuple[float, float]]:
    """Words (start, end) from the alignment, or quiet-separated stretches of speech without one."""
    if alignment is not None and getattr(alignment, "words", None):
        return [(w.start, w.end) for w in alignment.words]
    if alignment is not None and getattr(alignment, "phones", None):
        from ..alignment.phones import SIL

        return [(p.start, p.end) for p in alignment.phones if p.label != SIL]
    from ..alignment.vad import speech_regions

    return speech_regions(np.asarray(samples, dtype=np.float32), sample_rate)


def phrase_boundaries(spans: Sequence[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Pauses of :data:`PHRASE_PAUSE` or more between the spoken spans, and the silence after the last."""
    out: list[tuple[float, float]] = []
    spans = sorted(spans)
    for (_, end), (start, _) in zip(spans[:-1], spans[1:]):
        if start - end >= PHRASE_PAUSE:
            out.append((end, start))
    if spans and duration - spans[-1][1] >= PHRASE_PAUSE:
        out.append((spans[-1][1], duration))
    return out


def pitch_accents(pros: Prosody, spans: Sequence[tuple[float, float]], fps: float) -> list[tuple[float, float]]:
    """Words whose F0 peak and loudness stand out: (time of the F0 peak, strength 0..1).

    Each word is scored by its peak F0 in semitones and its peak loudness, both z-scored over
    the clip's words (so a low or a quiet voice accents as readily as a high or loud one).
    """
    n = len(pros.f0)
    rows = []
    for start, end in spans:
        a, b = int(np.ceil(start * fps)), min(int(np.floor(end * fps)) + 1, n)  # frames inside the word
        if b - a < 1:
            continue
        f0 = pros.f0[a:b]
        voiced = f0 > 0
        if not voiced.any():
            continue
        k = a + int(np.argmax(np.where(voiced, f0, 0.0)))
        rows.append((k / fps, 12.0 * np.log2(f0[voiced].max()), pros.loudness[a:b].max()))
    if len(rows) < 2:
        return [(t, 0.5) for t, _, _ in rows]
    times, semis, louds = (np.asarray(c, dtype=np.float64) for c in zip(*rows))
    z = lambda v: (v - v.mean()) / max(float(v.std()), 1e-6)  # noqa: E731
    score = 0.6 * z(semis) + 0.4 * z(louds)
    return [(float(t), float(np.clip((s - ACCENT_Z) / 1.5 + 0.3, 0.3, 1.0))) for t, s in zip(times, score) if s > ACCENT_Z]


def _pulse(times: np.ndarray, start: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """Raised-cosine rise, flat hold, raised-cosine fall; exactly 0 outside the event."""
    t = times - start
    out = np.zeros_like(times)
    up = (t >= 0) & (t < rise)
    out[up] = 0.5 - 0.5 * np.cos(np.pi * t[up] / rise)
    out[(t >= rise) & (t < rise + hold)] = 1.0
    down = (t >= rise + hold) & (t <= rise + hold + fall)
    out[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - rise - hold) / fall)
    return out


def blink_events(duration: float, boundaries: Sequence[tuple[float, float]], rng: np.random.Generator) -> list[tuple[float, float]]:
    """Blink (start, duration) pairs: some just after phrase boundaries, the rest spread evenly with jitter.

    The count follows a rate drawn from :data:`BLINK_RATE`, so any minute of speech blinks
    15–20 times whatever its phrasing; the boundaries decide only where some of them fall.
    """
    rate = float(rng.uniform(*BLINK_RATE))
    wanted = int(np.floor(rate * duration / 60.0 + rng.uniform()))
    starts: list[float] = []

    def free(t: float) -> bool:
        return 0.1 <= t <= duration - 0.15 and all(abs(t - s) >= BLINK_REFRACTORY for s in starts)

    for pause_start, pause_end in boundaries:
        t = pause_start + float(rng.uniform(0.03, 0.2))
        if len(starts) < wanted and rng.uniform() < BOUNDARY_BLINK and free(t):
            starts.append(t)
    rest = wanted - len(starts)
    if rest > 0:
        edges = np.linspace(0.2, max(duration - 0.4, 0.2), rest + 1)
        for lo, hi in zip(edges[:-1], edges[1:]):
            for _ in range(8):
                t = float(rng.uniform(lo, hi))
                if free(t):
                    starts.append(t)
                    break
    return [(t, float(rng.uniform(*BLINK_SECONDS))) for t in sorted(starts)]


def _gaze(times: np.ndarray, boundaries: Sequence[tuple[float, float]], rng: np.random.Generator) -> np.ndarray:
    """(T, 2) eye yaw/pitch: fixations on the listener or slightly away, joined by quick saccades.

    At each phrase boundary the eyes come back to the listener; between them they look away on
    some fixations, more often early in a phrase.
    """
    duration = float(times[-1]) if len(times) else 0.0
    targets: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(2))]
    returns = sorted(b[0] for b in boundaries)
    t = 0.0
    while t < duration:
        t += float(rng.uniform(*FIXATION))
        after_return = [r for r in returns if r <= t]
        since = t - (after_return[-1] if after_return else 0.0)
        away = rng.uniform() < (0.6 if since < 1.5 else 0.35)
        target = GAZE_AWAY * rng.uniform(0.3, 1.0, size=2) * rng.choice([-1.0, 1.0], size=2) if away else np.zeros(2)
        targets.append((t, target))
    for r in returns:
        targets.append((r + 0.05, np.zeros(2)))
    targets.sort(key=lambda x: x[0])
    out = np.zeros((len(times), 2))
    saccade = 0.05
    current = np.zeros(2)
    for when, target in targets:
        ramp = np.clip((times - when) / saccade, 0.0, 1.0)
        ramp = ramp * ramp * (3.0 - 2.0 * ramp)
        out += (target - current)[None, :] * ramp[:, None]
        current = target
    return out


def _smooth(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Gaussian smoothing over ``seconds`` (standard deviation), edges held."""
    sigma = max(seconds * fps, 1e-6)
    half = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, half, mode="edge"), k, mode="valid")


def _head_rotation(times: np.ndarray, pros: Prosody, accents: Sequence[tuple[float, float]], fps: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 3) pitch/yaw/roll: a slow drift, the head rising with the voice's pitch, a nod per accent."""
    out = np.zeros((len(times), 3))
    for axis in range(3):
        for _ in range(3):
            freq = float(rng.uniform(0.05, 0.35))
            out[:, axis] += DRIFT[axis] / 3.0 * np.sin(2 * np.pi * freq * times + rng.uniform(0, 2 * np.pi))
    voiced = pros.voiced
    if voiced.any():
        semis = np.zeros(len(times))
        median = np.median(12.0 * np.log2(pros.f0[voiced]))
        semis[voiced] = 12.0 * np.log2(pros.f0[voiced]) - median
        level = _smooth(np.clip(semis, -6.0, 6.0), fps, 0.25)
        out[:, 0] -= PITCH_PER_SEMITONE * level  # higher voice, head tilts up (negative pitch)
    for when, strength in accents:
        out[:, 0] += NOD * strength * _pulse(times, when - 0.08, 0.12, 0.05, 0.3)
    return out


def liveliness(
    samples: np.ndarray, sample_rate: int, alignment, n_frames: int, fps: float, seed: int = 0
) -> Liveliness:
    """The liveliness of one clip: blink and brow curves and a head pose, all from ``seed``.

    ``alignment`` (an :class:`~kmtalk_cli.alignment.Alignment` or None) gives words and pauses;
    without one, quiet stretches of the audio stand in for the pauses.
    """
    rng = np.random.default_rng(seed)
    times = np.arange(n_frames, dtype=np.float64) / fps
    duration = n_frames / fps
    pros = prosody(samples, sample_rate, n_frames, fps)
    spans = _speech_spans(alignment, samples, sample_rate)
    boundaries = phrase_boundaries(spans, duration)
    accents = pitch_accents(pros, spans, fps)

    blinks = blink_events(duration, boundaries, rng)
    blink = np.zeros(n_frames)
    for start, length in blinks:
        depth = float(rng.uniform(0.92, 1.0))
        blink = np.maximum(blink, depth * _pulse(times, start, 0.35 * length, 0.1 * length, 0.55 * length))

    brow = np.zeros(n_frames)
    raises: list[float] = []
    for when, strength in accents:
        if raises and when - raises[-1] < 0.6 or rng.uniform() > 0.8:
            continue
        raises.append(when)
        brow = np.maximum(brow, BROW_PEAK * strength * _pulse(times, when - 0.15, 0.15, 0.1, 0.35))

    pose = HeadPose(fps, _head_rotation(times, pros, accents, fps, rng), _gaze(times, boundaries, rng))
    return Liveliness(blink, brow, pose, tuple(blinks), tuple(accents), tuple(boundaries))


def apply_liveliness(vertices: np.ndarray, rig: Rig, live: Liveliness, *, copy: bool = True) -> np.ndarray:
    """``vertices`` (T, V, 3) with the blinks and brow raises added through the rig's fields;
    ``copy`` False adds them to a float32 ``vertices`` in place.

    The outer brows follow the inner one at 70%, as in a surprised or emphatic raise.
    """
    v = np.array(vertices, dtype=np.float32, copy=True) if copy or np.asarray(vertices).dtype != np.float32 else vertices
    if v.shape[0] != len(live.blink):
        raise ValueError(f"The motion has {v.shape[0]} frames; the liveliness has {len(live.blink)}.")
    d = rig.deltas
    eyes = d[INDEX["eyeBlinkLeft"]] + d[INDEX["eyeBlinkRight"]]
    brows = d[INDEX["browInnerUp"]] + 0.7 * (d[INDEX["browOuterUpLeft"]] + d[INDEX["browOuterUpRight"]])
    for curve, field in ((live.blink, eyes), (live.brow, brows)):
        cols = np.flatnonzero(np.abs(field).max(axis=1) > 0)
        rows = np.flatnonzero(curve > 0)  # only the frames and vertices an event moves
        if len(rows) and len(cols):
            v[np.ix_(rows, cols)] += (np.asarray(curve)[rows, None, None] * field[cols][None]).astype(np.float32)
    return v
