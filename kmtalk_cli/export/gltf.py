"""glTF 2.0 binary (.glb) export: the head mesh, morph targets and a weights animation.

A GLB is a 12-byte header, a JSON chunk and one binary chunk, so it is written by hand here:
no dependency, and full control over what standard viewers (three.js, Blender, Khronos'
validator) need. Morph targets are stored as *sparse* accessors when that is smaller,
because a rig control moves only a few hundred of the head's vertices.

Two exports share one writer:

* :func:`write_glb`: the rig's displacement fields as ARKit-named targets, played by the fitted
  weights (what a user retargets to their own character);
* :func:`write_baked_glb`: for motions the rig cannot express, a compact per-clip basis of the
  motion's own offsets (a truncated SVD), so the exact shapes still play in any viewer.

Names live in ``mesh.extras.targetNames`` (the convention three.js and Blender read); the
motion's fps, frame count and audio path go into the root ``extras``.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import KmtalkWarning, MotionError, TemplateError
from ..face.headpose import HeadPose
from ..face.normals import vertex_normals
from ..face.template import FaceTemplate
from ..version import __version__

#: RMS vertex error (metres) a baked basis stops at: far below what a viewer can show.
BAKE_TOLERANCE = 1e-4
#: Most targets a baked export uses; every target costs the viewer a texture fetch per vertex.
BAKE_MAX_TARGETS = 64
#: Frames (evenly spread) the baked basis is found from; all frames are projected and measured,
#: so long clips cost time linear in their length instead of quadratic.
_BASIS_FRAMES = 600

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES = 4
_SKIN = [0.80, 0.62, 0.54, 1.0]


@dataclass(frozen=True, eq=False)
class BakedMorphs:
    """A clip's offsets from the rest shape as ``weights @ deltas``, with the error that leaves."""

    names: tuple[str, ...]
    deltas: np.ndarray  # (K, V, 3) float32, metres
    weights: np.ndarray  # (T, K) float32, each column scaled to a peak magnitude of 1
    rms_error: float  # metres, over every vertex of every frame
    max_error: float  # metres, the worst vertex of any frame

    @property
    def rms_error_mm(self) -> float:
        return self.rms_error * 1e3

    @property
    def max_error_mm(self) -> float:
        return self.max_error * 1e3


@dataclass(frozen=True, eq=False)
class GlbContent:
    """The two chunks of a .glb: the parsed JSON document and the binary buffer."""

    document: dict
    binary: bytes

    @property
    def extras(self) -> dict:
        extras = self.document.get("extras")
        return extras if isinstance(extras, dict) else {}


class _BinaryBuilder:
    """Collects buffer views and accessors over the single binary buffer of a GLB."""

    def __init__(self) -> None:
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self._parts: list[bytes] = []
        self._length = 0

    @property
    def binary(self) -> bytes:
        return b"".join(self._parts)

    def _view(self, data: bytes, target: int | None = None) -> int:
        view = {"buffer": 0, "byteOffset": self._length, "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        pad = (-len(data)) % 4  # every view starts 4-byte aligned, as vertex attributes must
        self._parts.append(data + b"\0" * pad)
        self._length += len(data) + pad
        self.views.append(view)
        return len(self.views) - 1

    def _add(self, accessor: dict) -> int:
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def floats(self, array: np.ndarray, *, target: int | None = None, bounds: bool = False) -> int:
        """A float accessor (SCALAR for 1-D, VEC3/VEC4 for (N, 3)/(N, 4)); ``bounds`` adds min/max."""
        data = np.ascontiguousarray(array, dtype="<f4")
        accessor = {
            "bufferView": self._view(data.tobytes(), target),
            "componentType": _FLOAT,
            "count": int(data.shape[0]),
            "type": "SCALAR" if data.ndim == 1 else f"VEC{data.shape[1]}",
        }
        if bounds:
            accessor.update(_bounds(data))
        return self._add(accessor)

    def indices(self, faces: np.ndarray) -> int:
        flat = np.asarray(faces).reshape(-1)
        small = flat.size == 0 or int(flat.max()) < 65535
        data = flat.astype("<u2" if small else "<u4")
        return self._add({
            "bufferView": self._view(data.tobytes(), _ELEMENT_ARRAY_BUFFER),
            "componentType": _USHORT if small else _UINT,
            "count": int(flat.size),
            "type": "SCALAR",
        })

    def vec3_target(self, delta: np.ndarray, *, bounds: bool) -> int:
        """A morph-target VEC3 accessor: sparse (indices + values of moved vertices) when smaller."""
        data = np.ascontiguousarray(delta, dtype="<f4")
        moved = np.flatnonzero(np.any(data != 0.0, axis=1))
        count = len(data)
        if len(moved) == 0:  # no bufferView and no sparse: the spec's all-zeros accessor
            accessor = {"componentType": _FLOAT, "count": count, "type": "VEC3"}
        elif len(moved) * 16 < count * 12:
            index_type = "<u2" if count <= 65535 else "<u4"
            accessor = {
                "componentType": _FLOAT,
                "count": count,
                "type": "VEC3",
                "sparse": {
                    "count": len(moved),
                    "indices": {
                        "bufferView": self._view(moved.astype(index_type).tobytes()),
                        "componentType": _USHORT if index_type == "<u2" else _UINT,
                    },
                    "values": {"bufferView": self._view(data[moved].tobytes())},
                },
            }
        else:
            return self.floats(data, target=_ARRAY_BUFFER, bounds=bounds)
        if bounds:
            accessor.update(_bounds(data))
        return self._add(accessor)


def _bounds(data: np.ndarray) -> dict:
    """min/max as the float32 values themselves, which is what validators compare against."""
    lo, hi = data.min(axis=0), data.max(axis=0)
    listify = (lambda a: [float(x) for x in a]) if data.ndim == 2 else (lambda a: [float(a)])
    return {"min": listify(lo), "max": listify(hi)}


def _glb_bytes(document: dict, binary: bytes) -> bytes:
    """Header + JSON chunk (space-padded) + BIN chunk (zero-padded), as the GLB spec lays out."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * ((-len(text)) % 4)
    binary += b"\0" * ((-len(binary)) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([
        struct.pack("<4sII", _GLB_MAGIC, 2, total),
        struct.pack("<II", len(text), _CHUNK_JSON),
        text,
        struct.pack("<II", len(binary), _CHUNK_BIN),
        binary,
    ])


def read_glb(path: str | Path) -> GlbContent:
    """Parse a .glb's header and chunks; a MotionError if it is not a glTF 2.0 binary."""
    path = Path(path)
    if not path.is_file():
        raise MotionError(f"glTF file {path} does not exist.")
    data = path.read_bytes()
    if len(data) < 20 or data[:4] != _GLB_MAGIC:
        raise MotionError(f"{path} is not a glTF binary (.glb); it does not start with 'glTF'.")
    _, version, total = struct.unpack_from("<4sII", data, 0)
    if version != 2:
        raise MotionError(f"{path} is glTF version {version}; only glTF 2.0 is supported.")
    if total > len(data):
        raise MotionError(f"{path} is truncated ({len(data)} of {total} bytes).")
    chunks: dict[int, bytes] = {}
    offset = 12
    while offset + 8 <= total:
        length, kind = struct.unpack_from("<II", data, offset)
        chunks.setdefault(kind, data[offset + 8: offset + 8 + length])
        offset += 8 + length
    if _CHUNK_JSON not in chunks:
        raise MotionError(f"{path} has no JSON chunk; it is not a valid .glb.")
    try:
        document = json.loads(chunks[_CHUNK_JSON].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MotionError(f"{path} has an unreadable JSON chunk ({exc}).") from None
    if not isinstance(document, dict):
        raise MotionError(f"{path} has a JSON chunk that is not a glTF document.")
    return GlbContent(document=document, binary=chunks.get(_CHUNK_BIN, b""))


def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise MotionError(f"fps must be a positive number, got {fps}.")
    return fps


def _check_faces(template: FaceTemplate) -> None:
    if template.n_faces == 0:
        raise TemplateError(f"Template {template.name} has no faces; a glTF mesh needs triangles, so pass a template mesh (.ply/.obj).")


def _audio_reference(audio_path: str | Path, glb_path: Path) -> str:
    """The audio path as the viewer resolves it: relative to the .glb's folder when possible."""
    audio = Path(audio_path)
    if not audio.is_file():
        warnings.warn(f"Audio {audio} does not exist; recording its path in the .glb anyway.", KmtalkWarning, stacklevel=3)
    try:
        return Path(os.path.relpath(audio.resolve(), glb_path.resolve().parent)).as_posix()
    except ValueError:  # another drive on Windows
        return audio.resolve().as_posix()


def _document(
    template: FaceTemplate,
    names: Sequence[str],
    deltas: np.ndarray,
    weights: np.ndarray,
    fps: float,
    extras: dict,
    head_pose: HeadPose | None = None,
) -> tuple[dict, bytes]:
    """The glTF JSON and binary for the face mesh, its morph targets and one animation.

    A template with separate parts (the bundled head) adds their nodes: see :func:`_head_nodes`.
    """
    rest = np.asarray(template.vertices, dtype=np.float64)
    faces = np.asarray(template.faces, dtype=np.int64)
    rest_normals = vertex_normals(rest, faces)
    out = _BinaryBuilder()
    attributes = {
        "POSITION": out.floats(rest, target=_ARRAY_BUFFER, bounds=True),
        "NORMAL": out.floats(rest_normals, target=_ARRAY_BUFFER),
    }
    indices = out.indices(faces)
    targets = []
    for delta in deltas:
        # Normal deltas are the secant at weight 1, so shading follows the shape (three.js and
        # Blender blend them linearly like the positions).
        normal_delta = vertex_normals(rest + delta, faces) - rest_normals
        targets.append({
            "POSITION": out.vec3_target(delta, bounds=True),
            "NORMAL": out.vec3_target(normal_delta, bounds=False),
        })
    frames = weights.shape[0]
    times = np.arange(frames, dtype=np.float64) / fps
    time_accessor = out.floats(times.astype(np.float32), bounds=True)
    weight_accessor = out.floats(weights.reshape(-1))
    document = {
        "asset": {"version": "2.0", "generator": f"kmtalk {__version__}"},
        "scene": 0,
        "scenes": [{"name": template.name, "nodes": [0]}],
        "nodes": [{"name": "head", "mesh": 0}],
        "materials": [{
            "name": "skin",
            "pbrMetallicRoughness": {"baseColorFactor": _SKIN, "metallicFactor": 0.0, "roughnessFactor": 0.65},
        }],
        "meshes": [{
            "name": template.name,
            "primitives": [{
                "attributes": attributes,
                "indices": indices,
                "material": 0,
                "mode": _TRIANGLES,
                "targets": targets,
            }],
            "weights": [0.0] * len(names),
            "extras": {"targetNames": list(names)},
        }],
        "animations": [{
            "name": "speech",
            "samplers": [{"input": time_accessor, "output": weight_accessor, "interpolation": "LINEAR"}],
            "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}],
        }],
        "accessors": out.accessors,
        "bufferViews": out.views,
        "extras": {"fps": fps, "frames": frames, **extras},
    }
    from ..face.accessories import has_parts

    if has_parts(template):
        _head_nodes(document, out, template, deltas, weights, time_accessor, head_pose)
    binary = out.binary
    document["buffers"] = [{"byteLength": len(binary)}]
    return document, binary


def _linear(value: np.ndarray) -> np.ndarray:
    """sRGB (0..1) → linear, as glTF's COLOR_0 and base colours are linear."""
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4)


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotation matrices → (T, 4) unit quaternions (x, y, z, w), sign-continuous."""
    r = np.asarray(rotations, dtype=np.float64)
    q = np.empty((len(r), 4))
    trace = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    q[:, 3] = np.sqrt(np.maximum(0.0, 1.0 + trace)) / 2
    q[:, 0] = np.copysign(np.sqrt(np.maximum(0.0, 1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2])) / 2, r[:, 2, 1] - r[:, 1, 2])
    q[:, 1] = np.copysign(np.sqrt(np.maximum(0.0, 1.0 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2])) / 2, r[:, 0, 2] - r[:, 2, 0])
    q[:, 2] = np.copysign(np.sqrt(np.maximum(0.0, 1.0 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2])) / 2, r[:, 1, 0] - r[:, 0, 1])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    for i in range(1, len(q)):  # the shorter way between neighbours, so LINEAR blends cleanly
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


def _head_nodes(
    document: dict,
    out: _BinaryBuilder,
    template: FaceTemplate,
    deltas: np.ndarray,
    weights: np.ndarray,
    times: int,
    head_pose: HeadPose | None,
) -> None:
    """Add the head's separate parts to ``document`` as nodes of their own, animated.

    Hierarchy: ``head`` (turns about the neck pivot; a rotation track with a head pose) →
    ``skull`` → the face, ``scalp``, ``mouth`` (the cavity, with morph targets that follow the
    face's, played by the same weights), ``teeth_upper``, ``jaw`` (rotation track about the
    hinge) → ``teeth_lower`` and ``tongue``, and ``eye_left``/``eye_right`` (gaze rotation and
    sinking-back translation tracks about each eye's centre).
    """
    from ..face.accessories import jaw_angles, parts_motion, pose_parts, rotation_x

    rest = np.asarray(template.vertices, dtype=np.float64)
    nodes, meshes, materials = document["nodes"], document["meshes"], document["materials"]
    anim = document["animations"][0]
    samplers, channels = anim["samplers"], anim["channels"]
    pivot = np.asarray(template.anchors.get("neck_pivot", np.zeros(3)), dtype=np.float64)
    hinge = np.asarray(template.anchors["jaw_hinge"], dtype=np.float64)
    frames = len(weights)

    # What the face looks like in each frame, from its own morph targets: the jaw and the eyes
    # follow it exactly as they do in a rendered video.
    shown = np.empty((frames, *rest.shape))
    for start in range(0, frames, 256):
        w = np.asarray(weights[start:start + 256], dtype=np.float64)
        shown[start:start + 256] = rest + np.tensordot(w, deltas, axes=(1, 0))
    motion = parts_motion(shown, template, head_pose)

    materials.append({"name": "parts", "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                                                              "metallicFactor": 0.0, "roughnessFactor": 0.5}})
    part_material = len(materials) - 1

    def add_mesh(name: str, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray | None, targets: list | None = None) -> int:
        attributes = {
            "POSITION": out.floats(vertices, target=_ARRAY_BUFFER, bounds=True),
            "NORMAL": out.floats(vertex_normals(vertices, faces), target=_ARRAY_BUFFER),
        }
        if colours is not None:  # parts carry their colours; the scalp wears the face's skin
            attributes["COLOR_0"] = out.floats(_linear(colours.astype(np.float64) / 255.0), target=_ARRAY_BUFFER)
        primitive = {
            "attributes": attributes,
            "indices": out.indices(faces),
            "material": part_material if colours is not None else 0,
            "mode": _TRIANGLES,
        }
        mesh = {"name": name, "primitives": [primitive]}
        if targets is not None:
            primitive["targets"] = targets
            mesh["weights"] = [0.0] * len(targets)
        meshes.append(mesh)
        return len(meshes) - 1

    def add_node(node: dict) -> int:
        nodes.append(node)
        return len(nodes) - 1

    def track(node: int, path: str, values: np.ndarray) -> None:
        samplers.append({"input": times, "output": out.floats(values.astype(np.float32)), "interpolation": "LINEAR"})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

    face_node = dict(nodes[0], name="face")
    children: list[int] = []
    nodes[0] = {"name": "head", "translation": pivot.tolist(), "children": []}
    skull = add_node({"name": "skull", "translation": (-pivot).tolist(), "children": children})
    nodes[0]["children"] = [skull]
    face = add_node(face_node)
    for channel in channels:  # the face's weights now live on its own node
        if channel["target"]["node"] == 0:
            channel["target"]["node"] = face
    children.append(face)

    parts = template.parts
    for name in ("scalp", "teeth_upper"):
        if name in parts:
            p = parts[name]
            colours = None if name == "scalp" else p.colours
            children.append(add_node({"name": name, "mesh": add_mesh(name, np.asarray(p.vertices, np.float64), p.faces, colours)}))
    if "mouth" in parts:
        # Morph targets of the cavity: its shape under each face target alone, so the same
        # weights move the lips' border and the cavity together.
        p = parts["mouth"]
        base = pose_parts(rest, template, 0.0)["mouth"]
        targets = []
        for delta in deltas:
            face_k = rest + delta
            posed = pose_parts(face_k, template, float(jaw_angles(face_k, template)[0]))["mouth"]
            targets.append({"POSITION": out.vec3_target(posed - base, bounds=True)})
        mouth = add_node({"name": "mouth", "mesh": add_mesh("mouth", base, p.faces, p.colours, targets)})
        children.append(mouth)
        channels.append({"sampler": 0, "target": {"node": mouth, "path": "weights"}})
    jaw_children: list[int] = []
    jaw = add_node({"name": "jaw", "translation": hinge.tolist(), "children": []})
    jaw_offset = add_node({"name": "jaw_offset", "translation": (-hinge).tolist(), "children": jaw_children})
    nodes[jaw]["children"] = [jaw_offset]
    children.append(jaw)
    for name in ("teeth_lower", "tongue"):
        if name in parts:
            p = parts[name]
            jaw_children.append(add_node({"name": name, "mesh": add_mesh(name, np.asarray(p.vertices, np.float64), p.faces, p.colours)}))
    track(jaw, "rotation", _quaternions(rotation_x(motion.jaw)))
    for name in ("eye_left", "eye_right"):
        if name not in parts or name not in template.anchors:
            continue
        p = parts[name]
        centre = np.asarray(template.anchors[name], dtype=np.float64)
        eye = add_node({"name": name, "translation": centre.tolist(),
                        "mesh": add_mesh(name, np.asarray(p.vertices, np.float64) - centre, p.faces, p.colours)})
        children.append(eye)
        retreat = (motion.retreat or {}).get(name, np.zeros(frames))
        track(eye, "translation", centre[None] - np.outer(retreat, [0.0, 0.0, 1.0]))
        if motion.gaze is not None:
            track(eye, "rotation", _quaternions(motion.gaze))
    if motion.head is not None:
        track(0, "rotation", _quaternions(motion.head))


def _write(path: str | Path, template: FaceTemplate, names: Sequence[str], deltas: np.ndarray,
           weights: np.ndarray, fps: float, audio_path: str | Path | None, force: bool, extras: dict,
           head_pose: HeadPose | None = None) -> Path:
    path = Path(path)
    if audio_path is not None:
        extras = {**extras, "audio": _audio_reference(audio_path, path)}
    document, binary = _document(template, names, deltas, weights, fps, extras, head_pose)
    payload = _glb_bytes(document, binary)
    with atomic_output(path, force=force) as tmp:
        tmp.write_bytes(payload)
    return path


def write_glb(
    path: str | Path,
    template: FaceTemplate,
    *,
    morph_names: Sequence[str],
    morph_deltas: np.ndarray,
    weights: np.ndarray,
    fps: float,
    audio_path: str | Path | None = None,
    force: bool = False,
    head_pose: HeadPose | None = None,
) -> Path:
    """Write the head with named morph targets (P, V, 3) played by ``weights`` (T, P) at ``fps``.

    On the bundled head the teeth, tongue, mouth cavity, eyes and scalp are separate nodes
    (jaw and eyes animated); ``head_pose`` adds a rotation track to the head node and gaze to
    the eyes.
    """
    _check_faces(template)
    fps = _check_fps(fps)
    names = [str(n) for n in morph_names]
    deltas = np.asarray(morph_deltas, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if deltas.ndim != 3 or deltas.shape[1:] != (template.n_vertices, 3):
        raise MotionError(f"Morph deltas have shape {deltas.shape}; expected (P, {template.n_vertices}, 3) for template {template.name}.")
    if len(names) != deltas.shape[0] or len(set(names)) != len(names):
        raise MotionError(f"{len(names)} morph names for {deltas.shape[0]} morph targets; give one unique name per target.")
    if w.ndim != 2 or w.shape[1] != deltas.shape[0] or w.shape[0] == 0:
        raise MotionError(f"Weights have shape {w.shape}; expected (T, {deltas.shape[0]}) with at least one frame.")
    if not (np.isfinite(deltas).all() and np.isfinite(w).all()):
        raise MotionError("Morph deltas or weights contain NaN or infinite values.")
    return _write(path, template, names, deltas, w.astype(np.float32), fps, audio_path, force, {"source": "rig"}, head_pose)


def bake_morph_targets(
    rest: np.ndarray,
    vertices: np.ndarray,
    *,
    tolerance: float = BAKE_TOLERANCE,
    max_targets: int = BAKE_MAX_TARGETS,
) -> BakedMorphs:
    """The fewest targets whose weighted sum reproduces ``vertices`` (T, V, 3) within ``tolerance``.

    The leading principal directions of the offsets from ``rest`` (a truncated SVD) are the
    best rank-K approximation, so no other K-target basis is closer; they are not centred,
    because the mean offset is just one more direction the first target absorbs. Weights are
    scaled to peak at ±1 (signed, not limited to 0..1). Warns when ``max_targets`` stops
    short of ``tolerance``.
    """
    rest = np.asarray(rest, dtype=np.float64)
    frames, n_vertices = vertices.shape[0], rest.shape[0]
    offsets = (np.asarray(vertices, dtype=np.float64) - rest[None]).reshape(frames, -1)
    stride = math.ceil(frames / _BASIS_FRAMES)
    directions = _principal_directions(offsets[::stride], int(max_targets))
    # Every frame's coordinates on the (orthonormal) directions, and the squared error left
    # after keeping the first k of them, measured on all frames.
    coeff = offsets @ directions.T
    left = np.maximum(float(np.einsum("ij,ij->", offsets, offsets)) - np.cumsum(np.einsum("ij,ij->j", coeff, coeff)), 0.0)
    reaching = np.flatnonzero(np.sqrt(left / (frames * n_vertices)) < tolerance)
    k = int(reaching[0]) + 1 if reaching.size else len(directions)
    coeff, directions = coeff[:, :k], directions[:k]
    peak = coeff[np.argmax(np.abs(coeff), axis=0), np.arange(k)]
    scale = np.where(np.abs(peak) > 0, peak, 1.0)  # signed: the largest excursion becomes +1
    weights = (coeff / scale).astype(np.float32)
    deltas = (directions * scale[:, None]).reshape(k, n_vertices, 3).astype(np.float32)
    rms, worst = _reconstruction_error(offsets, weights, deltas.reshape(k, -1))
    if rms >= tolerance:
        warnings.warn(
            f"Baking with {k} morph targets (at most {max_targets}) leaves {rms * 1e3:.3f} mm RMS error; "
            f"the goal is {tolerance * 1e3:.3f} mm, so the motion plays slightly simplified.",
            KmtalkWarning,
            stacklevel=2,
        )
    names = tuple(f"bake_{i:03d}" for i in range(k))
    return BakedMorphs(names=names, deltas=deltas, weights=weights, rms_error=rms, max_error=worst)


def _principal_directions(sample: np.ndarray, count: int) -> np.ndarray:
    """Up to ``count`` orthonormal leading directions (rows, 3V wide) of the sampled offsets.

    Through the (S, S) Gram matrix rather than an SVD of the (S, 3V) sample: the same
    directions, several times faster since clips have far fewer frames than coordinates.
    Directions of zero energy (a still or low-rank motion) are dropped, keeping at least one.
    """
    energy, frame_space = np.linalg.eigh(sample @ sample.T)
    energy, frame_space = energy[::-1][:count], frame_space[:, ::-1][:, :count]
    keep = max(1, int(np.sum(energy > energy[0] * 1e-12)))
    sigma = np.sqrt(np.clip(energy[:keep], 0.0, None))
    return (frame_space[:, :keep].T @ sample) / np.where(sigma > 0, sigma, 1.0)[:, None]


def _reconstruction_error(offsets: np.ndarray, weights: np.ndarray, basis: np.ndarray, chunk: int = 256) -> tuple[float, float]:
    """RMS and max per-vertex error (metres) of the float32 data actually written, frame chunk by chunk."""
    total, worst = 0.0, 0.0
    w64, b64 = weights.astype(np.float64), basis.astype(np.float64)
    for start in range(0, len(offsets), chunk):
        diff = (offsets[start:start + chunk] - w64[start:start + chunk] @ b64).reshape(-1, 3)
        dist2 = np.einsum("ij,ij->i", diff, diff)
        total += float(dist2.sum())
        worst = max(worst, float(np.sqrt(dist2.max())))
    n = offsets.shape[0] * offsets.shape[1] // 3
    return float(np.sqrt(total / n)), worst


def write_baked_glb(
    path: str | Path,
    template: FaceTemplate,
    vertices: np.ndarray,
    fps: float,
    audio_path: str | Path | None = None,
    force: bool = False,
    *,
    baked: BakedMorphs | None = None,
    head_pose: HeadPose | None = None,
) -> Path:
    """Write a vertex motion (T, V, 3) as a baked morph basis so it plays in standard viewers.

    Parts and ``head_pose`` as in :func:`write_glb`.

    Pass ``baked`` (from :func:`bake_morph_targets`) to report its error before writing; the
    error is also recorded in the file's ``extras`` (``bake_rms_mm``, ``bake_max_mm``).
    """
    from ..motion import as_vertex_sequence

    _check_faces(template)
    fps = _check_fps(fps)
    frames = as_vertex_sequence(vertices, template.n_vertices, name="Motion")
    if baked is None:
        baked = bake_morph_targets(template.vertices, frames)
    elif baked.weights.shape[0] != frames.shape[0] or baked.deltas.shape[1] != template.n_vertices:
        raise MotionError(f"The baked morphs are for {baked.weights.shape[0]} frames of {baked.deltas.shape[1]} vertices, not this motion.")
    extras = {
        "source": "baked",
        "bake_rms_mm": round(baked.rms_error_mm, 6),
        "bake_max_mm": round(baked.max_error_mm, 6),
    }
    return _write(path, template, baked.names, baked.deltas.astype(np.float64), baked.weights, fps, audio_path, force, extras, head_pose)
