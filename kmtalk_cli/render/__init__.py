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
    render_stills,
    render_video,
)
from .camera import CAMERA_PRESETS, CameraView, camera_view
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
    "render_stills",
    "render_video",
    "CAMERA_PRESETS",
    "CameraView",
    "camera_view",
]
