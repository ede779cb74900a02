"""The articulatory rig, checked on measured geometry of the bundled head."""

from __future__ import annotations

import itertools

import numpy as np

from kmtalk_cli.face.coarticulation import SpeakingStyle, SpokenPhone, animate_phones
from kmtalk_cli.face.rig import (
    LOWER_FACE_PARAMETERS,
    PARAMETERS,
    UPPER_FACE_PARAMETERS,
    lip_gap,
    lip_width,
    params_from,
    upper_incisor_edge,
)




def _normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def test_rest_is_the_template(rig, head):
    np.testing.assert_allclose(rig.pose(np.zeros(len(PARAMETERS))), head.vertices, atol=1e-7)


def test_jaw_opens_the_lips_and_drops_the_chin(rig, head):
    lm = head.landmarks
    rest, opened = rig.pose(np.stack([params_from(), params_from(jawOpen=0.5)]))
    assert lip_gap(opened, lm) > lip_gap(rest, lm) + 0.008
    assert opened[lm[8], 1] < rest[lm[8], 1] - 0.005


def test_mouth_close_keeps_lips_together_with_the_jaw_open(rig, head):
    lm = head.landmarks
    rest, closed = rig.pose(np.stack([params_from(), params_from(jawOpen=0.4, mouthClose=1)]))
    assert lip_gap(closed, lm) < lip_gap(rest, lm) + 0.0005
    assert closed[lm[8], 1] < rest[lm[8], 1] - 0.003  # the chin still drops


def test_pucker_narrows_and_stretch_widens(rig, head):
    lm = head.landmarks
    rest, pucker, stretch = rig.pose(
        np.stack([params_from(), params_from(mouthPucker=1), params_from(mouthStretchLeft=1, mouthStretchRight=1)])
    )
    assert lip_width(pucker, lm) < lip_width(rest, lm) - 0.006
    assert lip_width(stretch, lm) > lip_width(rest, lm) + 0.006
    assert pucker[lm[62], 2] > rest[lm[62], 2] + 0.004  # protrusion


def test_upper_face_controls_move_only_the_upper_face(rig, head):
    lips = head.region("lips")
    upper = head.region("upper_face")
    for name in UPPER_FACE_PARAMETERS:
        d = np.linalg.norm(rig.deltas[PARAMETERS.index(name)], axis=1)
        assert d.max() > 0.002, name
        assert d[lips].max() == 0.0, name
    for name in LOWER_FACE_PARAMETERS:
        if name == "jawOpen":
            assert np.all(rig.jaw_weight[upper] == 0.0)
            continue
        assert np.abs(rig.deltas[PARAMETERS.index(name)][upper]).max() == 0.0, name


def test_blink_closes_the_eye(rig, head):
    lm = head.landmarks
    rest, blink = rig.pose(np.stack([params_from(), params_from(eyeBlinkLeft=1, eyeBlinkRight=1)]))
    for upper, lower in ((43, 47), (44, 46), (37, 41), (38, 40)):
        open_gap = rest[lm[upper], 1] - rest[lm[lower], 1]
        closed_gap = blink[lm[upper], 1] - blink[lm[lower], 1]
        assert closed_gap < 0.3 * open_gap


def _all_but_one() -> np.ndarray:
    """Every control at full except one, for each control in turn."""
    n = len(PARAMETERS)
    return np.stack([np.where(np.arange(n) == i, 0.0, 1.0) for i in range(n)])


def _extreme_poses() -> np.ndarray:
    """All controls at full, each control alone (jaw shut and open), every pair and every triple."""
    n = len(PARAMETERS)
    poses = [np.ones(n)]
    for i in range(n):
        for jaw in (0.0, 1.0):
            p = np.zeros(n)
            p[i] = 1.0
            p[0] = max(p[0], jaw)
            poses.append(p)
    for size in (2, 3):
        for chosen in itertools.combinations(range(n), size):
            p = np.zeros(n)
            p[list(chosen)] = 1.0
            poses.append(p)
    return np.stack(poses)


def _random_poses() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, size=(40, len(PARAMETERS))) ** 0.5


def _flipped(v: np.ndarray, faces: np.ndarray, rest_normals: np.ndarray) -> int:
    """Triangles whose normal turned more than 90 degrees from the rest pose's."""
    return int(np.count_nonzero(np.einsum("ij,ij->i", _normals(v, faces), rest_normals) <= 0.0))


def test_extremes_do_not_tear_fold_or_cross_the_lips(rig, head):
    faces = head.faces
    rest_normals = _normals(head.vertices.astype(np.float64), faces)
    edges = _edges(faces)
    # A blink folds the visible eyeball surface away under the lid by design; judge stretch elsewhere.
    eyes = np.union1d(head.region("eyes_left"), head.region("eyes_right"))
    edges = edges[~np.isin(edges, eyes).any(axis=1)]
    rest_len = np.linalg.norm(head.vertices[edges[:, 0]] - head.vertices[edges[:, 1]], axis=1)
    lm = head.landmarks
    poses = _extreme_poses()
    for chunk in np.array_split(poses, 24):
        for p, v in zip(chunk, rig.pose(chunk)):
            on = [PARAMETERS[i] for i in np.flatnonzero(p)]
            assert _flipped(v, faces, rest_normals) == 0, f"a triangle turned over at {on}"
            ratio = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1) / rest_len
            assert ratio.min() > 0.2 and ratio.max() < 3.0, on
            # The upper inner lip never drops below the lower one.
            for up, low in ((61, 67), (62, 66), (63, 65)):
                assert v[lm[up], 1] - v[lm[low], 1] > -0.0005, on


def test_all_but_one_control_at_full_does_not_fold(rig, head):
    """Next to the all-at-full extreme: leaving out any one control (the lip closure above all,
    which evens out the jaw weight over the lips) must not turn a triangle over either."""
    faces = head.faces
    rest_normals = _normals(head.vertices.astype(np.float64), faces)
    lm = head.landmarks
    for p, v in zip(_all_but_one(), rig.pose(_all_but_one())):
        assert _flipped(v, faces, rest_normals) == 0, PARAMETERS[int(np.argmin(p))]
        for up, low in ((61, 67), (62, 66), (63, 65)):
            assert v[lm[up], 1] - v[lm[low], 1] > -0.0005


def test_dense_random_combinations_do_not_fold(rig, head):
    """All controls high at once (antagonists included, jaw near full): no triangle turns over."""
    faces = head.faces
    rest_normals = _normals(head.vertices.astype(np.float64), faces)
    lm = head.landmarks
    for v in rig.pose(_random_poses()):
        assert _flipped(v, faces, rest_normals) == 0
        for up, low in ((61, 67), (62, 66), (63, 65)):
            assert v[lm[up], 1] - v[lm[low], 1] > -0.0005


def _phones(spec: str, step: float = 0.12) -> list[SpokenPhone]:
    out, t = [SpokenPhone("SIL", 0.0, 0.3)], 0.3
    for label in spec.split():
        out.append(SpokenPhone(label, t, t + step, 1 if label in ("AA", "UW", "IY") else 0))
        t += step
    out.append(SpokenPhone("SIL", t, t + 0.4))
    return out


def test_coarticulation_closes_for_bilabials_and_opens_for_aa(rig, head):
    phones = _phones("P AA P AA M AA B")
    fps = 30.0
    n = int(round(phones[-1].end * fps))
    params = animate_phones(phones, n, fps, SpeakingStyle(lead=0.0), np.random.default_rng(0))
    gaps = lip_gap(rig.pose(params), head.landmarks)
    rest_gap = float(lip_gap(head.vertices, head.landmarks))
    centre = lambda p: int(round((p.start + p.end) / 2 * fps))  # noqa: E731
    closures = [gaps[centre(p)] for p in phones if p.label in ("P", "B", "M")]
    opens = [gaps[centre(p)] for p in phones if p.label == "AA"]
    assert max(closures) < rest_gap + 0.001
    assert min(opens) > max(closures) + 0.006


def test_rounding_is_anticipated(rig, head):
    """In 'S T R UW' the lips already narrow during S, before the rounded vowel."""
    fps = 100.0
    rounded = _phones("S T R UW", step=0.09)
    spread = _phones("S T R IY", step=0.09)
    n = int(round(rounded[-1].end * fps))
    style = SpeakingStyle(lead=0.0)
    w_round = lip_width(rig.pose(animate_phones(rounded, n, fps, style)), head.landmarks)
    w_spread = lip_width(rig.pose(animate_phones(spread, n, fps, style)), head.landmarks)
    s = rounded[1]
    k = int(round((s.start + s.end) / 2 * fps))
    assert w_round[k] < w_spread[k] - 0.001


def test_labiodental_tucks_the_lower_lip_under_the_upper_teeth(rig, head):
    """In 'AA F AA V AA' the lower lip rises to the upper incisors' edge and moves back under the
    upper lip with the jaw nearly shut: F/V come out much narrower than the open vowel around
    them, not wider (the old target, a loose jaw and a lip rolled down, made them the widest)."""
    phones = _phones("AA F AA V AA", step=0.16)
    fps = 100.0
    n = int(round(phones[-1].end * fps))
    v = rig.pose(animate_phones(phones, n, fps, SpeakingStyle(lead=0.0), np.random.default_rng(0)))
    gaps = lip_gap(v, head.landmarks)
    edge = upper_incisor_edge(head)
    lm = head.landmarks
    contact = head.region("lip_contact_lower")
    middle = contact[np.abs(head.vertices[contact, 0] - edge[0]) < 0.004]
    centre = lambda p: int(round((p.start + p.end) / 2 * fps))  # noqa: E731
    open_k = centre(phones[1])
    assert v[open_k, middle, 1].mean() < edge[1] - 0.005  # the open vowel drops the lip far below the teeth
    for p in phones:
        if p.label in ("F", "V"):
            k = centre(p)
            assert abs(v[k, middle, 1].mean() - edge[1]) < 0.002, f"{p.label}: the lower lip is at the upper teeth's edge"
            assert v[k, lm[66], 2] < head.vertices[lm[66], 2] - 0.0005, "the lower lip moves back, under the upper lip"
            assert gaps[k] < 0.5 * gaps[open_k], p.label
            assert v[k, lm[8], 1] > head.vertices[lm[8], 1] - 0.002, "the jaw is nearly shut"


def test_incisor_edge_sits_behind_the_upper_lip_at_the_lips_meeting_height(head):
    edge = upper_incisor_edge(head)
    lm = head.landmarks
    assert edge[2] < head.vertices[lm[62], 2] - 0.002
    meeting = 0.5 * (head.vertices[lm[62], 1] + head.vertices[lm[66], 1])
    assert abs(edge[1] - meeting) < 0.003


def test_mouth_rests_in_pauses_and_at_both_ends(rig, head):
    """Speech from the first frame to the last, with a 300 ms pause: the lips are back within
    1 mm of rest 150 ms into the pause, and the first and last frames are at rest."""
    fps = 100.0
    spoken = [("AA", 0.0, 0.15), ("M", 0.15, 0.25), ("AE", 0.25, 0.45), ("SIL", 0.45, 0.75), ("AA", 0.75, 0.95), ("T", 0.95, 1.0)]
    phones = [SpokenPhone(label, a, b, 1 if label.startswith("A") else 0) for label, a, b in spoken]
    n = int(round(1.0 * fps))
    gaps = lip_gap(rig.pose(animate_phones(phones, n, fps, SpeakingStyle(), np.random.default_rng(0))), head.landmarks)
    rest_gap = float(lip_gap(head.vertices, head.landmarks))
    assert gaps.max() > rest_gap + 0.005  # it does speak
    assert abs(gaps[0] - rest_gap) < 1e-4 and abs(gaps[-1] - rest_gap) < 1e-4
    k = int(round((0.45 + 0.15) * fps))
    assert np.all(np.abs(gaps[k : int(0.68 * fps)] - rest_gap) < 0.001)
