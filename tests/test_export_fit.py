"""Fitting the rig's ARKit-named parameters to vertex motions, checked on motions the rig made."""

from __future__ import annotations

import numpy as np
import pytest

from kmtalk_cli.errors import MotionError
from kmtalk_cli.export.fit import DEFAULT_SMOOTHING, arkit_weights, fit_rig, linear_basis, rig_for
from kmtalk_cli.face.coarticulation import SpokenPhone, animate_phones
from kmtalk_cli.face.rig import INDEX, PARAMETERS, params_from

JAW, CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]
SENTENCE = "SIL HH AH L OW SIL B AA B M EY D AH P AY F AO R DH AH K IH D Z SIL W IY S AO TH R IY F IH SH SIL".split()




def sentence_params(frames: int, fps: float = 30.0, seed: int = 1) -> np.ndarray:
    """Coarticulated lip tracks plus blinks and brow raises for a made-up sentence."""
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(0.06, 0.16, len(SENTENCE))
    lengths[[0, -1]] = 0.3
    edges = np.concatenate([[0.0], np.cumsum(lengths)]) * (frames / fps) / lengths.sum()
    phones = [SpokenPhone(p, edges[i], edges[i + 1], int(p in ("AA", "OW", "AY", "IY"))) for i, p in enumerate(SENTENCE)]
    return animate_phones(phones, frames, fps, rng=rng)


def smooth_random_params(frames: int, seed: int = 0, fps: float = 30.0) -> np.ndarray:
    """Every control on a sum of slow sinusoids, clipped to 0..1 (so bounds are active too)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / fps
    f, phase, amp = (rng.uniform(lo, hi, (4, len(PARAMETERS))) for lo, hi in ((0.1, 1.5), (0, 2 * np.pi), (0.1, 0.4)))
    waves = sum(amp[k] * np.sin(2 * np.pi * f[k] * t + phase[k]) for k in range(4))
    return np.clip(0.35 + waves, 0.0, 1.0)


def errors(fitted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Absolute errors in ARKit's convention: mouthClose counts as far as the jaw lets it show."""
    return np.abs(arkit_weights(fitted) - arkit_weights(true))


def test_linear_basis_is_the_rig_at_full_strength(rig, head):
    basis = linear_basis(rig)
    assert basis.shape == (len(PARAMETERS), head.n_vertices, 3) and basis.dtype == np.float32
    linear = [k for k in range(len(PARAMETERS)) if k not in (JAW, CLOSE)]
    np.testing.assert_allclose(basis[linear], rig.deltas[linear], atol=1e-7)
    np.testing.assert_allclose(basis[JAW], rig.pose(params_from(jawOpen=1)) - rig.rest, atol=1e-7)
    closed = rig.pose(params_from(jawOpen=1, mouthClose=1)) - rig.pose(params_from(jawOpen=1))
    np.testing.assert_allclose(basis[CLOSE], closed, atol=1e-7)
    assert np.abs(basis).max(axis=(1, 2)).min() > 1e-3  # every target moves something


def test_arkit_convention_scales_mouth_close_by_the_jaw():
    w = np.zeros((2, len(PARAMETERS)), dtype=np.float32)
    w[:, JAW], w[:, CLOSE] = (0.5, 0.1), (1.0, 0.4)
    out = arkit_weights(w)
    np.testing.assert_allclose(out[:, CLOSE], [0.5, 0.04], atol=1e-7)
    np.testing.assert_array_equal(np.delete(out, CLOSE, 1), np.delete(w, CLOSE, 1))


def test_recovers_a_coarticulated_sentence(rig, head):
    true = sentence_params(240)
    fit = fit_rig(rig.pose(true), head, 30.0, rig=rig)
    err = errors(fit.weights, true)
    print(f"sentence: max |Δp| {err.max():.4f}, mean {err.mean():.5f}, RMS {fit.residual_mm.mean():.4f} mm, max {fit.max_residual_mm:.3f} mm")
    assert fit.names == PARAMETERS and fit.weights.shape == true.shape and fit.weights.dtype == np.float32
    assert err.max() < 0.05 and err.mean() < 0.002
    opened = true[:, JAW] > 0.2  # where the rig's own mouthClose is visible
    assert np.abs(fit.weights[opened, CLOSE] - true[opened, CLOSE]).max() < 0.05
    assert fit.residual_mm.shape == (240,) and fit.residual_mm.mean() < 0.01 and fit.max_residual_mm < 0.3
    assert fit.morph_max_residual_mm < 1.5  # speech stays within the glTF morph targets' reach


def test_recovers_random_tracks_exactly_without_smoothing(rig, head):
    true = smooth_random_params(150)
    fit = fit_rig(rig.pose(true), head, 30.0, rig=rig, smoothing=0.0)
    err = errors(fit.weights, true)
    assert err.max() < 0.005 and fit.max_residual_mm < 0.02
    opened = true[:, JAW] > 0.2
    assert np.abs(fit.weights[opened, CLOSE] - true[opened, CLOSE]).max() < 0.005
    smoothed = fit_rig(rig.pose(true), head, 30.0, rig=rig)
    assert errors(smoothed.weights, true).max() < 0.06 and smoothed.residual_mm.mean() < 0.01


def test_noise_shows_in_the_residual_not_in_the_weights(rig, head):
    true = sentence_params(150, seed=4)
    noise_mm = 0.3
    noisy = rig.pose(true) + np.random.default_rng(5).normal(0.0, noise_mm / 1000, (150, head.n_vertices, 3))
    fit = fit_rig(noisy, head, 30.0, rig=rig)
    expected = noise_mm * np.sqrt(3)  # RMS length of isotropic per-axis noise
    print(f"noisy: max |Δp| {errors(fit.weights, true).max():.4f}, RMS {fit.residual_mm.mean():.3f} mm (noise {expected:.3f} mm)")
    assert abs(fit.residual_mm.mean() - expected) < 0.05 * expected
    assert errors(fit.weights, true).max() < 0.1 and errors(fit.weights, true).mean() < 0.01


def test_motion_beyond_the_rig_hits_the_bounds_and_shows_in_the_residual(rig, head):
    frames = np.stack([rig.pose(params_from(jawOpen=1.0, browInnerUp=1.0))] * 4)
    frames = rig.rest + 1.5 * (frames - rig.rest)  # half again past full strength
    lips = head.region("lips")
    frames[:, lips, 0] += 0.004  # and a sideways shift no control makes
    fit = fit_rig(frames, head, 30.0, rig=rig)
    assert np.all((fit.weights >= 0) & (fit.weights <= 1))
    assert fit.weights[:, JAW].min() > 0.99 and fit.weights[:, INDEX["browInnerUp"]].min() > 0.99
    assert fit.max_residual_mm > 3.0 and fit.morph_max_residual_mm > 3.0


def test_rest_and_very_short_motions(rig, head):
    for n in (1, 2):
        fit = fit_rig(np.repeat(head.vertices[None], n, axis=0), head, 25.0, rig=rig)
        assert fit.weights.shape == (n, len(PARAMETERS)) and np.abs(fit.weights).max() < 1e-6
        assert fit.max_residual_mm < 1e-6 and fit.fps == 25.0
    one = fit_rig(rig.pose(params_from(jawOpen=0.4, mouthPucker=0.7))[None], head, rig=rig)
    assert abs(one.weights[0, JAW] - 0.4) < 0.01 and abs(one.weights[0, INDEX["mouthPucker"]] - 0.7) < 0.01


def test_another_identity_of_the_bundled_topology_gets_the_bundled_rig(rig, head):
    rng = np.random.default_rng(2)
    wider = head.vertices * np.array([1.08, 1.0, 0.97], dtype=np.float32) + rng.normal(0, 2e-4, head.vertices.shape).astype(np.float32)
    subject = head.with_vertices(wider)  # drops the jaw hinge anchor: no rig of its own
    assert rig_for(subject).n_vertices == head.n_vertices
    true = sentence_params(150, seed=3)
    fit = fit_rig(rig.pose(true, rest=subject.vertices), subject, 30.0)
    assert errors(fit.weights, true).max() < 0.06 and fit.max_residual_mm < 0.3
    on_bundled = fit_rig(rig.pose(true, rest=subject.vertices), head, 30.0, rig=rig)
    assert on_bundled.max_residual_mm > 5.0  # against the wrong identity the offset shows


def test_summary_names_the_residuals(rig, head):
    fit = fit_rig(rig.pose(sentence_params(30)), head, rig=rig)
    assert "RMS error" in fit.summary() and "morph targets" in fit.summary()


def test_bad_inputs(rig, head):
    with pytest.raises(MotionError, match="5080"):
        fit_rig(np.zeros((3, 100, 3)), head, rig=rig)
    with pytest.raises(MotionError, match="positive"):
        fit_rig(np.repeat(head.vertices[None], 2, axis=0), head, 0.0, rig=rig)
    with pytest.raises(MotionError, match="Smoothing"):
        fit_rig(np.repeat(head.vertices[None], 2, axis=0), head, smoothing=-1.0, rig=rig)
    assert DEFAULT_SMOOTHING > 0
