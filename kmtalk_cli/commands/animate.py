"""``kmtalk animate`` / ``keymotions`` / ``complete``: speech to a mesh motion, whole or in two steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ..batch import AUDIO_SUFFIXES, BatchItem, batch_output, expand_inputs, output_for, run_inputs
from ..errors import KmtalkError
from ..progress import ProgressMode
from ..weights import DEFAULT_BACKBONE
from .audio_options import ChannelsOpt, RawFormatOpt, SampleRateOpt, read_speech
from .common import JobsOpt, ProgressOpt, QuietOpt, finish, info, running, step_progress, user_errors

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


def export_formats(export: str | None) -> tuple[str, ...]:
    """``--export`` checked before any work, with the names (any case) of ``kmtalk export --format``."""
    if export is None:
        return ()
    from ..export import parse_formats

    return tuple(parse_formats(export))


def writes_keys(backbone: str | None, checkpoint: Path | None, key_motions: bool | None) -> bool:
    """Whether a run will write key motions, known from the checkpoint's header before any work."""
    from ..pipeline import RIG

    if backbone == RIG or key_motions is False:
        return False
    if checkpoint is None:
        return True
    from ..checkpoint_info import read_checkpoint_info

    return read_checkpoint_info(checkpoint).get("kind") == "key-motion"


@dataclass(frozen=True)
class AnimateJob:
    """``kmtalk animate`` over one file or a batch: the settings every file shares (picklable,
    so worker processes get it whole); the model is loaded once per worker by :meth:`setup`."""

    backbone: str | None
    checkpoint: Path | None
    key_motions: bool | None
    text: str | None
    alignment: Path | None
    style: str | None
    template: str | None
    output: Path | None
    batch: bool
    render: bool
    formats: tuple[str, ...]
    precision: str
    audio_options: tuple[int | None, int, str]  # sample rate, channels, format of headerless PCM
    liveliness: bool = True
    seed: int = 0
    gate: bool = True

    def motion_path(self, item: BatchItem) -> Path:
        return output_for(item.path, self.output, ".npy", batch=self.batch)

    def outputs(self, item: BatchItem) -> list[Path]:
        """Every file a run writes: the motion, its alignment and key motions, exports, the video."""
        out = self.motion_path(item)
        paths = [out]
        keys = writes_keys(self.backbone, self.checkpoint, self.key_motions)
        if self.alignment is None and (keys or self.backbone == "rig"):  # the runs that align
            paths.append(out.with_suffix(".align.json"))
        if keys:
            paths.append(out.with_suffix(".keys.npz"))
        if self.formats:
            from ..export import default_output

            paths += [default_output(out.with_suffix(""), f) for f in self.formats]
        if self.render:
            paths.append(out.with_suffix(".mp4"))
        if self.liveliness:
            from ..face.headpose import head_pose_path

            paths.append(head_pose_path(out))
        return paths

    def setup(self) -> Any:
        from ..pipeline import load

        if not self.batch:  # one file: the pipeline loads the model while it aligns in a worker process
            return None, _template(self.template)
        return load(self.backbone, self.checkpoint, self.key_motions, precision=self.precision), _template(self.template)

    def run(self, item: BatchItem, state: Any, force: bool) -> list[Path]:
        """One file; all its outputs land together at the end, or none of them does."""
        from ..atomic import atomic_output, check_output_path, transaction
        from ..export import check_outputs, default_output
        from ..keymotions import write_key_motions
        from ..pipeline import animate as run

        model, face = state
        out = motion_output(item.path, self.motion_path(item), force=force, video=self.render)
        for path in self.outputs(item)[1:]:
            if path.suffix:  # obj/ply folders are checked with the other exports
                check_output_path(path, force=force)
        targets = {f: default_output(out.with_suffix(""), f) for f in self.formats}
        check_outputs(targets, force=force)
        audio = read_speech(item.path, *self.audio_options)
        text = item.text if item.text is not None else _text(item.path, self.text)
        written: list[Path] = []
        with transaction():
            # The motion is streamed to its staged file as it is completed: a long one is never whole in memory.
            with atomic_output(out, force=force) as tmp, step_progress() as on_step:
                result = run(
                    audio, backbone=self.backbone, checkpoint=self.checkpoint, key_motions=self.key_motions, text=text,
                    alignment=_read_alignment(self.alignment, self.text), style=self.style, template=face, on_step=on_step,
                    precision=self.precision, model=model, liveliness=self.liveliness, seed=self.seed, gate=self.gate,
                    motion_path=tmp,
                )
            written.append(out)
            phones = None
            if "visemes" in targets:
                phones = result.alignment if result.alignment is not None else _align_for_visemes(audio, text)
            if result.head_pose is not None:
                from ..face.headpose import head_pose_path, write_head_pose

                written.append(write_head_pose(result.head_pose, head_pose_path(out), force=force))
            if result.alignment is not None and self.alignment is None:
                from ..alignment import write_json

                info(f"Aligned with {result.alignment.backend} ({result.alignment.describe_method()})")
                written.append(write_json(result.alignment, out.with_suffix(".align.json"), force=force))
            if result.key_motions is not None:
                written.append(write_key_motions(result.key_motions, out.with_suffix(".keys.npz"), template=result.template.vertices, force=force))
                info(f"{len(result.key_motions.frames.indices)} key frames ({result.key_motions.frames.density:.0%} of {len(result.vertices)})")
            if phones is not None:
                from ..export.visemes import visemes, write_visemes

                written.append(write_visemes(visemes(phones, "oculus", sound_file=str(item.path)), targets.pop("visemes"), force=force))
            if targets:
                from ..export import write_motion

                written += write_motion(result.vertices, result.template, targets, result.fps, str(item.path), force,
                                        frame_stem=out.stem, log=info, head_pose=result.head_pose)
            if self.render:
                written.append(_render(result, audio, out.with_suffix(".mp4"), force=force))
        info(f"{result.model}: {len(result.vertices)} frames at {result.fps:g} fps → {', '.join(str(p) for p in written)}")
        return written


def _align_for_visemes(audio: Any, text: str | None) -> Any:
    """Models without key motions make no alignment; visemes need one."""
    from ..alignment import align

    return align(audio, text)


def animate(
    speech: Annotated[list[Path], typer.Argument(help="Speech: files, directories, quoted globs, or a manifest (.txt of paths, .csv/.tsv with path,transcript).")],
    backbone: BackboneOpt = None,
    checkpoint: CheckpointOpt = None,
    key_motions: Annotated[bool | None, typer.Option("--key-motions/--no-key-motions", help="Use KMTalk key motions (default: yes for bundled weights, the checkpoint's kind otherwise).")] = None,
    text: TextOpt = None,
    alignment: AlignmentOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (T, V·3) (default: SPEECH.npy), the other outputs beside it; with several inputs, a directory.")] = None,
    render: Annotated[bool, typer.Option("--render", help="Also render SPEECH.mp4 with the audio.")] = False,
    export: Annotated[str | None, typer.Option("--export", help="Also export, comma-separated: arkit-csv, arkit-json, glb, obj, ply, visemes.")] = None,
    force: ForceOpt = False,
    jobs: JobsOpt = 1,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
    precision: PrecisionOpt = "fp32",
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
    liveliness: Annotated[bool, typer.Option("--liveliness/--no-liveliness", help="Blinks, brow raises, head motion and gaze from the speech's prosody (head pose in SPEECH.head.npz).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the liveliness layer: the same seed gives the same blinks, brows, head and gaze.", min=0, max=2**31 - 1)] = 0,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="Articulatory gate: a learned model's lips close on m/b/p, tuck on f/v and rest in pauses and at the ends, as the rig driven by the alignment does.")] = True,
) -> None:
    """Speech → align → key motions → completion → mesh motion (.npy), and optionally an mp4; one file or a batch.

    All outputs of one file (motion, key motions, alignment, exports, video) land together at the
    end, or none of them does.
    """
    with running("animate", progress, quiet=quiet) as rep:
        inputs = expand_inputs(speech, AUDIO_SUFFIXES)
        if inputs.batch and (text is not None or alignment is not None):
            raise KmtalkError("--text/--alignment apply to one input; for a batch, put SPEECH.txt beside each file or use a .csv manifest.")
        formats = export_formats(export)
        if text is not None and alignment is not None:
            _read_alignment(alignment, text)  # refuses the pair before any work
        if not inputs.batch:  # the output rule, before the model loads
            motion_output(inputs.items[0].path, output, force=force, video=render)
        job = AnimateJob(backbone, checkpoint, key_motions, text, alignment, style, template, batch_output(output, inputs.batch),
                         inputs.batch, render, formats, precision, (sample_rate, channels, raw_format), liveliness, seed, gate)
        finish(run_inputs(job, inputs, reporter=rep, jobs=jobs, force=force, label="Animating"), "animated")


def _render(result: Any, audio: Any, video: Path, *, force: bool) -> Path:
    import tempfile

    from ..audio import write_wav
    from ..render import RenderOptions, render_video
    from .common import progress_bar

    with tempfile.TemporaryDirectory(prefix="kmtalk-animate-") as scratch:
        wav = Path(scratch) / "speech.wav"
        write_wav(audio, wav)
        with progress_bar(f"Rendering {video.name}") as progress:
            rendered = render_video(
                result.vertices, result.template.faces, video, audio_wav=wav, options=RenderOptions(fps=result.fps),
                framing_vertices=result.template.vertices, force=force, progress=progress,
                template=result.template, head_pose=result.head_pose,
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
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
) -> None:
    """Find the key frames at phoneme boundaries and predict the face there (.npz)."""
    with user_errors():
        from ..atomic import check_output_path
        from ..face.template import bundled_template
        from ..keymotions import write_key_motions
        from ..pipeline import key_motions_for, load

        out = check_output_path(
            output or speech.with_name(speech.stem + ".keys.npz"), force=force, suffixes=(".npz",), what="key motions as a NumPy .npz archive"
        )
        timing = _read_alignment(alignment, text)
        audio = read_speech(speech, sample_rate, channels, raw_format)
        model = load(backbone, checkpoint, None, precision=precision)
        head = bundled_template()
        aligned, keys = key_motions_for(audio, model, alignment=timing, text=_text(speech, text), style=style, template=head)
        n_vertices = head.n_vertices if model is None else model.n_vertices
        if timing is None:
            info(f"Aligned with {aligned.backend} ({aligned.describe_method()})")
        write_key_motions(keys, out, template=head.vertices if head.n_vertices == n_vertices else None, force=force)
        info(f"{len(keys.frames.indices)} key frames ({keys.frames.density:.0%} of {keys.frames.n_frames}, rule {keys.frames.rule}) → {out}")


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
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
) -> None:
    """Complete the full motion from key motions, guided by the audio (.npy, (T, V·3))."""
    with user_errors():
        from ..atomic import atomic_output
        from ..keymotions import read_key_motions
        from ..pipeline import complete as complete_motion
        from ..pipeline import load

        out = motion_output(speech, output, force=force)
        key_motions = read_key_motions(keys)
        audio = read_speech(speech, sample_rate, channels, raw_format)
        model = load(backbone, checkpoint, None, precision=precision)
        with atomic_output(out, force=force) as tmp:  # streamed window by window
            vertices = complete_motion(audio, key_motions, model, _template(template), style=style, motion_path=tmp)
        info(f"{len(vertices)} frames completed from {len(key_motions.frames.indices)} key frames → {out}")
