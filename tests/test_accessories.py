"""Head parts posed from a motion: teeth and tongue with the jaw, welded seams, eyes with the head."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kmtalk_cli.face.accessories import (
    assemble,
    gaze_rotations,
    head_rotations,
    jaw_angles,
    parts_motion,
    pose_assembly,
    pose_parts,
)
from kmtalk_cli.face.headpose import HeadPose
from kmtalk_cli.face.rig import INDEX, MAX_JAW_DEGREES, PARAMETERS, build_rig
from kmtalk_cli.face.template import load_template, save_template



@pytest.fixture(scope="module")
def jaw_frames(head):
    """Rest, then the rig's jaw half and fully open."""
    w = np.zeros((3, len(PARAMETERS)))
    w[1, INDEX["jawOpen"]] = 0.5
    w[2, INDEX["jawOpen"]] = 1.0
    return build_rig(head).pose(w)


def test_bundled_head_has_every_part_and_keeps_the_face(head):
    assert set(head.parts) == {"teeth_upper", "teeth_lower", "tongue", "mouth", "eye_left", "eye_right", "scalp"}
    assert head.n_vertices == 5080 and head.n_faces == 9894
    for name in ("eye_left", "eye_right", "neck_pivot", "jaw_hinge"):
        assert name in head.anchors


def test_jaw_angle_is_estimated_from_the_chin(head, jaw_frames):
    angles = jaw_angles(jaw_frames, head)
    assert abs(angles[0]) < 1e-4
    assert 0 < angles[1] < angles[2]
    assert 0.6 * np.radians(MAX_JAW_DEGREES) < angles[2] <= np.radians(MAX_JAW_DEGREES)
    # A jaw turned rigidly about the hinge is recovered exactly.
    hinge = head.anchors["jaw_hinge"]
    rel = head.vertices - hinge
    a = np.radians(12.0)
    turned = head.vertices.copy()
    turned[:, 1] = hinge[1] + rel[:, 1] * np.cos(a) - rel[:, 2] * np.sin(a)
    turned[:, 2] = hinge[2] + rel[:, 1] * np.sin(a) + rel[:, 2] * np.cos(a)
    assert jaw_angles(turned, head)[0] == pytest.approx(a, abs=1e-5)


def test_lower_teeth_and_tongue_follow_an_opening_jaw_upper_teeth_stay(head, jaw_frames):
    motion = parts_motion(jaw_frames, head)
    rest = pose_parts(jaw_frames[0], head, float(motion.jaw[0]))
    wide = pose_parts(jaw_frames[2], head, float(motion.jaw[2]))
    np.testing.assert_allclose(wide["teeth_upper"], rest["teeth_upper"], atol=1e-9)
    drop = rest["teeth_lower"][:, 1].mean() - wide["teeth_lower"][:, 1].mean()
    assert drop > 5e-3  # the lower arch drops by millimetres with the chin
    assert rest["tongue"][:, 1].mean() - wide["tongue"][:, 1].mean() > 3e-3
    # The lower incisors move with the chin: rigidly, by the chin's own rotation.
    chin = head.landmarks[8]
    chin_drop = jaw_frames[0][chin, 1] - jaw_frames[2][chin, 1]
    front = np.argmax(rest["teeth_lower"][:, 2])
    assert 0.5 * chin_drop < rest["teeth_lower"][front, 1] - wide["teeth_lower"][front, 1] < 1.5 * chin_drop


def test_welded_seams_sit_on_the_face(head, jaw_frames):
    posed = pose_parts(jaw_frames[2], head, float(jaw_angles(jaw_frames[2:], head)[0]))
    for name in ("scalp", "mouth"):
        weld = head.parts[name].weld
        assert (weld >= 0).sum() > 50
        np.testing.assert_allclose(posed[name][weld >= 0], jaw_frames[2][weld[weld >= 0]], atol=1e-6)


def test_eyeballs_stay_in_their_sockets_as_the_head_turns(head):
    frames = np.repeat(head.vertices[None], 3, axis=0)
    rotation = np.array([[0.0, 0.0, 0.0], [0.1, 0.35, 0.0], [-0.2, -0.3, 0.15]], dtype=np.float32)
    pose = HeadPose(30.0, rotation, np.zeros((3, 2), np.float32))
    assembly = assemble(head)
    motion = parts_motion(frames, head, pose)
    lids = head.regions["eyes_left"]
    for t in range(3):
        posed = pose_assembly(assembly, frames[t], motion, t).astype(np.float64)
        eye = posed[assembly.slices["eye_left"]]
        centre = eye.mean(axis=0)
        socket = posed[lids]
        # Distances from the eyeball's centre to its socket's skin are those of the rest pose.
        if t == 0:
            rest = np.linalg.norm(socket - centre, axis=1)
        else:
            np.testing.assert_allclose(np.linalg.norm(socket - centre, axis=1), rest, atol=1e-5)
            assert np.linalg.norm(centre - head.anchors["eye_left"]) > 5e-3  # the head did turn


def test_gaze_turns_the_iris_not_the_eyeball(head):
    frames = head.vertices[None]
    looks_left = HeadPose(30.0, np.zeros((1, 3), np.float32), np.array([[0.3, 0.0]], np.float32))
    motion = parts_motion(frames, head, looks_left)
    posed = pose_parts(frames[0], head, 0.0, motion.gaze[0])["eye_right"]
    still = pose_parts(frames[0], head, 0.0)["eye_right"]
    centre = head.anchors["eye_right"]
    np.testing.assert_allclose(np.linalg.norm(posed - centre, axis=1), np.linalg.norm(still - centre, axis=1), atol=1e-6)
    front = np.argmax(head.parts["eye_right"].vertices[:, 2])  # the pupil's pole
    assert posed[front, 0] - still[front, 0] > 2e-3  # looks towards the face's left (+X)


def test_rotation_signs_match_the_head_pose_convention():
    forward = np.array([0.0, 0.0, 1.0])
    up = np.array([0.0, 1.0, 0.0])
    pose = HeadPose(30.0, np.array([[0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.3]], np.float32), np.zeros((3, 2), np.float32))
    r = head_rotations(pose)
    assert (r[0] @ forward)[1] < 0  # pitch: looks down
    assert (r[1] @ forward)[0] > 0  # yaw: turns to the face's left
    assert (r[2] @ up)[0] > 0  # roll: crown towards the face's left shoulder
    assert (gaze_rotations(np.array([[0.0, 0.3]])) @ forward)[0][1] < 0


def test_parts_survive_a_saved_template(head, tmp_path):
    path = save_template(head, tmp_path / "head.npz")
    again = load_template(path)
    assert set(again.parts) == set(head.parts)
    np.testing.assert_array_equal(again.parts["mouth"].follow, head.parts["mouth"].follow)
    assert not dataclasses.replace(head).with_vertices(head.vertices).parts  # another shape: parts dropped


def test_eyeballs_sink_behind_closing_lids(head):
    from kmtalk_cli.face.accessories import EYE_RETREAT, eye_retreats

    w = np.zeros((2, len(PARAMETERS)))
    w[1, INDEX["eyeBlinkLeft"]] = 1.0
    frames = build_rig(head).pose(w)
    retreat = eye_retreats(frames, head)
    assert retreat["eye_left"][0] == pytest.approx(0.0, abs=1e-9)
    assert retreat["eye_left"][1] > 0.7 * EYE_RETREAT
    assert retreat["eye_right"][1] == pytest.approx(0.0, abs=1e-6)  # the other eye stays open
    motion = parts_motion(frames, head)
    assembly = assemble(head)
    shut = pose_assembly(assembly, frames[1], motion, 1)[assembly.slices["eye_left"]]
    open_ = pose_assembly(assembly, frames[0], motion, 0)[assembly.slices["eye_left"]]
    assert (open_[:, 2] - shut[:, 2]).min() > 0.7 * EYE_RETREAT


def winding(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Generalised winding number of a triangle soup at each point (1 inside a closed surface)."""
    a, b, c = (triangles[None, :, k] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
    num = np.einsum("ijk,ijk->ij", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("ijk,ijk->ij", a, b) * lc + np.einsum("ijk,ijk->ij", b, c) * la + np.einsum("ijk,ijk->ij", c, a) * lb
    return np.arctan2(num, den).sum(axis=1) / (2 * np.pi)


def test_teeth_and_tongue_stay_inside_the_mouth_as_it_opens(head, jaw_frames):
    assembly = assemble(head)
    motion = parts_motion(jaw_frames, head)
    scalp, mouth = assembly.slices["scalp"], assembly.slices["mouth"]
    faces = assembly.faces

    def among(s: slice) -> np.ndarray:
        return (faces >= s.start) & (faces < s.stop)

    skin = np.all((faces < head.n_vertices) | among(scalp), axis=1)
    solid = np.all((faces < head.n_vertices) | among(scalp) | among(mouth), axis=1)
    for t in (0, 2):
        posed = pose_assembly(assembly, jaw_frames[t], motion, t).astype(np.float64)
        inner = np.vstack([posed[assembly.slices[n]][::17] for n in ("teeth_upper", "teeth_lower", "tongue")])
        assert (winding(inner, posed[faces[skin]]) > 0.5).all()  # inside the head
        assert (np.abs(winding(inner, posed[faces[solid]])) < 0.5).all()  # within the mouth's pocket
        cavity = posed[mouth][head.parts["mouth"].weld < 0][::9]
        assert (winding(cavity, posed[faces[skin]]) > 0.5).all()  # the pocket never pokes through the skin
