"""``kmtalk export``: a motion or an alignment in the formats other tools read."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import finite, info, notice, progress_bar, user_errors

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


def export(
    source: Annotated[
        Path, typer.Argument(help="Motion .npy/.npz (T, V·3 or V, 3), or an alignment (.json from kmtalk align, or .TextGrid) for visemes.")
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
        typer.Option("--output", "-o", help="Output file (a folder for obj/ply); with several formats, the stem they share (default: beside SOURCE)."),
    ] = None,
    bake: Annotated[
        bool | None,
        typer.Option("--bake/--no-bake", help="glb: per-frame baked shapes, or always the rig's morph targets (default: bake when those miss by more than 1.5 mm)."),
    ] = None,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Temporal smoothing of the fitted weights: λ of the vertex-acceleration penalty (0 = none).", min=0.0, max=10.0, callback=finite)
    ] = 0.002,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Export a motion as ARKit weights (Live Link Face CSV, JSON), glTF or OBJ/PLY sequences, or an alignment as visemes."""
    with user_errors():
        from ..errors import AlignmentError, AudioError, MotionError
        from ..export import check_outputs, default_output, parse_formats, write_motion
        from ..export.visemes import read_phones, visemes, write_visemes
        from ..validate import check_motion_scale

        chosen = parse_formats(formats)
        suffix = source.suffix.lower()
        if suffix not in MOTION_SUFFIXES + ALIGNMENT_SUFFIXES:
            raise MotionError(f"{source} is neither a motion (.npy/.npz) nor an alignment (.json/.TextGrid).")
        is_motion = suffix in MOTION_SUFFIXES
        if not is_motion and chosen != ["visemes"]:
            others = ", ".join(f for f in chosen if f != "visemes")
            raise AlignmentError(f"An alignment can only be exported as visemes; {others} need a motion (.npy/.npz).")
        if is_motion and "visemes" in chosen and alignment is None:
            raise AlignmentError("--format visemes from a motion needs its alignment: pass --alignment ALIGN.json or .TextGrid.")
        if audio is not None and not audio.is_file():
            raise AudioError(f"Audio file {audio} does not exist.")

        if output is not None and len(chosen) == 1:
            targets = {chosen[0]: check_single_output(output, chosen[0])}
        else:
            stem = output_stem(output) if output is not None else output_stem(source)
            targets = {fmt: default_output(stem, fmt, viseme_set.value) for fmt in chosen}
        check_outputs(targets, force=force)

        motion_targets = {fmt: path for fmt, path in targets.items() if fmt != "visemes"}
        vertices = face = None
        if is_motion:  # read and check the motion before writing anything
            from ..face.template import load_template
            from ..motion import load_motion

            face = load_template(template, subject=subject)
            vertices = check_motion_scale(load_motion(source, face.n_vertices), face.vertices, f"Motion file {source}")

        written: list[Path] = []
        if "visemes" in targets:
            phones = read_phones(alignment if is_motion else source)
            if vertices is not None and abs(phones.duration - len(vertices) / fps) > 2.0 / fps:
                notice(f"The alignment lasts {phones.duration:.2f} s but the motion {len(vertices) / fps:.2f} s at {fps:g} fps.")
            track = visemes(phones, viseme_set.value, sound_file=str(audio) if audio is not None else None)
            written.append(write_visemes(track, targets["visemes"], force=force))
        if motion_targets:
            with progress_bar(f"Exporting {source.name}", enabled=not quiet) as progress:
                written += write_motion(
                    vertices, face, motion_targets, fps, audio, force,
                    bake=bake, smoothing=smoothing, frame_stem=output_stem(source).name, log=info, progress=progress,
                )
        for path in written:
            info(f"Wrote {path}")
