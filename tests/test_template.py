"""Tests for the bundled head template and the template loaders."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from kmtalk_cli.errors import KmtalkWarning, OutputError, TemplateError
from kmtalk_cli.face import FaceTemplate, bundled_template, load_template, save_template

REQUIRED_REGIONS = (
    "face", "lips", "upper_lip", "lower_lip", "lower_face", "jaw", "upper_face", "forehead",
    "brow_left", "brow_right", "eyes_left", "eyes_right", "eyelid_upper_left", "eyelid_upper_right",
    "eyelid_lower_left", "eyelid_lower_right", "nose", "cheeks", "mouth_corners", "mouth_corner_left",
    "mouth_corner_right", "rigid", "scalp_neck", "mouth_boundary", "lip_contour_upper", "lip_contour_lower",
)

# iBUG left/right landmark pairs (mirror images across the x = 0 plane).
MIRROR_PAIRS = [
    (0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9), (17, 26), (18, 25),
    (19, 24), (20, 23), (21, 22), (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42),
    (40, 47), (41, 46), (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67),
]



def _border_loops(faces: np.ndarray) -> list[set[int]]:
    """Vertex sets of the border loops (edges used by exactly one face)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    border = unique[counts == 1]
    parent = {int(v): int(v) for v in border.ravel()}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in border.tolist():
        parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for v in parent:
        groups.setdefault(find(v), set()).add(v)
    return list(groups.values())


def _rotate_about_x(points: np.ndarray, pivot: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate points about the x-axis through ``pivot`` (positive angle opens the jaw)."""
    p = points - pivot
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([p[:, 0], p[:, 1] * c - p[:, 2] * s, p[:, 1] * s + p[:, 2] * c], axis=1) + pivot


# ---------------------------------------------------------------------------------------------
# Bundled head
# ---------------------------------------------------------------------------------------------


def test_bundled_counts_and_dtypes(head: FaceTemplate) -> None:
    assert 4000 <= head.n_vertices <= 6000
    assert head.vertices.dtype == np.float32 and head.faces.dtype == np.int32
    assert head.faces.ndim == 2 and head.faces.shape[1] == 3 and head.n_faces > head.n_vertices
    f = head.faces
    assert f.min() == 0 and f.max() == head.n_vertices - 1
    assert np.all((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])), "degenerate faces"
    assert len(np.unique(f)) == head.n_vertices, "unreferenced vertices"
    tri = head.vertices[f].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-10
    assert head.source == "bundled" and head.name == "kmtalk-head"


def test_bundled_is_cached_and_read_only(head: FaceTemplate) -> None:
    assert bundled_template() is head
    assert load_template(None) is head
    with pytest.raises(ValueError):
        head.vertices[0, 0] = 1.0
    with pytest.raises(ValueError):
        head.region("lips")[0] = 0


def test_bundled_scale_centre_and_axes(head: FaceTemplate) -> None:
    v = head.vertices.astype(np.float64)
    lm = v[head.landmarks]
    width = np.linalg.norm(lm[0] - lm[16])
    assert 0.12 <= width <= 0.18
    centre = (v.min(axis=0) + v.max(axis=0)) / 2
    assert np.abs(centre).max() < 1e-3
    assert lm[30, 2] > lm[36:48, 2].max(), "nose tip should be the most +Z feature (face looks down +Z)"
    assert lm[19, 1] > lm[33, 1] > lm[8, 1], "+Y is up: brows above nose above chin"
    assert lm[42:48, 0].mean() > 0 > lm[36:42, 0].mean(), "+X is the subject's left (iBUG 42-47)"


def test_bundled_winding_points_outwards(head: FaceTemplate) -> None:
    v = head.vertices.astype(np.float64)
    f = head.faces
    # Consistent orientation: each interior edge is used once in each direction.
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(normal, axis=1)
    outward = np.einsum("ij,ij->i", normal, tri.mean(axis=1) - [0.0, 0.0, -0.04]) > 0
    assert area[outward].sum() / area.sum() > 0.9


def test_bundled_mouth_slit_is_open(head: FaceTemplate) -> None:
    v = head.vertices
    lm = v[head.landmarks]
    loops = _border_loops(head.faces)
    assert len(loops) == 2  # the mouth slit and the neck opening
    slit = [loop for loop in loops
            if abs(v[list(loop), 0].mean()) < 0.01 and lm[57, 1] < v[list(loop), 1].mean() < lm[51, 1]]
    assert len(slit) == 1, "no border loop between the lips"
    assert slit[0] == set(head.region("mouth_boundary").tolist())
    upper = set(head.region("lip_contour_upper").tolist())
    lower = set(head.region("lip_contour_lower").tolist())
    assert len(upper) >= 20 and len(lower) >= 20 and not upper & lower
    assert upper | lower <= slit[0]
    assert v[list(upper), 1].mean() > v[list(lower), 1].mean()
    # Nothing welds the lips: no face joins an upper-contour vertex to a lower-contour vertex.
    in_up = np.isin(head.faces, list(upper)).any(axis=1)
    in_low = np.isin(head.faces, list(lower)).any(axis=1)
    assert not np.any(in_up & in_low)


def test_bundled_regions(head: FaceTemplate) -> None:
    for name in REQUIRED_REGIONS:
        idx = head.region(name)
        assert idx.size > 0, name
        assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < head.n_vertices, name

    def region(name: str) -> set[int]:
        return set(head.region(name).tolist())

    assert not region("lips") & region("upper_face")
    assert not region("upper_lip") & region("lower_lip")
    assert region("upper_lip") | region("lower_lip") == region("lips")
    assert region("mouth_boundary") <= region("lips")
    for side in ("upper", "lower"):
        assert not region(f"eyelid_{side}_left") & region(f"eyelid_{side}_right")
    for side in ("left", "right"):
        assert not region(f"eyelid_upper_{side}") & region(f"eyelid_lower_{side}")
        assert region(f"eyelid_upper_{side}") <= region(f"eyes_{side}") | region("face")
    assert not region("rigid") & region("face")
    assert not region("lower_face") & region("upper_lip")
    assert region("lower_lip") <= region("lower_face")
    assert region("upper_face") <= region("face")
    assert 150 <= len(region("lips")) <= 600

    v = head.vertices
    for name in ("brow", "eyes", "eyelid_upper", "eyelid_lower", "mouth_corner", "cheek"):
        assert v[head.region(f"{name}_left"), 0].min() > 0, name
        assert v[head.region(f"{name}_right"), 0].max() < 0, name
    lm = v[head.landmarks]
    assert v[head.region("forehead"), 1].mean() > lm[17:27, 1].mean()
    assert v[head.region("lower_face"), 1].mean() < lm[48:68, 1].mean()
    # The lips are decimated less than the scalp and neck.
    def mean_edge(name: str) -> float:
        f = head.faces[np.isin(head.faces, head.region(name)).all(axis=1)]
        e = v[f] - v[np.roll(f, 1, axis=1)]
        return float(np.linalg.norm(e, axis=2).mean())

    assert mean_edge("lips") < 0.6 * mean_edge("rigid")


def test_bundled_landmarks(head: FaceTemplate) -> None:
    lm_idx = head.landmarks
    assert lm_idx is not None and lm_idx.shape == (68,)
    assert lm_idx.min() >= 0 and lm_idx.max() < head.n_vertices
    lm = head.vertices[lm_idx].astype(np.float64)
    err = np.asarray([np.linalg.norm(lm[a] * [-1, 1, 1] - lm[b]) for a, b in MIRROR_PAIRS])
    assert err.mean() < 0.005 and err.max() < 0.015
    lips = set(head.region("upper_lip").tolist())
    assert {int(lm_idx[k]) for k in (50, 51, 52, 61, 62, 63)} <= lips
    lips = set(head.region("lower_lip").tolist())
    assert {int(lm_idx[k]) for k in (56, 57, 58, 65, 66, 67)} <= lips


def test_bundled_jaw_opening_parts_lips(head: FaceTemplate) -> None:
    v = head.vertices.astype(np.float64)
    hinge = head.anchors["jaw_hinge"].astype(np.float64)
    assert hinge[2] < head.vertices[head.landmarks[8], 2]  # behind the chin
    lower = head.region("lower_face")
    up, low = head.region("lip_contact_upper"), head.region("lip_contact_lower")

    def gap(points: np.ndarray) -> float:
        d = np.linalg.norm(points[up][:, None] - points[low][None], axis=2)
        return float(np.median(d.min(axis=1)))

    # Hard region: rotate only the lower face by 8 degrees.
    opened = v.copy()
    opened[lower] = _rotate_about_x(v[lower], hinge, np.radians(8.0))
    assert gap(v) < 0.002
    assert gap(opened) > gap(v) + 0.008
    chin = head.landmarks[8]
    assert opened[chin, 1] < v[chin, 1] - 0.008

    # Soft weights: the lips still part; eyes, forehead, nose, neck and the middle of the upper
    # lip stay put (only the upper lip near the corners follows a little).
    w = head.weights["jaw"].astype(np.float64)
    lm_idx = head.landmarks
    assert w.min() >= 0 and w.max() <= 1
    assert w[lm_idx[[8, 57, 66]]].min() > 0.99 and w[lm_idx[[51, 62]]].max() < 0.01
    assert np.allclose(w[head.region("mouth_slit_corners")], 0.5)
    soft = _rotate_about_x(v, hinge, np.radians(8.0) * w)
    assert gap(soft) > gap(v) + 0.004
    mid_up, mid_low = head.landmarks[62], head.landmarks[66]
    rest = np.linalg.norm(v[mid_up] - v[mid_low])
    assert np.linalg.norm(soft[mid_up] - soft[mid_low]) > rest + 0.008
    upper_mid = head.region("upper_lip")[np.abs(v[head.region("upper_lip"), 0]) < 0.01]
    still = np.concatenate([upper_mid, head.region("upper_face"), head.region("nose"), head.region("rigid")])
    assert np.abs(soft[still] - v[still]).max() < 1e-9


def test_with_vertices(head: FaceTemplate) -> None:
    moved = head.with_vertices(head.vertices * 1.1)
    assert moved.n_vertices == head.n_vertices and np.array_equal(moved.faces, head.faces)
    assert np.array_equal(moved.region("lips"), head.region("lips"))
    assert not moved.anchors and "jaw" in moved.weights
    with pytest.raises(TemplateError, match="needs"):
        head.with_vertices(np.zeros((10, 3)))


# ---------------------------------------------------------------------------------------------
# User meshes and regions
# ---------------------------------------------------------------------------------------------

# Five vertices deliberately out of spatial order, two at the same position (a loader that
# processes the mesh would merge or reorder them).
TINY_V = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def _write_tiny_obj(path: Path) -> None:
    lines = ["# tiny", *(f"v {x} {y} {z}" for x, y, z in TINY_V), "vt 0 0", "f 2/1 3/1 1/1 4/1", "f -1 2 4"]
    path.write_text("\n".join(lines) + "\n")


def _write_tiny_ply(path: Path) -> None:
    header = [
        "ply", "format ascii 1.0", f"element vertex {len(TINY_V)}", "property float x", "property float y",
        "property float z", "element face 2", "property list uchar int vertex_indices", "end_header",
    ]
    body = [f"{x} {y} {z}" for x, y, z in TINY_V] + ["3 1 2 0", "3 1 0 3"]
    path.write_text("\n".join(header + body) + "\n")


def test_obj_keeps_vertex_order(tmp_path: Path) -> None:
    path = tmp_path / "tiny.obj"
    _write_tiny_obj(path)
    t = load_template(path)
    assert np.array_equal(t.vertices, TINY_V.astype(np.float32))
    assert t.faces.tolist() == [[1, 2, 0], [1, 0, 3], [4, 1, 3]]
    assert t.name == "tiny" and t.regions == {}


def test_ply_keeps_vertex_order(tmp_path: Path) -> None:
    path = tmp_path / "tiny.ply"
    _write_tiny_ply(path)
    t = load_template(path)
    assert np.array_equal(t.vertices, TINY_V.astype(np.float32))
    assert t.faces.tolist() == [[1, 2, 0], [1, 0, 3]]


def test_regions_beside_mesh_with_codetalker_names(tmp_path: Path) -> None:
    path = tmp_path / "tiny.obj"
    _write_tiny_obj(path)
    regions = tmp_path / "regions"
    regions.mkdir()
    (regions / "lve.txt").write_text("3, 1,\n2\n")
    (regions / "fdd.txt").write_text("0 4")
    (regions / "nose.txt").write_text("[2, 2, 0]")
    t = load_template(path)
    assert t.region("lips").tolist() == [1, 2, 3]
    assert t.region("upper_face").tolist() == [0, 4]
    assert t.region("nose").tolist() == [0, 2]
    # <stem>.regions/ wins over regions/, and an explicit directory wins over both.
    own = tmp_path / "tiny.regions"
    own.mkdir()
    (own / "lips.txt").write_text("4")
    assert load_template(path).region("lips").tolist() == [4]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "lve.txt").write_text("0")
    t = load_template(path, regions_dir=other)
    assert t.region("lips").tolist() == [0]
    with pytest.raises(TemplateError, match="available regions: lips"):
        t.region("upper_face")


def test_region_index_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "tiny.ply"
    _write_tiny_ply(path)
    regions = tmp_path / "regions"
    regions.mkdir()
    (regions / "lve.txt").write_text("0, 1, 5")
    with pytest.raises(TemplateError, match=r"lve\.txt.*index 5"):
        load_template(path)
    (regions / "lve.txt").write_text("0, x")
    with pytest.raises(TemplateError, match=r"lve\.txt.*'x'"):
        load_template(path)


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="does not exist"):
        load_template(tmp_path / "missing.ply")
    with pytest.raises(TemplateError, match="unsupported extension"):
        (tmp_path / "mesh.stl").write_text("solid")
        load_template(tmp_path / "mesh.stl")
    with pytest.raises(TemplateError, match="no vertices"):
        (tmp_path / "empty.obj").write_text("# nothing\n")
        load_template(tmp_path / "empty.obj")
    with pytest.raises(TemplateError, match="could not be read"):
        (tmp_path / "junk.ply").write_bytes(b"\x00\x01 not a ply")
        load_template(tmp_path / "junk.ply")
    with pytest.raises(TemplateError, match="directory"):
        load_template(tmp_path)
    with pytest.raises(TemplateError, match="not a readable"):
        (tmp_path / "bad.npz").write_bytes(b"nope")
        load_template(tmp_path / "bad.npz")
    with pytest.raises(TemplateError, match="subject"):
        load_template(None, subject="FaceTalk_1")


# ---------------------------------------------------------------------------------------------
# templates.pkl
# ---------------------------------------------------------------------------------------------


def _write_pkl(path: Path, protocol: int = 2) -> dict[str, np.ndarray]:
    shapes = {"FaceTalk_A": TINY_V * 0.1, "FaceTalk_B": (TINY_V * 0.2).astype(np.float32)}
    with open(path, "wb") as fh:
        pickle.dump(shapes, fh, protocol=protocol)
    return shapes


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_templates_pkl_round_trip(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "templates.pkl"
    shapes = _write_pkl(path, protocol)
    with pytest.warns(KmtalkWarning, match="points only"):
        t = load_template(path, subject="FaceTalk_B")
    assert np.allclose(t.vertices, shapes["FaceTalk_B"]) and t.n_faces == 0
    assert t.name == "templates:FaceTalk_B"
    with pytest.raises(TemplateError, match="choose one.*FaceTalk_A, FaceTalk_B"):
        load_template(path)
    with pytest.raises(TemplateError, match="Subject 'nobody'.*FaceTalk_A, FaceTalk_B"):
        load_template(path, subject="nobody")


def test_templates_pkl_faces(tmp_path: Path) -> None:
    path = tmp_path / "templates.pkl"
    _write_pkl(path)
    mesh = tmp_path / "tiny.obj"
    _write_tiny_obj(mesh)
    donor = load_template(mesh, regions_dir=None)
    donor = FaceTemplate(donor.vertices, donor.faces, {"lips": [0, 1]}, name="donor")
    t = load_template(path, subject="FaceTalk_A", faces_from=donor)
    assert np.array_equal(t.faces, donor.faces) and t.region("lips").tolist() == [0, 1]
    # A companion mesh beside the pickle supplies faces when no donor fits.
    _write_tiny_obj(tmp_path / "template.obj")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = load_template(path, subject="FaceTalk_A")
    assert np.array_equal(t.faces, donor.faces)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "templates.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"FaceTalk_A": _Evil(marker)}, fh)
    with pytest.raises(TemplateError, match="Refusing"):
        load_template(path)
    assert not marker.exists()
    with open(path, "wb") as fh:
        pickle.dump({"FaceTalk_A": [1.0, 2.0, 3.0]}, fh)
    with pytest.raises(TemplateError, match="not a \\(V, 3\\) vertex array"):
        load_template(path)


# ---------------------------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------------------------


def test_save_and_reload(tmp_path: Path, head: FaceTemplate) -> None:
    out = save_template(head, tmp_path / "head.npz")
    again = load_template(out)
    assert np.array_equal(again.vertices, head.vertices) and np.array_equal(again.faces, head.faces)
    assert np.array_equal(again.landmarks, head.landmarks)
    assert set(again.regions) == set(head.regions)
    assert np.array_equal(again.region("lips"), head.region("lips"))
    assert np.allclose(again.anchors["jaw_hinge"], head.anchors["jaw_hinge"])
    with pytest.raises(OutputError):
        save_template(head, tmp_path / "head.npz")

    for suffix in (".obj", ".ply"):
        mesh = save_template(head, tmp_path / f"head{suffix}")
        back = load_template(mesh)
        assert np.allclose(back.vertices, head.vertices, atol=1e-6)
        assert np.array_equal(back.faces, head.faces)
        assert np.array_equal(back.region("upper_lip"), head.region("upper_lip"))
    with pytest.raises(TemplateError, match="Cannot save"):
        save_template(head, tmp_path / "head.stl")
