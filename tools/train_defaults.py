"""Regenerate the bundled default weights: corpus → six trainings → test-split evaluation → fp16
checkpoints and model cards in ``kmtalk_cli/weights/``.

    python tools/train_defaults.py --work /tmp/defaults            # everything (about 2 h on 2 busy cores)
    python tools/train_defaults.py --work /tmp/defaults --only faceformer-km --jobs 1
    python tools/train_defaults.py --work /tmp/seed1 --corpus /tmp/defaults/corpus --only selftalk-km --seed 1 --no-install
    python tools/train_defaults.py --work /tmp/no-audio --corpus /tmp/defaults/corpus --only selftalk-km --set audio_guidance=false --no-install
    python tools/train_defaults.py --work /tmp/level --corpus /tmp/defaults/corpus --only selftalk-km --config 'audio={"normalise": "level"}' --no-install

The last three are the recipe's seed and variant runs (README, "Bundled weights"): another training
seed, a key-motion option changed (``--set``, JSON values) or a backbone option (``--config``), on the same corpus; they are never
installed as the bundled weights.

Every step is a ``kmtalk`` command (printed, and written into the cards), so each checkpoint can
be rebuilt by hand. Finished steps are skipped when run again with the same ``--work``.
The sizes are chosen for the bundled head (5,080 vertices): every vertex-sized layer is 32–96
wide, so the six files stay near 40 MB in fp16 together (40.78 MB, of which about 0.6 MB per
key-motion model is the rig prior's basis), and each trains on one CPU thread in 20–41 minutes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "kmtalk_cli" / "weights"
SEED = 0  # the corpus' seed, and the bundled weights' training seed
# The protocol of benchmarks/paper_protocol.py (preset full): hidden prosody and per-subject voice
# warp (synth defaults), 16 subjects of which the espeak-named family is never trained on.
CORPUS_COMMAND = ["synth", "--preset", "vocaset-like", "--subjects", "16", "--held-out-family", "espeak-named", "--seed", str(SEED)]
# The paper's key-motion decoder (audio features only), learning with completion in the same steps
# (schedule "joint"), on the rig's face at the key frames (``rig_prior``: the decoder corrects it from
# the audio). The phones come from the built-in aligner in training as at inference.
KEY_MOTIONS = {"decoder_dim": 64, "embed_dim": 32, "phone_context": False, "schedule": "joint", "rig_prior": True}
#: Equal optimiser steps: a key-motion model splits the plain model's 30 final-stage epochs over its
#: stages as paper_protocol.km_stage_epochs does (10% refine, the rest keys and completion together).
KM_EPOCHS = {"joint": 27, "refine": 3}


@dataclass(frozen=True)
class Recipe:
    name: str  # file stem in kmtalk_cli/weights
    backbone: str
    key_motions: bool
    config: dict
    stage_epochs: dict[str, int] = field(default_factory=dict)
    lr_schedule: str = "cosine"  # the same schedule for every bundled model
    alignments: str = "aligner"  # phones for key motions (kmtalk train --alignments); unused by plain models

    def train_args(self, corpus: Path, out: Path, config_path: Path, seed: int = SEED) -> list[str]:
        args = ["train", "--data", str(corpus), "--out", str(out), "--backbone", self.backbone, "--config", str(config_path),
                "--seed", str(seed), "--augment", "--device", "cpu", "--quiet", "--lr-schedule", self.lr_schedule]
        args += ["--key-motions", "--alignments", self.alignments] if self.key_motions else []
        for stage, n in self.stage_epochs.items():
            args += ["--stage-epochs", f"{stage}={n}"]
        return args


RECIPES = [  # plain ones first; two run at once. Same cosine schedule and optimiser steps for all.
    Recipe("selftalk", "selftalk", False, {"d_model": 96}, {"main": 30}),
    Recipe("codetalker", "codetalker", False, {"hidden": 48}, {"prior": 20, "speech": 30}),
    Recipe("faceformer", "faceformer", False, {"d_model": 64}, {"main": 30}),
    Recipe("codetalker-km", "codetalker", True, {"hidden": 48, "key_motions": KEY_MOTIONS}, {"prior": 20, **KM_EPOCHS}),
    Recipe("selftalk-km", "selftalk", True, {"d_model": 96, "key_motions": KEY_MOTIONS}, KM_EPOCHS),
    Recipe("faceformer-km", "faceformer", True, {"d_model": 64, "key_motions": KEY_MOTIONS}, KM_EPOCHS),
]


def kmtalk(args: list[str], log: Path | None = None, threads: int | None = None) -> None:
    """Run ``python -m kmtalk_cli ARGS`` (output to ``log``); stop the whole tool if it fails."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "kmtalk_cli", *args]
    print("$ kmtalk " + shlex.join(args), flush=True)
    with open(log, "w", encoding="utf-8") if log else open(os.devnull, "w") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`kmtalk {shlex.join(args)}` failed (exit {done.returncode}); see {log}.")


def train_one(recipe: Recipe, work: Path, threads: int, seed: int = SEED) -> dict:
    """Train and evaluate one recipe (skipped when its run finished before)."""
    run = work / "runs" / recipe.name
    summary_path = run / "summary.json"
    if summary_path.is_file():
        return with_unseen(json.loads(summary_path.read_text()), run, work, threads, summary_path)
    run.mkdir(parents=True, exist_ok=True)
    config_path = run / "config.json"
    config_path.write_text(json.dumps(recipe.config, indent=1))
    train_args = recipe.train_args(work / "corpus", run / "model", config_path, seed)
    resume = (run / "model" / "last.safetensors").is_file()
    kmtalk(train_args + (["--resume"] if resume else []), run / f"train{'-resumed' if resume else ''}.log", threads)
    epochs = [json.loads(line) for line in (run / "model" / "train_log.jsonl").read_text().splitlines() if line.strip()]
    seconds = sum(e["seconds"] for e in epochs)  # across resumes; corpus loading left out
    eval_args = ["evaluate", str(run / "model" / "best.safetensors"), "--data", str(work / "corpus"), "--split", "test",
                 "--out", str(run / "test"), "--force", "--quiet"]
    kmtalk(eval_args, run / "evaluate.log", threads)
    report = json.loads((run / "test.json").read_text())
    summary = {"train_args": train_args, "eval_args": eval_args, "train_seconds": round(seconds, 1), "threads": threads, "seed": seed,
               "test": report["pooled"] if "pooled" in report else report}
    summary_path.write_text(json.dumps(summary, indent=1))
    return with_unseen(summary, run, work, threads, summary_path)


def with_unseen(summary: dict, run: Path, work: Path, threads: int, summary_path: Path) -> dict:
    """Add the score on the voice family no model trained on (the corpus' ``unseen`` split), once."""
    splits = json.loads((work / "corpus" / "splits.json").read_text())
    if "unseen" in summary or "unseen" not in splits:
        return summary
    args = ["evaluate", str(run / "model" / "best.safetensors"), "--data", str(work / "corpus"), "--split", "unseen",
            "--out", str(run / "unseen"), "--force", "--quiet"]
    kmtalk(args, run / "evaluate-unseen.log", threads)
    report = json.loads((run / "unseen.json").read_text())
    summary = {**summary, "unseen": report["pooled"] if "pooled" in report else report}
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary


def install_checkpoint(recipe: Recipe, summary: dict, work: Path, weights: Path, command: str) -> Path:
    """Write the best checkpoint in fp16 with its provenance, and its model card."""
    import hashlib

    from kmtalk_cli.backbones.checkpoint import read_checkpoint_info, save_checkpoint
    from kmtalk_cli.models import load_model
    from kmtalk_cli.weights import card_text
    from kmtalk_cli.weights.repro import REPRO_CHECKPOINT, REPRO_OPTIONS, card_section, repro_lve

    source = work / "runs" / recipe.name / "model" / "best.safetensors"
    info = read_checkpoint_info(source)
    model = load_model(source).model
    train_command = "kmtalk " + shlex.join(summary["train_args"]).replace(str(work), "WORK")
    info["training"] = {
        **{k: v for k, v in info["training"].items() if k not in ("data",)},
        "data": f"kmtalk {shlex.join(CORPUS_COMMAND)} WORK/corpus",
        "data_code": f"kmtalk at commit {(work / 'corpus-commit.txt').read_text().strip()}",
        "command": train_command,
        "regenerate": command,
        "config_file": recipe.config,
        "seed": summary.get("seed", SEED),
        "minutes": round(summary["train_seconds"] / 60, 1),
        "threads": summary["threads"],
        **({"alignments": recipe.alignments} if recipe.key_motions else {}),
    }
    info["metrics"] = {**info.get("metrics", {}), **{k: summary[k] for k in ("test", "unseen") if k in summary}}
    target = weights / f"{recipe.name}.safetensors"
    save_checkpoint(model, target, info, half=True, force=True)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    n_params = sum(p.numel() for p in model.parameters())
    card = weights / f"{recipe.name}.md"
    repro = ""
    if (recipe.backbone, recipe.key_motions) == REPRO_CHECKPOINT:  # the default model records today's figure
        from kmtalk_cli.data.synth import build_corpus

        small = work / "repro-corpus"
        if not small.is_dir():
            build_corpus(small, REPRO_OPTIONS)
        repro = card_section(repro_lve(target, small), "Recorded when these weights were trained.")
    card.write_text(card_text(target.name, read_checkpoint_info(target), n_params, target.stat().st_size, digest, repro), encoding="utf-8")
    return target


def key_motion_option(text: str) -> tuple[str, object]:
    """``KEY=JSON`` of ``--set`` or ``--config`` → (key, value); a bare word that is not JSON is a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set and --config take KEY=VALUE, e.g. audio_guidance=false; got '{text}'.")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="Working directory (corpus, runs, logs).")
    parser.add_argument("--only", default="", help="Comma-separated recipe names (default: all six).")
    parser.add_argument("--jobs", type=int, default=2, help="Trainings at once (each gets cores/jobs threads).")
    parser.add_argument("--no-install", action="store_true", help="Train and evaluate, but leave kmtalk_cli/weights alone.")
    parser.add_argument("--seed", type=int, default=SEED, help=f"Training seed (default {SEED}; the corpus keeps seed {SEED}).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="Change a key-motion option of the + KM recipes, e.g. audio_guidance=false (repeatable).")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=JSON", dest="config_changes",
                        help="Change a backbone option of the chosen recipes, e.g. 'audio={\"normalise\": \"level\"}' (repeatable).")
    parser.add_argument("--corpus", type=Path, help="Use this corpus (built by an earlier run) instead of building WORK/corpus.")
    args = parser.parse_args()

    recipes = [r for r in RECIPES if not args.only or r.name in args.only.split(",")]
    if not recipes:
        raise SystemExit(f"--only names none of {', '.join(r.name for r in RECIPES)}.")
    if (args.seed != SEED or args.set or args.config_changes) and not args.no_install:
        raise SystemExit("--seed, --set and --config train variants of the bundled recipe; add --no-install (the bundled weights are seed 0 of the recipe).")
    changes = dict(key_motion_option(text) for text in args.set)
    backbone_changes = dict(key_motion_option(text) for text in args.config_changes)
    recipes = [replace(r, config={**r.config, **backbone_changes}) for r in recipes]
    recipes = [replace(r, config={**r.config, "key_motions": {**KEY_MOTIONS, **changes}}) if r.key_motions else r for r in recipes]
    work = args.work.resolve()
    corpus = work / "corpus"
    if args.corpus is not None:
        if not (args.corpus / "splits.json").is_file():
            raise SystemExit(f"--corpus {args.corpus} is not a corpus (no splits.json).")
        work.mkdir(parents=True, exist_ok=True)
        if not corpus.exists():
            corpus.symlink_to(args.corpus.resolve(), target_is_directory=True)
            source = args.corpus.resolve().parent / "corpus-commit.txt"
            (work / "corpus-commit.txt").write_text(source.read_text() if source.is_file() else "unknown")
    if not (corpus / "splits.json").is_file():
        kmtalk([*CORPUS_COMMAND, str(corpus), "--quiet"], work / "synth.log")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        (work / "corpus-commit.txt").write_text(commit or "unknown")
    threads = max(1, (os.cpu_count() or 2) // args.jobs)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        summaries = dict(zip([r.name for r in recipes], pool.map(lambda r: train_one(r, work, threads, args.seed), recipes)))
    if not args.no_install:
        for recipe in recipes:
            install_checkpoint(recipe, summaries[recipe.name], work, WEIGHTS, "python tools/train_defaults.py --work WORK")
    print("| checkpoint | backbone | key motions | size (MB) | train (min) | test LVE (mm) | unseen voices LVE (mm) | LVE paper (×1e-5 m²) | FDD (×1e-7 m²) | MVE (mm) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for recipe in recipes:
        s, t = summaries[recipe.name], summaries[recipe.name]["test"]
        unseen = f"{s['unseen']['lve_mm']:.3f}" if "unseen" in s else "–"
        file = WEIGHTS / f"{recipe.name}.safetensors"
        size = f"{file.stat().st_size / 1e6:.1f}" if file.is_file() and not args.no_install else "–"
        print(f"| `{recipe.name}` | {recipe.backbone} | {'yes' if recipe.key_motions else 'no'} | {size} | {s['train_seconds'] / 60:.0f} | "
              f"{t['lve_mm']:.3f} | {unseen} | {t['lve_paper'] * 1e5:.4f} | {t['fdd'] * 1e7:+.4f} | {t['mve_mm']:.3f} |")


if __name__ == "__main__":
    main()
