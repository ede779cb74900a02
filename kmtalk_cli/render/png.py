"""PNG files from RGB arrays (stills and contact sheets), written with zlib: no imaging library."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import RenderError


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of ``image`` (H, W, 3) uint8; each row gets the filter that suits it best."""
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape[:2]:
        raise RenderError(f"A PNG needs an (H, W, 3) uint8 image, not {image.shape} {image.dtype}.")
    h, w, _ = image.shape
    # Filter 1 (Sub: difference to the pixel on the left) shrinks flat shading a lot.
    rows = image.reshape(h, w * 3).astype(np.int16)
    sub = rows.copy()
    sub[:, 3:] -= rows[:, :-3]
    raw = np.empty((h, 1 + w * 3), dtype=np.uint8)
    raw[:, 0] = 1
    raw[:, 1:] = (sub & 0xFF).astype(np.uint8)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b"")


def write_png(path: str | Path, image: np.ndarray, *, force: bool = True) -> Path:
    """Write ``image`` as a PNG atomically."""
    path = Path(path)
    payload = png_bytes(image)
    with atomic_output(path, force=force) as tmp:
        tmp.write_bytes(payload)
    return path


def tile(images: list[list[np.ndarray]], gap: int = 4, colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Rows of equally sized images joined into one sheet with ``gap`` pixels between them."""
    h, w = images[0][0].shape[:2]
    cols = max(len(row) for row in images)
    sheet = np.empty((len(images) * (h + gap) - gap, cols * (w + gap) - gap, 3), dtype=np.uint8)
    sheet[:] = colour
    for r, row in enumerate(images):
        for c, image in enumerate(row):
            sheet[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = image
    return sheet
