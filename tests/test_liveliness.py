"""The liveliness layer: blinks, brows, head and gaze from a clip's prosody and pauses, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.alignment.types import Alignment, Segment
from kmtalk_cli.face.liveliness import apply_liveliness, liveliness, prosody
from kmtalk_cli.face.rig import INDEX, build_rig

RATE = 16_000
FPS = 30.0


def _voice(duration: float, f0: float, level: float = 0.3) -> np.ndarray:
    """A voiced, vowel-like stretch: harmonics of ``f0`` with a syllable-rate loudness swell."""
    t = np.arange(int(duration * RATE)) / RATE
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    return (level * wave / 2.6 * np.sin(np.pi * t / duration) ** 0.5).astype(np.float32)


def _speech(seconds: float, seed: int = 1) -> tuple[np.ndarray, Alignment]:
    """Words of 0.25–0.5 s at 100–150 Hz (every fifth one higher and louder, an accent),
    in phrases of four to seven words separated by 0.3–0.6 s pauses, and its alignment."""
    rng = np.random.default_rng(seed)
    parts, words, phones, t, n = [], [], [], 0.2, 0
    parts.append(np.zeros(int(0.2 * RATE), np.float32))
    phones.append(Segment("SIL", 0.0, 0.2))
    while t < seconds - 1.5:
        for _ in range(int(rng.integers(4, 8))):
            length = float(rng.uniform(0.25, 0.5))
            accent = n % 5 == 2
            parts.append(_voice(length, 170.0 if accent else float(rng.uniform(100, 130)), 0.6 if accent else 0.3))
            words.append(Segment(f"w{n}", t, t + length))
            phones.append(Segment("AA", t, t + length))
            t += length
            n += 1
        pause = float(rng.uniform(0.3, 0.6))
        parts.append(np.zeros(int(round(pause * RATE)), np.float32))
        phones.append(Segment("SIL", t, t + pause))
        t += pause
    samples = np.concatenate(parts)
    duration = len(samples) / RATE
    phones[-1] = Segment("SIL", phones[-1].start, duration)
    return samples, Alignment(tuple(words), tuple(phones), "textgrid", "forced", None, duration)


@pytest.fixture(scope="module")
def minute():
    return _speech(60.0)



def test_prosody_finds_the_pitch_of_a_voice():
    pros = prosody(np.concatenate([np.zeros(RATE // 2, np.float32), _voice(1.0, 120.0)]), RATE, 45, FPS)
    voiced = pros.voiced
    assert not voiced[:12].any()  # silence is unvoiced
    assert voiced[18:40].mean() > 0.9
    assert np.median(pros.f0[voiced]) == pytest.approx(120.0, rel=0.04)


def test_same_seed_same_face_other_seed_other_face(minute):
    samples, alignment = minute
    n = int(round(len(samples) / RATE * FPS))
    a, b = (liveliness(samples, RATE, alignment, n, FPS, seed=3) for _ in range(2))
    c = liveliness(samples, RATE, alignment, n, FPS, seed=4)
    np.testing.assert_array_equal(a.blink, b.blink)
    np.testing.assert_array_equal(a.brow, b.brow)
    np.testing.assert_array_equal(a.head_pose.rotation, b.head_pose.rotation)
    np.testing.assert_array_equal(a.head_pose.gaze, b.head_pose.gaze)
    assert a.blinks != c.blinks
    assert not np.array_equal(a.head_pose.rotation, c.head_pose.rotation)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_minute_of_speech_blinks_like_a_person(minute, seed):
    samples, alignment = minute
    duration = len(samples) / RATE
    live = liveliness(samples, RATE, alignment, int(round(duration * FPS)), FPS, seed=seed)
    per_minute = len(live.blinks) * 60.0 / duration
    assert 14.0 <= per_minute <= 21.0
    assert all(0.1 <= length <= 0.4 for _, length in live.blinks)
    starts = np.array([s for s, _ in live.blinks])
    assert np.diff(starts).min() >= 0.8
    # More of them fall just after a phrase ends than an even spread would put there.
    near = np.mean([any(0.0 <= s - a <= 0.25 for a, _ in live.boundaries) for s in starts])
    share_of_time = len(live.boundaries) * 0.25 / duration
    assert near > 2 * share_of_time
    # The curve closes the eyes fully during each blink and is 0 between them.
    assert live.blink.max() > 0.9 and np.mean(live.blink == 0.0) > 0.7


def test_brows_and_nods_go_to_pitch_accents(minute):
    samples, alignment = minute
    duration = len(samples) / RATE
    live = liveliness(samples, RATE, alignment, int(round(duration * FPS)), FPS, seed=0)
    accented = [w for i, w in enumerate(alignment.words) if i % 5 == 2]
    found = [t for t, _ in live.accents]
    hits = sum(any(w.start <= t <= w.end for t in found) for w in accented)
    assert hits >= 0.8 * len(accented)
    assert len(found) < 0.5 * len(alignment.words)
    raised = live.brow > 0.1
    on_accent = np.zeros_like(raised)
    for w in accented:
        on_accent[int((w.start - 0.2) * FPS) : int((w.end + 0.4) * FPS)] = True
    assert raised.any() and raised[on_accent].sum() > 0.9 * raised.sum()
    rotation = np.degrees(live.head_pose.rotation)
    assert 0.5 < np.ptp(rotation[:, 0]) < 8.0 and np.abs(rotation).max() < 6.0
    gaze = np.degrees(live.head_pose.gaze)
    assert np.ptp(gaze[:, 0]) > 1.0 and np.abs(gaze).max() < 10.0


def test_blinks_and_brows_move_the_upper_face_only(minute, head):
    samples, alignment = minute
    n = int(round(len(samples) / RATE * FPS))
    live = liveliness(samples, RATE, alignment, n, FPS, seed=0)
    rig = build_rig(head)
    still = np.repeat(head.vertices[None], n, axis=0)
    moved = apply_liveliness(still, rig, live)
    change = np.linalg.norm(moved - still, axis=2)
    assert change[:, head.region("lips")].max() == 0.0
    k = int(np.argmax(live.blink))
    lm = head.landmarks
    assert moved[k, lm[37], 1] - moved[k, lm[41], 1] < 0.3 * (head.vertices[lm[37], 1] - head.vertices[lm[41], 1])
    quiet = (live.blink == 0) & (live.brow == 0)
    assert change[quiet].max() == 0.0


def test_the_pipeline_adds_it_by_default_and_not_when_turned_off(head):
    from kmtalk_cli.audio import from_array
    from kmtalk_cli.pipeline import animate, rig_motion

    samples, alignment = _speech(6.0, seed=2)
    audio = from_array(samples, RATE)
    on = animate(audio, backbone="rig", alignment=alignment, template=head)
    again = animate(audio, backbone="rig", alignment=alignment, template=head)
    off = animate(audio, backbone="rig", alignment=alignment, template=head, liveliness=False)
    other = animate(audio, backbone="rig", alignment=alignment, template=head, seed=9)
    assert off.head_pose is None and on.head_pose is not None and on.head_pose.n_frames == len(on.vertices)
    np.testing.assert_array_equal(on.vertices, again.vertices)
    assert not np.array_equal(on.vertices, other.vertices)
    # Off, the rig baseline is what it always was (its own seeded corpus blinks included).
    np.testing.assert_array_equal(off.vertices, rig_motion(alignment, head, len(off.vertices), off.fps))
    upper = head.region("upper_face")
    assert np.abs(on.vertices[:, upper] - off.vertices[:, upper]).max() > 0.002
    lips = head.region("lips")
    np.testing.assert_array_equal(on.vertices[:, lips], off.vertices[:, lips])


def test_blinks_and_brows_are_added_as_frame_by_frame_sums_were(minute, head):
    samples, alignment = minute
    n = int(round(len(samples) / RATE * FPS))
    live = liveliness(samples, RATE, alignment, n, FPS, seed=0)
    rig = build_rig(head)
    motion = (head.vertices[None] + np.random.default_rng(1).normal(0, 0.001, (n, head.n_vertices, 3))).astype(np.float32)
    expected = motion.copy()  # the first implementation: one frame at a time
    d = rig.deltas
    eyes = d[INDEX["eyeBlinkLeft"]] + d[INDEX["eyeBlinkRight"]]
    brows = d[INDEX["browInnerUp"]] + 0.7 * (d[INDEX["browOuterUpLeft"]] + d[INDEX["browOuterUpRight"]])
    for curve, field in ((live.blink, eyes), (live.brow, brows)):
        cols = np.flatnonzero(np.abs(field).max(axis=1) > 0)
        for r in np.flatnonzero(curve > 0):
            expected[r, cols] += (curve[r] * field[cols]).astype(np.float32)
    out = apply_liveliness(motion, rig, live)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, motion)
    assert apply_liveliness(motion, rig, live, copy=False) is motion
    np.testing.assert_array_equal(motion, expected)
