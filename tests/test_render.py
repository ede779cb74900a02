"""Tests for kmtalk_cli.render: renderers, checks on frames, and the mp4 writer.

Small meshes and panels keep the whole file well under a minute; tests that need the bundled
head skip until ``kmtalk_cli.face.template.bundled_template`` exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
import trimesh

from kmtalk_cli.errors import KmtalkWarning, MotionError, OutputError, RenderError
from kmtalk_cli.render import (
    RenderOptions,
    frame_camera,
    has_audio_stream,
    make_renderer,
    render_frames,
    render_video,
)
from kmtalk_cli.render import gl as gl_module
from kmtalk_cli.render.shading import DEFAULT_LIGHTING

SIZE = 128
BACKGROUND = DEFAULT_LIGHTING.background_u8


def _gl_available() -> bool:
    try:
        gl_module.create_context().release()
    except RenderError:
        return False
    return True


GL_AVAILABLE = _gl_available()
needs_gl = pytest.mark.skipif(not GL_AVAILABLE, reason="no headless OpenGL (EGL) context here")


@pytest.fixture(scope="module")
def sphere() -> tuple[np.ndarray, np.ndarray]:
    """A 0.1 m radius icosphere: (642, 3) float32 vertices and (1280, 3) int32 faces."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    vertices = np.asarray(mesh.vertices, dtype=np.float32) * np.float32(0.1)
    return vertices, np.asarray(mesh.faces, dtype=np.int32)


def _jaw_motion(rest: np.ndarray, n_frames: int, *, still: int = 0) -> np.ndarray:
    """``still`` frames of the rest shape, then the lower part dropping open and shut like a jaw."""
    frames = np.repeat(rest[None], n_frames, axis=0)
    y = rest[:, 1]
    weight = np.clip((-0.02 - y) / 0.08, 0.0, 1.0).astype(np.float32)  # 0 above the "mouth"
    for t in range(still, n_frames):
        opening = np.float32(0.015 * (1.0 + np.sin((t - still) * 1.3)))
        frames[t, :, 1] -= opening * weight
    return frames


def _decode(path: Path, width: int, height: int) -> np.ndarray:
    """All frames of ``path`` as (T, H, W, 3) uint8, decoded by the bundled ffmpeg."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
    )
    return np.frombuffer(result.stdout, dtype=np.uint8).reshape(-1, height, width, 3)


def _silhouette(image: np.ndarray) -> np.ndarray:
    return (np.abs(image.astype(np.int16) - BACKGROUND.astype(np.int16)).sum(axis=-1)) > 12


def _write_sine(path: Path, seconds: float, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def _bundled_head() -> tuple[np.ndarray, np.ndarray]:
    from kmtalk_cli.face.template import bundled_template

    template = bundled_template()
    return np.asarray(template.vertices, dtype=np.float32), np.asarray(template.faces, dtype=np.int32)


# --- the video file --------------------------------------------------------------------------


def test_frame_count_duration_and_no_audio(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "clip.mp4"
    result = render_video(_jaw_motion(rest, 24), faces, out, options=RenderOptions(size=SIZE, fps=25))
    assert result.path == out and out.is_file()
    assert (result.frames, result.fps, result.width, result.height) == (24, 25.0, SIZE, SIZE)
    assert result.audio is False
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 24
    assert seconds == pytest.approx(24 / 25, abs=0.02)
    assert not has_audio_stream(out)


@pytest.mark.parametrize("audio_seconds", [1.0, 0.5])
def test_audio_is_muxed_without_changing_the_frame_count(tmp_path: Path, sphere, audio_seconds: float) -> None:
    rest, faces = sphere
    wav = _write_sine(tmp_path / "speech.wav", audio_seconds)
    out = tmp_path / "clip.mp4"
    result = render_video(
        _jaw_motion(rest, 24), faces, out, audio_wav=wav, options=RenderOptions(size=SIZE, fps=25)
    )
    assert result.audio is True
    assert has_audio_stream(out)
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 24  # longer speech is trimmed, shorter speech does not cut the video
    assert seconds == pytest.approx(0.96, abs=0.02)


def test_decoded_frames_show_the_motion(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "clip.mp4"
    render_video(_jaw_motion(rest, 16, still=8), faces, out, options=RenderOptions(size=SIZE, fps=25))
    video = _decode(out, SIZE, SIZE).astype(np.float32)
    assert video.shape == (16, SIZE, SIZE, 3)
    assert all(frame.std() > 10 for frame in video)  # never blank
    still = np.abs(np.diff(video[:8], axis=0)).mean(axis=(1, 2, 3))
    moving = np.abs(np.diff(video[8:], axis=0)).mean(axis=(1, 2, 3))
    assert still.max() < 0.5
    assert moving.min() > 1.0


def test_progress_is_reported_per_frame(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    calls: list[tuple[int, int]] = []
    render_video(
        _jaw_motion(rest, 6), faces, tmp_path / "a.mp4", options=RenderOptions(size=SIZE),
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert calls == [(i, 6) for i in range(1, 7)]


def test_side_by_side_doubles_width_and_holds_the_shorter(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    prediction = _jaw_motion(rest, 10)
    reference = np.repeat(rest[None] + np.float32([0.02, 0.0, 0.0]), 6, axis=0)
    out = tmp_path / "pair.mp4"
    result = render_video(
        prediction, faces, out, reference=reference, framing_vertices=rest, options=RenderOptions(size=SIZE)
    )
    assert (result.frames, result.width, result.height) == (10, 2 * SIZE, SIZE)
    video = _decode(out, 2 * SIZE, SIZE)
    assert video.shape == (10, SIZE, 2 * SIZE, 3)
    left, right = video[:, :, :SIZE].astype(np.float32), video[:, :, SIZE:].astype(np.float32)
    assert np.abs(left - right).mean() > 1.0  # different meshes in the two panels
    assert np.abs(left[5:] - left[5]).max(axis=(1, 2, 3)).max() < 24  # reference held (codec noise only)


def test_side_by_side_reference_longer_than_prediction(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    result = render_video(
        _jaw_motion(rest, 4), faces, tmp_path / "pair.mp4", reference=_jaw_motion(rest, 7),
        options=RenderOptions(size=SIZE),
    )  # fmt: skip
    assert result.frames == 7
    assert imageio_ffmpeg.count_frames_and_secs(str(result.path))[0] == 7


# --- outputs stay atomic ---------------------------------------------------------------------


class _Interrupt:
    """A progress callback that presses Ctrl-C on a given frame."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, done: int, total: int) -> None:
        if done == self.at:
            raise KeyboardInterrupt


def test_interrupt_leaves_no_file(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    with pytest.raises(KeyboardInterrupt):
        render_video(
            _jaw_motion(rest, 30), faces, tmp_path / "clip.mp4", options=RenderOptions(size=SIZE),
            progress=_Interrupt(5),
        )  # fmt: skip
    assert os.listdir(tmp_path) == []


def _ffmpeg_children() -> list[int]:
    """Process ids of ffmpeg processes this test process started and did not reap (Linux only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == str(os.getpid()) and "ffmpeg" in fields.get("Name", ""):
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_interrupt_stops_ffmpeg(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    with pytest.raises(KeyboardInterrupt):
        render_video(
            _jaw_motion(rest, 30), faces, tmp_path / "clip.mp4", options=RenderOptions(size=SIZE),
            progress=_Interrupt(5),
        )  # fmt: skip
    assert _ffmpeg_children() == []


_CTRL_C_SCRIPT = """
import signal, sys, time, numpy as np, trimesh
from kmtalk_cli.render import render_video, RenderOptions
# A background job started by a shell inherits SIGINT as ignored; Ctrl-C must raise here.
signal.signal(signal.SIGINT, signal.default_int_handler)
mesh = trimesh.creation.icosphere(subdivisions=3)
rest = np.asarray(mesh.vertices, dtype=np.float32) * np.float32(0.1)
frames = rest[None] + np.linspace(0, 0.05, 3000, dtype=np.float32)[:, None, None]
def started(done, total):
    if done == 2:
        print("rendering", flush=True)
    time.sleep(0.002)  # keep the render going well past the signal, however fast the machine
try:
    render_video(frames, np.asarray(mesh.faces), sys.argv[1], options=RenderOptions(size=256), progress=started)
except KeyboardInterrupt:
    sys.exit(42)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_real_ctrl_c_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "rendering"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 42, stderr
    assert os.listdir(tmp_path) == []


def test_interrupt_keeps_an_existing_output(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"previous video")
    with pytest.raises(KeyboardInterrupt):
        render_video(
            _jaw_motion(rest, 30), faces, out, options=RenderOptions(size=SIZE), force=True,
            progress=_Interrupt(5),
        )  # fmt: skip
    assert out.read_bytes() == b"previous video"
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_existing_output_needs_force(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"previous video")
    with pytest.raises(OutputError):
        render_video(_jaw_motion(rest, 3), faces, out, options=RenderOptions(size=SIZE))
    assert out.read_bytes() == b"previous video"
    result = render_video(_jaw_motion(rest, 3), faces, out, options=RenderOptions(size=SIZE), force=True)
    assert imageio_ffmpeg.count_frames_and_secs(str(result.path))[0] == 3
    assert os.listdir(tmp_path) == ["clip.mp4"]


def test_mesh_outside_the_view_is_an_error_not_a_blank_video(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "clip.mp4"
    with pytest.raises(RenderError, match="outside the camera view"):
        render_video(
            _jaw_motion(rest, 5) + np.float32([5.0, 0.0, 0.0]), faces, out,
            framing_vertices=rest, options=RenderOptions(size=SIZE),
        )  # fmt: skip
    assert os.listdir(tmp_path) == []


def test_mesh_leaving_the_view_midway_is_caught(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    frames = _jaw_motion(rest, 8)
    frames[4:] -= np.float32([0.0, 0.0, 50.0])  # behind the far plane
    with pytest.raises(RenderError, match="frame 5 is empty"):
        render_video(frames, faces, tmp_path / "clip.mp4", options=RenderOptions(size=SIZE))
    assert os.listdir(tmp_path) == []


def test_unreadable_audio_is_a_render_error(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    wav = tmp_path / "speech.wav"
    wav.write_text("not audio")
    with pytest.raises(RenderError, match="ffmpeg"):
        render_video(
            _jaw_motion(rest, 3), faces, tmp_path / "clip.mp4", audio_wav=wav, options=RenderOptions(size=SIZE)
        )
    assert os.listdir(tmp_path) == ["speech.wav"]


def test_missing_audio_is_a_render_error(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    with pytest.raises(RenderError, match="does not exist"):
        render_video(
            _jaw_motion(rest, 3), faces, tmp_path / "clip.mp4", audio_wav=tmp_path / "missing.wav",
            options=RenderOptions(size=SIZE),
        )  # fmt: skip
    assert os.listdir(tmp_path) == []


# --- options and inputs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs", [{"size": 101}, {"size": 8}, {"size": 64.0}, {"fps": 0}, {"fps": float("nan")}, {"renderer": "vulkan"}]
)
def test_bad_options(kwargs: dict) -> None:
    with pytest.raises(RenderError):
        RenderOptions(**kwargs)


def test_bad_inputs(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    with pytest.raises(MotionError):
        render_video(np.zeros((3, 5)), faces, tmp_path / "a.mp4")
    with pytest.raises(MotionError):
        render_video(_jaw_motion(rest, 3), faces, tmp_path / "a.mp4", reference=np.zeros((3, 10, 3)))
    with pytest.raises(RenderError, match="outside the mesh"):
        render_video(_jaw_motion(rest, 3)[:, :100], faces, tmp_path / "a.mp4")
    assert os.listdir(tmp_path) == []


# --- the renderers ---------------------------------------------------------------------------


def test_software_renderer_draws_the_mesh(sphere) -> None:
    rest, faces = sphere
    renderer = make_renderer(faces, 96, frame_camera(rest), "software")
    assert renderer.kind == "software"
    image = renderer.render(rest)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    mask = _silhouette(image)
    assert 0.3 < mask.mean() < 0.8  # a framed sphere, with background around it
    assert tuple(image[0, 0]) == tuple(BACKGROUND)
    with pytest.raises(RenderError):
        renderer.render(rest[:10])
    renderer.close()


@needs_gl
@pytest.mark.parametrize("size", [20, 100])
def test_small_and_odd_panels_agree(sphere, size: int) -> None:
    """Panels smaller than a raster tile, or not a power of two, still match GL."""
    rest, faces = sphere
    camera = frame_camera(rest)
    images = {}
    for kind in ("gl", "software"):
        renderer = make_renderer(faces, size, camera, kind, antialias=False)  # same rasterization
        images[kind] = renderer.render(rest)
        renderer.close()
    a, b = _silhouette(images["gl"]), _silhouette(images["software"])
    assert (a & b).sum() / (a | b).sum() > 0.9


@needs_gl
@pytest.mark.parametrize("subdivisions", [0, 3])
def test_gl_and_software_agree(subdivisions: int) -> None:
    """Same picture from both renderers, for small triangles and for ones spanning many tiles."""
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    rest = np.asarray(mesh.vertices, dtype=np.float32) * np.float32(0.1)
    faces = np.asarray(mesh.faces, dtype=np.int32)
    frame = _jaw_motion(rest, 3)[2]
    camera = frame_camera(rest)
    images = {}
    for kind in ("gl", "software"):
        renderer = make_renderer(faces, 256, camera, kind)
        assert renderer.kind == kind
        images[kind] = renderer.render(frame).astype(np.int16)
        renderer.close()
    a, b = _silhouette(images["gl"]), _silhouette(images["software"])
    assert (a & b).sum() / (a | b).sum() > 0.98
    assert np.abs(images["gl"] - images["software"]).mean() < 1.5


def test_two_sided_lighting_lights_inside_faces(sphere) -> None:
    """Reversed winding must look the same: open meshes show back faces, which must not be black."""
    rest, faces = sphere
    camera = frame_camera(rest)
    kinds = ("gl", "software") if GL_AVAILABLE else ("software",)
    for kind in kinds:
        renderer = make_renderer(faces, 96, camera, kind)
        normal = renderer.render(rest).astype(np.int16)
        renderer.close()
        renderer = make_renderer(faces[:, ::-1].copy(), 96, camera, kind)
        flipped = renderer.render(rest).astype(np.int16)
        renderer.close()
        assert np.abs(normal - flipped).mean() < 0.5, kind


def test_auto_falls_back_to_software_with_a_warning(tmp_path: Path, sphere, monkeypatch) -> None:
    rest, faces = sphere

    def no_gl() -> None:
        raise RenderError("No headless OpenGL (EGL) context could be created: test.")

    monkeypatch.setattr(gl_module, "create_context", no_gl)
    with pytest.warns(KmtalkWarning, match="software renderer"):
        renderer = make_renderer(faces, 64, frame_camera(rest), "auto")
    assert renderer.kind == "software"
    renderer.close()
    with pytest.raises(RenderError, match="EGL"):
        make_renderer(faces, 64, frame_camera(rest), "gl")
    with pytest.warns(KmtalkWarning):
        result = render_video(_jaw_motion(rest, 4), faces, tmp_path / "a.mp4", options=RenderOptions(size=64))
    assert result.renderer == "software"
    assert imageio_ffmpeg.count_frames_and_secs(str(result.path))[0] == 4


@needs_gl
def test_gl_renders_without_warnings(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = render_video(_jaw_motion(rest, 3), faces, tmp_path / "a.mp4", options=RenderOptions(size=64))
    assert result.renderer == "gl"


@needs_gl
def test_gl_failure_mid_run_leaves_no_file(tmp_path: Path, sphere, monkeypatch) -> None:
    rest, faces = sphere
    made: list[gl_module.GLRenderer] = []
    original_init = gl_module.GLRenderer.__init__

    def remember(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        made.append(self)

    class LostContext:
        def read_into(self, *args, **kwargs) -> None:
            raise RuntimeError("context lost")

    def break_gl(done: int, total: int) -> None:
        if done == 3:
            made[0]._read_fbo = LostContext()

    monkeypatch.setattr(gl_module.GLRenderer, "__init__", remember)
    with pytest.raises(RenderError, match="OpenGL rendering failed"):
        render_video(
            _jaw_motion(rest, 10), faces, tmp_path / "clip.mp4",
            options=RenderOptions(size=SIZE, renderer="gl"), progress=break_gl,
        )  # fmt: skip
    assert os.listdir(tmp_path) == []
    assert made[0]._ctx is None  # released


def test_render_frames_rejects_a_failing_renderer(sphere) -> None:
    """A renderer that returns black frames (a GL failure) must raise, not be encoded."""
    rest, faces = sphere

    class Broken:
        kind = "gl"

        def render(self, vertices: np.ndarray) -> np.ndarray:
            return np.zeros((32, 32, 3), dtype=np.uint8)

        def close(self) -> None:
            pass

    with pytest.raises(RenderError, match="renderer failed"):
        next(render_frames(Broken(), _jaw_motion(rest, 2)))


def test_software_renderer_end_to_end(tmp_path: Path, sphere) -> None:
    rest, faces = sphere
    out = tmp_path / "soft.mp4"
    result = render_video(
        _jaw_motion(rest, 6), faces, out, options=RenderOptions(size=96, fps=24, renderer="software")
    )
    assert result.renderer == "software"
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 6
    assert _decode(out, 96, 96)[0].std() > 10


# --- the bundled head (skipped until kmtalk_cli.face.template exists) ------------------------


def test_bundled_head_renders_in_both_renderers() -> None:
    vertices, faces = _bundled_head()
    camera = frame_camera(vertices)
    kinds = ("gl", "software") if GL_AVAILABLE else ("software",)
    images = {}
    for kind in kinds:
        renderer = make_renderer(faces, 256, camera, kind, n_vertices=len(vertices))
        images[kind] = renderer.render(vertices)
        renderer.close()
        mask = _silhouette(images[kind])
        assert 0.1 < mask.mean() < 0.9, kind  # framed: visible, not cropped to fill everything
        assert images[kind].std() > 10
    if len(images) == 2:
        a, b = _silhouette(images["gl"]), _silhouette(images["software"])
        assert (a & b).sum() / (a | b).sum() > 0.95
        assert np.abs(images["gl"].astype(np.int16) - images["software"].astype(np.int16)).mean() < 3


def test_bundled_head_video(tmp_path: Path) -> None:
    vertices, faces = _bundled_head()
    wav = _write_sine(tmp_path / "speech.wav", 1.0)
    out = tmp_path / "head.mp4"
    result = render_video(
        _jaw_motion(vertices, 12), faces, out, audio_wav=wav, framing_vertices=vertices,
        options=RenderOptions(size=160, fps=25),
    )  # fmt: skip
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 12
    assert result.audio and has_audio_stream(out)
