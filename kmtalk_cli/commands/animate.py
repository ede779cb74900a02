"""``kmtalk animate`` / ``keymotions`` / ``complete``: speech to a mesh motion, whole or in two steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..weights import DEFAULT_BACKBONE
from .common import info, step_progress, user_errors

BackboneOpt = Annotated[str, typer.Option("--backbone", "-b", help="Backbone (see `kmtalk backbones`), or 'rig' for the rig baseline.")]
CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", "-c", help="A checkpoint from `kmtalk train` (default: the bundled weights).")]
StyleOpt = Annotated[str | None, typer.Option("--style", help="A training subject's speaking style (default: the average).")]
TextOpt = Annotated[str | None, typer.Option("--text", help="What is said, for a forced alignment (default: SPEECH.txt beside it, else recognised).")]
AlignmentOpt = Annotated[Path | None, typer.Option("--alignment", help="An alignment (.align.json from `kmtalk align`, or a TextGrid) to use instead of aligning.")]
TemplateOpt = Annotated[str | None, typer.Option("--template", "-t", help="Template mesh with the model's vertex count (default: the bundled head).")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="CPU inference precision of the large layers: fp32, bf16 or int8 (faster at the papers' sizes; output within a fraction of a mm).")]


def _read_alignment(path: Path | None) -> Any:
    if path is None:
        return None
    from ..alignment import read_json
    from ..alignment.textgrid import read_textgrid

    return read_textgrid(path) if path.suffix.lower() == ".textgrid" else read_json(path)


def _text(speech: Path, text: str | None) -> str | None:
    from ..alignment import find_transcript

    return text if text is not None else find_transcript(speech)


def _template(spec: str | None) -> Any:
    from ..face.template import load_template

    return load_template(spec)


def animate(
    speech: Annotated[Path, typer.Argument(help="Speech file (any format libsndfile reads).")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    checkpoint: CheckpointOpt = None,
    key_motions: Annotated[bool | None, typer.Option("--key-motions/--no-key-motions", help="Use KMTalk key motions (default: yes for bundled weights, the checkpoint's kind otherwise).")] = None,
    text: TextOpt = None,
    alignment: AlignmentOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (T, V·3) (default: SPEECH.npy).")] = None,
    render: Annotated[bool, typer.Option("--render", help="Also render SPEECH.mp4 with the audio.")] = False,
    export: Annotated[str | None, typer.Option("--export", help="Also export, comma-separated: arkit-csv, arkit-json, glb, obj, ply.")] = None,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    precision: PrecisionOpt = "fp32",
) -> None:
    """Speech → align → key motions → completion → mesh motion (.npy), and optionally an mp4."""
    with user_errors():
        from ..alignment import write_json
        from ..atomic import atomic_output, check_output_path
        from ..audio import load_audio
        from ..keymotions import write_key_motions
        from ..pipeline import animate as run

        out = check_output_path(output or speech.with_suffix(".npy"), force=force)
        video = check_output_path(out.with_suffix(".mp4"), force=force) if render else None
        formats = [f.strip() for f in (export or "").split(",") if f.strip()]
        if formats:
            from ..export import check_outputs, default_output

            check_outputs({f: default_output(out.with_suffix(""), f) for f in formats}, force=force)
        audio = load_audio(speech)
        with atomic_output(out, force=force) as tmp, step_progress(enabled=not quiet) as on_step:
            result = run(
                audio, backbone=backbone, checkpoint=checkpoint, key_motions=key_motions, text=_text(speech, text),
                alignment=_read_alignment(alignment), style=style, template=_template(template), on_step=on_step,
                precision=precision, motion_path=tmp,  # streamed: a long motion is never whole in memory
            )
        written = [out]
        if result.alignment is not None and alignment is None:
            written.append(write_json(result.alignment, out.with_suffix(".align.json"), force=True))
        if result.key_motions is not None:
            written.append(write_key_motions(result.key_motions, out.with_suffix(".keys.npz"), template=result.template.vertices, force=True))
            info(f"{len(result.key_motions.frames.indices)} key frames ({result.key_motions.frames.density:.0%} of {len(result.vertices)})")
        if formats:
            from ..export import export_motion

            written += export_motion(result.vertices, result.template, formats, out.with_suffix(""), result.fps, audio_path=str(speech), force=force, log=info)
        if video is not None:
            written.append(_render(result, audio, video, force=force, quiet=quiet))
        info(f"{result.model}: {len(result.vertices)} frames at {result.fps:g} fps → {', '.join(str(p) for p in written)}")


def _render(result: Any, audio: Any, video: Path, *, force: bool, quiet: bool) -> Path:
    import tempfile

    from ..audio import write_wav
    from ..render import RenderOptions, render_video
    from .common import progress_bar

    with tempfile.TemporaryDirectory(prefix="kmtalk-animate-") as scratch:
        wav = Path(scratch) / "speech.wav"
        write_wav(audio, wav)
        with progress_bar(f"Rendering {video.name}", enabled=not quiet) as progress:
            rendered = render_video(
                result.vertices, result.template.faces, video, audio_wav=wav, options=RenderOptions(fps=result.fps),
                framing_vertices=result.template.vertices, force=force, progress=progress,
            )
    return rendered.path


def keymotions(
    speech: Annotated[Path, typer.Argument(help="Speech file.")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    checkpoint: CheckpointOpt = None,
    text: TextOpt = None,
    alignment: AlignmentOpt = None,
    style: StyleOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Key motions .npz (default: SPEECH.keys.npz).")] = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = "fp32",
) -> None:
    """Find the key frames at phoneme boundaries and predict the face there (.npz)."""
    with user_errors():
        from ..alignment import align
        from ..atomic import check_output_path
        from ..audio import load_audio
        from ..face.template import bundled_template
        from ..keymotions import write_key_motions
        from ..pipeline import resolve_model

        out = check_output_path(output or speech.with_name(speech.stem + ".keys.npz"), force=force)
        audio = load_audio(speech)
        model = resolve_model(backbone, checkpoint, None, precision=precision)
        timing = _read_alignment(alignment) or align(audio, _text(speech, text))
        keys = model.predict_keys(audio, timing, style=style)
        head = bundled_template()
        write_key_motions(keys, out, template=head.vertices if head.n_vertices == model.n_vertices else None, force=force)
        info(f"{len(keys.frames.indices)} key frames ({keys.frames.density:.0%} of {keys.frames.n_frames}, rule {keys.frames.rule}) → {out}")


def complete(
    speech: Annotated[Path, typer.Argument(help="Speech file.")],
    keys: Annotated[Path, typer.Option("--keys", "-k", help="Key motions .npz from `kmtalk keymotions`.")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    checkpoint: CheckpointOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (default: SPEECH.npy).")] = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = "fp32",
) -> None:
    """Complete the full motion from key motions, guided by the audio (.npy, (T, V·3))."""
    with user_errors():
        import numpy as np
        from ..atomic import atomic_output, check_output_path
        from ..audio import load_audio
        from ..errors import MotionError
        from ..keymotions import read_key_motions
        from ..npy_stream import NpyRowWriter
        from ..pipeline import resolve_model

        out = check_output_path(output or speech.with_suffix(".npy"), force=force)
        key_motions = read_key_motions(keys)
        audio = load_audio(speech)
        model = resolve_model(backbone, checkpoint, None, precision=precision)
        face = _template(template)
        model.check_template(face.n_vertices)
        if key_motions.dim != model.n_vertices * 3:
            raise MotionError(f"The key motions have {key_motions.dim // 3} vertices; the model has {model.n_vertices}.")
        rest = face.vertices.reshape(-1).astype(np.float32)
        n_frames = model.n_frames(audio)
        with atomic_output(out, force=force) as tmp, NpyRowWriter(tmp, n_frames, rest.shape) as writer:
            for piece in model.complete_pieces(audio, key_motions, style=style):
                writer.write(piece + rest)
        info(f"{n_frames} frames completed from {len(key_motions.frames.indices)} key frames → {out}")
