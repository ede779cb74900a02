"""Rig parameters from any vertex motion: bounded, temporally smoothed least squares.

Users drive their own characters with ARKit-named weights, but models and captures give vertex
positions. The rig's 20 controls are named after ARKit blendshapes, so fitting them to a motion
frame by frame turns any motion into weights a character rig can play.

Method, all frames at once (a 10 s clip takes a fraction of a second):

1. Linear fit: the motion's displacements are projected on :func:`linear_basis`, the fields the
   glTF morph targets carry. These are the morph weights: the best a linear player can do.
2. Gauss–Newton on the rig itself, started from them, because the jaw is a rotation and
   ``mouthClose`` acts only through it. Rotations about the hinge keep dot products, so the
   Gram matrix of the linear controls is one constant and their coupling to the jaw is
   polynomial in the parameters; per frame only the jaw's own terms touch the vertices.
3. Every step is one box-constrained quadratic problem over all frames (0 ≤ p ≤ 1) with a
   penalty on the acceleration of the fitted vertices (a light low-pass, see
   :data:`DEFAULT_SMOOTHING`), solved by a primal–dual active-set method, one banded Cholesky
   factorisation per pass.

``mouthClose`` has two conventions. In the rig (``RigFit.weights``) it is the share of lip
closure while the jaw is open, undefined when the jaw is shut. ARKit rigs and linear morph
targets expect ``mouthClose ≤ jawOpen`` instead: the shape closes the lips of a fully open jaw
and is scaled with it. :func:`arkit_weights` converts the first to the second.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import MotionError, TemplateError
from ..face.rig import CLOSED_LIP_WEIGHT, INDEX, Rig, build_rig
from ..face.template import FaceTemplate

#: Weight λ of the squared acceleration of the fitted vertices against their squared error.
#: As a filter it passes 1/(1+λμ²) of each frequency (μ = 2 − 2cos ω per frame): 0.97 at the
#: Nyquist frequency, 0.99 at half of it. Kept light on purpose (measured): vertex noise
#: barely reaches the weights, since each frame averages thousands of vertices, while
#: heavier smoothing bends the rig's fastest closures (λ = 0.02 errs by 0.08 on them).
DEFAULT_SMOOTHING = 0.002
#: At most this many Gauss–Newton steps after the linear fit (one or two are usual).
MAX_STEPS = 6
#: The refinement ends when no parameter moves by more than STEP_TOLERANCE in a step, when a
#: step lowers the objective by less than RELATIVE_TOLERANCE of itself, or when the quadratic
#: model predicted the step's decrease to within MODEL_TOLERANCE of the objective left (the
#: next step then gains ~1e-4 of it: measured on rig-made, noisy and jittered motions).
STEP_TOLERANCE = 5e-3
RELATIVE_TOLERANCE = 1e-3
MODEL_TOLERANCE = 1e-2
#: Ridge (relative to each control's size) that keeps unobservable parameters at zero.
RIDGE = 1e-6
#: Frames evaluated together, so long clips need memory for this many frames, not all.
CHUNK_FRAMES = 256
#: Below this jawOpen, mouthClose has no visible effect and starts at zero.
_JAW_FLOOR = 0.02

_JAW = INDEX["jawOpen"]
_CLOSE = INDEX["mouthClose"]


@dataclass(frozen=True, eq=False)
class RigFit:
    """Rig parameters fitted to a motion, and how well they reproduce it (millimetres)."""

    names: tuple[str, ...]
    weights: np.ndarray  # (T, P) float32: the rig's parameters, 0..1
    residual_mm: np.ndarray  # (T,) RMS vertex error per frame over the face region
    max_residual_mm: float  # largest single-vertex error over the face region, any frame
    fps: float
    #: (T, P) float32: weights of :func:`linear_basis` as linear morph targets (a glTF), the
    #: least-squares best for linear playback of this template.
    morph_weights: np.ndarray
    #: ``max_residual_mm`` for linear playback of ``morph_weights`` (adds the jaw's curvature).
    morph_max_residual_mm: float

    @property
    def n_frames(self) -> int:
        return int(self.weights.shape[0])

    @property
    def arkit_weights(self) -> np.ndarray:
        """The rig's parameters in ARKit's convention (see :func:`arkit_weights`)."""
        return arkit_weights(self.weights)

    def summary(self) -> str:
        """One line for the console: how closely the rig reproduces the motion."""
        return (
            f"Rig fit, {self.n_frames} frames: RMS error {float(np.mean(self.residual_mm)):.3f} mm "
            f"(worst frame {float(np.max(self.residual_mm)):.3f} mm), largest vertex error "
            f"{self.max_residual_mm:.2f} mm ({self.morph_max_residual_mm:.2f} mm as linear morph targets)."
        )


def arkit_weights(weights: np.ndarray) -> np.ndarray:
    """Rig parameters (…, P) → ARKit's convention: ``mouthClose`` scaled by ``jawOpen``.

    The rig's ``mouthClose`` closes a share of whatever opening the jaw makes; ARKit's (and
    the :func:`linear_basis` target's) closes a fully open jaw, so its weight is the product.
    """
    out = np.array(weights, dtype=np.float32, copy=True)
    out[..., _CLOSE] *= out[..., _JAW]
    return out


def linear_basis(rig: Rig) -> np.ndarray:
    """Displacement of each control at full strength, (P, V, 3) float32: the morph targets.

    ``pose(e_k) − rest`` for every control except ``mouthClose``, which on its own moves
    nothing: its target is ``pose(jawOpen=1, mouthClose=1) − pose(jawOpen=1)``.
    """
    return _basis64(rig).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _basis64(rig: Rig) -> np.ndarray:
    p = len(rig.names)
    unit = np.eye(p)
    posed = rig.pose(np.vstack([unit, unit[_JAW] + unit[_CLOSE]]))
    basis = posed[:p] - rig.rest[None]
    basis[_CLOSE] = posed[p] - posed[_JAW]
    return basis


@dataclass(frozen=True, eq=False)
class _Model:
    """What the solver needs from a rig, on the vertices some control moves (M of them).

    Per-vertex arrays are float32 and axis-major (all x, then all y, then all z), so one
    matrix product handles all three axes.
    """

    moving: np.ndarray  # (M,) vertex indices
    linear: np.ndarray  # (L,) indices of the linear controls
    deltas: np.ndarray  # (L, 3M) their fields
    gram: np.ndarray  # (L, L) their constant Gram matrix
    rest: np.ndarray  # (3M,) rest shape relative to the hinge
    hinge: np.ndarray  # (3,) float32
    jaw_weight: np.ndarray  # (M,)
    close_shift: np.ndarray  # (M,) change of jaw weight under full mouthClose
    max_jaw: float
    # Jᵀ J between the linear controls and the jaw is polynomial in the parameters:
    # a + c·b + x·(C + c·E)ᵀ (x the linear controls, c mouthClose), precomputed here.
    cross_a: np.ndarray  # (L,)
    cross_b: np.ndarray  # (L,)
    cross_c: np.ndarray  # (L, L)
    cross_e: np.ndarray  # (L, L)
    basis: np.ndarray  # (P, 3M) the linear basis
    metric: np.ndarray  # (P, P) its Gram matrix: vertex-space units for smoothing


@functools.lru_cache(maxsize=4)
def _model(rig: Rig) -> _Model:
    basis = _basis64(rig)
    moving = np.flatnonzero((np.abs(basis).max(axis=(0, 2)) > 0) | (rig.jaw_weight > 0))
    if moving.size == 0:
        raise TemplateError("The rig moves no vertex; there is nothing to fit.")
    linear = np.asarray([k for k in range(len(rig.names)) if k not in (_JAW, _CLOSE)])
    fields = rig.deltas[linear][:, moving]
    flat_basis = basis[:, moving].transpose(0, 2, 1).reshape(len(rig.names), -1)
    rest = rig.rest[moving] - rig.hinge[None]
    jaw_weight = rig.jaw_weight[moving]
    close_shift = rig.close_mask[moving] * (CLOSED_LIP_WEIGHT - jaw_weight)
    dy, dz = fields[..., 1], fields[..., 2]
    # D_k · (0, −u_z, u_y): the linear fields against the jaw's quarter-turned points.
    turn_rest = dz * rest[None, :, 1] - dy * rest[None, :, 2]
    turn_pair = dz[:, None] * dy[None] - dy[:, None] * dz[None]
    as32 = functools.partial(np.ascontiguousarray, dtype=np.float32)
    return _Model(
        moving=moving,
        linear=linear,
        deltas=as32(fields.transpose(0, 2, 1).reshape(len(linear), -1)),
        gram=np.einsum("kmc,lmc->kl", fields, fields),
        rest=as32(rest.T.ravel()),
        hinge=as32(rig.hinge),
        jaw_weight=as32(jaw_weight),
        close_shift=as32(close_shift),
        max_jaw=float(rig.max_jaw),
        cross_a=turn_rest @ jaw_weight,
        cross_b=turn_rest @ close_shift,
        cross_c=turn_pair @ jaw_weight,
        cross_e=turn_pair @ close_shift,
        basis=as32(flat_basis),
        metric=flat_basis @ flat_basis.T,
    )


def _hinge_relative(model: _Model, vertices: np.ndarray) -> np.ndarray:
    """The motion on the moving vertices, hinge-relative and axis-major: (T, 3M) float32."""
    out = np.empty((len(vertices), 3 * model.moving.size), dtype=np.float32)
    for frames in _chunks(len(vertices)):
        chunk = vertices[frames][:, model.moving] - model.hinge
        out[frames] = chunk.transpose(0, 2, 1).reshape(len(chunk), -1)
    return out


def _chunks(n_frames: int) -> Iterator[slice]:
    """Frame ranges evaluated together, so temporaries stay the size of one chunk."""
    for start in range(0, n_frames, CHUNK_FRAMES):
        yield slice(start, min(start + CHUNK_FRAMES, n_frames))


def _axis_sum_sq(values: np.ndarray, m: int) -> np.ndarray:
    """Squared vertex lengths (T, M) from axis-major coordinates (T, 3M)."""
    x, y, z = values[:, :m], values[:, m : 2 * m], values[:, 2 * m :]
    return x * x + y * y + z * z


# --------------------------------------------------------------------------------------------
# Banded box-constrained quadratic programs over all frames
# --------------------------------------------------------------------------------------------


def _second_difference_bands(t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diagonals 0, 1, 2 of DᵀD for the (T−2)×T second-difference operator D."""
    idx = np.arange(t, dtype=float)
    main = (idx <= t - 3) + 4.0 * ((idx >= 1) & (idx <= t - 2)) + (idx >= 2)
    first = -2.0 * (idx[:-1] <= t - 3) - 2.0 * ((idx[:-1] >= 1) & (idx[:-1] <= t - 2))
    return main, first, np.ones(max(t - 2, 0))


def _banded_system(hessians: np.ndarray, metric: np.ndarray, smooth: float) -> np.ndarray:
    """Lower band storage of blockdiag(H_t) + λ·(DᵀD ⊗ S) + ridge·diag(S), frame-major.

    S is the basis Gram matrix, so the penalty is the squared acceleration of the fitted
    vertices: the filter acts the same on every direction, however well the motion observes it.
    """
    t, p, _ = hessians.shape
    n = t * p
    blocks = hessians + RIDGE * np.diag(np.diag(metric))[None]
    coupling: list[tuple[int, np.ndarray]] = []
    if smooth > 0 and t >= 3:
        main, first, second = _second_difference_bands(t)
        blocks = blocks + smooth * main[:, None, None] * metric[None]
        coupling = [(1, first), (2, second)]
    ab = np.zeros((3 * p if coupling else p, n))
    for d in range(p):
        ab[d].reshape(t, p)[:, : p - d] = np.diagonal(blocks, offset=-d, axis1=1, axis2=2)
    # Block (t + lag, t) holds λ·K[t, t + lag]·S: entry (k, l) sits at band lag·P + k − l, column tP + l.
    for lag, band in coupling:
        cols = (t - lag) * p
        for k in range(p):
            for l in range(p):
                ab[lag * p + k - l, l : cols : p] += smooth * metric[k, l] * band
    return ab


def _band_matvec(ab: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A @ x for a symmetric matrix in lower band storage."""
    y = ab[0] * x
    for d in range(1, ab.shape[0]):
        y[d:] += ab[d, :-d] * x[:-d]
        y[:-d] += ab[d, :-d] * x[d:]
    return y


Active = tuple[np.ndarray, np.ndarray]


def _box_qp(ab: np.ndarray, f: np.ndarray, active: Active | None = None, max_iter: int = 30) -> tuple[np.ndarray, Active]:
    """argmin ½xᵀAx − fᵀx over 0 ≤ x ≤ 1 (primal–dual active set; A banded SPD).

    Each pass fixes the variables whose bound is active, solves for the rest with the active
    rows and columns replaced by identity (the band survives), and updates the multipliers.
    ``active`` (the variables at their upper and lower bound) is the first guess; the answer
    returns the final one, so the next Gauss–Newton step starts where this one ended.
    """
    from scipy.linalg import solveh_banded  # here, not at the top: the gate and liveliness use this module's rig, not its solver

    diag = ab[0]
    upper, lower = active if active is not None else (np.zeros(f.shape, dtype=bool), f < 0)
    for _ in range(max_iter):
        fixed = upper | lower
        x_fixed = upper.astype(float)
        rhs = f - _band_matvec(ab, x_fixed)
        rhs[fixed] = x_fixed[fixed]
        reduced = ab.copy()
        for d in range(1, ab.shape[0]):
            reduced[d, :-d][fixed[:-d] | fixed[d:]] = 0.0
        reduced[0][fixed] = 1.0
        x = solveh_banded(reduced, rhs, lower=True, check_finite=False)
        x[fixed] = x_fixed[fixed]
        mu = np.where(fixed, f - _band_matvec(ab, x), 0.0)
        new_upper = mu + diag * (x - 1.0) > 0
        new_lower = mu + diag * x < 0
        if np.array_equal(new_upper, upper) and np.array_equal(new_lower, lower):
            break
        upper, lower = new_upper, new_lower
    return np.clip(x, 0.0, 1.0), (upper, lower)


# --------------------------------------------------------------------------------------------
# The rig as a function of its parameters, and its Gauss–Newton linearisation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Errors:
    """Per-frame squared vertex errors over the face's fitted vertices: sum and largest."""

    sum_sq: np.ndarray  # (T,)
    max_sq: np.ndarray  # (T,)


@dataclass(frozen=True)
class _State:
    """The rig evaluated at one set of parameters: objective, Jᵀ J blocks, Jᵀ r and errors."""

    params: np.ndarray  # (T, P) float64
    objective: float
    hessians: np.ndarray  # (T, P, P)
    gradient: np.ndarray  # (T, P)
    errors: _Errors


def _evaluate(model: _Model, targets: np.ndarray, face: np.ndarray, params: np.ndarray, smooth: float) -> _State:
    """Pose the rig at ``params`` (T, P) against the motion (:func:`_hinge_relative`); ``face`` masks the M moving vertices.

    The pose is ``R(θ)·u``: ``u`` the rest plus the linear fields, θ the per-vertex jaw angle.
    Rotations keep dot products, so Jᵀr of a linear control is ``D_k·Rᵀr`` and their Gram
    block is constant; the jaw's and close's columns are ``∂θ·q``, q the rotated point turned
    a quarter turn about the hinge axis.
    """
    t, p = params.shape
    m = model.jaw_weight.size
    lin = model.linear
    x, close, jaw = params[:, lin], params[:, _CLOSE, None], params[:, _JAW, None]
    toward_close = model.cross_b[None] + x @ model.cross_e.T
    h = np.zeros((t, p, p))
    h[:, lin[:, None], lin[None, :]] = model.gram
    h[:, lin, _JAW] = h[:, _JAW, lin] = model.max_jaw * (model.cross_a[None] + x @ model.cross_c.T + close * toward_close)
    h[:, lin, _CLOSE] = h[:, _CLOSE, lin] = model.max_jaw * jaw * toward_close
    g = np.zeros((t, p))
    sum_sq, max_sq = np.zeros(t), np.zeros(t)
    data = 0.0
    max_jaw = np.float32(model.max_jaw)
    p32 = params.astype(np.float32)
    for frames in _chunks(t):
        target = targets[frames]
        pc = p32[frames]
        jaw32 = pc[:, _JAW, None]
        weight = model.jaw_weight[None] + pc[:, _CLOSE, None] * model.close_shift[None]
        angle = jaw32 * max_jaw * weight
        cos, sin = np.cos(angle), np.sin(angle)
        u = model.rest[None] + pc[:, lin] @ model.deltas
        ux, uy, uz = u[:, :m], u[:, m : 2 * m], u[:, 2 * m :]
        ry = uy * cos - uz * sin
        rz = uy * sin + uz * cos
        res_x, res_y, res_z = target[:, :m] - ux, target[:, m : 2 * m] - ry, target[:, 2 * m :] - rz
        residual_sq = res_x * res_x + res_y * res_y + res_z * res_z
        data += 0.5 * float(residual_sq.sum(dtype=np.float64))
        on_face = residual_sq[:, face]
        sum_sq[frames] = on_face.sum(axis=1, dtype=np.float64)
        max_sq[frames] = on_face.max(axis=1, initial=0.0)

        back = np.concatenate([res_x, res_y * cos + res_z * sin, res_z * cos - res_y * sin], axis=1)
        g[frames][:, lin] = back @ model.deltas.T
        s_jaw = max_jaw * weight
        s_close = jaw32 * max_jaw * model.close_shift[None]
        q_dot_r = ry * res_z - rz * res_y
        radius_sq = uy * uy + uz * uz
        g[frames, _JAW] = np.einsum("tm,tm->t", s_jaw, q_dot_r)
        g[frames, _CLOSE] = np.einsum("tm,tm->t", s_close, q_dot_r)
        h[frames, _JAW, _JAW] = np.einsum("tm,tm->t", s_jaw * s_jaw, radius_sq)
        h[frames, _CLOSE, _CLOSE] = np.einsum("tm,tm->t", s_close * s_close, radius_sq)
        h[frames, _JAW, _CLOSE] = h[frames, _CLOSE, _JAW] = np.einsum("tm,tm->t", s_jaw * s_close, radius_sq)
    objective = data + _penalty(params, model.metric, smooth)
    return _State(params, objective, h, g, _Errors(sum_sq, max_sq))


def _penalty(params: np.ndarray, metric: np.ndarray, smooth: float) -> float:
    """The smoothing and ridge terms of the objective."""
    value = 0.5 * RIDGE * float(np.sum(params * params * np.diag(metric)))
    if smooth > 0 and len(params) >= 3:
        accel = params[2:] - 2.0 * params[1:-1] + params[:-2]
        value += 0.5 * smooth * float(np.einsum("tk,kl,tl->", accel, metric, accel))
    return value


def _linear_fit(model: _Model, targets: np.ndarray, face: np.ndarray, smooth: float) -> tuple[np.ndarray, _Errors, Active]:
    """Weights (T, P) of the linear basis that best reproduce the motion (the morph weights)."""
    t, m = len(targets), model.jaw_weight.size
    f = np.zeros((t, model.basis.shape[0]))
    for frames in _chunks(t):
        f[frames] = (targets[frames] - model.rest[None]) @ model.basis.T
    ab = _banded_system(np.broadcast_to(model.metric, (t, *model.metric.shape)), model.metric, smooth)
    solution, active = _box_qp(ab, f.ravel())
    weights = solution.reshape(t, -1)
    sum_sq, max_sq = np.zeros(t), np.zeros(t)
    played = weights.astype(np.float32)
    for frames in _chunks(t):
        on_face = _axis_sum_sq(targets[frames] - model.rest[None] - played[frames] @ model.basis, m)[:, face]
        sum_sq[frames] = on_face.sum(axis=1, dtype=np.float64)
        max_sq[frames] = on_face.max(axis=1, initial=0.0)
    return weights, _Errors(sum_sq, max_sq), active


def _rig_start(morph: np.ndarray) -> np.ndarray:
    """Morph weights as a first guess of rig parameters: mouthClose back to the rig's share."""
    w = morph.copy()
    jaw = w[:, _JAW]
    w[:, _CLOSE] = np.where(jaw > _JAW_FLOOR, np.clip(w[:, _CLOSE] / np.maximum(jaw, 1e-9), 0.0, 1.0), 0.0)
    return w


def _refine(model: _Model, targets: np.ndarray, face: np.ndarray, params: np.ndarray, active: Active, smooth: float) -> _State:
    """Gauss–Newton with step halving; every step a banded box-constrained QP."""
    state = _evaluate(model, targets, face, params, smooth)
    for _ in range(MAX_STEPS):
        ab = _banded_system(state.hessians, model.metric, smooth)
        f = np.einsum("tpq,tq->tp", state.hessians, state.params) + state.gradient
        solution, active = _box_qp(ab, f.ravel(), active)
        proposal = solution.reshape(state.params.shape)
        candidate = _evaluate(model, targets, face, proposal, smooth)
        halvings = 0
        while candidate.objective > state.objective and halvings < 4:
            candidate = _evaluate(model, targets, face, 0.5 * (candidate.params + state.params), smooth)
            halvings += 1
        if candidate.objective > state.objective:
            break
        step = float(np.max(np.abs(candidate.params - state.params)))
        gain = state.objective - candidate.objective
        predicted = _quadratic(ab, f, state.params) - _quadratic(ab, f, candidate.params)
        state = candidate
        if step < STEP_TOLERANCE or gain < RELATIVE_TOLERANCE * state.objective:
            break
        if halvings == 0 and abs(gain - predicted) <= MODEL_TOLERANCE * state.objective:
            break
    return state


def _quadratic(ab: np.ndarray, f: np.ndarray, params: np.ndarray) -> float:
    """½xᵀAx − fᵀx: the Gauss–Newton model of the objective, up to a constant."""
    x = params.ravel()
    return 0.5 * float(x @ _band_matvec(ab, x)) - float(f.ravel() @ x)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def rig_for(template: FaceTemplate) -> Rig:
    """The rig on ``template``: built on it when it carries the rig's extras (landmarks, jaw
    weight and hinge), else the bundled head's rig moved onto its rest shape, when the
    topology is the bundled head's (a templates.pkl subject, a corpus identity)."""
    from ..face.template import bundled_template

    try:
        return build_rig(template)
    except TemplateError:
        bundled = bundled_template()
        if template.n_vertices != bundled.n_vertices or template is bundled:
            raise
        return _on_rest(build_rig(bundled), template)


def _on_rest(rig: Rig, template: FaceTemplate) -> Rig:
    """The same controls on the template's own rest shape (the rig's fields are offsets)."""
    rest = np.asarray(template.vertices, dtype=np.float64)
    return rig if np.array_equal(rig.rest, rest) else dataclasses.replace(rig, rest=rest)


def _face_region(template: FaceTemplate) -> np.ndarray:
    """Where residuals are measured: the template's ``face`` region, else every vertex."""
    face = template.regions.get("face")
    return np.asarray(face) if face is not None and len(face) else np.arange(template.n_vertices)


#: Largest smoothing λ accepted: far past it the fit is a still face and the solver's numbers overflow.
MAX_SMOOTHING = 10.0


def fit_rig(
    vertices: np.ndarray,
    template: FaceTemplate,
    fps: float = 30.0,
    *,
    rig: Rig | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
) -> RigFit:
    """Fit the rig's parameters to a motion (T, V, 3) in the template's vertex order.

    ``rig`` defaults to :func:`rig_for` the template; pass one to reuse it (it is moved onto
    the template's rest shape if it was built on another identity). ``smoothing`` is λ of
    :data:`DEFAULT_SMOOTHING` (0 turns smoothing off).
    """
    v = np.asarray(vertices, dtype=np.float32)
    if v.ndim != 3 or v.shape[1:] != (template.n_vertices, 3) or v.shape[0] == 0:
        raise MotionError(f"The motion has shape {v.shape}; fitting needs (T, {template.n_vertices}, 3) for template {template.name}.")
    if not fps > 0:
        raise MotionError(f"Frames per second must be positive, got {fps}.")
    if not 0 <= smoothing <= MAX_SMOOTHING:
        raise MotionError(f"Smoothing must be between 0 and {MAX_SMOOTHING:g}; got {smoothing:g}.")
    rig = rig if rig is not None else rig_for(template)
    if rig.n_vertices != template.n_vertices:
        raise TemplateError(f"The rig has {rig.n_vertices} vertices but template {template.name} has {template.n_vertices}.")
    rig = _on_rest(rig, template)
    model = _model(rig)
    region = _face_region(template)
    face = np.isin(model.moving, region)
    # Face vertices no control moves: their error is their displacement, whatever the fit.
    still = np.setdiff1d(region, model.moving)
    still_sq = np.sum((v[:, still] - rig.rest[still].astype(np.float32)) ** 2, axis=-1)
    still_sum = still_sq.sum(axis=1, dtype=np.float64)
    still_max = still_sq.max(axis=1, initial=0.0)

    targets = _hinge_relative(model, v)
    morph, morph_errors, active = _linear_fit(model, targets, face, float(smoothing))
    state = _refine(model, targets, face, _rig_start(morph), active, float(smoothing))
    errors = state.errors
    rms = np.sqrt((errors.sum_sq + still_sum) / len(region))
    return RigFit(
        names=tuple(rig.names),
        weights=state.params.astype(np.float32),
        residual_mm=(1000.0 * rms).astype(np.float32),
        max_residual_mm=1000.0 * math.sqrt(float(np.max(np.maximum(errors.max_sq, still_max)))),
        fps=float(fps),
        morph_weights=morph.astype(np.float32),
        morph_max_residual_mm=1000.0 * math.sqrt(float(np.max(np.maximum(morph_errors.max_sq, still_max)))),
    )
