"""``kmtalk render``: a motion file to an mp4, with the speech muxed in."""

from __future__ import annotations

import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import finite, info, notice, progress_bar, user_errors

#: Extensions tried, in order, when looking for the audio that belongs to a motion file.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus")


class RendererChoice(str, Enum):
    auto = "auto"
    gl = "gl"
    software = "software"


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


def render(
    motion: Annotated[Path, typer.Argument(help="Motion .npy/.npz: (T, V·3) or (T, V, 3) absolute vertex positions.")],
    audio: Annotated[
        Path | None, typer.Option("--audio", "-a", help="Speech to mux in (default: MOTION's stem with an audio suffix, if present).")
    ] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Write a silent video even if audio is found.")] = False,
    sample_rate: Annotated[
        int | None, typer.Option("--sample-rate", help="Sample rate of headerless raw PCM audio.", min=1)
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="Template mesh (.ply/.obj/.npz or templates.pkl); default: the bundled head.")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject to take from a templates.pkl.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Output .mp4 (default: MOTION with .mp4).")] = None,
    size: Annotated[int, typer.Option("--size", help="Frame height and width in pixels (one panel).", min=64, max=4096)] = 800,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the motion.", min=1.0, max=240.0, callback=finite)] = 30.0,
    renderer: Annotated[RendererChoice, typer.Option("--renderer", help="gl (EGL), software, or auto (gl, else software).")] = RendererChoice.auto,
    side_by_side: Annotated[
        Path | None, typer.Option("--side-by-side", help="Another motion (e.g. ground truth) shown on the left.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Render a mesh motion to an H.264 mp4 with the speech muxed in."""
    with user_errors():
        from ..atomic import check_output_path
        from ..audio import load_audio, write_wav
        from ..errors import TemplateError
        from ..face.template import load_template
        from ..motion import load_motion
        from ..render import RenderOptions, render_video
        from ..validate import check_motion_scale

        output = check_output_path(output or motion.with_suffix(".mp4"), force=force, suffixes=(".mp4",), what="H.264 MP4 video")
        face = load_template(template, subject=subject)
        if len(face.faces) == 0:
            raise TemplateError(f"Template {face.source} has no faces to draw; pass --template with a mesh (.ply/.obj).")
        frames = check_motion_scale(load_motion(motion, face.n_vertices), face.vertices, f"Motion file {motion}")
        reference = None
        if side_by_side:
            reference = check_motion_scale(load_motion(side_by_side, face.n_vertices), face.vertices, f"Motion file {side_by_side}")
            if lengths_differ(len(frames) / fps, len(reference) / fps):
                notice(f"{side_by_side} has {len(reference)} frames but {motion} has {len(frames)}; the video runs as long as {motion.name}.")
        if audio is None and not no_audio:
            audio = find_audio_beside(motion)
            if audio is not None:
                info(f"Using audio {audio}")
        speech = None if no_audio or audio is None else load_audio(audio, sample_rate=sample_rate)
        if speech is not None and lengths_differ(speech.duration, len(frames) / fps):
            notice(
                f"The audio lasts {speech.duration:.2f} s but the motion {len(frames) / fps:.2f} s at {fps:g} fps; "
                "the video follows the motion (another recording, or the wrong --fps?)."
            )

        options = RenderOptions(size=size, fps=fps, renderer=renderer.value)
        with tempfile.TemporaryDirectory(prefix="kmtalk-render-") as scratch:
            wav = None
            if speech is not None:
                wav = Path(scratch) / "speech.wav"
                write_wav(speech, wav)
            with progress_bar(f"Rendering {motion.name}", enabled=not quiet) as progress:
                result = render_video(
                    frames,
                    face.faces,
                    output,
                    audio_wav=wav,
                    options=options,
                    reference=reference,
                    framing_vertices=face.vertices,
                    force=force,
                    progress=progress,
                )
        sound = "with audio" if result.audio else "silent"
        info(f"Wrote {result.path} ({result.frames} frames, {result.width}×{result.height}, {sound}, {result.renderer} renderer)")
