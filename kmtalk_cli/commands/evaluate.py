"""``kmtalk evaluate``: score a checkpoint or a directory of saved predictions on a corpus split."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..progress import ProgressMode
from .common import AlignmentSource, ProgressOpt, QuietOpt, fail, info, progress_bar, running


class StyleMode(str, Enum):
    own = "own"
    average = "average"


def default_stem(source: Path, split: str) -> Path:
    """``run/best.safetensors`` → ``run/best.test.eval``; ``preds/`` → ``preds.test.eval`` beside it."""
    stem = source.name if source.is_dir() else source.stem
    return source.parent / f"{stem}.{split}.eval"


def evaluate(
    source: Annotated[
        Path, typer.Argument(metavar="CHECKPOINT_OR_PRED_DIR", help="A kmtalk checkpoint (.safetensors), or a directory of <name>.npy predictions.")
    ],
    data: Annotated[Path, typer.Option("--data", "-d", help="Corpus directory (templates.pkl, vertices_npy/, wav/, splits.json).")],
    split: Annotated[str, typer.Option("--split", help="Split to evaluate, from the corpus' splits.json.")] = "test",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report stem: writes STEM.json and STEM.md (a .json/.md suffix is dropped first) (default: <checkpoint stem>.<split>.eval beside it).")
    ] = None,
    style: Annotated[
        str | None, typer.Option("--style", help="Training subject whose style drives every sequence (pred dirs: the _condition_ files to use).")
    ] = None,
    style_mode: Annotated[
        StyleMode | None,
        typer.Option("--style-mode", help="own: each sequence's subject when the model was trained on it, else the average style (default); average: always the average style."),
    ] = None,
    alignments: Annotated[
        AlignmentSource, typer.Option("--alignments", help="Phones for key-motion checkpoints: aligner (align the speech) or true (the corpus' TextGrids).")
    ] = AlignmentSource.aligner,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing reports.")] = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Evaluate LVE (paper form and true mm), FDD and MVE per sequence and pooled; print the table."""
    with running("evaluate", progress, quiet=quiet) as rep:
        from ..atomic import check_output_path
        from ..data.dataset import open_dataset
        from ..errors import KmtalkError
        from ..evaluation import ModelPredictions, evaluate as run_evaluation, predictions_from_dir, resolve_regions
        from ..evaluation import format_markdown, write_json, write_markdown

        if style is not None and style_mode is not None:
            raise KmtalkError("Give --style or --style-mode, not both.")
        if not source.exists():
            raise KmtalkError(f"{source} does not exist; give a checkpoint file or a directory of predictions.")
        if source.is_dir() and (source / "best.safetensors").is_file():
            source = source / "best.safetensors"  # a training run folder: its best checkpoint
        stem = out if out is not None else default_stem(source, split)
        if stem.suffix.lower() in (".json", ".md"):  # -o report.json: the report's two files, report.json and report.md
            stem = stem.with_suffix("")
        json_path = check_output_path(stem.with_name(stem.name + ".json"), force=force)
        md_path = check_output_path(stem.with_name(stem.name + ".md"), force=force)

        if source.is_dir():
            if style_mode is StyleMode.average:
                raise KmtalkError("--style-mode average applies to checkpoints; saved predictions already have a style.")
            dataset = open_dataset(data, require_audio=False)
            predict = predictions_from_dir(source, dataset.split(split), style=style)
        else:
            from ..models import load_model

            model = load_model(source)
            dataset = open_dataset(data, fps=model.fps)
            mode = (style_mode or StyleMode.own).value
            predict = ModelPredictions(model, dataset, style=style, style_mode=mode, alignments=alignments.value)
        regions = resolve_regions(dataset)
        with progress_bar(f"Evaluating {split}", enabled=not quiet) as update:
            report = run_evaluation(
                dataset,
                split,
                predict,
                lip_idx=regions.lips,
                upper_idx=regions.upper_face,
                regions_source=regions.source,
                model=predict.description,
                with_audio=not source.is_dir(),
                progress=update,
            )
        typer.echo(format_markdown(report), nl=False)
        from ..atomic import transaction

        with transaction():  # the two report files land together
            write_json(report, json_path, force=force)
            write_markdown(report, md_path, force=force)
        info(f"Wrote {json_path} and {md_path}")
        for failure in report.failures:
            rep.file(failure.name, "failed", message=failure.message)
        if report.failures:
            total = len(report.failures) + len(report.sequences)
            raise fail(f"{len(report.failures)} of {total} sequences could not be evaluated; the pooled values leave them out.")
