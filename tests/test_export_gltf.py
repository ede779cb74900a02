"""glTF export: the file read back accessor by accessor, the Khronos validator, the baked basis, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from kmtalk_cli.errors import KmtalkWarning, MotionError, OutputError, TemplateError
from kmtalk_cli.export.gltf import BAKE_TOLERANCE, bake_morph_targets, read_glb, write_baked_glb, write_glb
from kmtalk_cli.face.rig import INDEX, PARAMETERS
from kmtalk_cli.face.template import FaceTemplate

VALIDATOR = Path(__file__).parent / "vendor" / "validate_gltf.cjs"
FPS = 25.0




@pytest.fixture(scope="module")
def morphs(rig):
    """The linear export's targets: each control at 1 minus the rest shape, in PARAMETERS order."""
    return rig.pose(np.eye(len(PARAMETERS))) - rig.rest


def speech_weights(frames: int) -> np.ndarray:
    """A jaw that opens and closes, a smile and a blink: (T, P) in 0..1."""
    t = np.arange(frames) / FPS
    w = np.zeros((frames, len(PARAMETERS)))
    w[:, INDEX["jawOpen"]] = 0.5 - 0.5 * np.cos(2 * np.pi * 3 * t)
    w[:, INDEX["mouthSmileLeft"]] = np.linspace(0, 0.8, frames)
    w[:, INDEX["eyeBlinkRight"]] = (np.arange(frames) % 10 == 5).astype(float)
    return w


def accessor(content, index: int) -> np.ndarray:
    """Decode a float/uint accessor (dense, sparse, or the spec's all-zeros form) from the file."""
    doc, binary = content.document, content.binary
    acc = doc["accessors"][index]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    dtype = {5126: "<f4", 5123: "<u2", 5125: "<u4"}[acc["componentType"]]

    def view(view_index: int, count: int, kind: str) -> np.ndarray:
        v = doc["bufferViews"][view_index]
        return np.frombuffer(binary, dtype=kind, count=count, offset=v["byteOffset"])

    if "bufferView" in acc:
        out = view(acc["bufferView"], acc["count"] * width, dtype).copy()
    else:
        out = np.zeros(acc["count"] * width, dtype=dtype)
    if "sparse" in acc:
        sparse = acc["sparse"]
        kind = {5123: "<u2", 5125: "<u4"}[sparse["indices"]["componentType"]]
        where = view(sparse["indices"]["bufferView"], sparse["count"], kind).astype(np.int64)
        values = view(sparse["values"]["bufferView"], sparse["count"] * width, dtype).reshape(-1, width)
        out = out.reshape(-1, width)
        out[where] = values
    return out.reshape(-1, width) if width > 1 else out


def validate(path: Path) -> dict:
    """The Khronos validator's report; zero errors required, warnings surfaced as test warnings."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs); it runs the vendored glTF validator")
    done = subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    issues = report["issues"]
    messages = [f"{m['code']} {m.get('pointer', '')}: {m['message']}" for m in issues["messages"]]
    if issues["numWarnings"]:
        warnings.warn(f"glTF validator warnings for {path.name}: {messages}", stacklevel=2)
    assert issues["numErrors"] == 0, messages
    return report


def test_rig_glb_holds_named_targets_and_the_weights_animation(tmp_path, head, morphs, speech_wav):
    audio = speech_wav("speech.wav", duration=1.0)
    weights = speech_weights(12)
    out = write_glb(tmp_path / "talk.glb", head, morph_names=PARAMETERS, morph_deltas=morphs, weights=weights, fps=FPS, audio_path=audio)
    content = read_glb(out)
    doc = content.document
    mesh = doc["meshes"][0]
    primitive = mesh["primitives"][0]
    assert mesh["extras"]["targetNames"] == list(PARAMETERS)
    assert mesh["weights"] == [0.0] * len(PARAMETERS)
    assert doc["extras"] == {"fps": FPS, "frames": 12, "source": "rig", "audio": "speech.wav"}
    np.testing.assert_array_equal(accessor(content, primitive["attributes"]["POSITION"]), head.vertices)
    np.testing.assert_array_equal(accessor(content, primitive["indices"]).reshape(-1, 3), head.faces)
    normals = accessor(content, primitive["attributes"]["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    for k, target in enumerate(primitive["targets"]):
        np.testing.assert_array_equal(accessor(content, target["POSITION"]), morphs[k].astype(np.float32))
    # Controls move a few hundred vertices: those targets are sparse; mouthClose (a pure jaw
    # modifier, zero on its own) is the spec's bufferView-less all-zeros accessor.
    sparse = [("sparse" in doc["accessors"][t["POSITION"]]) for t in primitive["targets"]]
    assert sum(sparse) >= len(PARAMETERS) - 2
    assert "bufferView" not in doc["accessors"][primitive["targets"][INDEX["mouthClose"]]["POSITION"]]
    sampler = doc["animations"][0]["samplers"][0]
    assert sampler["interpolation"] == "LINEAR"
    face_node = next(i for i, node in enumerate(doc["nodes"]) if node.get("mesh") == 0)
    assert doc["animations"][0]["channels"][0]["target"] == {"node": face_node, "path": "weights"}
    np.testing.assert_allclose(accessor(content, sampler["input"]), np.arange(12) / FPS, rtol=1e-6)
    np.testing.assert_allclose(accessor(content, sampler["output"]).reshape(12, -1), weights, atol=1e-7)


def test_khronos_validator_finds_no_errors_in_rig_and_baked_exports(tmp_path, head, rig, morphs):
    weights = speech_weights(30)
    report = validate(write_glb(tmp_path / "rig.glb", head, morph_names=PARAMETERS, morph_deltas=morphs, weights=weights, fps=FPS))
    assert report["info"]["hasMorphTargets"] and report["info"]["animationCount"] == 1
    motion = rig.pose(weights)
    report = validate(write_baked_glb(tmp_path / "baked.glb", head, motion, FPS))
    parts = sum(p.n_vertices for p in head.parts.values())
    assert report["info"]["totalVertexCount"] == head.n_vertices + parts


def non_rig_motion(head: FaceTemplate, frames: int = 40) -> np.ndarray:
    """Smooth whole-head deformations no rig control makes (a swelling and a twist), plus a wobble."""
    v = head.vertices.astype(np.float64)
    t = np.arange(frames)[:, None, None] / FPS
    centre = v.mean(axis=0)
    swell = (v - centre) * 0.02
    twist = np.stack([-(v[:, 2] - centre[2]), np.zeros(len(v)), v[:, 0] - centre[0]], axis=1) * 0.03
    wobble = 0.0004 * np.sin(7.0 * v[:, 1:2] / 0.01)
    return v + np.sin(2 * np.pi * t) * swell + np.sin(2 * np.pi * 1.7 * t + 1.0) * twist + np.cos(9 * t) * wobble


def test_baked_glb_reproduces_a_motion_the_rig_cannot_express(tmp_path, head):
    motion = non_rig_motion(head)
    baked = bake_morph_targets(head.vertices, motion)
    assert baked.rms_error < BAKE_TOLERANCE and 1 <= len(baked.names) <= 8
    out = write_baked_glb(tmp_path / "baked.glb", head, motion, FPS, baked=baked)
    content = read_glb(out)
    primitive = content.document["meshes"][0]["primitives"][0]
    deltas = np.stack([accessor(content, t["POSITION"]) for t in primitive["targets"]]).astype(np.float64)
    weights = accessor(content, content.document["animations"][0]["samplers"][0]["output"]).reshape(len(motion), -1)
    assert weights.min() < -0.5 and np.abs(weights).max() == pytest.approx(1.0)  # signed, not clipped to 0..1
    replay = head.vertices[None] + np.einsum("tk,kvc->tvc", weights, deltas)
    rms = np.sqrt(np.mean(np.sum((replay - motion) ** 2, axis=-1)))
    assert rms == pytest.approx(baked.rms_error, rel=1e-3, abs=1e-7)
    extras = content.document["extras"]
    assert extras["source"] == "baked" and extras["bake_rms_mm"] == pytest.approx(baked.rms_error_mm, abs=1e-6)


def test_bake_capped_below_its_tolerance_warns_and_reports_the_error(head):
    motion = non_rig_motion(head, frames=20)
    with pytest.warns(KmtalkWarning, match="1 morph targets"):
        baked = bake_morph_targets(head.vertices, motion, max_targets=1)
    assert len(baked.names) == 1 and baked.rms_error > BAKE_TOLERANCE and baked.max_error >= baked.rms_error


def test_a_still_motion_bakes_to_one_zero_target(tmp_path, head):
    still = np.repeat(head.vertices[None], 3, axis=0)
    baked = bake_morph_targets(head.vertices, still)
    assert len(baked.names) == 1 and baked.rms_error == 0.0 and not baked.deltas.any()
    validate(write_baked_glb(tmp_path / "still.glb", head, still, FPS, baked=baked))


def test_bad_input_is_refused_with_one_sentence(tmp_path, head, morphs):
    weights = speech_weights(4)
    kwargs = dict(morph_names=PARAMETERS, morph_deltas=morphs, weights=weights, fps=FPS)
    with pytest.raises(MotionError, match="5080, 3"):
        write_glb(tmp_path / "a.glb", head, **{**kwargs, "morph_deltas": morphs[:, :100]})
    with pytest.raises(MotionError, match="one unique name"):
        write_glb(tmp_path / "a.glb", head, **{**kwargs, "morph_names": PARAMETERS[:-1]})
    with pytest.raises(MotionError, match="NaN"):
        write_glb(tmp_path / "a.glb", head, **{**kwargs, "weights": np.full_like(weights, np.nan)})
    with pytest.raises(MotionError, match="fps"):
        write_glb(tmp_path / "a.glb", head, **{**kwargs, "fps": 0})
    with pytest.raises(MotionError, match="100 vertices per frame but the template has 5080"):
        write_baked_glb(tmp_path / "a.glb", head, np.zeros((3, 100, 3)), FPS)
    points = FaceTemplate(vertices=head.vertices, faces=np.zeros((0, 3), dtype=np.int32), regions={})
    with pytest.raises(TemplateError, match="no faces"):
        write_glb(tmp_path / "a.glb", points, **kwargs)
    assert not (tmp_path / "a.glb").exists()
    write_glb(tmp_path / "a.glb", head, **kwargs)
    with pytest.raises(OutputError, match="--force"):
        write_glb(tmp_path / "a.glb", head, **kwargs)
    write_glb(tmp_path / "a.glb", head, **kwargs, force=True)


def test_read_glb_refuses_other_files(tmp_path):
    with pytest.raises(MotionError, match="does not exist"):
        read_glb(tmp_path / "missing.glb")
    (tmp_path / "x.glb").write_text('{"asset": {"version": "2.0"}}')
    with pytest.raises(MotionError, match="not a glTF binary"):
        read_glb(tmp_path / "x.glb")


def test_head_parts_are_separate_animated_nodes_and_validate(tmp_path, head, morphs):
    """Teeth, tongue and eyes are nodes of their own: the jaw node turns with the chin, the eyes
    with the gaze, the head node with the head pose; the file passes the Khronos validator."""
    from kmtalk_cli.face.headpose import HeadPose

    weights = speech_weights(20)
    rotation = np.zeros((20, 3), np.float32)
    rotation[:, 1] = np.linspace(0.0, 0.3, 20)  # turns to its left
    gaze = np.zeros((20, 2), np.float32)
    gaze[:, 1] = 0.2  # looks down
    pose = HeadPose(FPS, rotation, gaze)
    path = write_glb(tmp_path / "parts.glb", head, morph_names=PARAMETERS, morph_deltas=morphs, weights=weights, fps=FPS, head_pose=pose)
    report = validate(path)
    content = read_glb(path)
    doc = content.document
    names = [node.get("name") for node in doc["nodes"]]
    for name in ("head", "skull", "face", "scalp", "mouth", "teeth_upper", "jaw", "teeth_lower", "tongue", "eye_left", "eye_right"):
        assert name in names, name
    tracks = {}
    for channel in doc["animations"][0]["channels"]:
        sampler = doc["animations"][0]["samplers"][channel["sampler"]]
        values = accessor(content, sampler["output"])
        tracks[(names[channel["target"]["node"]], channel["target"]["path"])] = values
    jaw = tracks[("jaw", "rotation")].reshape(20, 4)
    opening = weights[:, INDEX["jawOpen"]]
    angle = 2 * np.arctan2(jaw[:, 0], jaw[:, 3])  # rotation about +X
    assert np.corrcoef(angle, opening)[0, 1] > 0.99 and angle.max() > np.radians(5)
    head_q = tracks[("head", "rotation")].reshape(20, 4)
    np.testing.assert_allclose(2 * np.arctan2(head_q[:, 1], head_q[:, 3]), rotation[:, 1], atol=1e-5)
    eye_q = tracks[("eye_left", "rotation")].reshape(20, 4)
    np.testing.assert_allclose(2 * np.arctan2(eye_q[:, 0], eye_q[:, 3]), 0.2, atol=1e-5)
    assert ("face", "weights") in tracks and ("mouth", "weights") in tracks
    assert report["info"]["animationCount"] == 1


def test_write_motion_passes_the_head_pose_to_the_glb(tmp_path, head, rig):
    from kmtalk_cli.export import write_motion
    from kmtalk_cli.face.headpose import HeadPose

    weights = speech_weights(10)
    rotation = np.zeros((10, 3), np.float32)
    rotation[:, 0] = 0.1
    pose = HeadPose(FPS, rotation, np.zeros((10, 2), np.float32))
    (path,) = write_motion(rig.pose(weights), head, {"glb": tmp_path / "take.glb"}, FPS, head_pose=pose)
    doc = read_glb(path).document
    targets = [(doc["nodes"][c["target"]["node"]]["name"], c["target"]["path"]) for c in doc["animations"][0]["channels"]]
    assert ("head", "rotation") in targets and ("jaw", "rotation") in targets
