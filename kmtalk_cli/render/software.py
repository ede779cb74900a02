"""A NumPy z-buffer rasterizer: the fallback when no OpenGL context can be made.

It works in two vectorised passes so Python never loops over triangles or pixels:

1. *visibility*: every triangle's bounding box is cut into small power-of-two tiles; triangles
   with the same tile shape are tested against all their tile pixels at once, and the nearest
   fragment per pixel wins through ``np.minimum.at`` on a key that packs depth above triangle id;
2. *shading*: only the covered pixels are shaded, once each, with perspective-correct normals
   and the same lights as the GL shader, so both renderers produce the same picture.
"""

from __future__ import annotations

import numpy as np

from ..errors import RenderError
from .camera import Camera
from .shading import DEFAULT_LIGHTING, Lighting, SmoothNormals, albedo_array, shade, to_u8

#: Largest tile side; bigger triangles are covered by several tiles.
MAX_TILE = 32
#: Bits for the triangle id in the z-buffer key (up to ~2 million triangles).
_ID_BITS = 21
_ID_MASK = (1 << _ID_BITS) - 1
#: Depth is quantised to this many levels over the visible depth range.
_DEPTH_LEVELS = (1 << 40) - 1
_EMPTY = np.iinfo(np.int64).max


def _tile_side(extent: np.ndarray, largest: int) -> np.ndarray:
    """The power-of-two tile side (1 … ``largest``) that best covers a bounding-box side."""
    side = np.ones_like(extent)
    while True:
        grow = (side < extent) & (side < largest)
        if not grow.any():
            return side
        side[grow] *= 2


class SoftwareRenderer:
    """Rasterizes one mesh topology from a fixed camera with NumPy only."""

    kind = "software"

    def __init__(
        self,
        faces: np.ndarray,
        n_vertices: int,
        size: int,
        camera: Camera,
        *,
        lighting: Lighting = DEFAULT_LIGHTING,
        colours: np.ndarray | None = None,
        supersample: int = 1,
    ) -> None:
        faces = np.ascontiguousarray(faces, dtype=np.int64)
        if faces.shape[0] > _ID_MASK:
            raise RenderError(f"The software renderer handles at most {_ID_MASK} triangles.")
        self.faces = faces
        self._corners = [np.ascontiguousarray(faces[:, i]) for i in range(3)]
        self.supersample = max(1, int(supersample))
        self.output_size = int(size)
        self.size = int(size) * self.supersample
        # Each triangle takes the albedo of its first corner (parts have one colour per region).
        self._face_albedo = np.ascontiguousarray(albedo_array(colours, n_vertices, lighting)[faces[:, 0]].T)
        # Tiles must fit on screen, so they are never larger than the image.
        self._largest_tile = min(MAX_TILE, 1 << (self.size.bit_length() - 1))
        self.camera = camera
        self.lighting = lighting
        self._rotation = np.ascontiguousarray(camera.view[:3, :3], dtype=np.float32)
        self._normals = SmoothNormals(faces, n_vertices)
        self._background = np.broadcast_to(lighting.background_u8, (self.size * self.size, 3))
        self._zbuffer = np.empty(self.size * self.size, dtype=np.int64)
        self._offsets: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._closed = False

    def _tile_offsets(self, tw: int, th: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Offsets x, y (float32) and linear pixel offset (int64) inside a ``tw``×``th`` tile; cached."""
        key = (tw, th)
        if key not in self._offsets:
            ys, xs = np.mgrid[0:th, 0:tw]
            xs, ys = xs.ravel(), ys.ravel()
            self._offsets[key] = (xs.astype(np.float32), ys.astype(np.float32), ys * self.size + xs)
        return self._offsets[key]

    def render(self, vertices: np.ndarray) -> np.ndarray:
        """Draw one frame of (V, 3) positions; return a fresh (H, W, 3) uint8 image, top row first."""
        if self._closed:
            raise RenderError("The software renderer was used after close().")
        size = self.size
        vertices = np.asarray(vertices, dtype=np.float32)
        self._normals.check(vertices)
        screen, w_clip = self.camera.to_pixels(vertices, size)
        sx, sy, sz = (np.ascontiguousarray(screen[:, k]) for k in range(3))
        f0, f1, f2 = self._corners
        x0, x1, x2 = sx[f0], sx[f1], sx[f2]
        y0, y1, y2 = sy[f0], sy[f1], sy[f2]
        z0, z1, z2 = sz[f0], sz[f1], sz[f2]
        w0, w1, w2 = w_clip[f0], w_clip[f1], w_clip[f2]

        # Edge functions E_i(p) = a_i·x + b_i·y + c_i; E_i / area is corner i's barycentric weight.
        a = (y1 - y2, y2 - y0, y0 - y1)
        b = (x2 - x1, x0 - x2, x1 - x0)
        c = (x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0)
        area = c[0] + c[1] + c[2]  # twice the signed area; pixel y runs down, so CCW is negative

        xmin = np.maximum(np.ceil(np.minimum(np.minimum(x0, x1), x2) - 0.5), 0)
        xmax = np.minimum(np.floor(np.maximum(np.maximum(x0, x1), x2) - 0.5), size - 1)
        ymin = np.maximum(np.ceil(np.minimum(np.minimum(y0, y1), y2) - 0.5), 0)
        ymax = np.minimum(np.floor(np.maximum(np.maximum(y0, y1), y2) - 0.5), size - 1)
        usable = (
            (np.minimum(np.minimum(w0, w1), w2) > 1e-9)  # no corner at or behind the eye
            & (np.maximum(np.maximum(np.abs(z0), np.abs(z1)), np.abs(z2)) <= 1.0)  # near..far
            & (np.abs(area) > 1e-9)
            & (xmax >= xmin)
            & (ymax >= ymin)
        )
        tri = np.flatnonzero(usable)
        zbuf = self._zbuffer
        zbuf.fill(_EMPTY)
        if tri.size:
            self._rasterize(tri, a, b, c, area, (z0, z1, z2), xmin, ymin, xmax, ymax)

        image = np.empty((size * size, 3), dtype=np.uint8)
        image[:] = self._background
        covered = np.flatnonzero(zbuf != _EMPTY)
        if covered.size:
            hit = zbuf[covered] & _ID_MASK
            planes = self._normal_planes(vertices, a, b, c, area, (w0, w1, w2), usable)
            image[covered] = self._shade(covered, hit, planes).T
        image = image.reshape(size, size, 3)
        k = self.supersample
        if k > 1:  # average each k×k block: supersampled anti-aliasing
            out = self.output_size
            image = image.reshape(out, k, out, k, 3).astype(np.uint16).sum(axis=(1, 3))
            image = ((image + (k * k) // 2) // (k * k)).astype(np.uint8)
        return image

    def _rasterize(
        self,
        tri: np.ndarray,
        a: tuple[np.ndarray, ...],
        b: tuple[np.ndarray, ...],
        c: tuple[np.ndarray, ...],
        area: np.ndarray,
        z: tuple[np.ndarray, ...],
        xmin: np.ndarray,
        ymin: np.ndarray,
        xmax: np.ndarray,
        ymax: np.ndarray,
    ) -> None:
        """Write the nearest triangle of every covered pixel into the z-buffer key array."""
        size = self.size
        zbuf = self._zbuffer
        t_area = area[tri]
        # Orient every edge function so the inside is positive, whatever the winding. Negation is
        # exact, so the two triangles sharing an edge never both reject a pixel centre on it.
        sign = np.where(t_area > 0, 1.0, -1.0)
        ea = [a[i][tri] * sign for i in range(3)]
        eb = [b[i][tri] * sign for i in range(3)]
        ec = [c[i][tri] * sign for i in range(3)]
        ea32 = [e.astype(np.float32) for e in ea]
        eb32 = [e.astype(np.float32) for e in eb]
        # Depth (quantised NDC z) is affine in screen space: d(p) = dx·x + dy·y + d0.
        zq = [(z[i][tri] + 1.0) * (0.5 * _DEPTH_LEVELS) for i in range(3)]
        inv = 1.0 / t_area
        dx = (a[0][tri] * zq[0] + a[1][tri] * zq[1] + a[2][tri] * zq[2]) * inv
        dy = (b[0][tri] * zq[0] + b[1][tri] * zq[1] + b[2][tri] * zq[2]) * inv
        d0 = (c[0][tri] * zq[0] + c[1][tri] * zq[1] + c[2][tri] * zq[2]) * inv

        bx0 = xmin[tri].astype(np.int64)
        by0 = ymin[tri].astype(np.int64)
        bw = xmax[tri].astype(np.int64) - bx0 + 1
        bh = ymax[tri].astype(np.int64) - by0 + 1
        side_w = _tile_side(bw, self._largest_tile)
        side_h = _tile_side(bh, self._largest_tile)
        n_x = -(-bw // side_w)  # tiles per box, ceil division
        n_y = -(-bh // side_h)
        shape_class = side_w * (2 * MAX_TILE) + side_h
        for cls in np.unique(shape_class):
            tw_, th_ = int(cls // (2 * MAX_TILE)), int(cls % (2 * MAX_TILE))
            sel = np.flatnonzero(shape_class == cls)
            counts = n_x[sel] * n_y[sel]
            if (counts == 1).all():
                rep = sel
                tile_x = bx0[sel]
                tile_y = by0[sel]
            else:
                rep = np.repeat(sel, counts)
                k = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
                nx = n_x[rep]
                tile_x = bx0[rep] + (k % nx) * tw_
                tile_y = by0[rep] + (k // nx) * th_
            # Keep whole tiles on screen; the extra pixels fail the edge test anyway.
            tile_x = np.minimum(tile_x, size - tw_)
            tile_y = np.minimum(tile_y, size - th_)
            cx = tile_x + 0.5
            cy = tile_y + 0.5
            ox, oy, lin = self._tile_offsets(tw_, th_)
            inside = None
            for i in range(3):
                e0 = (ea[i][rep] * cx + eb[i][rep] * cy + ec[i][rep]).astype(np.float32)
                e = ea32[i][rep][:, None] * ox
                e += eb32[i][rep][:, None] * oy
                e += e0[:, None]
                inside = e >= 0 if inside is None else np.logical_and(inside, e >= 0, out=inside)
            r, col = np.nonzero(inside)
            if r.size == 0:
                continue
            t_rep = rep[r]
            depth = dx[t_rep] * (cx[r] + ox[col]) + dy[t_rep] * (cy[r] + oy[col]) + d0[t_rep]
            key = (depth.astype(np.int64) << _ID_BITS) | tri[t_rep]
            pix = (tile_y * size + tile_x)[r] + lin[col]
            np.minimum.at(zbuf, pix, key)

    def _normal_planes(
        self,
        vertices: np.ndarray,
        a: tuple[np.ndarray, ...],
        b: tuple[np.ndarray, ...],
        c: tuple[np.ndarray, ...],
        area: np.ndarray,
        w: tuple[np.ndarray, ...],
        usable: np.ndarray,
    ) -> np.ndarray:
        """Per-triangle screen-space planes (9, F) of the view-space normal divided by clip w.

        Interpolating n/w affinely and then normalising is exactly perspective-correct, because
        the missing divide by the interpolated 1/w only scales the vector. Back-facing triangles
        get their planes negated: two-sided lighting, as ``gl_FrontFacing`` gives the GL shader.
        """
        normals = self._rotation @ self._normals(vertices).T  # (3, V), view space
        inv = np.where(usable, 1.0 / np.where(usable, area, 1.0), 0.0)
        inv = np.where(area < 0, inv, -inv)  # CCW (front) has negative area in pixel space
        planes = np.empty((9, area.shape[0]), dtype=np.float32)
        corners = self._corners
        inv_w = [1.0 / np.where(usable, w[i], 1.0) for i in range(3)]
        for k in range(3):
            q = [normals[k][corners[i]] * inv_w[i] for i in range(3)]
            planes[k] = (a[0] * q[0] + a[1] * q[1] + a[2] * q[2]) * inv
            planes[3 + k] = (b[0] * q[0] + b[1] * q[1] + b[2] * q[2]) * inv
            planes[6 + k] = (c[0] * q[0] + c[1] * q[1] + c[2] * q[2]) * inv
        return planes

    def _shade(self, pixels: np.ndarray, hit: np.ndarray, planes: np.ndarray) -> np.ndarray:
        """Colours (3, N) uint8 of covered pixels from their triangle's normal planes."""
        py, px = np.divmod(pixels, self.size)
        fx = px.astype(np.float32) + np.float32(0.5)
        fy = py.astype(np.float32) + np.float32(0.5)
        coef = np.take(planes, hit, axis=1)
        n = coef[0:3] * fx
        n += coef[3:6] * fy
        n += coef[6:9]
        length = np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
        n /= np.maximum(length, np.float32(1e-20))
        return to_u8(shade(n, self.lighting, np.take(self._face_albedo, hit, axis=1)))

    def close(self) -> None:
        """Nothing to release but the buffers; kept for the common renderer interface."""
        self._closed = True
