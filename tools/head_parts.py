"""The bundled head's separate parts: teeth, tongue, mouth cavity, eyeballs and a closed scalp.

Built by ``tools/build_head_template.py`` from the face mesh and its landmarks alone, so the
face keeps its vertices, count and order and every motion and checkpoint stays valid. Every
part is procedural (no third-party geometry), in the face's metres and axes.

Each part is stored as ``part_<name>_<array>`` in ``head.npz``:

* ``vertices`` (N, 3) float32 and ``faces`` (M, 3) int32;
* ``colours`` (N, 3) uint8 albedo (colour regions have their own vertices, so a colour never
  bleeds across an iris edge);
* ``jaw`` (N,) float32: 0 follows the skull, 1 the jaw, in between a linear blend;
* ``weld`` (N,) int32: the face vertex a part vertex is glued to, or -1 (the scalp's rim and
  the mouth cavity's rim are the face's own border loops, so the seams are watertight);
* ``follow`` (N,) int32 and ``follow_weight`` (N,) float32 (mouth only): how much of the
  lip vertex's own deformation (beyond the jaw) the inner rings of the cavity share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import Delaunay

MM = 1e-3

#: Albedo of each material, sRGB-ish uint8.
COLOURS = {
    "tooth": (236, 230, 212),
    "gum": (196, 112, 112),
    "tongue": (190, 96, 98),
    "cavity": (58, 22, 24),
    "sclera": (238, 234, 228),
    "iris": (92, 70, 48),
    "pupil": (12, 10, 10),
    "scalp": (194, 189, 184),  # the face's clay albedo (0.76, 0.74, 0.72)
}

#: Eyeball radius (an adult eye is about 24 mm across).
EYE_RADIUS = 12.0 * MM
#: Iris and pupil radii on the eyeball's surface.
IRIS_RADIUS = 5.9 * MM
PUPIL_RADIUS = 2.1 * MM


@dataclass
class Part:
    """One separate mesh of the head and how its vertices move (see the module docstring)."""

    vertices: np.ndarray
    faces: np.ndarray
    colours: np.ndarray
    jaw: np.ndarray
    weld: np.ndarray
    follow: np.ndarray | None = None
    follow_weight: np.ndarray | None = None

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        out = {
            f"part_{name}_vertices": self.vertices.astype(np.float32),
            f"part_{name}_faces": self.faces.astype(np.int32),
            f"part_{name}_colours": self.colours.astype(np.uint8),
            f"part_{name}_jaw": self.jaw.astype(np.float32),
            f"part_{name}_weld": self.weld.astype(np.int32),
        }
        if self.follow is not None:
            out[f"part_{name}_follow"] = self.follow.astype(np.int32)
            out[f"part_{name}_follow_weight"] = self.follow_weight.astype(np.float32)
        return out


@dataclass
class Mesh:
    """A growing triangle mesh with per-vertex colours."""

    vertices: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    colours: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def add(self, vertices: np.ndarray, faces: np.ndarray, colour: str) -> None:
        self.vertices.append(np.asarray(vertices, dtype=np.float64))
        self.faces.append(np.asarray(faces, dtype=np.int64) + self.count)
        self.colours.append(np.tile(np.asarray(COLOURS[colour], dtype=np.uint8), (len(vertices), 1)))
        self.count += len(vertices)

    def done(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.vstack(self.vertices), np.vstack(self.faces), np.vstack(self.colours)


# --------------------------------------------------------------------------------------------
# Primitive shapes
# --------------------------------------------------------------------------------------------


def ring_strip(n_rings: int, n_seg: int, *, cap_start: bool, cap_end: bool) -> np.ndarray:
    """Faces joining ``n_rings`` rings of ``n_seg`` vertices, optionally fanned to pole vertices.

    Vertex layout: [start pole], ring 0 … ring n-1, [end pole]. Winding is counter-clockwise
    seen from outside when the rings run from +pole to -pole and the segments turn positively.
    """
    faces = []
    off = 1 if cap_start else 0
    seg = np.arange(n_seg)
    nxt = (seg + 1) % n_seg
    if cap_start:
        faces.append(np.stack([np.zeros(n_seg, np.int64), off + seg, off + nxt], axis=1))
    for r in range(n_rings - 1):
        a, b = off + r * n_seg, off + (r + 1) * n_seg
        faces.append(np.stack([a + seg, b + seg, b + nxt], axis=1))
        faces.append(np.stack([a + seg, b + nxt, a + nxt], axis=1))
    if cap_end:
        pole = off + n_rings * n_seg
        last = off + (n_rings - 1) * n_seg
        faces.append(np.stack([last + seg, np.full(n_seg, pole), last + nxt], axis=1))
    return np.vstack(faces)


def superellipsoid(half: np.ndarray, *, n_lat: int = 5, n_lon: int = 8, power: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """A rounded box of half-extents ``half`` (x, y, z) centred on the origin, poles on ±Y."""
    lat = np.linspace(0, np.pi, n_lat + 2)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)

    def spow(x: np.ndarray, p: float) -> np.ndarray:
        return np.sign(x) * np.abs(x) ** p

    sl, cl = np.sin(lat)[:, None], np.cos(lat)[:, None]
    x = spow(sl, power) * spow(np.cos(lon)[None], power)
    z = spow(sl, power) * spow(np.sin(lon)[None], power)
    y = np.broadcast_to(spow(cl, power), x.shape)
    ring = np.stack([x, y, -z], axis=-1).reshape(-1, 3)
    verts = np.vstack([[0, 1, 0], ring, [0, -1, 0]]) * half
    return verts, ring_strip(n_lat, n_lon, cap_start=True, cap_end=True)


# --------------------------------------------------------------------------------------------
# Mouth: teeth, gums, tongue, cavity
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arch:
    """A dental arch: incisor front point, half-width at the molars and depth, in the XZ plane."""

    front: np.ndarray  # (3,) midpoint of the incisors' labial surface at the incisal edge
    half_width: float
    depth: float

    def point(self, phi: np.ndarray) -> np.ndarray:
        """Points on the arch at angle ``phi`` (0 = midline, ±π/2 = the molars)."""
        phi = np.asarray(phi, dtype=np.float64)
        x = self.half_width * np.sin(phi)
        z = self.front[2] - self.depth * (1.0 - np.cos(phi))
        return np.stack([x, np.full_like(x, self.front[1]), z], axis=-1)

    def frame(self, phi: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit tangent (towards +x) and outward (labial) normal of the arch at ``phi``."""
        t = np.array([self.half_width * math.cos(phi), 0.0, -self.depth * math.sin(phi)])
        t /= np.linalg.norm(t)
        return t, np.array([-t[2], 0.0, t[0]])

    def phi_at_length(self, lengths: np.ndarray) -> np.ndarray:
        """Arch angle at each arc length from the midline (numerically inverted)."""
        phi = np.linspace(0, 1.9, 2000)
        pts = self.point(phi)
        s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        return np.interp(lengths, s, phi)


#: Crown (mesio-distal width, height, labio-lingual depth) in mm, midline outwards.
UPPER_TEETH = [(8.6, 10.5, 6.5), (6.6, 9.0, 6.0), (7.6, 10.0, 7.5), (7.0, 8.0, 8.5), (6.6, 7.5, 8.5), (10.0, 7.0, 10.0), (9.0, 6.5, 9.5)]
LOWER_TEETH = [(5.4, 9.0, 6.0), (5.9, 9.0, 6.0), (6.9, 10.0, 7.0), (7.0, 8.0, 7.5), (7.1, 7.5, 8.0), (11.0, 7.0, 10.0), (10.5, 6.5, 9.5)]


def dental_arch(arch: Arch, teeth: list[tuple[float, float, float]], *, upper: bool) -> Mesh:
    """Rounded-box crowns along ``arch`` (both sides) and a gum ridge over their roots.

    The incisal (biting) edges lie in the arch's plane; crowns grow away from it, up for the
    upper teeth and down for the lower, with their labial faces on the arch curve.
    """
    mesh = Mesh()
    away = 1.0 if upper else -1.0
    gap = 0.3 * MM
    s = 0.0
    for width, height, depth in teeth:
        width, height, depth = width * MM, height * MM, depth * MM
        mid = s + width / 2
        s += width + gap
        phi = float(arch.phi_at_length(np.array([mid]))[0])
        for side in (1.0, -1.0):
            centre = arch.point(np.array([side * phi]))[0]
            tangent, outward = arch.frame(side * phi)
            rot = np.stack([tangent, [0.0, 1.0, 0.0], outward], axis=1)
            v, f = superellipsoid(np.array([width / 2, height / 2, depth / 2]))
            v = v @ rot.T + centre - outward * depth / 2 + np.array([0.0, away * height / 2, 0.0])
            mesh.add(v, orient_outwards(v, f), "tooth")
    # Gum ridge: a flattened tube along the arch over the crowns' root ends.
    phis = np.linspace(-1.55, 1.55, 41)
    ridge_h = 5.0 * MM
    n_seg = 10
    a = np.linspace(0, 2 * np.pi, n_seg, endpoint=False)
    rings = []
    for phi in phis:
        _, outward = arch.frame(phi)
        depth_here = float(np.interp(abs(phi), [0, 1.55], [7.5 * MM, 11 * MM]))
        height_here = float(np.interp(abs(phi), [0, 1.55], [teeth[0][1], teeth[-1][1]])) * MM
        centre = arch.point(np.array([phi]))[0] + np.array([0.0, away * (0.9 * height_here + 0.3 * ridge_h), 0.0])
        centre = centre - outward * (depth_here / 2)
        rings.append(centre + np.cos(a)[:, None] * outward * (depth_here / 2 + 0.4 * MM)
                     + np.sin(a)[:, None] * np.array([0.0, ridge_h / 2, 0.0]))
    verts = np.vstack(rings)
    faces = ring_strip(len(phis), n_seg, cap_start=False, cap_end=False)
    seg = np.arange(n_seg)
    nxt = (seg + 1) % n_seg
    start, last = len(verts), (len(phis) - 1) * n_seg
    faces = np.vstack([faces, np.stack([np.full(n_seg, start), nxt, seg], axis=1),
                       np.stack([np.full(n_seg, start + 1), last + seg, last + nxt], axis=1)])
    verts = np.vstack([verts, verts[:n_seg].mean(axis=0), verts[-n_seg:].mean(axis=0)])
    mesh.add(verts, orient_outwards(verts, faces), "gum")
    return mesh


def orient_outwards(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Flip a closed tube's winding if its normals point inwards (measured from its centroid)."""
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # For a bent tube the centroid can lie outside it, so use each ring's own axis instead:
    # the sign of the total flux through the surface (the divergence theorem: volume > 0).
    volume = np.einsum("ij,ij->", normal, tri.mean(axis=1)) / 6.0
    return faces if volume > 0 else faces[:, ::-1]


def tongue(arch: Arch, top_y: float) -> Mesh:
    """A flattened, tapering body lying inside the lower arch with its tip behind the incisors."""
    n_lat, n_lon = 12, 16
    length, width, thick = 44 * MM, 38 * MM, 16 * MM
    tip_z = arch.front[2] - 7.5 * MM
    u = np.linspace(0.0, 1.0, n_lat + 2)[1:-1]  # 0 tip … 1 root
    a = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    rings = []
    for t in u:
        half_w = 0.5 * width * math.sin(math.pi * min(1.0, 0.25 + 0.9 * t)) ** 0.6
        half_t = 0.5 * thick * (0.55 + 0.45 * math.sin(math.pi * min(1.0, 0.2 + 0.8 * t)))
        z = tip_z - t * length
        y = top_y - half_t + 1.5 * MM * math.sin(math.pi * t)  # a slight dome along its length
        x = half_w * np.cos(a)
        yy = y + half_t * np.sin(a) * np.where(np.sin(a) > 0, 1.0, 0.8)
        rings.append(np.stack([x, yy, np.full_like(x, z)], axis=1))
    verts = np.vstack([[0.0, top_y - 0.5 * thick * 0.6, tip_z + 1.5 * MM], *rings,
                       [0.0, top_y - thick * 0.5, tip_z - length - 2 * MM]])
    faces = ring_strip(n_lat, n_lon, cap_start=True, cap_end=True)
    mesh = Mesh()
    mesh.add(verts, orient_outwards(verts, faces), "tongue")
    return mesh


def mouth_cavity(
    face_v: np.ndarray, slit: np.ndarray, jaw_weight: np.ndarray, *, half_width: float, top: float, bottom: float, depth: float
) -> Part:
    """A dark bag from the mouth slit (welded to it) back to the throat, around teeth and tongue.

    Ring 0 is the slit itself; the next rings widen to the cavity's cross-section (a
    rounded rectangle ``half_width`` wide from ``bottom`` to ``top``) and run back ``depth``; a fan
    closes the back. Each column keeps its slit vertex's jaw weight, so the floor drops with
    the jaw, and shares a fading part of the lip's own deformation.
    """
    s = face_v[slit]
    centre = s.mean(axis=0)
    n = len(slit)
    rel = s[:, :2] - centre[:2]
    ang = np.arctan2(rel[:, 1] / max(np.ptp(s[:, 1]), 1e-6), rel[:, 0] / max(np.ptp(s[:, 0]), 1e-6))
    mid_y = 0.5 * (top + bottom)
    half_h = 0.5 * (top - bottom)
    # A rounded rectangle (superellipse), so the molars at the back corners stay inside.
    c, si = np.cos(ang), np.sin(ang)
    ellipse = np.stack([half_width * np.sign(c) * np.abs(c) ** 0.5, mid_y + half_h * np.sign(si) * np.abs(si) ** 0.5], axis=1)
    # (blend towards the ellipse, z offset behind the slit, share of the lip deformation)
    schedule = [(0.0, 0.0, 1.0), (0.2, 3.0 * MM, 0.6), (0.8, 5.0 * MM, 0.25), (1.0, 9.0 * MM, 0.0),
                (1.0, 0.45 * depth, 0.0), (1.0, 0.8 * depth, 0.0), (0.75, depth, 0.0)]
    rings, share = [], []
    front_z = s[:, 2].min()
    for blend, back, follow in schedule:
        xy = (1 - blend) * s[:, :2] + blend * ellipse
        if blend >= 1.0 or back > 9 * MM:
            xy = centre[:2] * 0 + np.stack([ellipse[:, 0] * blend, mid_y + (ellipse[:, 1] - mid_y) * blend], axis=1)
        z = (1 - min(blend, 1.0)) * s[:, 2] + min(blend, 1.0) * front_z - back
        rings.append(np.column_stack([xy, z]))
        share.append(np.full(n, follow))
    verts = np.vstack([*rings, [[0.0, mid_y, front_z - depth - 4 * MM]]])
    faces = ring_strip(len(rings), n, cap_start=False, cap_end=True)
    # Orient so the normals face into the cavity (the viewer looks at its inside).
    inside = np.array([0.0, mid_y, front_z - 0.5 * depth])
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if np.einsum("ij,ij->", normal, inside - tri.mean(axis=1)) < 0:
        faces = faces[:, ::-1]
    w = np.r_[np.tile(jaw_weight[slit], len(rings)), 0.5]
    weld = np.full(len(verts), -1, dtype=np.int64)
    weld[:n] = slit
    follow = np.r_[np.tile(slit, len(rings)), slit[0]]
    follow_w = np.r_[np.concatenate(share), 0.0]
    colours = np.tile(np.asarray(COLOURS["cavity"], dtype=np.uint8), (len(verts), 1))
    return Part(verts, faces, colours, w, weld, follow, follow_w)


# --------------------------------------------------------------------------------------------
# Eyes
# --------------------------------------------------------------------------------------------


def eyeball(centre: np.ndarray) -> Part:
    """A sphere looking down +Z with an iris and a pupil, each colour on vertices of its own."""
    n_seg = 24
    r = EYE_RADIUS
    pupil = math.asin(PUPIL_RADIUS / r)
    iris = math.asin(IRIS_RADIUS / r)
    mesh = Mesh()

    def band(theta: np.ndarray, colour: str, *, pole: bool, bulge: float = 0.0) -> None:
        a = np.linspace(0, 2 * np.pi, n_seg, endpoint=False)
        rings = []
        for t in theta:
            rr = r * (1.0 + bulge * math.cos(min(t / iris, 1.0) * math.pi / 2) ** 2)
            rings.append(np.stack([rr * math.sin(t) * np.cos(a), rr * math.sin(t) * np.sin(a),
                                   np.full(n_seg, rr * math.cos(t))], axis=1))
        verts = np.vstack(rings)
        faces = ring_strip(len(theta), n_seg, cap_start=pole, cap_end=False)
        if pole:
            verts = np.vstack([[0.0, 0.0, r * (1.0 + bulge)], verts])
        mesh.add(verts, faces, colour)

    cornea = 0.03  # the iris region bulges slightly, like a cornea catching the light
    band(np.linspace(pupil / 3, pupil, 3), "pupil", pole=True, bulge=cornea)
    band(np.linspace(pupil, iris, 4), "iris", pole=False, bulge=cornea)
    theta = np.linspace(iris, np.pi, 12)[:-1]
    a = np.linspace(0, 2 * np.pi, n_seg, endpoint=False)
    verts = np.vstack([np.stack([r * math.sin(t) * np.cos(a), r * math.sin(t) * np.sin(a),
                                 np.full(n_seg, r * math.cos(t))], axis=1) for t in theta] + [[[0.0, 0.0, -r]]])
    mesh.add(verts, ring_strip(len(theta), n_seg, cap_start=False, cap_end=True), "sclera")
    v, f, c = mesh.done()
    # ring_strip winds rings running from +Z outwards clockwise seen from outside: flip if needed.
    tri = v[f]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if np.einsum("ij,ij->", normal, tri.mean(axis=1)) < 0:
        f = f[:, ::-1]
    zeros = np.zeros(len(v))
    return Part(v + centre, f, c, zeros, np.full(len(v), -1))


def eye_centre(face_v: np.ndarray, faces: np.ndarray, lm_points: np.ndarray, eye: slice, protrusion: float) -> np.ndarray:
    """Eyeball centre behind one eye: its front pokes ``protrusion`` through the skin in the opening.

    The face's sculpted eye surface spans the opening between the lid margins; placing the
    eyeball just in front of it there (and so behind the lids around it) lets the depth test
    cut the visible eye out along the lid margins.
    """
    pts = lm_points[eye]
    c_xy = pts[:, :2].mean(axis=0)
    inside = points_in_polygon(face_v[:, :2], pts[:, :2]) & (face_v[:, 2] > pts[:, 2].min() - 6 * MM)
    near = face_v[inside]
    if len(near) < 3:
        raise SystemExit("too few vertices inside an eye opening to place the eyeball")
    # The skin's height over the opening: the sphere front must clear its highest point there.
    best = None
    for dz in np.linspace(-8 * MM, 8 * MM, 321):
        c = np.array([c_xy[0], c_xy[1], pts[:, 2].mean() - EYE_RADIUS + dz])
        clearance = EYE_RADIUS - np.linalg.norm(near - c, axis=1)  # > 0: skin inside the sphere
        if np.median(clearance) >= protrusion:
            best = c
            break
    if best is None:
        raise SystemExit("could not place an eyeball in its socket")
    return best


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for (N, 2) points."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    x0, y0 = polygon[:, 0][None], polygon[:, 1][None]
    x1, y1 = np.roll(polygon[:, 0], -1)[None], np.roll(polygon[:, 1], -1)[None]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return np.count_nonzero(crosses & (x < xi), axis=1) % 2 == 1


# --------------------------------------------------------------------------------------------
# Scalp: close the open back and top of the head
# --------------------------------------------------------------------------------------------


def cranium(face_v: np.ndarray, lm_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and radii of an ellipsoid standing for the skull, from the face and proportions.

    The mask holds too little of the skull for a free fit, so the ellipsoid is pinned where the
    mask does say something (its width at the temples, the forehead's front) and takes the
    rest from adult proportions relative to the 0.15 m face width: a head about 1.3 face
    widths long, the crown about 0.55 face widths above the brows.
    """
    v = face_v
    brow_y = float(lm_points[17:27, 1].mean())
    eye_y = float(lm_points[36:48, 1].mean())
    width = float(np.linalg.norm(lm_points[0] - lm_points[16]))
    ears_x = float(np.abs(lm_points[[0, 16], 0]).max())
    temples = v[(v[:, 1] > brow_y) & (v[:, 1] < brow_y + 30 * MM) & (np.abs(v[:, 0]) < ears_x - 5 * MM)]
    half_w = max(float(np.abs(temples[:, 0]).max()), ears_x) + 2 * MM
    forehead = v[(v[:, 1] > brow_y + 15 * MM) & (v[:, 1] < brow_y + 35 * MM) & (np.abs(v[:, 0]) < 10 * MM)]
    half_l = 0.6 * width
    centre = np.array([0.0, eye_y, float(forehead[:, 2].max()) - half_l])
    radii = np.array([half_w, brow_y + 0.55 * width - eye_y, half_l])
    return centre, radii


def ellipsoid_radius(directions: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance from the centre to the ellipsoid along unit ``directions``."""
    return 1.0 / np.sqrt(np.sum((directions / radii) ** 2, axis=1))


def head_radius(directions: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """The skull ellipsoid, its back drawn in below the ear line towards the neck."""
    t = np.clip(-directions[:, 1] / 0.6, 0.0, 1.0)
    tuck = 1.0 - 0.35 * t * t * (3 - 2 * t)
    scaled = np.stack([np.full_like(tuck, radii[0]), np.full_like(tuck, radii[1]), radii[2] * tuck], axis=1)
    return 1.0 / np.sqrt(np.sum((directions / scaled) ** 2, axis=1))


def scalp_cap(face_v: np.ndarray, faces: np.ndarray, loop: np.ndarray, lm_points: np.ndarray, spacing: float) -> Part:
    """A smooth dome closing the head's open back, top and neck, welded to its border ``loop``.

    Seen from inside the cranium (an ellipsoid fitted to the skull's skin), the opening is one
    region of directions. It is flattened by an azimuthal equidistant projection about its
    middle, filled with a triangulated grid, and lifted to the ellipsoid plus a harmonic
    correction that meets the border exactly, so the dome runs into the skin with no gap.
    """
    centre, radii = cranium(face_v, lm_points)
    rim = face_v[loop] - centre
    rim_r = np.linalg.norm(rim, axis=1)
    rim_u = rim / rim_r[:, None]
    axis = np.array([0.0, 0.0, -1.0])  # the opening's middle: straight back, behind the face
    # Tangent frame about the axis.
    e1 = np.cross(axis, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.cross(axis, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)

    def project(u: np.ndarray) -> np.ndarray:
        alpha = np.arccos(np.clip(u @ axis, -1.0, 1.0))
        beta = np.arctan2(u @ e2, u @ e1)
        return np.stack([alpha * np.cos(beta), alpha * np.sin(beta)], axis=1)

    def unproject(q: np.ndarray) -> np.ndarray:
        alpha = np.linalg.norm(q, axis=1)
        beta = np.arctan2(q[:, 1], q[:, 0])
        return (np.cos(alpha)[:, None] * axis + np.sin(alpha)[:, None] * (np.cos(beta)[:, None] * e1 + np.sin(beta)[:, None] * e2))

    rim_q = project(rim_u)
    step = spacing / float(np.mean(radii))
    lo, hi = rim_q.min(axis=0), rim_q.max(axis=0)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step * math.sqrt(3) / 2))
    gx = gx + (np.arange(gx.shape[0])[:, None] % 2) * step / 2  # hexagonal grid: near-equilateral triangles
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    grid = grid[points_in_polygon(grid, rim_q)]
    seg_a, seg_b = rim_q, np.roll(rim_q, -1, axis=0)
    ab = seg_b - seg_a
    ap = grid[:, None] - seg_a[None]
    t = np.clip(np.einsum("nsd,sd->ns", ap, ab) / np.einsum("sd,sd->s", ab, ab), 0, 1)
    dist = np.linalg.norm(grid[:, None] - (seg_a[None] + t[..., None] * ab[None]), axis=2).min(axis=1)
    grid = grid[dist > 0.7 * step]
    q = np.vstack([rim_q, grid])
    tri = Delaunay(q).simplices
    keep = points_in_polygon(q[tri].mean(axis=1), rim_q)
    faces = tri[keep]
    n_rim = len(loop)
    # Every rim edge must be an edge of the fill, or the seam would have holes.
    have = {tuple(sorted(e)) for e in np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).tolist()}
    missing = [i for i in range(n_rim) if tuple(sorted((i, (i + 1) % n_rim))) not in have]
    if missing:
        raise SystemExit(f"the scalp fill misses {len(missing)} rim edges; adjust the spacing")
    # Radii: ellipsoid plus a harmonic correction pinned to the rim.
    u = unproject(q)
    base = head_radius(u, radii)
    fixed = np.full(len(q), np.nan)
    fixed[:n_rim] = rim_r - base[:n_rim]
    corr = harmonic_2d(q, faces, fixed)
    verts = centre + u * (base + corr)[:, None]
    verts[:n_rim] = face_v[loop]
    # Outward winding.
    t3 = verts[faces]
    normal = np.cross(t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0])
    if np.einsum("ij,ij->", normal, t3.mean(axis=1) - centre) < 0:
        faces = faces[:, ::-1]
    weld = np.full(len(verts), -1, dtype=np.int64)
    weld[:n_rim] = loop
    colours = np.tile(np.asarray(COLOURS["scalp"], dtype=np.uint8), (len(verts), 1))
    return Part(verts, faces, colours, np.zeros(len(verts)), weld)


def harmonic_2d(points: np.ndarray, faces: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Fill NaNs of ``fixed`` with the harmonic interpolant over the triangulation's edges."""
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import spsolve

    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    w = 1.0 / np.maximum(np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1), 1e-12)
    n = len(points)
    adj = coo_matrix((np.r_[w, w], (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])), shape=(n, n)).tocsr()
    lap = (diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()
    known = ~np.isnan(fixed)
    free = np.flatnonzero(~known)
    out = fixed.copy()
    out[free] = spsolve(lap[free][:, free].tocsc(), -lap[free][:, np.flatnonzero(known)] @ fixed[known])
    return out


# --------------------------------------------------------------------------------------------
# All parts
# --------------------------------------------------------------------------------------------


def build_parts(
    face_v: np.ndarray,
    faces: np.ndarray,
    lm_points: np.ndarray,
    regions: dict[str, np.ndarray],
    jaw_weight: np.ndarray,
    slit: np.ndarray,
    back_loop: np.ndarray,
) -> tuple[dict[str, Part], dict[str, np.ndarray]]:
    """Every separate part, plus the anchors they move about (eye centres, neck pivot)."""
    v = np.asarray(face_v, dtype=np.float64)
    upper_c = regions["lip_contour_upper"]
    lower_c = regions["lip_contour_lower"]
    mid_up = upper_c[np.argmin(np.abs(v[upper_c, 0]))]
    mid_low = lower_c[np.argmin(np.abs(v[lower_c, 0]))]
    lip_line = 0.5 * (lm_points[[62, 66], 1].mean() + lm_points[[61, 63, 65, 67], 1].mean())
    slit_z = min(v[mid_up, 2], v[mid_low, 2])

    # Upper incisors: labial face 2.5 mm behind the slit's midline, edge 1.5 mm below the lips'
    # meeting line (hidden by a closed mouth, shown as soon as the lips part).
    upper_arch = Arch(front=np.array([0.0, lip_line - 1.5 * MM, slit_z - 2.5 * MM]), half_width=25.5 * MM, depth=36 * MM)
    # Lower incisors: 2.5 mm overbite, 3 mm behind the upper ones (normal occlusion).
    lower_arch = Arch(front=np.array([0.0, upper_arch.front[1] + 2.5 * MM, upper_arch.front[2] - 3.0 * MM]),
                      half_width=23.5 * MM, depth=33 * MM)
    parts: dict[str, Part] = {}
    for name, arch, teeth, is_upper in (("teeth_upper", upper_arch, UPPER_TEETH, True), ("teeth_lower", lower_arch, LOWER_TEETH, False)):
        mv, mf, mc = dental_arch(arch, teeth, upper=is_upper).done()
        w = np.full(len(mv), 0.0 if is_upper else 1.0)
        parts[name] = Part(mv, mf, mc, w, np.full(len(mv), -1))
    tv, tf, tc = tongue(lower_arch, lower_arch.front[1] - 3.0 * MM).done()
    parts["tongue"] = Part(tv, tf, tc, np.ones(len(tv)), np.full(len(tv), -1))
    parts["mouth"] = mouth_cavity(
        v, slit, jaw_weight, half_width=31 * MM, top=upper_arch.front[1] + 16 * MM,
        bottom=lower_arch.front[1] - 20 * MM, depth=58 * MM,
    )

    anchors: dict[str, np.ndarray] = {}
    for name, sl in (("eye_left", slice(42, 48)), ("eye_right", slice(36, 42))):
        c = eye_centre(v, faces, lm_points, sl, protrusion=0.6 * MM)
        parts[name] = eyeball(c)
        anchors[name] = c

    parts["scalp"] = scalp_cap(v, faces, back_loop, lm_points, spacing=8 * MM)

    neck = v[back_loop]
    bottom = neck[:, 1].min()
    low = neck[neck[:, 1] < bottom + 10 * MM]
    anchors["neck_pivot"] = np.array([0.0, bottom + 25 * MM, float(low[:, 2].mean())])
    return parts, anchors
