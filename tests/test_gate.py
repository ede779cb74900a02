"""The articulatory gate: closures, the labiodental tuck and rest wherever the phones demand them."""

from __future__ import annotations

import numpy as np

from kmtalk_cli.alignment.types import Alignment, Segment
from kmtalk_cli.face.coarticulation import SpokenPhone, animate_phones
from kmtalk_cli.face.gate import apply_gate, gate_weights, lower_face_mask
from kmtalk_cli.face.rig import lip_gap, params_from

FPS = 30.0
# Speech from the first frame, a bilabial, a labiodental, a 400 ms pause, a short 100 ms gap, an abrupt end.
SPOKEN = [
    ("AA", 0.00, 0.20), ("M", 0.20, 0.30), ("AA", 0.30, 0.50), ("F", 0.50, 0.60), ("AE", 0.60, 0.80),
    ("SIL", 0.80, 1.20), ("AA", 1.20, 1.40), ("SIL", 1.40, 1.50), ("AE", 1.50, 1.80), ("P", 1.80, 1.90), ("AA", 1.90, 2.00),
]




def _alignment() -> Alignment:
    phones = tuple(Segment(label, a, b) for label, a, b in SPOKEN)
    return Alignment((), phones, "textgrid", "forced", None, 2.0)


def _frame(t: float) -> int:
    return int(round(t * FPS))


def test_weights_are_on_through_closures_pauses_and_ends_and_off_in_vowels():
    w = gate_weights(_alignment().phones, 60, FPS)
    assert w[0] == 1.0 and w[-1] == 1.0
    for t in (0.25, 0.55, 1.85):  # M, F, P (the mouth leads the sound by 20 ms)
        assert w[_frame(t - 0.02)] == 1.0
    assert np.all(w[_frame(0.95) : _frame(1.12)] == 1.0)  # 150 ms into the pause, until just before speech
    assert w[_frame(0.40)] < 1e-9 and w[_frame(0.70)] < 0.05 and w[_frame(1.30)] < 1e-9
    assert w[_frame(1.45)] < 1e-9  # a 100 ms gap between words is not a pause
    assert np.abs(np.diff(w)).max() < 0.75  # ramps, not switches


def test_a_mouth_that_never_closes_gets_its_closures_and_rests(head, rig):
    """A 'model' that holds the jaw half open throughout: gated, every m/p closes to within 1 mm
    of the rest gap, f tucks, the pause and both ends rest, and the open vowels are untouched."""
    from kmtalk_cli.pipeline import rig_motion

    alignment = _alignment()
    n = 60
    hanging = np.repeat(rig.pose(params_from(jawOpen=0.35))[None], n, axis=0).astype(np.float32)
    phones = [SpokenPhone(p.label, p.start, p.end) for p in alignment.phones]
    params = animate_phones(phones, n, FPS, upper_face=False)
    w = gate_weights(alignment.phones, n, FPS)
    out = apply_gate(hanging, rig, params, w, lower_face_mask(rig), chunk=7)
    target = rig_motion(alignment, head, n, FPS, rig=rig, upper_face=False)
    gated, full = w > 0.999, lower_face_mask(rig) > 0.999
    assert full[head.landmarks[48:68]].all()
    np.testing.assert_allclose(out[gated][:, full], target[gated][:, full], atol=2e-5)
    lm = head.landmarks
    rest = float(lip_gap(head.vertices, lm))
    gap = lip_gap(out, lm)
    before = lip_gap(hanging, lm)
    assert before.min() > rest + 0.005
    for label, a, b in SPOKEN:
        frames = gap[_frame(a) : _frame(b) + 1]
        if label in ("M", "P"):
            assert frames.min() < rest + 0.001, label
        if label == "F":
            assert frames.min() < 0.5 * before[0], label
    assert np.all(np.abs(gap[_frame(0.95) : _frame(1.12)] - rest) < 0.001)
    assert abs(gap[0] - rest) < 1e-4 and abs(gap[-1] - rest) < 1e-4
    np.testing.assert_array_equal(out[_frame(0.40)], hanging[_frame(0.40)])
    # The upper face is never touched.
    upper = head.region("upper_face")
    np.testing.assert_array_equal(out[:, upper], hanging[:, upper])


def test_bundled_model_rests_and_closes_with_the_gate_and_not_without(head):
    from kmtalk_cli.audio import from_array
    from kmtalk_cli.pipeline import animate

    rng = np.random.default_rng(0)
    t = np.arange(32_000) / 16_000
    voice = np.sin(2 * np.pi * 120 * t) * (0.2 + 0.1 * rng.standard_normal(len(t)))
    for label, a, b in SPOKEN:
        if label == "SIL":
            voice[int(a * 16_000) : int(b * 16_000)] = 0.0
    audio = from_array(voice.astype(np.float32), 16_000)
    gated = animate(audio, alignment=_alignment(), template=head, liveliness=False)
    plain = animate(audio, alignment=_alignment(), template=head, liveliness=False, gate=False)
    lm = head.landmarks
    rest = float(lip_gap(head.vertices, lm))
    g, p = lip_gap(gated.vertices, lm), lip_gap(plain.vertices, lm)
    assert abs(g[0] - rest) < 1e-4 and abs(g[-1] - rest) < 1e-4
    assert np.all(np.abs(g[_frame(0.95) : _frame(1.12)] - rest) < 0.001)
    for label, a, b in SPOKEN:
        if label in ("M", "P"):
            assert g[_frame(a) : _frame(b) + 1].min() < rest + 0.001
    assert not np.allclose(g, p)
    np.testing.assert_array_equal(gated.vertices[_frame(0.40)], plain.vertices[_frame(0.40)])


def _gate_by_full_pose(vertices, rig, params, weights, mask, rest=None):
    """The gate as first written: every vertex posed exactly in float64, blended in float64."""
    out = np.array(vertices, dtype=np.float32, copy=True)
    cols, rows = np.flatnonzero(mask > 0), np.flatnonzero(weights > 0)
    target = rig.pose(params[rows], rest=rest)[:, cols]
    block = out[rows][:, cols].astype(np.float64)
    out[np.ix_(rows, cols)] = (block + (weights[rows, None] * mask[None, cols])[..., None] * (target - block)).astype(np.float32)
    return out


def test_gate_matches_the_exact_full_pose_within_a_tenth_of_a_micrometre_in_place_or_not(head, rig):
    rng = np.random.default_rng(3)
    n = 60
    motion = (head.vertices[None] + rng.normal(0, 0.002, (n, head.n_vertices, 3))).astype(np.float32)
    params = animate_phones([SpokenPhone(p.label, p.start, p.end) for p in _alignment().phones], n, FPS, upper_face=False)
    params[:, 1] = rng.random(n)  # mouthClose everywhere: the jaw weight's closed-lip branch is used too
    w, mask = gate_weights(_alignment().phones, n, FPS), lower_face_mask(rig)
    rest = head.vertices + 0.001
    expected = _gate_by_full_pose(motion, rig, params, w, mask, rest)
    out = apply_gate(motion, rig, params, w, mask, rest=rest, chunk=7)
    assert np.abs(out - expected).max() < 1e-7 and np.abs(out - motion).max() > 1e-3
    inplace = motion.copy()
    assert apply_gate(inplace, rig, params, w, mask, rest=rest, copy=False) is inplace
    np.testing.assert_array_equal(inplace, out)


def test_inexact_rig_pose_is_the_exact_one_in_float32(rig):
    params = np.random.default_rng(4).random((9, len(rig.names)))
    fast = rig.pose(params, exact=False)
    assert fast.dtype == np.float32 and np.abs(fast - rig.pose(params)).max() < 1e-7
    still = rig.pose(np.zeros((2, len(rig.names))), exact=False)  # a face at rest stays exactly at rest
    np.testing.assert_array_equal(still, np.broadcast_to(rig.rest.astype(np.float32), still.shape))
