"""Rendering mesh sequences to mp4: headless OpenGL when available, NumPy otherwise.

Importing this package is cheap (no moderngl, no scipy); they load when a renderer is made.
"""

from __future__ import annotations

from .camera import Camera, frame_camera
from .pipeline import (
    FrameRenderer,
    RenderOptions,
    RenderResult,
    make_renderer,
    render_frames,
    render_video,
)
from .video import has_audio_stream

__all__ = [
    "Camera",
    "FrameRenderer",
    "RenderOptions",
    "RenderResult",
    "frame_camera",
    "has_audio_stream",
    "make_renderer",
    "render_frames",
    "render_video",
]
