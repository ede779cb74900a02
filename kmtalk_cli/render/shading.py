"""The clay material + lights both renderers use (their normals come from ``face.normals``).

The lighting lives here as plain numbers so the GL shader and the NumPy shader are fed the same
values and a fallback to the software renderer changes speed, not the look of the video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import RenderError
from ..face.normals import SmoothNormals

__all__ = ["DEFAULT_LIGHTING", "Light", "Lighting", "SmoothNormals", "albedo_array", "parse_colour", "shade", "to_u8"]


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64)
    a = a / np.linalg.norm(a)
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True)
class Light:
    """A directional light; ``direction`` points from the surface towards the light, view space."""

    direction: tuple[float, float, float]
    intensity: float


@dataclass(frozen=True)
class Lighting:
    """Grey clay under a key, a fill and ambient light, on a light grey-blue background.

    The background is light and bluish so a face is never mistaken for a black, failed frame.
    """

    albedo: tuple[float, float, float] = (0.76, 0.74, 0.72)
    ambient: float = 0.20
    lights: tuple[Light, ...] = field(
        default_factory=lambda: (
            Light(_unit((-0.45, 0.55, 0.70)), 0.72),  # key: upper left, in front
            Light(_unit((0.65, -0.05, 0.75)), 0.26),  # fill: right, softer
        )
    )
    specular: float = 0.0
    shininess: float = 24.0
    background: tuple[float, float, float] = (0.84, 0.87, 0.92)

    @property
    def background_u8(self) -> np.ndarray:
        """The background as the exact (3,) uint8 colour a renderer clears to."""
        return to_u8(np.asarray(self.background, dtype=np.float32))


DEFAULT_LIGHTING = Lighting()


def to_u8(colour: np.ndarray) -> np.ndarray:
    """Float colour in [0, 1] → uint8, rounding like a UNORM8 framebuffer does."""
    return (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def albedo_array(colours: np.ndarray | None, n_vertices: int, lighting: Lighting = DEFAULT_LIGHTING) -> np.ndarray:
    """Per-vertex albedo (V, 3) float32 in [0, 1]: ``colours`` (V, 3) uint8, or the clay everywhere."""
    if colours is None:
        return np.tile(np.asarray(lighting.albedo, dtype=np.float32), (int(n_vertices), 1))
    colours = np.asarray(colours)
    if colours.shape != (n_vertices, 3):
        raise RenderError(f"Vertex colours have shape {colours.shape}; the mesh needs ({n_vertices}, 3).")
    return np.ascontiguousarray(colours, dtype=np.float32) / np.float32(255.0)


def parse_colour(text: str) -> tuple[float, float, float]:
    """``#rrggbb``, ``rrggbb``, ``#rgb`` or a few names → an RGB triple in [0, 1]."""
    names = {"white": "ffffff", "black": "000000", "grey": "808080", "gray": "808080",
             "green": "00b140", "blue": "0047bb", "default": "d6dde9"}
    value = names.get(text.strip().lower(), text.strip().lstrip("#"))
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise RenderError(f"Colour {text!r} is not #rrggbb, #rgb or one of: {', '.join(sorted(names))}.")
    return tuple(int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def shade(normals: np.ndarray, lighting: Lighting = DEFAULT_LIGHTING, albedo: np.ndarray | None = None) -> np.ndarray:
    """Colour (3, N) float32 for unit view-space normals given component-major as (3, N).

    Blinn-Phong with the viewer along +Z (a fair approximation at a narrow field of view; the GL
    shader makes the same one). Component-major arrays keep every operation contiguous, which is
    several times faster in NumPy than (N, 3) rows. ``albedo`` (3, N) overrides the clay colour.
    """
    nx, ny, nz = (np.asarray(c, dtype=np.float32) for c in normals)
    diffuse = np.full(nx.shape, lighting.ambient, dtype=np.float32)
    spec = np.zeros(nx.shape, dtype=np.float32)
    for light in lighting.lights:
        d = np.asarray(light.direction, dtype=np.float32)
        dot = nx * d[0] + ny * d[1] + nz * d[2]
        np.maximum(dot, 0.0, out=dot)
        diffuse += light.intensity * dot
        if lighting.specular > 0.0:
            h = d + np.array([0.0, 0.0, 1.0], dtype=np.float32)
            h /= np.linalg.norm(h)
            dot = nx * h[0] + ny * h[1] + nz * h[2]
            np.maximum(dot, 0.0, out=dot)
            spec += light.intensity * dot ** np.float32(lighting.shininess)
    spec *= lighting.specular
    base = np.asarray(lighting.albedo, dtype=np.float32)[:, None] if albedo is None else albedo
    return base * diffuse[None, :] + spec[None, :]
