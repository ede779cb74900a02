"""A fixed front-view camera framed on the template, shared by every renderer.

Both renderers take their matrices and pixel mapping from here, so a GL frame and a software
frame of the same mesh line up pixel for pixel and a side-by-side video never jumps between panels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RenderError

#: Vertical field of view in degrees: narrow enough that the face is not distorted like a selfie.
DEFAULT_FOV_DEG = 18.0
#: Space left around the framed bounds, as a factor on their half-extent.
DEFAULT_MARGIN = 1.15


@dataclass(frozen=True, eq=False)
class Camera:
    """A perspective camera looking down −Z; matrices are column-vector, OpenGL convention.

    ``view`` is a rigid transform, so normals go to view space through its upper 3×3 block.
    """

    view: np.ndarray
    projection: np.ndarray

    @property
    def view_projection(self) -> np.ndarray:
        """The combined world → clip matrix (4×4 float64)."""
        return self.projection @ self.view

    def to_clip(self, vertices: np.ndarray) -> np.ndarray:
        """World positions (V, 3) → clip coordinates (V, 4), float64 for a stable divide."""
        m = self.view_projection
        return vertices.astype(np.float64, copy=False) @ m[:, :3].T + m[:, 3]

    def to_pixels(self, vertices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Project to a ``size``×``size`` image: x right, y down, pixel centres at ``i + 0.5``.

        Returns (V, 3) pixel x, pixel y, NDC depth (−1 near … 1 far), and the clip ``w`` that
        perspective-correct interpolation needs; points behind the eye get ``w <= 0``.
        """
        clip = self.to_clip(vertices)
        w = clip[:, 3]
        safe_w = np.where(np.abs(w) < 1e-12, 1e-12, w)
        x = (clip[:, 0] / safe_w + 1.0) * (0.5 * size)
        y = (1.0 - clip[:, 1] / safe_w) * (0.5 * size)
        z = clip[:, 2] / safe_w
        return np.stack([x, y, z], axis=1), w


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    """The standard OpenGL perspective matrix (gluPerspective)."""
    f = 1.0 / math.tan(math.radians(fov_y_deg) / 2.0)
    m = np.zeros((4, 4))
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def frame_camera(
    vertices: np.ndarray, *, fov_deg: float = DEFAULT_FOV_DEG, margin: float = DEFAULT_MARGIN
) -> Camera:
    """Frame a front view (+Y up, +Z towards the viewer) that fits ``vertices`` with a margin.

    The fit is made at the bounds' front plane, the nearest to the eye and so the largest on
    screen; the clip range is generous so a head that moves during the clip is not cut.
    """
    pts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if pts.size == 0 or not np.isfinite(pts).all():
        raise RenderError("Cannot frame the camera: the framing vertices are empty or not finite.")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    extent = hi - lo
    half = max(extent[0], extent[1], 1e-6) / 2.0 * margin
    depth = max(extent[2], 1e-6)
    to_front = half / math.tan(math.radians(fov_deg) / 2.0)
    eye = np.array([centre[0], centre[1], hi[2] + to_front])
    view = np.eye(4)
    view[:3, 3] = -eye
    distance = to_front + depth
    near = max(to_front * 0.05, 1e-4)
    far = distance * 4.0 + half * 4.0
    return Camera(view=view, projection=perspective(fov_deg, 1.0, near, far))
