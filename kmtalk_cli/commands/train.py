"""``kmtalk train``: train a backbone (optionally with key motions) on a VOCASET/BIWI-format corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..progress import ProgressMode
from .common import AlignmentSource, ProgressOpt, QuietOpt, finite, info, progress_bar, running


def learning_rate(value: float) -> float:
    """Typer callback for ``--lr``: a finite rate above 0 and at most 1 (AdamW diverges far below that)."""
    import math

    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise typer.BadParameter(f"must be a number above 0 and at most 1, not {value:g}.")
    return value


def _stage_epochs(values: list[str], stages: tuple[str, ...]) -> dict[str, int] | None:
    from ..errors import KmtalkError

    parsed: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        if name not in stages or not count.isdigit() or int(count) < 1:
            raise KmtalkError(f"--stage-epochs takes STAGE=N with N ≥ 1 and STAGE one of {', '.join(stages)}; got '{value}'.")
        parsed[name] = int(count)
    return parsed or None


def train(
    data: Annotated[Path, typer.Option("--data", help="Corpus directory (templates.pkl, vertices_npy/, wav/).")],
    out: Annotated[Path, typer.Option("--out", help="Run directory for checkpoints and the training log.")],
    backbone: Annotated[str, typer.Option("--backbone", "-b", help="Backbone name (see `kmtalk backbones`).")] = "faceformer",
    preset: Annotated[str, typer.Option("--preset", help="Size preset of the backbone.")] = "default",
    config: Annotated[Path | None, typer.Option("--config", help="JSON file of backbone config fields (and 'key_motions': {...}).")] = None,
    key_motions: Annotated[bool, typer.Option("--key-motions/--no-key-motions", help="Train with KMTalk key motions (progressive stages).")] = False,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs per training stage.", min=1, max=1_000_000)] = 30,
    stage_epochs: Annotated[list[str] | None, typer.Option("--stage-epochs", help="STAGE=N: epochs for one stage instead of --epochs (repeatable).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sequences per batch.", min=1, max=65_536)] = 4,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate (AdamW), above 0 and at most 1.", callback=learning_rate)] = 1e-3,
    lr_schedule: Annotated[str, typer.Option("--lr-schedule", help="constant, or cosine: each stage decays the rate to 0.")] = "constant",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.", min=0, max=2**31 - 1)] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    stage: Annotated[list[str] | None, typer.Option("--stage", help="Train only these stages (repeatable).")] = None,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes", help="Time budget per stage (minutes).", min=0.01, max=1e6, callback=finite)] = None,
    alignments: Annotated[
        AlignmentSource,
        typer.Option("--alignments", help="Phones key motions train on: true (the corpus' TextGrids) or aligner (the built-in aligner on each sequence's speech and transcript, as at inference)."),
    ] = AlignmentSource.true,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Degrade the training speech at random (reverb, band-limit, noise, gain) for real-world robustness.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from RUN_DIR/last.safetensors.")] = False,
    quiet: QuietOpt = False,
    progress: ProgressOpt = ProgressMode.bar,
) -> None:
    """Train a backbone on a corpus: validation each epoch, best/last checkpoints, DDP under torchrun."""
    with running("train", progress, quiet=quiet) as rep:
        from ..data.dataset import open_dataset
        from ..errors import KmtalkError
        from ..trainable import build_run
        from ..training import LR_SCHEDULES, TrainOptions, load_items, seed_everything
        from ..training import train as run_training

        overrides: dict[str, Any] = {}
        km_overrides: dict[str, Any] = {}
        if config is not None:
            try:
                overrides = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise KmtalkError(f"Config file {config} is not readable JSON ({exc}).") from None
            if not isinstance(overrides, dict):
                raise KmtalkError(f"Config file {config} must hold a JSON object of config fields.")
            km_overrides = overrides.pop("key_motions", {}) or {}
        if out.exists() and not out.is_dir():
            raise KmtalkError(f"Run directory {out} is a file; give a folder for --out.")
        if resume and not (out / "last.safetensors").is_file():
            raise KmtalkError(f"Nothing to resume in {out}: it has no last.safetensors.")
        if not resume and (out / "last.safetensors").exists():
            raise KmtalkError(f"Run directory {out} already has checkpoints; pass --resume to continue it or choose another --out.")
        if lr_schedule not in LR_SCHEDULES:
            raise KmtalkError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}; got '{lr_schedule}'.")
        if resume and key_motions:  # a run keeps its schedule
            from ..backbones.checkpoint import read_checkpoint_info
            from ..keymotion_model import recorded_key_motions

            km_overrides.setdefault("schedule", recorded_key_motions(read_checkpoint_info(out / "last.safetensors"))["schedule"])
        if alignments is AlignmentSource.aligner and not key_motions:
            raise KmtalkError("--alignments aligner is for key-motion training; add --key-motions or drop it (a plain model uses no phones).")
        dataset = open_dataset(data)
        seed_everything(seed)  # the initial weights too, not only the batches
        model, description, lips = build_run(
            backbone, dataset, preset=preset, overrides=overrides, key_motions=key_motions, key_motion_overrides=km_overrides
        )
        with progress_bar("Loading the corpus", enabled=not quiet) as update:
            train_items = load_items(dataset, dataset.split("train"), description["styles"], update, alignments=alignments.value)
        val_items = load_items(dataset, dataset.split("val"), description["styles"], alignments=alignments.value) if "val" in dataset.splits else []
        description["training"].update({"train_sequences": len(train_items), "val_sequences": len(val_items)})
        if key_motions:
            description["training"]["alignments"] = alignments.value
        options = TrainOptions(
            epochs=epochs, stage_epochs=_stage_epochs(stage_epochs or [], model.stages), batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, seed=seed, device=device,
            stages=tuple(stage) if stage else None, max_minutes=max_minutes, augment=augment,
        )
        n_params = sum(p.numel() for p in model.parameters())
        info(f"Training {backbone}{' + key motions' if key_motions else ''} ({n_params / 1e6:.2f} M parameters) "
             f"on {len(train_items)} sequences, validating on {len(val_items)}; stages: {', '.join(options.stages or model.stages)}")
        log_path = out / "train_log.jsonl"

        def log(entry: Any) -> None:
            from dataclasses import asdict

            out.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(entry)) + "\n")
            rep.emit("epoch", **asdict(entry))
            if quiet or rep.mode is ProgressMode.json:
                return
            val = "" if entry.val_loss is None else f" val loss {entry.val_loss:.4g}"
            lve = "" if entry.val_lve_mm is None else f" val LVE {entry.val_lve_mm:.2f} mm"
            info(f"[{entry.stage}] epoch {entry.epoch + 1}: train loss {entry.train_loss:.4g}{val}{lve} ({entry.seconds:.1f} s)")

        created = not out.exists()
        try:
            with progress_bar(f"Training {backbone}", enabled=not quiet) as update:
                result = run_training(model, train_items, val_items, out, description, options, resume=resume, lips=lips, log=log, progress=update)
        except BaseException:
            if created and not (out / "best.safetensors").exists():
                import shutil

                shutil.rmtree(out, ignore_errors=True)  # a run that saved nothing leaves no empty folder
            raise
        info(f"Done in {result.seconds / 60:.1f} min: {result.best} (best), {result.last} (last)")
