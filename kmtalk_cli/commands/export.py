"""``kmtalk export``: a motion or an alignment in the formats other tools read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..batch import BatchItem, batch_output, expand_inputs, run_inputs
from ..errors import KmtalkError
from ..progress import ProgressMode
from .common import JobsOpt, ProgressOpt, QuietOpt, finish, finite, info, notice, progress_bar, running

#: ``-o -``: write a text output to stdout.
STDOUT = Path("-")

MOTION_SUFFIXES = (".npy", ".npz")
ALIGNMENT_SUFFIXES = (".json", ".textgrid")
#: Extensions dropped from SOURCE or -o to get the stem outputs are named after.
_STEM_SUFFIXES = (*MOTION_SUFFIXES, *ALIGNMENT_SUFFIXES, ".csv", ".glb", ".tsv")


class VisemeSetChoice(str, Enum):
    oculus = "oculus"
    rhubarb = "rhubarb"
    preston = "preston"


def output_stem(path: Path) -> Path:
    """``take.npy`` → ``take``, ``take.align.json`` → ``take``, ``take_v2`` → ``take_v2``."""
    stem = path.with_suffix("") if path.suffix.lower() in _STEM_SUFFIXES else path
    return stem.with_suffix("") if stem.suffix in (".align", ".arkit") else stem


#: What ``-o`` must end in when it names one format's file (obj/ply name a folder: any name).
FORMAT_SUFFIXES = {
    "arkit-csv": ((".csv",), "Live Link Face CSV"),
    "arkit-json": ((".json",), "ARKit weights as JSON"),
    "glb": ((".glb",), "a binary glTF (.glb)"),
    "visemes": ((".tsv", ".json"), "Rhubarb visemes (TSV, or JSON for .json)"),
}


def check_single_output(output: Path, fmt: str) -> Path:
    """``-o`` for one format: the exact file, with that format's suffix (the shared output rule)."""
    from ..atomic import require_suffix

    if fmt in FORMAT_SUFFIXES:
        suffixes, what = FORMAT_SUFFIXES[fmt]
        require_suffix(output, suffixes, what)
    return output


@dataclass(frozen=True)
class ExportJob:
    """``kmtalk export`` over one source or a batch; the template is loaded once per worker."""

    formats: tuple[str, ...]
    viseme_set: str
    alignment: Path | None
    template: str | None
    subject: str | None
    fps: float
    audio: Path | None
    output: Path | None
    bake: bool | None
    smoothing: float
    batch: bool

    def targets(self, source: Path) -> dict[str, Path]:
        """Each format's output: ``-o`` itself for one format, else named after a shared stem."""
        from ..export import default_output

        if self.output is not None and not self.batch and len(self.formats) == 1:
            return {self.formats[0]: self.output if self.output == STDOUT else check_single_output(self.output, self.formats[0])}
        if self.output is not None and self.batch:
            stem = self.output / output_stem(source).name
        else:
            stem = output_stem(self.output) if self.output is not None else output_stem(source)
        return {fmt: default_output(stem, fmt, self.viseme_set) for fmt in self.formats}

    def outputs(self, item: BatchItem) -> list[Path]:
        return [p for p in self.targets(item.path).values() if p != STDOUT]

    def setup(self) -> Any:
        from ..face.template import load_template

        needs_mesh = any(f != "visemes" for f in self.formats)
        return load_template(self.template, subject=self.subject) if needs_mesh else None

    def run(self, item: BatchItem, face: Any, force: bool) -> list[Path]:
        from ..errors import AlignmentError, MotionError
        from ..export import check_outputs, write_motion
        from ..export.visemes import read_phones, visemes, write_visemes
        from ..atomic import transaction
        from ..validate import check_motion_scale

        source = item.path
        suffix = source.suffix.lower()
        if suffix not in MOTION_SUFFIXES + ALIGNMENT_SUFFIXES:
            raise MotionError(f"{source} is neither a motion (.npy/.npz) nor an alignment (.json/.TextGrid).")
        is_motion = suffix in MOTION_SUFFIXES
        if not is_motion and list(self.formats) != ["visemes"]:
            others = ", ".join(f for f in self.formats if f != "visemes")
            raise AlignmentError(f"An alignment can only be exported as visemes; {others} need a motion (.npy/.npz).")
        alignment = self.alignment
        if is_motion and "visemes" in self.formats and alignment is None:
            beside = source.with_name(output_stem(source).name + ".align.json")
            if not (self.batch and beside.is_file()):
                raise AlignmentError("--format visemes from a motion needs its alignment: pass --alignment ALIGN.json or .TextGrid.")
            alignment = beside
        targets = self.targets(source)
        check_outputs({f: p for f, p in targets.items() if p != STDOUT}, force=force)

        motion_targets = {fmt: path for fmt, path in targets.items() if fmt != "visemes"}
        vertices = head_pose = None
        if is_motion:  # read and check the motion before writing anything
            from ..face.template import load_template
            from ..motion import load_motion

            face = face if face is not None else load_template(self.template, subject=self.subject)
            vertices = check_motion_scale(load_motion(source, face.n_vertices), face.vertices, f"Motion file {source}")
            head_pose = _head_pose_beside(source, len(vertices))

        written: list[Path] = []
        with transaction():  # every format of one source lands together, or none does
            if "visemes" in targets:
                phones = read_phones(alignment if is_motion else source)
                if vertices is not None and abs(phones.duration - len(vertices) / self.fps) > 2.0 / self.fps:
                    notice(f"The alignment lasts {phones.duration:.2f} s but the motion {len(vertices) / self.fps:.2f} s at {self.fps:g} fps.")
                track = visemes(phones, self.viseme_set, sound_file=str(self.audio) if self.audio is not None else None)
                if targets["visemes"] == STDOUT:
                    write_stdout(track)
                else:
                    written.append(write_visemes(track, targets["visemes"], force=force))
            if motion_targets:
                with progress_bar(f"Exporting {source.name}") as progress:
                    written += write_motion(
                        vertices, face, motion_targets, self.fps, self.audio, force,
                        bake=self.bake, smoothing=self.smoothing, frame_stem=output_stem(source).name, log=info, progress=progress,
                        head_pose=head_pose,
                    )
        for path in written:
            info(f"Wrote {path}")
        return written


def write_stdout(track: Any) -> None:
    """A viseme track as TSV on stdout (``-o -``), for piping into another tool."""
    import sys

    from ..export.visemes import tsv_text

    sys.stdout.write(tsv_text(track))
    sys.stdout.flush()


def export(
    source: Annotated[
        list[Path], typer.Argument(help="Motion .npy/.npz (T, V·3 or V, 3), or an alignment (.json from kmtalk align, or .TextGrid) for visemes; files, directories, quoted globs or a .txt manifest.")
    ],
    formats: Annotated[
        str, typer.Option("--format", help="arkit-csv, arkit-json, glb, obj, ply or visemes; several separated by commas.")
    ],
    viseme_set: Annotated[
        VisemeSetChoice, typer.Option("--visemes", help="Viseme set for --format visemes: oculus (15), rhubarb (A-H, X) or preston (Preston Blair).")
    ] = VisemeSetChoice.oculus,
    alignment: Annotated[
        Path | None, typer.Option("--alignment", help="Alignment (.json/.TextGrid) for visemes when SOURCE is a motion.")
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", "-t", help="Template mesh (.ply/.obj/.npz or templates.pkl); default: the bundled head.")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject to take from a templates.pkl.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the motion.", min=1.0, max=240.0, callback=finite)] = 30.0,
    audio: Annotated[
        Path | None, typer.Option("--audio", "-a", help="Speech the motion belongs to: referenced from the .glb and the viseme JSON.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (a folder for obj/ply; - for visemes on stdout); with several formats, the stem they share; with several sources, a directory (default: beside SOURCE)."),
    ] = None,
    bake: Annotated[
        bool | None,
        typer.Option("--bake/--no-bake", help="glb: per-frame baked shapes, or always the rig's morph targets (default: bake when those miss by more than 1.5 mm)."),
    ] = None,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Temporal smoothing of the fitted weights: λ of the vertex-acceleration penalty (0 = none).", min=0.0, max=10.0, callback=finite)
    ] = 0.002,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    jobs: JobsOpt = 1,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Export motions as ARKit weights (Live Link Face CSV, JSON), glTF or OBJ/PLY sequences, or alignments as visemes; one file or a batch."""
    with running("export", progress, quiet=quiet) as rep:
        from ..errors import AudioError
        from ..export import parse_formats

        chosen = tuple(parse_formats(formats))
        inputs = expand_inputs(source, (".align.json", ".textgrid") if chosen == ("visemes",) else MOTION_SUFFIXES)
        if audio is not None and not audio.is_file():
            raise AudioError(f"Audio file {audio} does not exist.")
        if inputs.batch and (alignment is not None or audio is not None):
            raise KmtalkError("--alignment/--audio apply to one source; in a batch each motion's SOURCE.align.json beside it is used.")
        if output == STDOUT and (inputs.batch or chosen != ("visemes",)):
            raise KmtalkError("-o - (stdout) takes one source exported as visemes; the other formats are files.")
        if output is not None and output != STDOUT and not inputs.batch and len(chosen) == 1:
            check_single_output(output, chosen[0])  # the output rule, before any work
        out = output if output == STDOUT else batch_output(output, inputs.batch)
        job = ExportJob(chosen, viseme_set.value, alignment, template, subject, fps, audio, out, bake, smoothing, inputs.batch)
        finish(run_inputs(job, inputs, reporter=rep, jobs=jobs, force=force, label="Exporting"), "exported")


def _head_pose_beside(motion: Path, n_frames: int) -> Any:
    """``MOTION.head.npz`` (head rotation and gaze, from ``kmtalk animate``) when it lies beside the
    motion and has its frame count; None otherwise (a stale one is reported and ignored)."""
    from ..face.headpose import head_pose_path, read_head_pose

    path = head_pose_path(motion)
    if not path.is_file():
        return None
    pose = read_head_pose(path)
    if pose.n_frames != n_frames:
        notice(f"{path.name} has {pose.n_frames} frames but the motion {n_frames}; exporting without head pose.")
        return None
    info(f"Head and eye motion from {path.name}")
    return pose
