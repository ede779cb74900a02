"""``kmtalk render``: a motion file to an mp4, with the speech muxed in."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..batch import MOTION_SUFFIXES, BatchItem, batch_output, expand_inputs, output_for, run_inputs
from ..errors import KmtalkError, KmtalkWarning
from ..progress import ProgressMode
from .common import JobsOpt, ProgressOpt, QuietOpt, finish, finite, info, notice, progress_bar, running
from .audio_options import ChannelsOpt, RawFormatOpt, SampleRateOpt, read_speech

#: Extensions tried, in order, when looking for the audio that belongs to a motion file.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")


class RendererChoice(str, Enum):
    auto = "auto"
    gl = "gl"
    software = "software"


class ViewChoice(str, Enum):
    front = "front"
    three_quarter = "three-quarter"
    profile = "profile"
    mouth = "mouth"


def find_audio_beside(motion: Path) -> Path | None:
    """The speech a motion was made from usually sits beside it with the same stem."""
    for suffix in AUDIO_SUFFIXES:
        candidate = motion.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def lengths_differ(a: float, b: float) -> bool:
    """Two durations (s) that cannot belong together: more than 1 s and 10 % apart."""
    return abs(a - b) > max(1.0, 0.1 * max(a, b))


@dataclass(frozen=True)
class RenderJob:
    """``kmtalk render`` over one motion or a batch; the template is loaded once per worker."""

    audio: Path | None
    no_audio: bool
    audio_options: tuple[int | None, int, str]  # sample rate, channels, format of headerless PCM
    template: str | None
    subject: str | None
    output: Path | None
    options: Any  # RenderOptions
    side_by_side: Path | None
    batch: bool
    head_pose: Path | None = None

    def outputs(self, item: BatchItem) -> list[Path]:
        return [output_for(item.path, self.output, ".mp4", batch=self.batch)]

    def setup(self) -> Any:
        from ..errors import TemplateError
        from ..face.template import load_template

        face = load_template(self.template, subject=self.subject)
        if len(face.faces) == 0:
            raise TemplateError(f"Template {face.source} has no faces to draw; pass --template with a mesh (.ply/.obj).")
        return face

    def run(self, item: BatchItem, face: Any, force: bool) -> list[Path]:
        from ..atomic import check_output_path
        from ..audio import write_wav
        from ..motion import load_motion
        from ..render import render_video
        from ..validate import check_motion_scale

        output = check_output_path(self.outputs(item)[0], force=force, suffixes=(".mp4",), what="H.264 MP4 video")
        frames = check_motion_scale(load_motion(item.path, face.n_vertices), face.vertices, f"Motion file {item.path}")
        fps = self.options.fps
        reference = None
        if self.side_by_side:
            reference = check_motion_scale(load_motion(self.side_by_side, face.n_vertices), face.vertices, f"Motion file {self.side_by_side}")
            if lengths_differ(len(frames) / fps, len(reference) / fps):
                notice(f"{self.side_by_side} has {len(reference)} frames but {item.path} has {len(frames)}; the video runs as long as {item.path.name}.")
        pose = self._head_pose(item.path)
        options = self.options
        if reference is not None and options.labels is None:
            options = replace(options, labels=(self.side_by_side.stem, item.path.stem))
        audio = self.audio
        if audio is None and not self.no_audio:
            audio = find_audio_beside(item.path)
            if audio is not None:
                info(f"Using audio {audio}")
        speech = None if self.no_audio or audio is None else read_speech(audio, *self.audio_options)
        if speech is not None and lengths_differ(speech.duration, len(frames) / fps):
            notice(
                f"The audio lasts {speech.duration:.2f} s but the motion {len(frames) / fps:.2f} s at {fps:g} fps; "
                "the video follows the motion (another recording, or the wrong --fps?)."
            )
        with tempfile.TemporaryDirectory(prefix="kmtalk-render-") as scratch:
            wav = None
            if speech is not None:
                wav = Path(scratch) / "speech.wav"
                write_wav(speech, wav)
            with progress_bar(f"Rendering {item.path.name}") as progress:
                result = render_video(
                    frames, face.faces, output, audio_wav=wav, options=options, reference=reference,
                    framing_vertices=face.vertices, force=force, progress=progress, template=face, head_pose=pose,
                )
        sound = "with audio" if result.audio else "silent"
        info(f"Wrote {result.path} ({result.frames} frames, {result.width}×{result.height}, {sound}, {result.renderer} renderer)")
        return [result.path]

    def _head_pose(self, motion: Path) -> Any:
        """``--head-pose``, else ``MOTION.head.npz`` beside the motion when it exists, else none."""
        from ..face.headpose import head_pose_path, read_head_pose

        path = self.head_pose
        if path is None:
            beside = head_pose_path(motion)
            if not beside.is_file():
                return None
            path = beside
            info(f"Using head pose {path}")
        return read_head_pose(path)


def render(
    motion: Annotated[list[Path], typer.Argument(help="Motion .npy/.npz ((T, V·3) or (T, V, 3) absolute vertex positions): files, directories, quoted globs or a .txt manifest.")],
    audio: Annotated[
        Path | None, typer.Option("--audio", "-a", help="Speech to mux in (default: MOTION's stem with an audio suffix, if present).")
    ] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Write a silent video even if audio is found.")] = False,
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="Template mesh (.ply/.obj/.npz or templates.pkl); default: the bundled head.")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject to take from a templates.pkl.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output .mp4 (default: MOTION with .mp4); with several inputs, a directory.")] = None,
    size: Annotated[int, typer.Option("--size", help="Frame height and width in pixels (one panel).", min=64, max=4096)] = 800,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the motion.", min=1.0, max=240.0, callback=finite)] = 30.0,
    renderer: Annotated[RendererChoice, typer.Option("--renderer", help="gl (EGL), software, or auto (gl, else software).")] = RendererChoice.auto,
    side_by_side: Annotated[
        Path | None, typer.Option("--side-by-side", help="Another motion (e.g. ground truth) shown on the left.")
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Panel labels 'LEFT,RIGHT' for --side-by-side (default: the file names); '' for none.")
    ] = None,
    view: Annotated[ViewChoice, typer.Option("--view", help="Camera preset.")] = ViewChoice.front,
    yaw: Annotated[float | None, typer.Option("--yaw", help="Camera yaw in degrees (positive: from the face's left); overrides the view's.", min=-180.0, max=180.0)] = None,
    pitch: Annotated[float | None, typer.Option("--pitch", help="Camera pitch in degrees (positive: from above).", min=-89.0, max=89.0)] = None,
    zoom: Annotated[float | None, typer.Option("--zoom", help="Zoom factor (2: twice as close).", min=0.1, max=20.0)] = None,
    background: Annotated[str | None, typer.Option("--background", help="Background colour: #rrggbb, #rgb, white, black, grey, green, blue.")] = None,
    antialias: Annotated[
        bool | None, typer.Option("--antialias/--no-antialias", help="2×2 supersampling (default: on with the GL renderer).")
    ] = None,
    head_pose: Annotated[
        Path | None, typer.Option("--head-pose", help="Head rotation and gaze (.head.npz); default: MOTION.head.npz if present.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")] = False,
    jobs: JobsOpt = 1,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Render a mesh motion to an H.264 mp4 with the speech muxed in; one file or a batch."""
    with running("render", progress, quiet=quiet) as rep:
        from ..atomic import check_output_path
        from ..render import RenderOptions
        from ..render.camera import camera_view
        from ..render.shading import parse_colour

        inputs = expand_inputs(motion, MOTION_SUFFIXES)
        if inputs.batch and (audio is not None or side_by_side is not None or head_pose is not None):
            raise KmtalkError("--audio/--side-by-side/--head-pose apply to one motion; in a batch each motion's audio and head pose are found beside it.")
        panel_labels = None
        if labels is not None and side_by_side is None:
            warnings.warn("--labels names the panels of --side-by-side; a single motion has no labels.", KmtalkWarning, stacklevel=1)
        if labels is not None:
            panel_labels = tuple(part.strip() for part in labels.split(",")) if labels.strip() else ("", "")
        options = RenderOptions(
            size=size, fps=fps, renderer=renderer.value, view=camera_view(view.value, yaw=yaw, pitch=pitch, zoom=zoom),
            background=None if background is None else parse_colour(background), antialias=antialias, labels=panel_labels,
        )
        if output is not None and not inputs.batch:
            check_output_path(output, force=force, suffixes=(".mp4",), what="H.264 MP4 video")  # before any work
        job = RenderJob(audio, no_audio, (sample_rate, channels, raw_format), template, subject, batch_output(output, inputs.batch), options, side_by_side, inputs.batch, head_pose)
        finish(run_inputs(job, inputs, reporter=rep, jobs=jobs, force=force, label="Rendering"), "rendered")
