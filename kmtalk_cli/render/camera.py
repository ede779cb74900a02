"""A fixed camera framed on the template, shared by every renderer: front or any orbit view.

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


@dataclass(frozen=True)
class CameraView:
    """Where the camera looks from: an orbit about the framed bounds' centre.

    ``yaw`` (degrees, positive: from the face's left, +X), ``pitch`` (degrees, positive: from
    above), ``zoom`` (> 1 comes closer), ``focus`` ``"head"`` or ``"mouth"`` (frames the lips).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    zoom: float = 1.0
    focus: str = "head"

    def __post_init__(self) -> None:
        if not all(math.isfinite(x) for x in (self.yaw, self.pitch, self.zoom)):
            raise RenderError("Camera yaw, pitch and zoom must be finite numbers.")
        if not -89.0 <= self.pitch <= 89.0:
            raise RenderError(f"Camera pitch {self.pitch:g}° must be between -89 and 89 degrees.")
        if not 0.1 <= self.zoom <= 20.0:
            raise RenderError(f"Camera zoom {self.zoom:g} must be between 0.1 and 20.")
        if self.focus not in ("head", "mouth"):
            raise RenderError(f"Camera focus {self.focus!r} must be 'head' or 'mouth'.")


#: Named views for ``--view``.
CAMERA_PRESETS: dict[str, CameraView] = {
    "front": CameraView(),
    "three-quarter": CameraView(yaw=35.0, pitch=5.0),
    "profile": CameraView(yaw=90.0),
    "mouth": CameraView(yaw=15.0, pitch=3.0, focus="mouth"),
}


def camera_view(preset: str = "front", *, yaw: float | None = None, pitch: float | None = None,
                zoom: float | None = None) -> CameraView:
    """A preset (:data:`CAMERA_PRESETS`) with any of its yaw, pitch or zoom replaced."""
    if preset not in CAMERA_PRESETS:
        raise RenderError(f"Camera view {preset!r} is not one of {', '.join(CAMERA_PRESETS)}.")
    base = CAMERA_PRESETS[preset]
    return CameraView(
        yaw=base.yaw if yaw is None else float(yaw),
        pitch=base.pitch if pitch is None else float(pitch),
        zoom=base.zoom if zoom is None else float(zoom),
        focus=base.focus,
    )


def _orbit(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Rotation (3, 3) taking the front camera's frame to the orbiting camera's frame."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0.0, math.sin(y)], [0.0, 1.0, 0.0], [-math.sin(y), 0.0, math.cos(y)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(-p), -math.sin(-p)], [0.0, math.sin(-p), math.cos(-p)]])
    return ry @ rx


def frame_camera(
    vertices: np.ndarray,
    *,
    fov_deg: float = DEFAULT_FOV_DEG,
    margin: float = DEFAULT_MARGIN,
    view: CameraView | None = None,
    focus_vertices: np.ndarray | None = None,
) -> Camera:
    """Frame a view that fits ``vertices`` with a margin: the front (+Y up, +Z towards the viewer)
    or, with ``view``, an orbit about their centre (``focus_vertices``, e.g. the lips, are framed
    instead for ``view.focus == "mouth"``).

    The fit is made at the bounds' front plane, the nearest to the eye and so the largest on
    screen; the clip range is generous so a head that moves during the clip is not cut.
    """
    pts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if pts.size == 0 or not np.isfinite(pts).all():
        raise RenderError("Cannot frame the camera: the framing vertices are empty or not finite.")
    view = view or CameraView()
    if view.focus == "mouth" and focus_vertices is not None and len(focus_vertices):
        pts = np.asarray(focus_vertices, dtype=np.float64).reshape(-1, 3)
        margin = margin * 1.5
    centre0 = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
    orbit = _orbit(view.yaw, view.pitch)
    align = np.eye(4)  # world → the frame in which the orbiting camera looks down −Z
    align[:3, :3] = orbit.T
    align[:3, 3] = centre0 - orbit.T @ centre0
    pts = pts @ align[:3, :3].T + align[:3, 3]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2.0
    extent = hi - lo
    half = max(extent[0], extent[1], 1e-6) / 2.0 * margin / view.zoom
    depth = max(extent[2], 1e-6)
    to_front = half / math.tan(math.radians(fov_deg) / 2.0)
    eye = np.array([centre[0], centre[1], hi[2] + to_front])
    look = np.eye(4)
    look[:3, 3] = -eye
    distance = to_front + depth
    near = max(to_front * 0.05, 1e-4)
    far = distance * 4.0 + half * 4.0 + depth * 4.0
    return Camera(view=look @ align, projection=perspective(fov_deg, 1.0, near, far))
