"""``kmtalk animate`` / ``keymotions`` / ``complete``: speech to a mesh motion, whole or in two steps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..weights import DEFAULT_BACKBONE
from .common import info, step_progress, user_errors

BackboneOpt = Annotated[str | None, typer.Option("--backbone", "-b", help=f"Backbone (see `kmtalk backbones`; default {DEFAULT_BACKBONE}, or the checkpoint's), or 'rig' for the rig baseline (no weights).")]
CheckpointOpt = Annotated[Path | None, typer.Option("--checkpoint", "-c", help="A checkpoint from `kmtalk train` (default: the bundled weights).")]
StyleOpt = Annotated[str | None, typer.Option("--style", help="A training subject's speaking style (default: the average).")]
TextOpt = Annotated[str | None, typer.Option("--text", help="What is said, for a forced alignment (default: SPEECH.txt beside it, else recognised).")]
AlignmentOpt = Annotated[Path | None, typer.Option("--alignment", help="An alignment (.align.json from `kmtalk align`, or a TextGrid) to use instead of aligning.")]
TemplateOpt = Annotated[str | None, typer.Option("--template", "-t", help="Template mesh with the model's vertex count (default: the bundled head).")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="CPU inference precision of the large layers: fp32, bf16 or int8 (faster at the papers' sizes; output within a fraction of a mm).")]


def _read_alignment(path: Path | None, text: str | None = None) -> Any:
    if path is None:
        return None
    if text is not None:
        from ..errors import AlignmentError

        raise AlignmentError("Give --text or --alignment, not both: an alignment already says what is said.")
    from ..alignment import read_json
    from ..alignment.textgrid import read_textgrid

    return read_textgrid(path) if path.suffix.lower() == ".textgrid" else read_json(path)


def _text(speech: Path, text: str | None) -> str | None:
    from ..alignment import find_transcript

    return text if text is not None else find_transcript(speech)


def _template(spec: str | None) -> Any:
    from ..face.template import load_template

    return load_template(spec)


MOTION_SUFFIXES = (".npy",)
MOTION_WHAT = "the motion as a NumPy .npy array (T, V·3)"


def motion_output(speech: Path, output: Path | None, *, force: bool, video: bool = False) -> Path:
    """The motion file a command writes: ``-o`` exactly, which must end in .npy (checked before any work)."""
    from ..atomic import check_output_path
    from ..errors import OutputError

    if output is not None and video and output.suffix.lower() != ".npy":
        raise OutputError(
            f"-o names the motion (.npy); --render writes the video beside it as {output.with_suffix('.mp4').name}: "
            f"pass -o {output.with_suffix('.npy')}."
        )
    return check_output_path(output or speech.with_suffix(".npy"), force=force, suffixes=MOTION_SUFFIXES, what=MOTION_WHAT)


def export_formats(export: str | None) -> list[str]:
    """``--export`` checked before any work, with the names (any case) of ``kmtalk export --format``."""
    if export is None:
        return []
    from ..export import parse_formats

    return parse_formats(export)


def animate(
    speech: Annotated[Path, typer.Argument(help="Speech file (any format libsndfile reads).")],
    backbone: BackboneOpt = None,
    checkpoint: CheckpointOpt = None,
    key_motions: Annotated[bool | None, typer.Option("--key-motions/--no-key-motions", help="Use KMTalk key motions (default: yes for bundled weights, the checkpoint's kind otherwise).")] = None,
    text: TextOpt = None,
    alignment: AlignmentOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (T, V·3) (default: SPEECH.npy); the other outputs go beside it.")] = None,
    render: Annotated[bool, typer.Option("--render", help="Also render SPEECH.mp4 with the audio.")] = False,
    export: Annotated[str | None, typer.Option("--export", help="Also export, comma-separated: arkit-csv, arkit-json, glb, obj, ply, visemes.")] = None,
    force: ForceOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    precision: PrecisionOpt = "fp32",
) -> None:
    """Speech → align → key motions → completion → mesh motion (.npy), and optionally an mp4.

    All outputs of a run (motion, key motions, alignment, exports, video) land together at the
    end, or none of them does.
    """
    with user_errors():
        from ..alignment import write_json
        from ..atomic import check_output_path, transaction
        from ..audio import load_audio
        from ..export import check_outputs, default_output
        from ..keymotions import write_key_motions
        from ..motion import write_motion_npy
        from ..pipeline import animate as run

        out = motion_output(speech, output, force=force, video=render)
        formats = export_formats(export)
        timing = _read_alignment(alignment, text)
        video = check_output_path(out.with_suffix(".mp4"), force=force) if render else None
        align_out = check_output_path(out.with_suffix(".align.json"), force=force) if alignment is None else None
        keys_out = out.with_suffix(".keys.npz")
        if _writes_keys(backbone, checkpoint, key_motions):
            check_output_path(keys_out, force=force)
        targets = {f: default_output(out.with_suffix(""), f) for f in formats}
        check_outputs(targets, force=force)
        audio = load_audio(speech)
        with step_progress(enabled=not quiet) as on_step:
            result = run(
                audio, backbone=backbone, checkpoint=checkpoint, key_motions=key_motions, text=_text(speech, text),
                alignment=timing, style=style, template=_template(template), on_step=on_step, precision=precision,
            )
        phones = None
        if "visemes" in formats:
            phones = result.alignment if result.alignment is not None else _align_for_visemes(audio, speech, text)
        with transaction():
            written = [write_motion_npy(result.motion, out, force=force)]
            if result.alignment is not None and align_out is not None:
                written.append(write_json(result.alignment, align_out, force=force))
            if result.key_motions is not None:
                written.append(write_key_motions(result.key_motions, keys_out, template=result.template.vertices, force=force))
                info(f"{len(result.key_motions.frames.indices)} key frames ({result.key_motions.frames.density:.0%} of {len(result.vertices)})")
            if phones is not None:
                from ..export.visemes import visemes, write_visemes

                written.append(write_visemes(visemes(phones, "oculus", sound_file=str(speech)), targets.pop("visemes"), force=force))
            if targets:
                from ..export import write_motion

                written += write_motion(result.vertices, result.template, targets, result.fps, str(speech), force, frame_stem=out.stem, log=info)
            if video is not None:
                written.append(_render(result, audio, video, force=force, quiet=quiet))
        info(f"{result.model}: {len(result.vertices)} frames at {result.fps:g} fps → {', '.join(str(p) for p in written)}")


def _writes_keys(backbone: str | None, checkpoint: Path | None, key_motions: bool | None) -> bool:
    """Whether the run will write key motions, known from the checkpoint's header before any work."""
    from ..pipeline import RIG

    if backbone == RIG or key_motions is False:
        return False
    if checkpoint is None:
        return True
    from ..backbones.checkpoint import read_checkpoint_info

    return read_checkpoint_info(checkpoint).get("kind") == "key-motion"


def _align_for_visemes(audio: Any, speech: Path, text: str | None) -> Any:
    """Models without key motions make no alignment; visemes need one."""
    from ..alignment import align

    return align(audio, _text(speech, text))


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
    backbone: BackboneOpt = None,
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
        from ..pipeline import RIG, resolve_model

        out = check_output_path(
            output or speech.with_name(speech.stem + ".keys.npz"), force=force, suffixes=(".npz",), what="key motions as a NumPy .npz archive"
        )
        timing = _read_alignment(alignment, text)
        audio = load_audio(speech)
        head = bundled_template()
        if backbone == RIG:
            if checkpoint is not None:
                raise _rig_has_no_weights()
            from ..rig_keys import rig_key_motions

            timing = timing or align(audio, _text(speech, text))
            n_frames = max(1, int(round(audio.duration * 30.0)))
            keys, n_vertices = rig_key_motions(timing, head, n_frames, 30.0), head.n_vertices
        else:
            model = resolve_model(backbone, checkpoint, None, precision=precision)
            timing = timing or align(audio, _text(speech, text))
            keys, n_vertices = model.predict_keys(audio, timing, style=style), model.n_vertices
        write_key_motions(keys, out, template=head.vertices if head.n_vertices == n_vertices else None, force=force)
        info(f"{len(keys.frames.indices)} key frames ({keys.frames.density:.0%} of {keys.frames.n_frames}, rule {keys.frames.rule}) → {out}")


def _rig_has_no_weights() -> Exception:
    from ..errors import ModelError

    return ModelError("The rig baseline has no weights; drop --checkpoint (or pick a learned --backbone).")


def complete(
    speech: Annotated[Path, typer.Argument(help="Speech file.")],
    keys: Annotated[Path, typer.Option("--keys", "-k", help="Key motions .npz from `kmtalk keymotions`.")],
    backbone: Annotated[str | None, typer.Option("--backbone", "-b", help=f"Backbone (see `kmtalk backbones`; default {DEFAULT_BACKBONE}, or the checkpoint's), or 'rig': no model, a shape-preserving cubic through the key motions.")] = None,
    checkpoint: CheckpointOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (default: SPEECH.npy).")] = None,
    force: ForceOpt = False,
    precision: PrecisionOpt = "fp32",
) -> None:
    """Complete the full motion from key motions, guided by the audio (.npy, (T, V·3))."""
    with user_errors():
        from ..audio import load_audio
        from ..errors import MotionError
        from ..keymotions import read_key_motions
        from ..motion import write_motion_npy
        from ..pipeline import RIG, resolve_model

        out = motion_output(speech, output, force=force)
        key_motions = read_key_motions(keys)
        audio = load_audio(speech)
        face = _template(template)
        if backbone == RIG:
            if checkpoint is not None:
                raise _rig_has_no_weights()
            from ..rig_keys import interpolate_key_motions

            n_vertices, n_frames = face.n_vertices, max(1, int(round(audio.duration * key_motions.frames.fps)))
            if key_motions.offsets.shape[1] != n_vertices * 3:
                raise MotionError(f"The key motions have {key_motions.offsets.shape[1] // 3} vertices; the template has {n_vertices}.")
            offsets = interpolate_key_motions(key_motions, n_frames)
        else:
            model = resolve_model(backbone, checkpoint, None, precision=precision)
            model.check_template(face.n_vertices)
            if key_motions.offsets.shape[1] != model.n_vertices * 3:
                raise MotionError(f"The key motions have {key_motions.offsets.shape[1] // 3} vertices; the model has {model.n_vertices}.")
            offsets = model.complete(audio, key_motions, style=style)
        vertices = offsets.reshape(len(offsets), -1, 3) + face.vertices[None]
        write_motion_npy(vertices, out, force=force)
        info(f"{len(vertices)} frames completed from {len(key_motions.frames.indices)} key frames → {out}")
