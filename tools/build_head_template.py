"""Build kmtalk's bundled head template from menpo3d's BSD-3 ``template.ply``.

One command rebuilds ``kmtalk_cli/face/assets/head.npz`` bit-for-bit from the menpo3d 0.8.6
source distribution, so the asset is never a mystery blob:

    python tools/build_head_template.py [--source menpo3d-0.8.6.tar.gz] [--out kmtalk_cli/face/assets]

Without ``--source`` the sdist is fetched with ``pip download`` into a temporary directory.
The mesh and landmarks are read straight out of the tarball (menpo3d is never built).

Steps, each chosen so a talking-face rig gets a clean, light, well-labelled mesh:

1. Read ``template.ply`` (53,349 vertices, micrometre units) and the 68 iBUG landmarks.
2. Scale to metres so jaw landmarks 0 and 16 are 0.15 m apart.
3. Quadric-decimate to about 5,000 vertices. The neck opening is capped temporarily and the
   decimator told to keep open borders, so the only border it sees, the mouth slit, survives
   vertex for vertex and the lips can never be welded together. Smooth, invertible radial
   warps magnify the face, mouth and eyes (kept denser) and shrink the ears (kept sparser)
   while the decimator runs.
4. Centre the bounding box on the origin, check the winding points outwards, and snap each
   landmark to its nearest vertex (on the correct lip for the inner-lip points).
5. Derive every region geometrically from the landmarks (frontal-plane and cylindrical-chart
   polygons, distances, depth and visibility limits, geodesic sides of the mouth slit); no
   hand-picked vertices. A harmonic soft jaw weight and a jaw-hinge estimate go with them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from head_parts import build_parts, points_in_polygon

MENPO3D_VERSION = "0.8.6"
SDIST_NAME = f"menpo3d-{MENPO3D_VERSION}.tar.gz"
#: sha256 of the PyPI sdist the asset was built from; a different file is refused.
SDIST_SHA256 = "96ad2c8b55b74e026cdc190cf6b1564ad7c8e6c53976cf897d6a1bf4940f084a"
MEMBER_PREFIX = f"menpo3d-{MENPO3D_VERSION}/"
PLY_MEMBER = MEMBER_PREFIX + "menpo3d/data/template.ply"
LJSON_MEMBER = MEMBER_PREFIX + "menpo3d/data/template.ljson"
LICENSE_MEMBER = MEMBER_PREFIX + "LICENSE.txt"

#: Distance between jaw landmarks 0 and 16 after scaling, in metres.
FACE_WIDTH_M = 0.15
#: Vertex budget for the decimated head.
TARGET_VERTICES = 5000
#: Output format version stored in the asset's ``info`` record.
FORMAT_VERSION = 1

MM = 1e-3


# --------------------------------------------------------------------------------------------
# Source
# --------------------------------------------------------------------------------------------


def fetch_sdist(dest: Path) -> Path:
    """Download the menpo3d sdist with pip, the same way a user would, into ``dest``."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
        "--no-binary", ":all:", f"menpo3d=={MENPO3D_VERSION}", "-d", str(dest),
    ]
    subprocess.run(cmd, check=True)
    path = dest / SDIST_NAME
    if not path.is_file():
        raise SystemExit(f"pip did not produce {path}")
    return path


def sha256_of(path: Path) -> str:
    """Hash the sdist so the card can name exactly which bytes the asset came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Source:
    """What the builder needs from the tarball."""

    vertices: np.ndarray  # (V, 3) float64, source units (micrometres)
    faces: np.ndarray  # (F, 3) int64
    landmarks: np.ndarray  # (68, 3) float64, source units
    license_bytes: bytes


def read_source(tar_path: Path) -> Source:
    """Read the mesh, landmarks and licence from the sdist without unpacking it to disk."""
    import trimesh

    with tarfile.open(tar_path, "r:gz") as tar:
        def member(name: str) -> bytes:
            fh = tar.extractfile(name)
            if fh is None:
                raise SystemExit(f"{tar_path} has no file {name}")
            return fh.read()

        ply = member(PLY_MEMBER)
        ljson = json.loads(member(LJSON_MEMBER).decode("utf-8"))
        license_bytes = member(LICENSE_MEMBER)

    mesh = trimesh.load(io.BytesIO(ply), file_type="ply", process=False)
    landmarks = np.asarray(ljson["groups"]["LJSON"]["landmarks"]["points"], dtype=np.float64)
    labels = {lab["label"]: lab["mask"] for lab in ljson["groups"]["LJSON"]["labels"]}
    if landmarks.shape != (68, 3) or labels.get("mouth") != list(range(48, 68)):
        raise SystemExit("template.ljson is not the 68-point iBUG layout this builder expects")
    return Source(
        vertices=np.asarray(mesh.vertices, dtype=np.float64),
        faces=np.asarray(mesh.faces, dtype=np.int64),
        landmarks=landmarks,
        license_bytes=license_bytes,
    )


# --------------------------------------------------------------------------------------------
# Mesh utilities
# --------------------------------------------------------------------------------------------


def clean_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop degenerate and duplicate faces, then vertices no face uses (order kept)."""
    faces = np.asarray(faces, dtype=np.int64)
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    tri = vertices[faces]
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    scale = np.linalg.norm(vertices.max(0) - vertices.min(0))
    faces = faces[distinct & (area2 > (1e-9 * scale) ** 2)]
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    faces = faces[np.sort(first)]
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return vertices[used], remap[faces]


def edge_use(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges and how many faces use each (1 = border, 2 = interior)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return unique, counts


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops of the mesh border, following the faces' directed border edges."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    unique, counts = edge_use(faces)
    border = {tuple(e) for e in unique[counts == 1].tolist()}
    nxt: dict[int, int] = {}
    for a, b in directed.tolist():
        if (min(a, b), max(a, b)) in border:
            if a in nxt:
                raise ValueError(f"vertex {a} touches the border twice (non-manifold border)")
            nxt[a] = b
    loops = []
    seen: set[int] = set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        cur = nxt[start]
        while cur != start:
            loop.append(cur)
            seen.add(cur)
            cur = nxt[cur]
        loops.append(np.asarray(loop, dtype=np.int64))
    return sorted(loops, key=len)


def outward_fraction(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> float:
    """Area-weighted share of faces whose normal points away from ``centre``."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(fn, axis=1)
    out = np.einsum("ij,ij->i", fn, tri.mean(axis=1) - centre) > 0
    return float(area[out].sum() / area.sum())


def mesh_graph(vertices: np.ndarray, faces: np.ndarray, blocked: np.ndarray | None = None) -> csr_matrix:
    """Sparse edge-length graph for geodesic (along-the-skin) distances.

    Edges touching a ``blocked`` vertex are left out, so a blocked path of vertices acts as a
    cut that geodesics cannot cross.
    """
    unique, _ = edge_use(faces)
    if blocked is not None:
        unique = unique[~np.isin(unique, blocked).any(axis=1)]
    w = np.linalg.norm(vertices[unique[:, 0]] - vertices[unique[:, 1]], axis=1)
    n = len(vertices)
    g = coo_matrix((np.r_[w, w], (np.r_[unique[:, 0], unique[:, 1]], np.r_[unique[:, 1], unique[:, 0]])), shape=(n, n))
    return g.tocsr()


def geodesic_from(graph: csr_matrix, sources: np.ndarray) -> np.ndarray:
    """Shortest along-edge distance from the nearest of ``sources`` to every vertex."""
    return dijkstra(graph, directed=False, indices=np.asarray(sources), min_only=True)


def shortest_path(graph: csr_matrix, start: int, end: int) -> np.ndarray:
    """Vertices of the shortest edge path from ``start`` to ``end`` (both included)."""
    _, pred = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    path = [end]
    while path[-1] != start:
        if pred[path[-1]] < 0:
            raise SystemExit("mesh is not connected between the mouth corner and the cheek")
        path.append(int(pred[path[-1]]))
    return np.asarray(path[::-1], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Decimation
# --------------------------------------------------------------------------------------------


def _radial_warp(p: np.ndarray, centre: np.ndarray, radius: float, gain: float) -> np.ndarray:
    """Blow space up by ``gain`` near ``centre``, fading to a pure shift far away.

    ``r -> r + (gain-1)·radius·tanh(r/radius)`` is strictly increasing, so the map is exactly
    invertible; the decimator sees a magnified feature and keeps more vertices there.
    """
    d = p - centre
    r = np.linalg.norm(d, axis=1, keepdims=True)
    h = r + (gain - 1.0) * radius * np.tanh(r / radius)
    return centre + d * np.where(r > 0, h / np.maximum(r, 1e-300), 1.0)


def _radial_unwarp(q: np.ndarray, centre: np.ndarray, radius: float, gain: float) -> np.ndarray:
    """Invert :func:`_radial_warp` by bisection on the radius (monotone, so it converges)."""
    d = q - centre
    hq = np.linalg.norm(d, axis=1, keepdims=True)
    lo = np.zeros_like(hq)
    hi = hq / min(1.0, gain)  # h(r) >= min(1, gain) * r, so the root lies below this
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = mid + (gain - 1.0) * radius * np.tanh(mid / radius) < hq
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    r = 0.5 * (lo + hi)
    return centre + d * np.where(hq > 0, r / np.maximum(hq, 1e-300), 1.0)


def density_warps(landmarks: np.ndarray) -> list[tuple[np.ndarray, float, float]]:
    """(centre, radius, gain) of each radial warp applied before decimation, in order.

    Gain > 1 keeps more vertices there (face, mouth, eyes); gain < 1 keeps fewer (the ears,
    whose curvature would otherwise spend the budget on something that never moves).
    """
    lm = landmarks
    face_centre = lm[[27, 30, 33, 36, 39, 42, 45, 48, 54, 8]].mean(axis=0)
    # Ears: level with the eyes, 10 mm out from and 20 mm behind jaw points 0 and 16.
    ear_offset = np.asarray([10 * MM, 0.0, -20 * MM])
    return [
        (face_centre, 30 * MM, 5.0),
        (lm[48:68].mean(axis=0), 15 * MM, GAIN_MOUTH),
        (lm[36:42].mean(axis=0), 8 * MM, 1.6),
        (lm[42:48].mean(axis=0), 8 * MM, 1.6),
        (lm[0] * [1, 0, 1] + [0, lm[36:48, 1].mean(), 0] + ear_offset * [-1, 1, 1], 20 * MM, GAIN_EAR),
        (lm[16] * [1, 0, 1] + [0, lm[36:48, 1].mean(), 0] + ear_offset, 20 * MM, GAIN_EAR),
    ]


GAIN_MOUTH = 4.0
GAIN_EAR = 0.25


def decimate(
    vertices: np.ndarray, faces: np.ndarray, landmarks: np.ndarray, target_vertices: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadric-decimate the head, keeping the mouth slit border exactly and the face denser.

    Returns the new vertices and faces (metres) and the mouth-slit loop (new indices).
    """
    import fast_simplification

    loops = boundary_loops(faces)
    if len(loops) != 2:
        raise SystemExit(f"expected 2 border loops (mouth slit, neck) in the source, found {len(loops)}")
    slit, neck = loops
    slit_pos = vertices[slit]

    # Cap the neck opening with a fan so the only open border left is the mouth slit, then
    # ask the decimator to keep border vertices: the slit survives untouched, the neck rim
    # is simplified like any interior edge (its cap planes keep the rim in place).
    directed = {tuple(e) for e in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()}
    cap_index = len(vertices)
    nxt = np.roll(neck, -1)
    if (int(neck[0]), int(neck[1])) in directed:
        cap_faces = np.stack([nxt, neck, np.full_like(neck, cap_index)], axis=1)
    else:
        cap_faces = np.stack([neck, nxt, np.full_like(neck, cap_index)], axis=1)
    cap_point = vertices[neck].mean(axis=0)
    closed_v = np.vstack([vertices, cap_point])
    closed_f = np.vstack([faces, cap_faces])

    # Density control: magnify the face, then the mouth, then each eye (centres are carried
    # through the earlier warps so each one is centred where it should be). Work in mm so the
    # decimator's absolute error thresholds start small relative to the features.
    warps = density_warps(landmarks)
    to_mm = 1.0 / MM
    work = closed_v * to_mm
    applied = []
    for centre, radius, gain in warps:
        c = centre[None] * to_mm
        for pc, pr, pg in applied:
            c = _radial_warp(c, pc, pr, pg)
        applied.append((c, radius * to_mm, gain))
        work = _radial_warp(work, c, radius * to_mm, gain)

    # Faces ~ 2 x vertices for this topology; the cap adds a few faces that are removed.
    target_faces = 2 * target_vertices + len(neck) // 6
    new_v, new_f = fast_simplification.simplify(
        work, closed_f.astype(np.int32), target_count=target_faces, agg=7.0, preserve_border=True
    )
    for c, r, g in reversed(applied):
        new_v = _radial_unwarp(new_v, c, r, g)
    new_v = new_v / to_mm
    new_f = np.asarray(new_f, dtype=np.int64)

    cap_hits = np.flatnonzero(np.linalg.norm(new_v - cap_point, axis=1) < 1e-9)
    if len(cap_hits) != 1:
        raise SystemExit("the temporary neck cap vertex did not survive decimation; lower the reduction")
    new_f = new_f[~np.any(new_f == cap_hits[0], axis=1)]
    new_v, new_f = clean_mesh(new_v, new_f)

    # Find the slit again: every original slit vertex must still be there, unmoved.
    loops = boundary_loops(new_f)
    if len(loops) != 2:
        raise SystemExit(f"decimation produced {len(loops)} border loops, expected 2")
    new_slit = loops[0]
    if len(new_slit) != len(slit):
        raise SystemExit("the mouth slit lost vertices during decimation")
    err = np.abs(np.sort(new_v[new_slit], axis=0) - np.sort(slit_pos, axis=0)).max()
    if err > 1e-9:
        raise SystemExit("the mouth slit moved during decimation")
    return new_v, new_f, new_slit


# --------------------------------------------------------------------------------------------
# Visibility and 2-D geometry helpers for regions
# --------------------------------------------------------------------------------------------


def front_depth_map(vertices: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Largest z of the surface per (x, y) cell: a z-buffer seen from +Z, by dense sampling.

    Returns the map, its (x, y) origin and the cell size; used to tell visible skin from
    surfaces hidden behind it (inner lips, under the chin, behind the ears).
    """
    tri = vertices[faces]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2)[:, :, None], axis=(1, 2))
    steps = np.maximum(2, np.ceil(longest / (0.5 * cell))).astype(np.int64)
    origin = vertices[:, :2].min(axis=0) - cell
    shape = np.ceil((vertices[:, :2].max(axis=0) + cell - origin) / cell).astype(np.int64) + 1
    depth = np.full(shape, -np.inf)
    for n in np.unique(steps):
        sel = tri[steps == n]
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        a = i[keep] / n
        b = j[keep] / n
        bary = np.stack([1 - a - b, a, b], axis=1)  # (S, 3)
        pts = np.einsum("sk,fkd->fsd", bary, sel).reshape(-1, 3)
        ij = np.floor((pts[:, :2] - origin) / cell).astype(np.int64)
        np.maximum.at(depth, (ij[:, 0], ij[:, 1]), pts[:, 2])
    return depth, origin, cell


def hidden_from_front(vertices: np.ndarray, faces: np.ndarray, *, cell: float = 0.6 * MM, tol: float = 1.5 * MM) -> np.ndarray:
    """True for vertices with skin in front of them along -Z (not seen by a frontal camera)."""
    depth, origin, cell = front_depth_map(vertices, faces, cell)
    ij = np.floor((vertices[:, :2] - origin) / cell).astype(np.int64)
    # Look at the 3x3 neighbourhood so a vertex on a steep slope is not hidden by itself.
    best = np.full(len(vertices), np.inf)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            best = np.minimum(best, depth[ij[:, 0] + di, ij[:, 1] + dj])
    return best > vertices[:, 2] + tol




def distance_to_polyline(points: np.ndarray, line: np.ndarray, closed: bool = False) -> np.ndarray:
    """Shortest 2-D distance from each point to a polyline (optionally closed)."""
    a = line if closed else line[:-1]
    b = np.roll(line, -1, axis=0) if closed else line[1:]
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = np.clip(np.einsum("nsd,sd->ns", ap, ab) / np.maximum(np.einsum("sd,sd->s", ab, ab), 1e-30), 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=2).min(axis=1)


def inside_dilated(points: np.ndarray, polygon: np.ndarray, margin: float) -> np.ndarray:
    """Inside the polygon or within ``margin`` of its outline."""
    return points_in_polygon(points, polygon) | (distance_to_polyline(points, polygon, closed=True) <= margin)


def interp_y(x: np.ndarray, line: np.ndarray) -> np.ndarray:
    """y of a left-to-right polyline at each x (held flat beyond its ends)."""
    order = np.argsort(line[:, 0])
    return np.interp(x, line[order, 0], line[order, 1])


def smooth_mask(mask: np.ndarray, graph: csr_matrix, iterations: int = 2) -> np.ndarray:
    """Majority-vote a region over 1-ring neighbourhoods so its border is not ragged."""
    adj = graph.copy()
    adj.data[:] = 1.0
    degree = np.asarray(adj.sum(axis=1)).ravel() + 1.0
    value = mask.astype(np.float64)
    for _ in range(iterations):
        value = (adj @ value + value) / degree
    return value > 0.5


def harmonic_fill(vertices: np.ndarray, faces: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Fill the NaN entries of ``fixed`` with the smoothest field agreeing with the rest.

    Solves the graph Laplace equation (edge weights 1/length) with the non-NaN entries as
    boundary values: the standard way to get rig weights without kinks or plateaus.
    """
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    unique, _ = edge_use(faces)
    w = 1.0 / np.maximum(np.linalg.norm(vertices[unique[:, 0]] - vertices[unique[:, 1]], axis=1), 1e-12)
    n = len(vertices)
    adj = coo_matrix((np.r_[w, w], (np.r_[unique[:, 0], unique[:, 1]], np.r_[unique[:, 1], unique[:, 0]])), shape=(n, n)).tocsr()
    lap = (diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()
    known = ~np.isnan(fixed)
    free = np.flatnonzero(~known)
    out = fixed.copy()
    rhs = -lap[free][:, np.flatnonzero(known)] @ fixed[known]
    out[free] = spsolve(lap[free][:, free].tocsc(), rhs)
    return out


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """C1 ramp from 0 at ``edge0`` to 1 at ``edge1`` for soft rig weights."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# --------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------


@dataclass
class Regions:
    """Everything derived from the landmarks on the decimated mesh."""

    landmarks: np.ndarray  # (68,) vertex indices
    regions: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    anchors: dict[str, np.ndarray]


def split_slit(vertices: np.ndarray, slit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the ordered slit loop at its extreme-x vertices into upper and lower contours."""
    i_right = int(np.argmin(vertices[slit, 0]))
    i_left = int(np.argmax(vertices[slit, 0]))
    rolled = np.roll(slit, -i_right)
    k = int(np.flatnonzero(rolled == slit[i_left])[0])
    chain_a, chain_b = rolled[1:k], rolled[k + 1:]
    corners = np.asarray([slit[i_right], slit[i_left]])
    if vertices[chain_a, 1].mean() > vertices[chain_b, 1].mean():
        return chain_a, chain_b, corners
    return chain_b, chain_a, corners


def build_regions(vertices: np.ndarray, faces: np.ndarray, slit: np.ndarray, lm: np.ndarray) -> Regions:
    """Derive landmarks, regions, soft weights and the jaw hinge from landmark geometry.

    ``lm`` holds the 68 landmark positions in the final frame. Left/right are the subject's:
    +X is the subject's left (iBUG points 42-47, 22-26, 54 and 9-16 lie there).
    """
    v = vertices
    xy = v[:, :2]
    n_vert = len(v)
    graph = mesh_graph(v, faces)
    hidden = hidden_from_front(v, faces)
    # Cylindrical chart (arc length around a vertical axis near the ears, height): the sides of
    # the face are seen edge-on from the front, so side boundaries are drawn in this chart.
    axis_z = lm[[0, 16], 2].mean() - 10 * MM
    chart_r = 0.08

    def chart(p: np.ndarray) -> np.ndarray:
        return np.stack([chart_r * np.arctan2(p[..., 0], p[..., 2] - axis_z), p[..., 1]], axis=-1)

    uv = chart(v)

    upper_contour, lower_contour, corners = split_slit(v, slit)
    # Which lip a vertex belongs to: the nearer slit contour along the skin. The skin is cut
    # along a seam of vertices running from each slit corner out to 8 mm past the outer lip
    # corner, so paths cannot slip round the corner to the other lip.
    seam_parts = []
    for corner, outer in ((corners[0], lm[48]), (corners[1], lm[54])):
        direction = (outer - v[corner]) * [1.0, 1.0, 0.0]
        goal = outer + 8 * MM * direction / max(np.linalg.norm(direction), 1e-9)
        candidates = np.flatnonzero(~hidden)
        end = int(candidates[np.argmin(np.linalg.norm(v[candidates] - goal, axis=1))])
        seam_parts.append(shortest_path(graph, int(corner), end))
    seam = np.unique(np.concatenate(seam_parts))
    lip_graph = mesh_graph(v, faces, blocked=seam)
    d_up = geodesic_from(lip_graph, upper_contour)
    d_low = geodesic_from(lip_graph, lower_contour)
    upper_side = d_up < d_low
    # The seam (slit corners included) belongs to both lips; counting it with the upper lip
    # keeps the corners still when the jaw opens, so the mouth opens as a lens.
    upper_side[seam] = True

    # Landmarks: nearest vertex; inner-lip points only from their own lip, because upper and
    # lower lip touch at the front and the nearest vertex could be on the other one.
    idx = np.empty(68, dtype=np.int64)
    for k in range(68):
        pool = np.arange(n_vert)
        if k in (61, 62, 63):
            pool = pool[upper_side]
        elif k in (65, 66, 67):
            pool = pool[~upper_side]
        idx[k] = pool[np.argmin(np.linalg.norm(v[pool] - lm[k], axis=1))]

    def mask_to_idx(mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask).astype(np.int32)

    # --- lips: the outer-lip polygon on visible skin, plus the inner lip lining that curls
    # back to the slit (hidden from the front, near the mouth, close to the slit along the skin).
    outer_lip = lm[48:60, :2]
    corner_x = np.abs(lm[[48, 54], 0]).max()
    d_slit = np.minimum(d_up, d_low)
    lips_front = inside_dilated(xy, outer_lip, 1.5 * MM) & ~hidden & (v[:, 2] > lm[48:60, 2].min() - 10 * MM)
    lips_inner = (
        hidden
        & (np.abs(v[:, 0]) <= corner_x + 2 * MM)
        & (v[:, 1] < lm[33, 1] - 3 * MM)
        & (v[:, 1] > lm[57, 1] - 3 * MM)
        & (v[:, 2] > v[slit, 2].min() - 3 * MM)
        & (d_slit < 15 * MM)
    )
    lips = lips_front | lips_inner
    lips[slit] = True
    upper_lip = lips & upper_side
    lower_lip = lips & ~upper_side

    # --- lip contact: at rest the lips touch at the front; these are the vertices of each lip
    # within 1.5 mm of the other one (where a closed mouth meets, and a jaw opening parts).
    up_i, low_i = np.flatnonzero(upper_lip), np.flatnonzero(lower_lip)
    gap_up = cKDTree(v[low_i]).query(v[up_i])[0]
    gap_low = cKDTree(v[up_i]).query(v[low_i])[0]
    contact_upper = up_i[gap_up < 1.5 * MM].astype(np.int32)
    contact_lower = low_i[gap_low < 1.5 * MM].astype(np.int32)

    # --- mouth corners: a small ball around each corner (outer + inner corner landmarks).
    corner_r = mask_to_idx(np.linalg.norm(v - 0.5 * (lm[48] + lm[60]), axis=1) < 6 * MM)
    corner_l = mask_to_idx(np.linalg.norm(v - 0.5 * (lm[54] + lm[64]), axis=1) < 6 * MM)

    # --- face: inside the jaw contour closed over a forehead arc up to the hairline, where
    # the hairline is one "facial third" (brow to subnasale) above the brows. Hidden skin is
    # excluded (under the chin, behind the ears) except around the lips and nostrils.
    # Drawn in the cylindrical chart, where the jaw contour is not squeezed at the sides.
    brow_y = lm[17:27, 1].mean()
    hair_y = brow_y + (brow_y - lm[33, 1])
    jaw = chart(lm[0:17])
    top_half = np.abs(jaw[16, 0] - jaw[0, 0]) / 2
    base_y = jaw[[0, 16], 1].mean()
    arc_t = np.linspace(0.0, np.pi, 13)[1:-1]
    arc = np.stack([top_half * np.cos(arc_t), base_y + (hair_y - base_y) * np.sin(arc_t)], axis=1)
    face_poly = np.vstack([jaw, arc])
    nose_box = (np.abs(v[:, 0]) < np.abs(lm[[31, 35], 0]).max() + 8 * MM) & (v[:, 1] < lm[27, 1]) & (v[:, 1] > lm[33, 1] - 4 * MM)
    face = inside_dilated(uv, face_poly, 2 * MM) & (~hidden | nose_box) & (v[:, 2] > axis_z)
    face = smooth_mask(face, graph) | lips

    # --- brows: within a band around each brow polyline (iBUG brow points trace its top edge).
    def brow(points: np.ndarray) -> np.ndarray:
        line = points[:, :2]
        d = distance_to_polyline(xy, line)
        below = v[:, 1] < interp_y(v[:, 0], line)
        reach = np.where(below, 9 * MM, 4 * MM)
        x_ok = (v[:, 0] >= line[:, 0].min() - 4 * MM) & (v[:, 0] <= line[:, 0].max() + 4 * MM)
        return face & x_ok & (d <= reach) & (v[:, 2] > points[:, 2].min() - 15 * MM)

    brow_right = brow(lm[17:22])
    brow_left = brow(lm[22:27])
    brows = brow_left | brow_right

    # --- eyes: an ellipse around each eye reaching up to the brow and 10 mm below the lower lid.
    def eye(pts: np.ndarray, brow_pts: np.ndarray) -> dict[str, np.ndarray]:
        centre = pts.mean(axis=0)
        corners_ = pts[[0, 3]]
        half_w = 0.5 * np.abs(corners_[1, 0] - corners_[0, 0])
        upper_margin = pts[[1, 2], 1].mean()
        lower_margin = pts[[4, 5], 1].mean()
        brow_line = interp_y(np.asarray([centre[0]]), brow_pts[:, :2])[0] - 9 * MM
        dx = (v[:, 0] - centre[0]) / (half_w + 7 * MM)
        above = v[:, 1] >= centre[1]
        dy = np.where(above, (v[:, 1] - centre[1]) / max(brow_line - centre[1], 4 * MM),
                      (v[:, 1] - centre[1]) / (centre[1] - lower_margin + 10 * MM))
        depth_ok = v[:, 2] > pts[:, 2].min() - 15 * MM
        region = face & depth_ok & (dx**2 + dy**2 <= 1.0) & ~brows
        # Corner line: upper lid above it, lower lid below it.
        t = (v[:, 0] - corners_[0, 0]) / (corners_[1, 0] - corners_[0, 0])
        corner_line = corners_[0, 1] + np.clip(t, 0, 1) * (corners_[1, 1] - corners_[0, 1])
        lid_dx = (v[:, 0] - centre[0]) / (half_w + 2 * MM)
        crease = upper_margin + 0.45 * (brow_line + 9 * MM - upper_margin)
        lid_up = region & (v[:, 1] >= corner_line) & (v[:, 1] <= crease) & (np.abs(lid_dx) <= 1.0)
        lid_low = region & (v[:, 1] < corner_line) & (v[:, 1] >= lower_margin - 4 * MM) & (np.abs(lid_dx) <= 1.0)
        return {"eye": region, "lid_up": lid_up, "lid_low": lid_low}

    eye_r = eye(lm[36:42], lm[17:22])
    eye_l = eye(lm[42:48], lm[22:27])

    # --- forehead: face skin above the brow line (brows and glabella joined), not brows/eyes.
    brow_top = np.vstack([lm[17:27, :2], lm[[27], :2] + [0.0, 1 * MM]])
    forehead = smooth_mask(face & ~hidden & (v[:, 1] > interp_y(v[:, 0], brow_top) + 3 * MM), graph)
    forehead &= face & ~brows & ~eye_r["eye"] & ~eye_l["eye"]
    upper_face = forehead | brows | eye_r["eye"] | eye_l["eye"]

    # --- nose: hull of bridge, tip and nostril points, widened for the alae.
    nose_poly = np.vstack([lm[27, :2] + [-6 * MM, 0], lm[31, :2] + [-5 * MM, 0], lm[[32, 33, 34], :2] + [0, -1 * MM],
                           lm[35, :2] + [5 * MM, 0], lm[27, :2] + [6 * MM, 0]])
    nose = inside_dilated(xy, nose_poly, 3 * MM) & (v[:, 2] > lm[[31, 35], 2].min() - 12 * MM) & face & ~upper_face & ~lips

    # --- lower face (moves with the jaw): visible face skin below a line from jaw point 2
    # through the mouth corners to jaw point 14 (drawn in the chart), plus the lower lip.
    split_line = chart(lm[[2, 48, 54, 14]])
    below_split = uv[:, 1] < interp_y(uv[:, 0], split_line)
    lower_face = smooth_mask(face & ~hidden & below_split, graph)
    lower_face = (lower_face | lower_lip) & ~upper_lip & ~nose & ~upper_face
    lower_face[seam] = False

    # --- cheeks: the rest of the face skin beside nose and mouth, between eyes and jaw.
    cheeks = smooth_mask(
        face & ~hidden
        & (np.abs(v[:, 0]) > np.abs(lm[[31, 35], 0]).max() + 2 * MM)
        & (v[:, 1] > lm[[5, 11], 1].mean())
        & (v[:, 1] < lm[[36, 39, 42, 45], 1].mean()),
        graph,
    ) & ~upper_face & ~nose & ~lips

    # --- rigid: skin more than 10 mm (along the skin) outside the face; it never moves.
    rigid = ~face & (geodesic_from(graph, np.flatnonzero(face)) >= 10 * MM)

    # --- soft jaw weight: the smoothest (harmonic) field that is 1 on the chin and lower
    # cheeks, 0 on the upper face, nose and rigid skin, and along the slit runs from 1 (lower
    # lip) / 0 (upper lip) in the middle to 0.5 at the corners, so the mouth opens as a lens.
    slit_half = np.abs(v[corners, 0]).mean()
    towards_corner = 0.5 * smoothstep(0.5, 1.0, np.abs(v[:, 0]) / slit_half)
    near_corner = np.linalg.norm(v[:, None, :] - v[corners][None], axis=2).min(axis=1) < 15 * MM
    fixed = np.full(n_vert, np.nan)
    fixed[lower_face & ~lips & ~near_corner] = 1.0
    fixed[upper_face | nose | rigid] = 0.0
    middle = np.abs(v[:, 0]) < 0.5 * slit_half
    fixed[lower_lip & middle] = 1.0
    fixed[upper_lip & middle] = 0.0
    fixed[lower_contour] = 1.0 - towards_corner[lower_contour]
    fixed[upper_contour] = towards_corner[upper_contour]
    fixed[corners] = 0.5
    jaw_w = np.clip(harmonic_fill(v, faces, fixed), 0.0, 1.0)

    # Jaw hinge: on the midline, 15 mm below and 8 mm behind jaw points 0/16, i.e. level with
    # the ear canal just in front of the tragus, where the condyles sit.
    hinge = np.asarray([0.0, lm[[0, 16], 1].mean() - 15 * MM, lm[[0, 16], 2].mean() - 8 * MM])

    regions = {
        "face": face,
        "lips": lips,
        "upper_lip": upper_lip,
        "lower_lip": lower_lip,
        "lower_face": lower_face,
        "jaw": lower_face,
        "upper_face": upper_face,
        "forehead": forehead,
        "brow_left": brow_left,
        "brow_right": brow_right,
        "eyes_left": eye_l["eye"],
        "eyes_right": eye_r["eye"],
        "eyelid_upper_left": eye_l["lid_up"],
        "eyelid_upper_right": eye_r["lid_up"],
        "eyelid_lower_left": eye_l["lid_low"],
        "eyelid_lower_right": eye_r["lid_low"],
        "nose": nose,
        "cheeks": cheeks,
        "cheek_left": cheeks & (v[:, 0] > 0),
        "cheek_right": cheeks & (v[:, 0] < 0),
        "rigid": rigid,
        "scalp_neck": rigid,
    }
    out = {name: mask_to_idx(mask) for name, mask in regions.items()}
    out["mouth_corner_left"] = corner_l
    out["mouth_corner_right"] = corner_r
    out["mouth_corners"] = np.union1d(corner_l, corner_r).astype(np.int32)
    out["mouth_boundary"] = np.sort(slit).astype(np.int32)
    out["lip_contour_upper"] = np.sort(upper_contour).astype(np.int32)
    out["lip_contour_lower"] = np.sort(lower_contour).astype(np.int32)
    out["lip_contact_upper"] = contact_upper
    out["lip_contact_lower"] = contact_lower
    out["mouth_slit_corners"] = np.sort(corners).astype(np.int32)
    return Regions(
        landmarks=idx.astype(np.int32),
        regions=out,
        weights={"jaw": jaw_w.astype(np.float32)},
        anchors={"jaw_hinge": hinge.astype(np.float32)},
    )


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def build(source: Source, sdist_sha256: str) -> dict[str, np.ndarray]:
    """Turn the source mesh into the arrays stored in ``head.npz``."""
    v, f = clean_mesh(source.vertices, source.faces)
    scale = FACE_WIDTH_M / float(np.linalg.norm(source.landmarks[0] - source.landmarks[16]))
    v = v * scale
    lm = source.landmarks * scale

    v, f, slit = decimate(v, f, lm, TARGET_VERTICES)

    shift = -(v.min(axis=0) + v.max(axis=0)) / 2
    v = v + shift
    lm = lm + shift

    # Winding: the source already points outwards; flip if a future source does not. Measured
    # from the bounding-box centre (the origin), inside the head.
    centre = np.zeros(3)
    if outward_fraction(v, f, centre) < 0.5:
        f = f[:, ::-1]
        slit = slit[::-1]
    frac = outward_fraction(v, f, centre)
    if frac < 0.9:
        raise SystemExit(f"only {frac:.0%} of the surface faces outwards; check the source mesh")

    v32 = v.astype(np.float32)
    reg = build_regions(v32.astype(np.float64), f, slit, lm)
    back = max(boundary_loops(f), key=len)
    parts, part_anchors = build_parts(
        v32.astype(np.float64), f, lm, reg.regions, reg.weights["jaw"].astype(np.float64), slit, back
    )

    info = {
        "format_version": FORMAT_VERSION,
        "name": "kmtalk-head",
        "source": f"menpo3d {MENPO3D_VERSION} sdist (PyPI), {PLY_MEMBER[len(MEMBER_PREFIX):]} + template.ljson",
        "source_sha256": sdist_sha256,
        "license": "BSD-3-Clause (menpo3d); see LICENSE-menpo3d.txt",
        "units": "metres",
        "axes": "+X subject's left, +Y up, +Z out of the face",
        "scale_from_source": scale,
        "shift_after_scale": shift.tolist(),
        "face_width_definition": "distance between iBUG jaw landmarks 0 and 16",
        "face_width_m": FACE_WIDTH_M,
        "origin": "centre of the axis-aligned bounding box",
    }
    arrays: dict[str, np.ndarray] = {
        "vertices": v32,
        "faces": f.astype(np.int32),
        "landmarks": reg.landmarks,
        "landmark_points": lm.astype(np.float32),
        "mouth_loop": slit.astype(np.int32),
        "info": np.asarray(json.dumps(info, sort_keys=True)),
    }
    for name, idx in sorted(reg.regions.items()):
        arrays[f"region_{name}"] = np.asarray(idx, dtype=np.int32)
    for name, w in sorted(reg.weights.items()):
        arrays[f"weight_{name}"] = w
    for name, p in sorted({**reg.anchors, **part_anchors}.items()):
        arrays[f"anchor_{name}"] = np.asarray(p, dtype=np.float32)
    for name, part in sorted(parts.items()):
        arrays.update(part.arrays(name))
    return arrays


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed npz with fixed zip timestamps so rebuilds are byte-identical."""
    import zipfile

    tmp = path.with_name(f".{path.name}.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            # np.ascontiguousarray would turn the 0-d info string into shape (1,).
            array = np.asarray(array)
            np.lib.format.write_array(buf, array if array.flags.c_contiguous else array.copy(order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help=f"path to {SDIST_NAME} (downloaded with pip if omitted)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kmtalk_cli" / "face" / "assets")
    parser.add_argument("--allow-other-source", action="store_true", help="accept an sdist whose sha256 differs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        source_path = args.source if args.source else fetch_sdist(Path(tmp))
        digest = sha256_of(source_path)
        if digest != SDIST_SHA256 and not args.allow_other_source:
            raise SystemExit(f"{source_path} has sha256 {digest}, expected {SDIST_SHA256}")
        source = read_source(source_path)

    arrays = build(source, digest)
    args.out.mkdir(parents=True, exist_ok=True)
    write_npz(args.out / "head.npz", arrays)
    (args.out / "LICENSE-menpo3d.txt").write_bytes(source.license_bytes)

    v, f = arrays["vertices"], arrays["faces"]
    print(f"wrote {args.out / 'head.npz'}: {len(v)} vertices, {len(f)} faces")
    for key in sorted(arrays):
        if key.startswith("region_"):
            print(f"  {key[7:]:<20} {len(arrays[key]):5d}")
    hinge = arrays["anchor_jaw_hinge"]
    print(f"  jaw hinge (m): {hinge[0]:+.4f} {hinge[1]:+.4f} {hinge[2]:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
