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


@dataclass(frozen=True)
class AnimateJob:
    """``kmtalk animate`` over one file or a batch: the settings every file shares (picklable,
    so worker processes get it whole); the model is loaded once per worker by :meth:`setup`."""

    backbone: str
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
        out = self.motion_path(item)
        paths = [out]
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
        from ..alignment import write_json
        from ..atomic import atomic_output, check_output_path
        from ..keymotions import write_key_motions
        from ..pipeline import animate as run

        model, face = state
        out = check_output_path(self.motion_path(item), force=force)
        video = check_output_path(out.with_suffix(".mp4"), force=force) if self.render else None
        if self.formats:
            from ..export import check_outputs, default_output

            check_outputs({f: default_output(out.with_suffix(""), f) for f in self.formats}, force=force)
        audio = read_speech(item.path, *self.audio_options)
        text = item.text if item.text is not None else _text(item.path, self.text)
        with atomic_output(out, force=force) as tmp, step_progress() as on_step:
            result = run(
                audio, backbone=self.backbone, checkpoint=self.checkpoint, key_motions=self.key_motions, text=text,
                alignment=_read_alignment(self.alignment), style=self.style, template=face, on_step=on_step,
                precision=self.precision, model=model, liveliness=self.liveliness, seed=self.seed, gate=self.gate,
                motion_path=tmp,  # streamed as it is completed: a long motion is never whole in memory
            )
        written = [out]
        if result.head_pose is not None:
            from ..face.headpose import head_pose_path, write_head_pose

            written.append(write_head_pose(result.head_pose, head_pose_path(out), force=True))
        if result.alignment is not None and self.alignment is None:
            info(f"Aligned with {result.alignment.backend} ({result.alignment.describe_method()})")
            written.append(write_json(result.alignment, out.with_suffix(".align.json"), force=True))
        if result.key_motions is not None:
            written.append(write_key_motions(result.key_motions, out.with_suffix(".keys.npz"), template=result.template.vertices, force=True))
            info(f"{len(result.key_motions.frames.indices)} key frames ({result.key_motions.frames.density:.0%} of {len(result.vertices)})")
        if self.formats:
            from ..export import export_motion

            written += export_motion(result.vertices, result.template, list(self.formats), out.with_suffix(""), result.fps,
                                     audio_path=str(item.path), force=force, log=info, head_pose=result.head_pose)
        if video is not None:
            written.append(_render(result, audio, video, force=force))
        info(f"{result.model}: {len(result.vertices)} frames at {result.fps:g} fps → {', '.join(str(p) for p in written)}")
        return written


def animate(
    speech: Annotated[list[Path], typer.Argument(help="Speech: files, directories, quoted globs, or a manifest (.txt of paths, .csv/.tsv with path,transcript).")],
    backbone: BackboneOpt = DEFAULT_BACKBONE,
    checkpoint: CheckpointOpt = None,
    key_motions: Annotated[bool | None, typer.Option("--key-motions/--no-key-motions", help="Use KMTalk key motions (default: yes for bundled weights, the checkpoint's kind otherwise).")] = None,
    text: TextOpt = None,
    alignment: AlignmentOpt = None,
    style: StyleOpt = None,
    template: TemplateOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Motion .npy (T, V·3) (default: SPEECH.npy); with several inputs, a directory.")] = None,
    render: Annotated[bool, typer.Option("--render", help="Also render SPEECH.mp4 with the audio.")] = False,
    export: Annotated[str | None, typer.Option("--export", help="Also export, comma-separated: arkit-csv, arkit-json, glb, obj, ply.")] = None,
    force: ForceOpt = False,
    jobs: JobsOpt = 1,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
    precision: PrecisionOpt = "fp32",
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
    liveliness: Annotated[bool, typer.Option("--liveliness/--no-liveliness", help="Blinks, brow raises, head motion and gaze from the speech's prosody (head pose in SPEECH.head.npz).")] = True,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the liveliness layer: the same seed gives the same blinks, brows, head and gaze.", min=0)] = 0,
    gate: Annotated[bool, typer.Option("--gate/--no-gate", help="Articulatory gate: a learned model's lips close on m/b/p, tuck on f/v and rest in pauses and at the ends, as the rig driven by the alignment does.")] = True,
) -> None:
    """Speech → align → key motions → completion → mesh motion (.npy), and optionally an mp4; one file or a batch."""
    with running("animate", progress, quiet=quiet) as rep:
        inputs = expand_inputs(speech, AUDIO_SUFFIXES)
        if inputs.batch and (text is not None or alignment is not None):
            raise KmtalkError("--text/--alignment apply to one input; for a batch, put SPEECH.txt beside each file or use a .csv manifest.")
        formats = tuple(f.strip() for f in (export or "").split(",") if f.strip())
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
    backbone: BackboneOpt = DEFAULT_BACKBONE,
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

        out = check_output_path(output or speech.with_name(speech.stem + ".keys.npz"), force=force)
        audio = read_speech(speech, sample_rate, channels, raw_format)
        model = load(backbone, checkpoint, None, precision=precision)
        _, keys = key_motions_for(audio, model, alignment=_read_alignment(alignment), text=_text(speech, text), style=style)
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
    sample_rate: SampleRateOpt = None,
    channels: ChannelsOpt = 1,
    raw_format: RawFormatOpt = "PCM_16",
) -> None:
    """Complete the full motion from key motions, guided by the audio (.npy, (T, V·3))."""
    with user_errors():
        from ..atomic import atomic_output, check_output_path
        from ..keymotions import read_key_motions
        from ..pipeline import complete as complete_motion
        from ..pipeline import load

        out = check_output_path(output or speech.with_suffix(".npy"), force=force)
        key_motions = read_key_motions(keys)
        audio = read_speech(speech, sample_rate, channels, raw_format)
        model = load(backbone, checkpoint, None, precision=precision)
        with atomic_output(out, force=force) as tmp:
            vertices = complete_motion(audio, key_motions, model, _template(template), style=style, motion_path=tmp)
        info(f"{len(vertices)} frames completed from {len(key_motions.frames.indices)} key frames → {out}")
