"""From a vertex sequence to an mp4: choosing a renderer, checking frames, feeding the encoder.

Rendering and encoding overlap: the renderer works in the calling thread (a GL context belongs
to the thread that made it) while a helper thread hands finished frames to ffmpeg, whose x264
threads encode in parallel. Every frame is checked before it is written, so a camera that misses
the mesh or a renderer that fails mid-run raises instead of producing a video of blank frames.
"""

from __future__ import annotations

import math
import numbers
import queue
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

import dataclasses

from ..atomic import check_output_path
from ..errors import KmtalkWarning, RenderError
from ..motion import as_vertex_sequence
from .camera import Camera, CameraView, frame_camera
from .shading import DEFAULT_LIGHTING, Lighting
from .text import draw_label
from .video import open_video

if TYPE_CHECKING:
    from ..face.headpose import HeadPose
    from ..face.template import FaceTemplate

RENDERER_KINDS = ("auto", "gl", "software")
#: GL anti-aliasing: draw at 1.5× the size and filter down; 2× looks no smoother at video sizes
#: and costs llvmpipe noticeably more (README, Benchmarks).
GL_SUPERSAMPLE = 1.5


@dataclass(frozen=True)
class RenderOptions:
    """How to render: square panel size in pixels, frame rate, which renderer, and the look.

    ``view`` places the camera (front by default), ``background`` is an RGB triple in [0, 1]
    (default: the light grey-blue), ``antialias`` supersamples (default: on for GL, off for the
    much slower software renderer), ``labels`` names the panels (one per panel) in a corner.
    """

    size: int = 800
    fps: float = 30.0
    renderer: str = "auto"
    view: CameraView = CameraView()
    background: tuple[float, float, float] | None = None
    antialias: bool | None = None
    labels: tuple[str, ...] | None = None

    @property
    def lighting(self) -> Lighting:
        """The lights and material, with this background."""
        if self.background is None:
            return DEFAULT_LIGHTING
        return dataclasses.replace(DEFAULT_LIGHTING, background=tuple(float(c) for c in self.background))

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)):
            raise RenderError(f"Render size must be a whole number of pixels, not {self.size!r}.")
        if self.size < 16 or self.size > 8192 or self.size % 2:
            raise RenderError(f"Render size {self.size} must be an even number of pixels from 16 to 8192.")
        fps_ok = isinstance(self.fps, numbers.Real) and not isinstance(self.fps, bool)
        if not fps_ok or not math.isfinite(self.fps) or not 0 < self.fps <= 1000:
            raise RenderError(f"Frame rate {self.fps!r} must be a positive number of frames per second.")
        if self.renderer not in RENDERER_KINDS:
            raise RenderError(f"Renderer {self.renderer!r} is not one of {', '.join(RENDERER_KINDS)}.")
        if self.background is not None:
            bg = tuple(self.background)
            if len(bg) != 3 or not all(isinstance(c, numbers.Real) and 0.0 <= c <= 1.0 for c in bg):
                raise RenderError(f"Background {self.background!r} must be three numbers from 0 to 1.")


@dataclass(frozen=True)
class RenderResult:
    """What was written: the file, its frame count and rate, size, renderer and audio."""

    path: Path
    frames: int
    fps: float
    width: int
    height: int
    renderer: str
    audio: bool


class FrameRenderer(Protocol):
    """Draws one mesh topology from a fixed camera, one frame of vertices at a time."""

    kind: str

    def render(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) float32 positions → a new (H, W, 3) uint8 image, top row first."""
        ...

    def close(self) -> None:
        """Release what the renderer holds (a GL context); safe to call twice."""
        ...


def _check_faces(faces: np.ndarray, n_vertices: int | None) -> tuple[np.ndarray, int]:
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0 or faces.dtype.kind not in "iu":
        raise RenderError(f"Faces must be a non-empty (F, 3) integer array, got {faces.shape} {faces.dtype}.")
    lo, hi = int(faces.min()), int(faces.max())
    n = hi + 1 if n_vertices is None else int(n_vertices)
    if lo < 0 or hi >= n:
        raise RenderError(f"Faces index vertices {lo}…{hi}, outside the mesh's {n} vertices.")
    return faces.astype(np.int32, copy=False), n


def make_renderer(
    faces: np.ndarray,
    size: int,
    camera: Camera,
    kind: str = "auto",
    *,
    n_vertices: int | None = None,
    colours: np.ndarray | None = None,
    lighting: Lighting = DEFAULT_LIGHTING,
    antialias: bool | None = None,
) -> FrameRenderer:
    """A renderer for this topology and camera: ``"gl"``, ``"software"`` or ``"auto"``.

    ``"auto"`` tries headless OpenGL (EGL) and, if no context can be made, warns with a
    :class:`KmtalkWarning` and uses the much slower software renderer; ``"gl"`` raises
    :class:`RenderError` instead. ``n_vertices`` defaults to the highest index in ``faces`` + 1.
    ``colours`` (V, 3) uint8 are per-vertex albedos; ``antialias`` supersamples 2×2 (default:
    GL only).
    """
    if kind not in RENDERER_KINDS:
        raise RenderError(f"Renderer {kind!r} is not one of {', '.join(RENDERER_KINDS)}.")
    faces, n = _check_faces(faces, n_vertices)
    if kind in ("auto", "gl"):
        from .gl import GLRenderer

        try:
            return GLRenderer(faces, n, size, camera, lighting=lighting, colours=colours,
                              supersample=GL_SUPERSAMPLE if antialias is None or antialias else 1.0)
        except RenderError as exc:
            if kind == "gl":
                raise
            warnings.warn(
                KmtalkWarning(f"{exc} Using the software renderer, which is much slower."), stacklevel=2
            )
    from .software import SoftwareRenderer

    return SoftwareRenderer(faces, n, size, camera, lighting=lighting, colours=colours,
                            supersample=2 if antialias else 1)


def _is_uniform(image: np.ndarray) -> bool:
    """Whether every pixel has the same colour; a coarse sample answers the usual case cheaply."""
    first = image[0, 0]
    if (image[::8, ::8] != first).any():
        return False
    return bool((image == first).all())


def render_frames(
    renderer: FrameRenderer,
    frames: np.ndarray,
    reference: np.ndarray | None = None,
    *,
    pose: Callable[[int, int, np.ndarray], np.ndarray] | None = None,
    labels: tuple[str, ...] | None = None,
    background: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """Yield one checked image per frame: the prediction, or reference | prediction side by side.

    With a reference the clip lasts as long as the longer sequence; the shorter one holds its
    last frame (rendered once, then reused). A uniform panel raises :class:`RenderError`.
    ``pose(panel, frame, vertices)`` turns a motion frame into the vertices drawn (the head
    with its parts); ``labels`` are written in each panel's corner.
    """
    background = DEFAULT_LIGHTING.background_u8 if background is None else background
    panels = [frames] if reference is None else [reference, frames]
    total = max(len(p) for p in panels)
    last: list[tuple[int, np.ndarray] | None] = [None] * len(panels)
    for i in range(total):
        images = []
        for k, seq in enumerate(panels):
            j = min(i, len(seq) - 1)
            cached = last[k]
            if cached is not None and cached[0] == j:
                images.append(cached[1])
                continue
            image = renderer.render(seq[j] if pose is None else pose(k, j, seq[j]))
            if _is_uniform(image):
                what = "reference frame" if reference is not None and k == 0 else "frame"
                if (image[0, 0] == background).all():
                    raise RenderError(
                        f"Rendered {what} {j + 1} is empty: the mesh is outside the camera view."
                    )
                raise RenderError(
                    f"Rendered {what} {j + 1} is one uniform colour: the {renderer.kind} renderer failed"
                    " or the mesh covers the whole view."
                )
            if labels is not None and k < len(labels) and labels[k]:
                draw_label(image, labels[k])
            last[k] = (j, image)
            images.append(image)
        yield images[0] if len(images) == 1 else np.concatenate(images, axis=1)


class _FrameFeeder:
    """A helper thread that writes frames to the encoder while the next one renders."""

    def __init__(self, write: Callable[[np.ndarray], None], depth: int = 3) -> None:
        self._write = write
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kmtalk-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None or self._error is not None:
                return
            try:
                self._write(frame)
            except BaseException as exc:  # handed to the rendering thread, never lost
                self._error = exc
                return

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frame: np.ndarray) -> None:
        """Queue a frame; raises the writer's error if encoding has failed."""
        while True:
            self._raise()
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._raise()
                    raise RenderError("The video encoder thread stopped unexpectedly.")

    def close(self) -> None:
        """Wait until every queued frame is written; raises the writer's error if any."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Let the thread end without writing more (the encoder has been killed already)."""
        if self._error is None:
            self._error = RenderError("Rendering was stopped.")
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            self._queue.put_nowait(None)
        except queue.Full:  # pragma: no cover - just drained
            pass
        self._thread.join(timeout=10)


def render_video(
    frames: np.ndarray,
    faces: np.ndarray,
    out_path: Path,
    *,
    audio_wav: Path | None = None,
    options: RenderOptions = RenderOptions(),
    reference: np.ndarray | None = None,
    framing_vertices: np.ndarray | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    template: FaceTemplate | None = None,
    head_pose: HeadPose | None = None,
) -> RenderResult:
    """Render (T, V, 3) ``frames`` to an H.264 mp4 at ``out_path``, with ``audio_wav`` muxed if given.

    With ``reference`` (T2, V, 3) the video shows reference (left) | prediction (right) at twice
    the width and lasts max(T, T2) frames, the shorter sequence holding its last frame. The camera
    is framed once, on ``framing_vertices`` (the template) or else the first frame, and shared by
    both panels. The file appears only when complete; ``force`` allows replacing an existing one.
    ``progress(done, total)`` is called after each frame.

    With a ``template`` that has separate parts (the bundled head: teeth, tongue, mouth cavity,
    eyes, scalp) they are posed from each frame and drawn with it; ``head_pose`` then turns the
    head about its neck pivot and the eyes by the gaze (the reference panel keeps still).
    """
    out_path = check_output_path(Path(out_path), force=force)
    frames = as_vertex_sequence(frames, name="Motion to render")
    n_vertices = frames.shape[1]
    if reference is not None:
        reference = as_vertex_sequence(reference, n_vertices, name="Reference motion")
    faces, _ = _check_faces(faces, n_vertices)
    framing = frames[0] if framing_vertices is None else np.asarray(framing_vertices, dtype=np.float32)
    scene = _Scene.make(template, frames, reference, head_pose) if template is not None else None
    colours, pose, draw_n, focus = None, None, n_vertices, None
    if scene is not None:
        faces, colours, pose, draw_n = scene.assembly.faces, scene.assembly.colours, scene.pose, scene.assembly.n_vertices
        framing = scene.framing
        focus = scene.focus
    elif template is not None and "lips" in template.regions:
        focus = np.asarray(template.vertices)[template.regions["lips"]]
    camera = frame_camera(framing, view=options.view, focus_vertices=focus)
    total = max(len(frames), 0 if reference is None else len(reference))
    panels = 1 if reference is None else 2
    width, height = options.size * panels, options.size
    lighting = options.lighting

    kind = options.renderer
    renderer = make_renderer(
        faces, options.size, camera, kind, n_vertices=draw_n, colours=colours, lighting=lighting,
        antialias=options.antialias,
    )  # fmt: skip
    try:
        with open_video(
            out_path, width, height, options.fps, total, audio_wav=audio_wav, force=force
        ) as writer:
            feeder = _FrameFeeder(writer.write)
            try:
                images = render_frames(
                    renderer, frames, reference, pose=pose, labels=options.labels, background=lighting.background_u8
                )
                for done, image in enumerate(images, start=1):
                    feeder.put(image)
                    if progress is not None:
                        progress(done, total)
                feeder.close()
                if writer.frames != total:  # pragma: no cover - a cheap last consistency check
                    raise RenderError(f"Only {writer.frames} of {total} frames reached the encoder.")
            except BaseException:
                writer.abort()  # unblocks a write in progress so the thread can end
                feeder.stop()
                raise
    finally:
        renderer.close()
    return RenderResult(
        path=out_path,
        frames=total,
        fps=float(options.fps),
        width=width,
        height=height,
        renderer=renderer.kind,
        audio=audio_wav is not None,
    )


@dataclass(frozen=True, eq=False)
class _Scene:
    """The head with its parts: what to draw, and how each panel's frames pose it."""

    assembly: object
    motions: tuple
    framing: np.ndarray
    focus: np.ndarray | None

    @classmethod
    def make(
        cls, template: FaceTemplate, frames: np.ndarray, reference: np.ndarray | None, head_pose: HeadPose | None
    ) -> _Scene | None:
        from ..face.accessories import assemble, has_parts, parts_motion, rest_assembly

        if not has_parts(template) or template.n_vertices != frames.shape[1]:
            return None
        assembly = assemble(template)
        motions = [parts_motion(frames, template, head_pose)]
        if reference is not None:
            motions.insert(0, parts_motion(reference, template, None))
        focus = np.asarray(template.vertices)[template.regions["lips"]] if "lips" in template.regions else None
        return cls(assembly=assembly, motions=tuple(motions), framing=rest_assembly(assembly), focus=focus)

    def pose(self, panel: int, frame: int, vertices: np.ndarray) -> np.ndarray:
        from ..face.accessories import pose_assembly

        return pose_assembly(self.assembly, vertices, self.motions[panel], frame)


def render_stills(
    frames: np.ndarray,
    template: FaceTemplate,
    *,
    options: RenderOptions = RenderOptions(),
    head_pose: HeadPose | None = None,
) -> list[np.ndarray]:
    """Images (H, W, 3) uint8 of (T, V, 3) ``frames`` on ``template``, posed like a video's frames.

    For contact sheets and checks: the same camera, parts, colours and anti-aliasing as
    :func:`render_video`, with no encoder. Frames are drawn whole (no reference panel).
    """
    frames = as_vertex_sequence(frames, template.n_vertices, name="Frames to draw")
    if template.n_faces == 0:
        raise RenderError(f"Template {template.name} has no faces to draw.")
    scene = _Scene.make(template, frames, None, head_pose)
    if scene is not None:
        faces, colours, n, framing, focus = (scene.assembly.faces, scene.assembly.colours,
                                             scene.assembly.n_vertices, scene.framing, scene.focus)
    else:
        faces, colours, n, framing = template.faces, None, template.n_vertices, template.vertices
        focus = np.asarray(template.vertices)[template.regions["lips"]] if "lips" in template.regions else None
    camera = frame_camera(framing, view=options.view, focus_vertices=focus)
    renderer = make_renderer(faces, options.size, camera, options.renderer, n_vertices=n, colours=colours,
                             lighting=options.lighting, antialias=options.antialias)
    try:
        images = []
        for i, frame in enumerate(frames):
            image = renderer.render(frame if scene is None else scene.pose(0, i, frame))
            if options.labels:
                draw_label(image, options.labels[min(i, len(options.labels) - 1)])
            images.append(image)
        return images
    finally:
        renderer.close()
