"""An articulatory rig on a face template: a few named controls, each a smooth displacement field.

The synthetic corpus needs faces that move like speaking faces without any captured data, and
users need a rig whose controls they recognise, so every control carries the name of its
nearest ARKit blendshape and takes values in 0..1. Fields are derived from the template's
landmarks, regions and jaw weight by geometry alone (nothing is painted by hand), so the rig
follows the template it is built on.

Everything except the jaw is a linear blendshape. The jaw is a rotation about the hinge axis,
weighted per vertex; ``mouthClose`` blends that weight, around the lips, towards one common
value, so the lips stay together while the jaw drops (bilabials in open-vowel context).

On the bundled head the controls combine without turning a triangle over: every control, pair
and triple of controls at its maximum, all of them at once, all but any one, and dense random
settings (see tests/test_rig.py). The jaw lever is long (about 11 cm from the hinge to the
lips), so an uneven step of the jaw weight across a thin lip triangle becomes a fold as soon as
other controls squeeze that triangle too; hence the lip-shape fields below do not inherit the
weight's ramps, and the ramps themselves start gently. Known limit: with the jaw fully open and
three more controls at full, both rounding shapes among them, one sliver of the lower lip or of
a mouth corner can still turn over (3 of those 969 poses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TemplateError
from .template import FaceTemplate

#: The controls, in the column order of every parameter array.
PARAMETERS: tuple[str, ...] = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthRollLower",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "browDownLeft",
    "browDownRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
)
INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAMETERS)}
#: Controls that move only the lower face / only the upper face.
UPPER_FACE_PARAMETERS: tuple[str, ...] = tuple(p for p in PARAMETERS if p.startswith(("brow", "eye")))
LOWER_FACE_PARAMETERS: tuple[str, ...] = tuple(p for p in PARAMETERS if p not in UPPER_FACE_PARAMETERS)

#: Jaw rotation at jawOpen = 1 (about 25 mm of lip opening on the bundled head).
MAX_JAW_DEGREES = 13.0
#: Jaw weight the lips share under full mouthClose: both lips then rotate together.
CLOSED_LIP_WEIGHT = 0.25
#: Jaw weights over which a vertex passes from the upper lip's fields to the lower lip's.
LIP_SIDE_BAND = (0.1, 0.9)
#: Jacobi steps that even out the jaw weight within each lip (see :func:`_smooth_within_lips`).
LIP_SMOOTHING_STEPS = 10
#: Lower-lip tuck at mouthRollLower = 1 (m): up and back, towards the upper incisors' edge.
TUCK_UP, TUCK_BACK = 0.0012, 0.0010
#: Where the upper incisors' edge sits on a head without teeth: behind the middle of the upper
#: lip's inner margin by this much (m), at the height where the lips meet (the teeth just show
#: when the lips part, as at rest in most adults).
INCISOR_DEPTH = 0.0035
RIG_VERSION = 2

# Landmark indices (iBUG 68).
_INNER_UPPER = (61, 62, 63)
_INNER_LOWER = (67, 66, 65)


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, C1 in between: compact support keeps far vertices exactly still."""
    t = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def falloff(d: np.ndarray, inner: float, outer: float) -> np.ndarray:
    """1 within ``inner``, 0 beyond ``outer``: the shape of every field's influence."""
    return 1.0 - smoothstep(d, inner, outer)


def side_split(x: np.ndarray, centre: float, width: float = 0.006) -> np.ndarray:
    """Share of a control on the subject's left (+X); left + right sum to 1 everywhere, so
    setting both halves equal gives exactly the symmetric motion."""
    return 0.5 * (1.0 + np.tanh((x - centre) / width))


@dataclass(frozen=True, eq=False)
class Rig:
    """Displacement fields for :data:`PARAMETERS` on one template (metres, template vertex order)."""

    names: tuple[str, ...]
    rest: np.ndarray  # (V, 3) float64
    deltas: np.ndarray  # (P, V, 3) float64; the jawOpen row is zero (the jaw rotates)
    jaw_weight: np.ndarray  # (V,)
    close_mask: np.ndarray  # (V,) where mouthClose overrides the jaw weight
    hinge: np.ndarray  # (3,)
    max_jaw: float  # radians
    #: Helper fields the rig was placed with (``mouth``, ``lip_zone``, ``contact_y``, ``nose``), for identity shapes.
    masks: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        """Vertex count of the template the rig was built on."""
        return int(self.rest.shape[0])

    def pose(self, params: np.ndarray, rest: np.ndarray | None = None, *, exact: bool = True) -> np.ndarray:
        """Vertices (T, V, 3) for parameters (T, P) (or (P,) → (V, 3)), on ``rest`` if given.

        ``rest`` lets one rig drive many identities of the same topology (corpus subjects).
        Parameters are clipped to 0..1. Sums run in a fixed order in float64, so the result
        is bit-for-bit reproducible whatever the BLAS or thread count; ``exact`` False sums the
        fields in one float32 matrix product instead (several times faster, within 1e-7 m of
        it, and float32 out), for inference-time posing that ends in float32 anyway.
        """
        p = np.asarray(params, dtype=np.float64)
        single = p.ndim == 1
        p = np.atleast_2d(p)
        if p.shape[1] != len(self.names):
            raise TemplateError(f"Rig parameters have {p.shape[1]} columns; the rig has {len(self.names)} controls.")
        p = np.clip(p, 0.0, 1.0)
        base = self.rest if rest is None else np.asarray(rest, dtype=np.float64).reshape(-1, 3)
        if base.shape != self.rest.shape:
            raise TemplateError(f"Rest shape {base.shape} does not match the rig's {self.rest.shape}.")
        if exact:
            out = np.repeat(base[None], p.shape[0], axis=0)
            for k in range(len(self.names)):
                if k == INDEX["jawOpen"] or not np.any(p[:, k]):
                    continue
                out += p[:, k, None, None] * self.deltas[k][None]
        else:
            p = p.astype(np.float32)
            linear = p.copy()
            linear[:, INDEX["jawOpen"]] = 0.0  # the jaw rotates below
            out = (linear @ self.deltas.reshape(len(self.names), -1).astype(np.float32)).reshape(p.shape[0], *base.shape)
            out += base.astype(np.float32)[None]
        ft = out.dtype  # float64 when exact: every cast below is then a no-op
        jaw_weight, close_mask, hinge = (np.asarray(a, dtype=ft) for a in (self.jaw_weight, self.close_mask, self.hinge))
        jaw = p[:, INDEX["jawOpen"]]
        close = p[:, INDEX["mouthClose"]]
        weight = jaw_weight[None, :] + close[:, None] * close_mask[None, :] * (ft.type(CLOSED_LIP_WEIGHT) - jaw_weight[None, :])
        angle = jaw[:, None] * ft.type(self.max_jaw) * weight
        y = out[..., 1] - hinge[1]
        z = out[..., 2] - hinge[2]
        if exact:
            cos, sin = np.cos(angle), np.sin(angle)
            out[..., 1] = hinge[1] + y * cos - z * sin
            out[..., 2] = hinge[2] + y * sin + z * cos
        else:  # the rotation as a change (cos - 1 = -2 sin²(a/2)): where the jaw is still, nothing moves at all
            sin, versine = np.sin(angle), -2.0 * np.square(np.sin(0.5 * angle))
            out[..., 1] += y * versine - z * sin
            out[..., 2] += y * sin + z * versine
        return out[0] if single else out


def _landmarks(template: FaceTemplate) -> np.ndarray:
    """(68, 3) landmark positions, or an error saying the rig needs them."""
    if template.landmarks is None or len(template.landmarks) != 68:
        raise TemplateError(f"Template {template.name} has no 68-point landmarks; the rig is placed from them.")
    return np.asarray(template.vertices, dtype=np.float64)[template.landmarks]


def _contact_line(template: FaceTemplate, v: np.ndarray, mouth_x: float, half_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the lips meet, as height against x: the mean height of the lips' contact vertices per bin."""
    idx = np.concatenate([template.region("lip_contact_upper"), template.region("lip_contact_lower")])
    pts = v[idx]
    edges = np.linspace(mouth_x - 1.2 * half_width, mouth_x + 1.2 * half_width, 25)
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (pts[:, 0] >= lo) & (pts[:, 0] < hi)
        if np.any(sel):
            xs.append(float(pts[sel, 0].mean()))
            ys.append(float(pts[sel, 1].mean()))
    if len(xs) < 2:
        raise TemplateError(f"Template {template.name} has too few lip-contact vertices to place the rig.")
    return np.asarray(xs), np.asarray(ys)


def _eye_blink_field(v: np.ndarray, lm: np.ndarray, eye: tuple[int, ...], region: np.ndarray) -> np.ndarray:
    """Upper lid down to the lower lid, as a monotone vertical remap inside the eye region.

    Between the lower lid margin and the lid crease, heights are remapped piecewise-linearly so
    the upper margin lands just above the lower one: the skin of the lid slides down over the
    eye and nothing can fold, because the remap keeps vertical order.
    """
    c0, u1, u2, c1, l1, l2 = (lm[i] for i in eye)
    cx = 0.5 * (c0[0] + c1[0])
    cy = 0.5 * (c0[1] + c1[1])
    a = 0.5 * abs(c1[0] - c0[0]) * 1.08
    h_up = 0.5 * (u1[1] + u2[1]) - cy
    h_low = cy - 0.5 * (l1[1] + l2[1])
    crease = 0.0055
    d = np.zeros_like(v)
    pts = v[region]
    q = np.sqrt(np.clip(1.0 - ((pts[:, 0] - cx) / a) ** 2, 0.0, 1.0))
    y_low = cy - h_low * q
    y_up = cy + h_up * q
    y_crease = y_up + crease * q
    y_closed = y_low + 0.10 * (y_up - y_low)
    y = pts[:, 1]
    new = y.copy()
    lower = (y > y_low) & (y <= y_up) & (q > 0)
    span = np.maximum(y_up - y_low, 1e-9)
    new[lower] = (y_low + (y - y_low) * (y_closed - y_low) / span)[lower]
    upper = (y > y_up) & (y < y_crease) & (q > 0)
    span2 = np.maximum(y_crease - y_up, 1e-9)
    new[upper] = (y_crease - (y_crease - y) * (y_crease - y_closed) / span2)[upper]
    # Full closure in the middle of the lid, tapering to none at the corners, where the lid
    # margins converge and a full-strength remap would crush the triangles.
    taper = falloff(np.abs(pts[:, 0] - cx) / a, 0.4, 1.0)
    d[region, 1] = (new - y) * taper
    # The lid follows the eyeball's curve forward a little as it closes over the cornea.
    d[region, 2] = 0.0012 * q * np.clip(-(new - y) / max(h_up + h_low, 1e-6), 0.0, 1.0)
    return d


def _averaging_step(faces: np.ndarray, n: int, keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> Any:
    """Sparse (n, n) operator replacing each vertex by the mean of its mesh neighbours.

    ``keep(i, j)`` selects the edges to average over; a vertex left without neighbours maps to
    zero, so callers hold such vertices fixed.
    """
    import scipy.sparse as sp

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    if keep is not None:
        chosen = keep(i, j)
        i, j = i[chosen], j[chosen]
    adj = sp.csr_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    adj.data[:] = 1.0
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(degree, 1.0)) @ adj


def _smooth_within_lips(template: FaceTemplate, w: np.ndarray, steps: int = LIP_SMOOTHING_STEPS) -> np.ndarray:
    """The jaw weight's ramp along each lip, from its middle to its corner, started less abruptly.

    The template holds the lips' middles at exactly 1 (lower) and 0 (upper) to about 10 mm
    from the centre and only then ramps to 0.5 at the corners, so its steepest steps sit on the
    first lip triangles past the held part (0.04 to 0.15 within one thin triangle). With an
    11 cm lever such a step tilts the triangle as the jaw opens, and rounding then turns it
    over. A few averaging steps over neighbours in the same lip (never across the slit) spread
    the start of the ramp inwards to the inner-lip landmarks, which stay held with the rest of
    the middle (so the lips part as before); the mouth corners, whose 0.5 blend keeps them
    whole, are held too.
    """
    v = np.asarray(template.vertices, dtype=np.float64)
    lm = _landmarks(template)
    n = len(w)
    lip = np.full(n, -1)
    lip[template.region("upper_lip")] = 0
    lip[template.region("lower_lip")] = 1
    step = _averaging_step(np.asarray(template.faces, dtype=np.int64), n, lambda i, j: (lip[i] >= 0) & (lip[i] == lip[j]))
    cx = float(lm[60:68, 0].mean())
    middle = float(np.abs(lm[[61, 63, 65, 67], 0] - cx).max())
    free = (lip >= 0) & (np.abs(v[:, 0] - cx) > middle)
    free[template.region("mouth_corners")] = False
    for _ in range(steps):
        w = np.where(free, step @ w, w)
    return w


def _relaxed_jaw_weight(template: FaceTemplate, iterations: int = 60) -> np.ndarray:
    """The template's jaw weight, evened out within each lip and diffused along the skin where it falls off too steeply.

    Behind the jaw angle the weight drops from 1 to 0 within a few millimetres; a wide opening
    then folds the skin there. Averaging over mesh neighbours (lips, nose and upper face held
    fixed, so the lips still part and the upper face stays still) spreads that fall-off.
    """
    w = np.clip(np.asarray(template.weights["jaw"], dtype=np.float64), 0.0, 1.0)
    faces = np.asarray(template.faces, dtype=np.int64)
    if faces.size == 0:
        return w
    n = len(w)
    if all(name in template.regions for name in ("upper_lip", "lower_lip", "mouth_corners")):
        w = _smooth_within_lips(template, w)
    step = _averaging_step(faces, n)
    fixed = np.zeros(n, dtype=bool)
    for name in ("lips", "nose", "upper_face"):
        if name in template.regions:
            fixed[template.regions[name]] = True
    pinned = w[fixed]
    for _ in range(iterations):
        w = step @ w
        w[fixed] = pinned
    return np.clip(w, 0.0, 1.0)


def build_rig(template: FaceTemplate) -> Rig:
    """Place every control's field on ``template`` from its landmarks, regions and jaw weight."""
    if "jaw" not in template.weights:
        raise TemplateError(f"Template {template.name} has no jaw weight; the rig needs the bundled head's extras.")
    hinge = template.anchors.get("jaw_hinge")
    if hinge is None:
        raise TemplateError(f"Template {template.name} has no jaw hinge anchor; build the rig on the bundled head.")
    v = np.asarray(template.vertices, dtype=np.float64)
    n = len(v)
    lm = _landmarks(template)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    w_jaw = _relaxed_jaw_weight(template)

    mouth = lm[60:68].mean(axis=0)
    hw = 0.5 * abs(lm[54, 0] - lm[48, 0])
    cx, cy, cz = mouth
    cxs, cys = _contact_line(template, v, cx, hw)
    y_contact = np.interp(x, cxs, cys)

    upper_face = np.zeros(n, dtype=bool)
    upper_face[template.region("upper_face")] = True

    # Influence of the mouth: an ellipse in x/y, taller below (chin) than above (nose), and
    # only on the front of the face.
    up_reach, down_reach = 0.013, 0.020
    ry = np.where(y >= cy, up_reach, down_reach)
    r = np.sqrt(((x - cx) / hw) ** 2 + ((y - cy) / ry) ** 2 * 0.55)
    front = smoothstep(z, cz - 0.045, cz - 0.025)
    mouth_mask = falloff(r, 0.9, 1.8) * front
    tight = falloff(r, 0.6, 1.5) * front
    mouth_mask[upper_face] = 0.0
    tight[upper_face] = 0.0
    # Which lip a vertex belongs to, for the lip-shape fields: the jaw weight, saturated, so its
    # ramps towards the corners (there to open the mouth as a lens) and its small leak onto the
    # upper lip do not make the raise, tuck and funnel uneven within one lip.
    side = smoothstep(w_jaw, *LIP_SIDE_BAND)
    lowerness = side * mouth_mask
    upperness = (1.0 - side) * mouth_mask
    contact_idx = np.concatenate([template.region("lip_contact_upper"), template.region("lip_contact_lower")])
    d_contact = np.min(np.linalg.norm(v[:, None, :] - v[contact_idx][None, :, :], axis=2), axis=1)
    lip_zone = falloff(d_contact, 0.004, 0.016) * front
    lip_zone[upper_face] = 0.0
    centre_bump = falloff(np.abs(x - cx) / hw, 0.0, 0.95)
    # The corners, held by the muscles that meet there, follow the raise and the press only in part.
    raise_reach = falloff(np.abs(x - cx) / hw, 0.5, 1.0)
    press_reach = falloff(np.abs(x - cx) / hw, 0.6, 1.1)
    left = side_split(x, cx)
    right = 1.0 - left

    deltas: dict[str, np.ndarray] = {name: np.zeros((n, 3)) for name in PARAMETERS}

    # Rounding with protrusion: corners in, lips forward, a little vertical squeeze.
    pucker = deltas["mouthPucker"]
    pucker[:, 0] = -0.38 * (x - cx) * tight
    pucker[:, 1] = -0.12 * (y - y_contact) * tight
    pucker[:, 2] = 0.0075 * tight
    # Funnel: rounder and more open than pucker, the lips flared apart at the centre.
    funnel = deltas["mouthFunnel"]
    funnel[:, 0] = -0.24 * (x - cx) * tight
    funnel[:, 1] = (0.0025 * (1.0 - side) - 0.0030 * side) * centre_bump * lip_zone
    funnel[:, 2] = 0.0055 * tight
    # Spreading: corners out and back, lips thinned towards the contact line.
    for name, share in (("mouthStretchLeft", left), ("mouthStretchRight", right)):
        d = deltas[name]
        d[:, 0] = 0.30 * (x - cx) * mouth_mask * share
        d[:, 1] = -0.12 * (y - y_contact) * mouth_mask * share
        d[:, 2] = -0.13 * np.abs(x - cx) * mouth_mask * share
    # Smile: a bump around each outer mouth corner, up, out and back.
    for name, corner, sign in (("mouthSmileLeft", lm[54], 1.0), ("mouthSmileRight", lm[48], -1.0)):
        g = falloff(np.linalg.norm(v - corner, axis=1), 0.004, 0.030) * front
        g[upper_face] = 0.0
        d = deltas[name]
        d[:, 0] = sign * 0.0030 * g
        d[:, 1] = 0.0045 * g
        d[:, 2] = -0.0020 * g
    # Press: both lips squeezed towards the contact line, which itself stays put (no crossing).
    for name, share in (("mouthPressLeft", left), ("mouthPressRight", right)):
        deltas[name][:, 1] = -0.25 * (y - y_contact) * lip_zone * share * press_reach
        deltas[name][:, 2] = -0.0010 * lip_zone * share
    # Lower-lip tuck (F, V): the lower lip rolls back and up, under the upper lip, to meet the
    # upper incisors' edge (:func:`upper_incisor_edge`) while the jaw stays nearly shut.
    below = np.clip(y_contact - y, 0.0, None)
    roll_shape = falloff(below, 0.0, 0.014) * falloff(np.abs(x - cx) / hw, 0.35, 1.0)
    roll = deltas["mouthRollLower"]
    # The lift is narrower than the pull back: towards the corners, where smiles and presses
    # also raise the lower lip, it would cross the upper one.
    lift = falloff(np.abs(x - cx) / hw, 0.1, 0.6)
    roll[:, 1] = TUCK_UP * lowerness * roll_shape * lift
    roll[:, 2] = -TUCK_BACK * lowerness * roll_shape
    # Upper-lip raise.
    for name, share in (("mouthUpperUpLeft", left), ("mouthUpperUpRight", right)):
        deltas[name][:, 1] = 0.0040 * upperness * share * raise_reach
        deltas[name][:, 2] = 0.0010 * upperness * share * raise_reach

    # Brows: bumps around the brow landmarks, fading out above the upper lid margin so the
    # eyes themselves do not move.
    lid_top = max(lm[37, 1], lm[38, 1], lm[43, 1], lm[44, 1])
    brow_y = float(lm[17:27, 1].mean())
    above_lid = smoothstep(y, lid_top + 0.002, brow_y - 0.001)
    upward = falloff(y - brow_y, 0.005, 0.045)
    brow_zone = above_lid * upward * smoothstep(z, cz - 0.060, cz - 0.035)
    mid_x = 0.5 * (lm[21, 0] + lm[22, 0])
    inner = falloff(np.abs(x - mid_x), 0.010, 0.032) * brow_zone
    deltas["browInnerUp"][:, 1] = 0.0060 * inner
    for name, point in (("browOuterUpLeft", lm[24]), ("browOuterUpRight", lm[19])):
        g = falloff(np.abs(x - point[0]), 0.008, 0.028) * brow_zone
        deltas[name][:, 1] = 0.0055 * g
    down_zone = smoothstep(y, lid_top + 0.001, brow_y - 0.002) * upward * smoothstep(z, cz - 0.060, cz - 0.035)
    for name, point, sign in (("browDownLeft", lm[23], 1.0), ("browDownRight", lm[20], -1.0)):
        g = falloff(np.abs(x - point[0]), 0.010, 0.030) * down_zone
        deltas[name][:, 0] = -sign * 0.0020 * g
        deltas[name][:, 1] = -0.0035 * g
        deltas[name][:, 2] = 0.0010 * g

    # Blinks (left eye = landmarks 42-47, at +X).
    deltas["eyeBlinkLeft"] = _eye_blink_field(v, lm, (42, 43, 44, 45, 46, 47), template.region("eyes_left"))
    deltas["eyeBlinkRight"] = _eye_blink_field(v, lm, (36, 37, 38, 39, 40, 41), template.region("eyes_right"))

    close_mask = lip_zone.copy()
    stack = np.stack([deltas[name] for name in PARAMETERS])
    return Rig(
        names=PARAMETERS,
        rest=v,
        deltas=stack,
        jaw_weight=w_jaw,
        close_mask=close_mask,
        hinge=np.asarray(hinge, dtype=np.float64),
        max_jaw=math.radians(MAX_JAW_DEGREES),
        masks={
            "mouth": mouth_mask,
            "lip_zone": lip_zone,
            "contact_y": y_contact,
            "nose": falloff(np.linalg.norm(v - lm[30], axis=1), 0.012, 0.030) * smoothstep(y, lm[33, 1] - 0.004, lm[33, 1] + 0.002),
            "brow": np.linalg.norm(stack[INDEX["browInnerUp"]] + stack[INDEX["browOuterUpLeft"]] + stack[INDEX["browOuterUpRight"]], axis=1) / 0.006,
        },
    )


def params_from(values: dict[str, float] | None = None, **named: float) -> np.ndarray:
    """A (P,) parameter vector from names, e.g. ``params_from(jawOpen=0.5)``; unknown names fail."""
    out = np.zeros(len(PARAMETERS))
    for key, value in {**(values or {}), **named}.items():
        if key not in INDEX:
            raise TemplateError(f"Unknown rig control {key!r}; controls are: {', '.join(PARAMETERS)}.")
        out[INDEX[key]] = float(value)
    return out


def upper_incisor_edge(template: FaceTemplate) -> np.ndarray:
    """(3,) middle of the upper incisors' cutting edge, in the template's frame (m).

    The upper teeth are fixed to the skull, so this point never moves with the jaw; the
    labiodental tuck raises the lower lip to its height. Taken from the template's
    ``teeth_upper`` part when it has one (the lowest point near the midline, at the front of
    the teeth); otherwise estimated behind the upper lip's inner margin by
    :data:`INCISOR_DEPTH`, at the height where the lips meet.
    """
    teeth = template.parts.get("teeth_upper") if hasattr(template, "parts") else None
    if teeth is not None:
        t = np.asarray(teeth.vertices, dtype=np.float64)
        mid = t[np.abs(t[:, 0] - np.median(t[:, 0])) < 0.003]
        if len(mid):
            low = mid[mid[:, 1] < mid[:, 1].min() + 0.0008]
            return np.array([float(np.median(t[:, 0])), float(mid[:, 1].min()), float(low[:, 2].max())])
    lm = _landmarks(template)
    upper, lower = lm[list(_INNER_UPPER)].mean(axis=0), lm[list(_INNER_LOWER)].mean(axis=0)
    return np.array([upper[0], 0.5 * (upper[1] + lower[1]), upper[2] - INCISOR_DEPTH])


def lip_gap(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mean distance (m) between facing inner-lip landmarks (61-67, 62-66, 63-65), per frame."""
    v = np.asarray(vertices)
    upper = v[..., landmarks[list(_INNER_UPPER)], :]
    lower = v[..., landmarks[list(_INNER_LOWER)], :]
    return np.linalg.norm(upper - lower, axis=-1).mean(axis=-1)


def lip_width(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Distance (m) between the outer mouth corners (landmarks 48 and 54), per frame."""
    v = np.asarray(vertices)
    return np.linalg.norm(v[..., landmarks[54], :] - v[..., landmarks[48], :], axis=-1)
