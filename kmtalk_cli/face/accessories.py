"""Posing the head's separate parts (teeth, tongue, mouth cavity, eyes, scalp) for each frame.

A motion only moves the face's vertices. The parts follow from them: the jaw's rotation is
estimated per frame from the chin (so predicted and ground-truth motions alike carry their
teeth and tongue), the mouth cavity is glued to the lips' border, the scalp to the face's back
border, and the eyeballs turn by the gaze of an optional :class:`HeadPose`, which also turns
the whole head about the neck pivot. Everything here is a pure function of arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TemplateError
from .headpose import HeadPose
from .template import FaceTemplate

#: Jaw vertices used to estimate the jaw's rotation: at least this jaw weight, and not lips.
CHIN_WEIGHT = 0.95
#: Jaw angles kept within this range (radians): a little closing, a wide yawn.
JAW_RANGE = (np.radians(-8.0), np.radians(40.0))
#: Drawing order of the parts after the face (inner parts first does not matter with a z-buffer).
PART_ORDER = ("scalp", "mouth", "teeth_upper", "teeth_lower", "tongue", "eye_left", "eye_right")
#: The face's albedo where a template has no colours of its own (the renderer's clay).
FACE_COLOUR = (194, 189, 184)
#: How far an eyeball sinks back (metres) when its lids are fully closed, so it never shows
#: through a blink (it pokes a little through the skin between open lids).
EYE_RETREAT = 2.0e-3
#: iBUG landmarks of each eye's upper and lower lid margins.
_LID_LANDMARKS = {"eye_right": ((37, 38), (40, 41)), "eye_left": ((43, 44), (46, 47))}


def _axis_rotation(angle: np.ndarray, axis: int) -> np.ndarray:
    """(..., 3, 3) right-handed rotations by ``angle`` about coordinate ``axis`` (0, 1, 2)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    i, j = (axis + 1) % 3, (axis + 2) % 3  # the plane turned: i towards j for a positive angle
    out = np.zeros(a.shape + (3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., i, j] = c, -s
    out[..., j, i], out[..., j, j] = s, c
    return out


def rotation_x(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) right-handed rotations about +X (positive: +Y towards +Z)."""
    return _axis_rotation(angle, 0)


def rotation_y(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) right-handed rotations about +Y (positive: +Z towards +X)."""
    return _axis_rotation(angle, 1)


def rotation_z(angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) right-handed rotations about +Z (positive: +X towards +Y)."""
    return _axis_rotation(angle, 2)


def head_rotations(pose: HeadPose) -> np.ndarray:
    """(T, 3, 3) head rotations: yaw ∘ pitch ∘ roll, with :class:`HeadPose`'s signs.

    Pitch turns the nose down (about +X), yaw turns it to the face's left (+X, about +Y), roll
    tips the crown towards the face's left shoulder (about −Z).
    """
    pitch, yaw, roll = pose.rotation[:, 0], pose.rotation[:, 1], pose.rotation[:, 2]
    return rotation_y(yaw) @ rotation_x(pitch) @ rotation_z(-roll)


def gaze_rotations(gaze: np.ndarray) -> np.ndarray:
    """(T, 3, 3) eyeball rotations from (T, 2) gaze yaw and pitch (same signs as the head)."""
    gaze = np.asarray(gaze, dtype=np.float64)
    return rotation_y(gaze[:, 0]) @ rotation_x(gaze[:, 1])


def has_parts(template: FaceTemplate) -> bool:
    """Whether ``template`` carries the separate head parts (the bundled head does)."""
    return bool(template.parts) and "jaw_hinge" in template.anchors and "jaw" in template.weights


def chin_vertices(template: FaceTemplate) -> np.ndarray:
    """Jaw-following skin that is not lips: it moves rigidly with the jaw bone."""
    weight = np.asarray(template.weights["jaw"])
    chin = np.flatnonzero(weight >= CHIN_WEIGHT)
    if "lips" in template.regions:
        chin = np.setdiff1d(chin, template.regions["lips"])
    if len(chin) < 3:
        raise TemplateError(f"Template {template.name} has too few jaw vertices to follow the jaw.")
    return chin


def jaw_angles(frames: np.ndarray, template: FaceTemplate) -> np.ndarray:
    """(T,) jaw opening in radians (positive: chin down and back), fitted per frame.

    The chin's vertices are compared with the rest shape in the side (y, z) plane about the
    jaw hinge; the least-squares rotation between them has a closed form, so any motion (a
    model's prediction, ground truth, a hand edit) gives its own jaw track.
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 2:
        frames = frames[None]
    chin = chin_vertices(template)
    hinge = np.asarray(template.anchors["jaw_hinge"], dtype=np.float64)
    rest = np.asarray(template.vertices, dtype=np.float64)[chin, 1:] - hinge[1:]
    now = frames[:, chin, 1:] - hinge[1:]
    cross = np.sum(rest[None, :, 0] * now[..., 1] - rest[None, :, 1] * now[..., 0], axis=1)
    dot = np.sum(rest[None, :, 0] * now[..., 0] + rest[None, :, 1] * now[..., 1], axis=1)
    return np.clip(np.arctan2(cross, dot), *JAW_RANGE)


def eye_retreats(frames: np.ndarray, template: FaceTemplate) -> dict[str, np.ndarray]:
    """(T,) distance each eyeball sinks back, from how far its lids have closed (0 when open)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 2:
        frames = frames[None]
    out: dict[str, np.ndarray] = {}
    if template.landmarks is None or len(template.landmarks) != 68:
        return out
    lm = np.asarray(template.landmarks)
    rest = np.asarray(template.vertices, dtype=np.float64)
    for name, (upper, lower) in _LID_LANDMARKS.items():
        if name not in template.parts:
            continue
        up, low = lm[list(upper)], lm[list(lower)]
        gap_rest = rest[up, 1].mean() - rest[low, 1].mean()
        gap = frames[:, up, 1].mean(axis=1) - frames[:, low, 1].mean(axis=1)
        openness = np.clip(gap / max(gap_rest, 1e-6), 0.0, 1.0)
        out[name] = EYE_RETREAT * (1.0 - openness)
    return out


@dataclass(frozen=True, eq=False)
class PartsMotion:
    """Per-frame rigid motions the parts need: jaw angle, eye rotations and retreats, head rotation."""

    jaw: np.ndarray  # (T,) radians
    gaze: np.ndarray | None  # (T, 3, 3) or None: eyes look straight ahead
    head: np.ndarray | None  # (T, 3, 3) or None: the head does not turn
    retreat: dict[str, np.ndarray] | None = None  # eye part name → (T,) metres sunk back

    @property
    def n_frames(self) -> int:
        return len(self.jaw)


def parts_motion(frames: np.ndarray, template: FaceTemplate, head_pose: HeadPose | None = None) -> PartsMotion:
    """Jaw angles from ``frames`` (T, V, 3) and, with a head pose, head and gaze rotations.

    A head pose shorter than the motion holds its last frame; a longer one is cut.
    """
    jaw = jaw_angles(frames, template)
    retreat = eye_retreats(frames, template)
    if head_pose is None:
        return PartsMotion(jaw=jaw, gaze=None, head=None, retreat=retreat)
    index = np.minimum(np.arange(len(jaw)), head_pose.n_frames - 1)
    return PartsMotion(
        jaw=jaw, gaze=gaze_rotations(head_pose.gaze)[index], head=head_rotations(head_pose)[index], retreat=retreat
    )


@dataclass(frozen=True, eq=False)
class HeadAssembly:
    """The face and every part as one mesh: faces and colours over stacked vertices.

    The face comes first, so its vertex indices are unchanged; ``slices[name]`` locates each
    part's vertices. Scalp vertices welded to the face are drawn with the face's own vertex,
    so the seam is shaded as one smooth surface.
    """

    template: FaceTemplate
    faces: np.ndarray  # (F, 3) int32 over the stacked vertices
    colours: np.ndarray  # (N, 3) uint8
    slices: dict[str, slice]

    @property
    def n_vertices(self) -> int:
        return len(self.colours)


def assemble(template: FaceTemplate, face_colour: tuple[int, int, int] = FACE_COLOUR) -> HeadAssembly:
    """Stack the face and its parts (in :data:`PART_ORDER`) into one drawable mesh."""
    n = template.n_vertices
    faces = [np.asarray(template.faces, dtype=np.int64)]
    colours = [np.tile(np.asarray(face_colour, dtype=np.uint8), (n, 1))]
    slices: dict[str, slice] = {}
    start = n
    for name in [p for p in PART_ORDER if p in template.parts] + sorted(set(template.parts) - set(PART_ORDER)):
        part = template.parts[name]
        index = np.arange(start, start + part.n_vertices)
        if name == "scalp":  # a smooth welded seam shares the face's vertices, so normals match
            index[_smooth_welds(template, part)] = part.weld[_smooth_welds(template, part)]
        faces.append(index[part.faces])
        colours.append(part.colours)
        slices[name] = slice(start, start + part.n_vertices)
        start += part.n_vertices
    return HeadAssembly(
        template=template,
        faces=np.vstack(faces).astype(np.int32),
        colours=np.vstack(colours),
        slices=slices,
    )


def _smooth_welds(template: FaceTemplate, part: object) -> np.ndarray:
    """Welded vertices where the part continues the face smoothly (normals within 60°).

    Where the seam is a real crease (the neck's lower rim), sharing vertices would average the
    two sides' normals and smear a dark band along a ragged border; there they stay separate.
    """
    from .normals import vertex_normals

    welded = np.flatnonzero(part.weld >= 0)
    face_n = vertex_normals(template.vertices, template.faces)[part.weld[welded]]
    part_n = vertex_normals(part.vertices, part.faces)[welded]
    out = np.zeros(len(part.weld), dtype=bool)
    out[welded] = np.einsum("ij,ij->i", face_n, part_n) > 0.5
    return out


def _jaw_blend(points: np.ndarray, weight: np.ndarray, hinge: np.ndarray, angle: float) -> np.ndarray:
    """Points moved by ``weight`` × (the jaw's rigid rotation about the hinge): linear blend skinning."""
    rot = rotation_x(angle)
    jawed = (points - hinge) @ rot.T + hinge
    w = weight[:, None]
    return (1.0 - w) * points + w * jawed


def pose_parts(
    face: np.ndarray,
    template: FaceTemplate,
    jaw: float,
    gaze: np.ndarray | None = None,
    retreat: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Every part's vertices for one frame of face vertices (V, 3), in the face's own frame.

    Skull parts stay put, jaw parts rotate by ``jaw`` about the hinge (blended by their jaw
    weight), welded vertices sit on their face vertex, the cavity's inner rings share a fading
    part of the lips' own deformation, and eyeballs turn by ``gaze`` (3, 3) about their centres
    and sink back by ``retreat[name]`` metres (closing lids).
    """
    face = np.asarray(face, dtype=np.float64)
    rest = np.asarray(template.vertices, dtype=np.float64)
    hinge = np.asarray(template.anchors["jaw_hinge"], dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name, part in template.parts.items():
        points = np.asarray(part.vertices, dtype=np.float64)
        weight = np.asarray(part.jaw, dtype=np.float64)
        posed = _jaw_blend(points, weight, hinge, jaw) if np.any(weight) else points.copy()
        if part.follow is not None:
            share = np.asarray(part.follow_weight, dtype=np.float64)
            moving = share > 0
            if moving.any():
                j = part.follow[moving]
                own = face[j] - _jaw_blend(rest[j], weight[moving], hinge, jaw)
                posed[moving] += share[moving, None] * own
        welded = part.weld >= 0
        if welded.any():
            posed[welded] = face[part.weld[welded]]
        if gaze is not None and name.startswith("eye_") and name in template.anchors:
            centre = np.asarray(template.anchors[name], dtype=np.float64)
            posed = (posed - centre) @ np.asarray(gaze).T + centre
        if retreat and retreat.get(name):
            posed[:, 2] -= retreat[name]
        out[name] = posed
    return out


def turn_head(points: np.ndarray, template: FaceTemplate, rotation: np.ndarray) -> np.ndarray:
    """Points (N, 3) turned by ``rotation`` (3, 3) about the template's neck pivot."""
    pivot = np.asarray(template.anchors.get("neck_pivot", np.zeros(3)), dtype=np.float64)
    return (np.asarray(points, dtype=np.float64) - pivot) @ np.asarray(rotation).T + pivot


def pose_assembly(assembly: HeadAssembly, face: np.ndarray, motion: PartsMotion, frame: int) -> np.ndarray:
    """Stacked vertices (N, 3) float32 of ``assembly`` for one frame of face vertices."""
    template = assembly.template
    gaze = None if motion.gaze is None else motion.gaze[frame]
    retreat = {k: float(v[frame]) for k, v in (motion.retreat or {}).items()}
    parts = pose_parts(face, template, float(motion.jaw[frame]), gaze, retreat)
    out = np.empty((assembly.n_vertices, 3), dtype=np.float64)
    out[: template.n_vertices] = face
    for name, where in assembly.slices.items():
        out[where] = parts[name]
    if motion.head is not None:
        out = turn_head(out, template, motion.head[frame])
    return out.astype(np.float32)


def rest_assembly(assembly: HeadAssembly) -> np.ndarray:
    """The stacked rest-pose vertices (N, 3): the template and its parts as built."""
    template = assembly.template
    out = np.empty((assembly.n_vertices, 3), dtype=np.float32)
    out[: template.n_vertices] = template.vertices
    for name, where in assembly.slices.items():
        out[where] = template.parts[name].vertices
    return out
