"""KMTalk's "add key motions to existing methods" table under the paper's protocol, from scratch.

One command builds the corpus, trains every model and prints every table:

- **Corpus**: ``kmtalk synth`` with hidden prosody and per-subject vocal-tract warp, one voice
  family held out of training entirely (the ``unseen`` split).
- **Test-time phones from recognition**: every key-motion model and the rig get the aligner's
  phones for the words *pocketsphinx recognised* in the test audio, never the true sentence.
- **Main +KM row = the paper's decoder**: key motions from audio features at the key frames
  only (``phone_context`` off). Phone context is a separate extension row.
- **Equal optimiser steps**: a plain backbone's final stage gets E epochs; a key-motion model
  learns its keys and completion together in the same steps (``joint``, 90% of E) and then
  refines the key decoder alone (``refine``, 10%, at least 1). Pre-stages (CodeTalker's motion
  prior) get E in both. Every stage uses the same cosine learning-rate schedule; the tables
  print each model's wall time (a joint step costs more than a plain one).
- **Seeds**: plain and +KM rows over ``--seeds`` (≥ 3 by default), mean ± s.d.
- **Ablations** (first seed): keys only (the predicted key motions linearly interpolated, no
  completion), completion given the true key motions (what it adds where the keys are right;
  with and without audio guidance), no audio guidance in completion, completion learnt from the
  decoder's own keys (``completion_keys: predicted``), ±2 frames of audio at each key
  (``key_window``), the staged schedule (keys, then completion on noisy true keys: E split
  40/50/10); floors: the true key motions interpolated (how much there is
  between the keys for completion to add), the rig driven by the aligner (no learning) and the
  motionless template.

    python benchmarks/paper_protocol.py --preset tiny --work /tmp/pp-tiny     # minutes on 2 cores (a smoke run)
    python benchmarks/paper_protocol.py --preset small --work /tmp/pp-small   # about 70 min: three backbones, three seeds
    python benchmarks/paper_protocol.py --preset full --work /tmp/pp-full     # hours: the README tables

Finished trainings are reused from ``--work``; ``results.json`` there holds every number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from keymotion_gain import CachedAlignments, completed_true_keys, keys_only, true_keys_interpolated  # noqa: E402

from kmtalk_cli.trainable import build_run  # noqa: E402
from kmtalk_cli.data.dataset import open_dataset  # noqa: E402
from kmtalk_cli.data.synth import SynthOptions, build_corpus  # noqa: E402
from kmtalk_cli.evaluation import evaluate, resolve_regions  # noqa: E402
from kmtalk_cli.models import load_model  # noqa: E402
from kmtalk_cli.training import TrainOptions, load_items, seed_everything, train  # noqa: E402


@dataclass(frozen=True)
class Preset:
    corpus: SynthOptions
    epochs: int
    seeds: tuple[int, ...]
    backbones: tuple[str, ...]
    sizes: dict[str, Any]
    batch_size: int = 8


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        SynthOptions(subjects=7, sentences=6, max_words=8, held_out_family="espeak-female"),
        epochs=4, seeds=(0, 1, 2), backbones=("selftalk",),
        sizes={"faceformer": {"d_model": 32}, "codetalker": {"hidden": 32}, "selftalk": {"d_model": 48},
               "key_motions": {"decoder_dim": 32, "embed_dim": 32, "decoder_layers": 1}},
        batch_size=4,
    ),
    "small": Preset(
        SynthOptions(subjects=9, sentences=12, max_words=10, held_out_family="espeak-female"),
        epochs=10, seeds=(0, 1, 2), backbones=("faceformer", "codetalker", "selftalk"),
        sizes={"faceformer": {"d_model": 32}, "codetalker": {"hidden": 32}, "selftalk": {"d_model": 64},
               "key_motions": {"decoder_dim": 48, "embed_dim": 32}},
        batch_size=4,
    ),
    "full": Preset(
        SynthOptions(subjects=16, sentences=40, held_out_family="espeak-named"),
        epochs=30, seeds=(0, 1, 2), backbones=("faceformer", "codetalker", "selftalk"),
        sizes={"faceformer": {"d_model": 64}, "codetalker": {"hidden": 48}, "selftalk": {"d_model": 96},
               "key_motions": {"decoder_dim": 64, "embed_dim": 32}},
    ),
}
#: Key-motion variants: the paper's decoder, the extensions and the ablations. Every one but
#: ``km-staged`` learns keys and completion in the same steps (``schedule: joint``, the default).
PAPER_DECODER: dict[str, Any] = {"phone_context": False}  # audio features only; ``schedule: joint`` (the default)
VARIANTS: dict[str, dict[str, Any]] = {
    "km": PAPER_DECODER,
    "km-phones": {**PAPER_DECODER, "phone_context": True},
    "km-rig": {**PAPER_DECODER, "rig_prior": True},
    "km-rig-rec": {**PAPER_DECODER, "rig_prior": True},
    "km-no-audio": {**PAPER_DECODER, "audio_guidance": False},
    "km-predicted": {**PAPER_DECODER, "completion_keys": "predicted"},
    "km-window": {**PAPER_DECODER, "key_window": 2},
    "km-staged": {"phone_context": False, "key_noise": 0.3, "schedule": "staged"},
}


#: Variants trained on the phones of the *recognised* words, as they are given at test time.
TRAINED_ON_RECOGNISED = frozenset({"km-rig-rec"})


def recognised_items(items: list) -> list:
    """Training items with the aligner's phones for the words pocketsphinx recognises (cached per name)."""
    from dataclasses import replace as replace_item

    from kmtalk_cli.alignment import align
    from kmtalk_cli.audio import Audio

    cache = Recognised.cache
    out = []
    for it in items:
        key = f"recognised:{it.name}"
        if key not in cache:
            cache[key] = align(Audio(it.audio, 16_000), None, backend="pocketsphinx")
        out.append(replace_item(it, alignment=cache[key]))
    return out


def km_stage_epochs(epochs: int, schedule: str = "joint") -> dict[str, int]:
    """The plain model's E final-stage epochs split over the key-motion stages (same total)."""
    refine = max(1, round(0.1 * epochs))
    if schedule == "joint":
        return {"joint": max(1, epochs - refine), "refine": refine}
    keys = max(1, round(0.4 * epochs))
    return {"keys": keys, "complete": max(1, epochs - keys - refine), "refine": refine}


class Recognised(CachedAlignments):
    """Phones from the aligner run on the *recognised* words (no transcript), cached per sequence."""

    def _alignment(self, seq: Any) -> Any:  # noqa: D102
        from kmtalk_cli.alignment import align

        key = f"recognised:{seq.name}"
        if key not in self.cache:
            self.cache[key] = align(seq.audio, None, backend="pocketsphinx")
        return self.cache[key]


def train_one(dataset: Any, items: tuple[list, list], preset: Preset, backbone: str, variant: str | None, seed: int, out: Path) -> Path:
    """Train (or reuse) one model; returns its best checkpoint."""
    if (out / "done").is_file():
        return out / "best.safetensors"
    km = None if variant is None else {**preset.sizes.get("key_motions", {}), **VARIANTS[variant]}
    seed_everything(seed)
    model, description, lips = build_run(
        backbone, dataset, overrides=preset.sizes.get(backbone, {}), key_motions=km is not None, key_motion_overrides=km or {}
    )
    stage_epochs = km_stage_epochs(preset.epochs, km.get("schedule", "joint")) if km is not None else {}
    options = TrainOptions(
        epochs=preset.epochs, stage_epochs=stage_epochs, batch_size=preset.batch_size, seed=seed, val_predict_items=2, lr_schedule="cosine"
    )
    if variant in TRAINED_ON_RECOGNISED:
        items = (recognised_items(items[0]), recognised_items(items[1]))
    began = time.perf_counter()
    train(model, items[0], items[1], out, description, options, lips=lips)
    (out / "done").write_text(json.dumps({"seconds": round(time.perf_counter() - began, 1)}))
    return out / "best.safetensors"


def score(dataset: Any, split: str, predict: Any) -> dict[str, float]:
    regions = resolve_regions(dataset)
    pooled = evaluate(dataset, split, predict, lip_idx=regions.lips, upper_idx=regions.upper_face).pooled
    return {"lve_mm": pooled.lve_mm, "lve_paper": pooled.lve_paper, "fdd": pooled.fdd, "mve_mm": pooled.mve_mm}


def rig_by_aligner(dataset: Any) -> Any:
    """The rig, no learning, driven by the phones of the recognised words, on each subject's face."""
    from kmtalk_cli.face.rig import build_rig
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.pipeline import rig_motion

    head = bundled_template()
    rig = build_rig(head)
    helper = Recognised.__new__(Recognised)  # only its alignment cache is used

    def predict(seq: Any) -> np.ndarray:
        return rig_motion(Recognised._alignment(helper, seq), head, len(seq.vertices), seq.fps, rig=rig, rest=seq.template)

    return predict


def ablation_label(backbone: str, what: str, seed: int) -> str:
    """A row of the paper decoder's ablations; it names its backbone, since rows are keyed by label."""
    return f"… {backbone} + KM, {what}, seed {seed}"


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    out["lve_sd"] = float(statistics.stdev([r["lve_mm"] for r in runs])) if len(runs) > 1 else 0.0
    return out


def table(rows: dict[str, dict[str, Any]], split: str) -> list[str]:
    lines = [f"Split `{split}`: LVE in mm (true L2, max over lip vertices, mean over frames); ± is the s.d. over seeds.", "",
             "| model | LVE (mm) | ± | ΔLVE vs plain | LVE paper (×1e-5) | FDD (×1e-7) | MVE (mm) | seeds | train min |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows.items():
        m = r[split]
        base = r.get("base")
        delta = f"{100 * (m['lve_mm'] - rows[base][split]['lve_mm']) / rows[base][split]['lve_mm']:+.1f}%" if base else ""
        minutes = f"{r['minutes']:.1f}" if r.get("minutes") else ""
        lines.append(f"| {label} | {m['lve_mm']:.3f} | {m.get('lve_sd', 0):.3f} | {delta} | {m['lve_paper'] * 1e5:.4f} | "
                     f"{m['fdd'] * 1e7:+.4f} | {m['mve_mm']:.3f} | {r.get('seeds', '')} | {minutes} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--backbones", help="comma list (default: the preset's)")
    parser.add_argument("--seeds", help="comma list (default: the preset's, three)")
    parser.add_argument("--epochs", type=int, help="final-stage epochs E (default: the preset's)")
    parser.add_argument("--no-ablations", action="store_true")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    preset = replace(
        preset,
        backbones=tuple(args.backbones.split(",")) if args.backbones else preset.backbones,
        seeds=tuple(int(s) for s in args.seeds.split(",")) if args.seeds else preset.seeds,
        epochs=args.epochs or preset.epochs,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus = args.work / "corpus"
    if not corpus.is_dir():
        args.work.mkdir(parents=True, exist_ok=True)
        build_corpus(corpus, preset.corpus)
    dataset = open_dataset(corpus)
    styles = dataset.train_subjects()
    items = (load_items(dataset, dataset.split("train"), styles), load_items(dataset, dataset.split("val"), styles))
    splits = [s for s in ("test", "unseen") if s in dataset.splits]
    rows: dict[str, dict[str, Any]] = {}

    def evaluate_model(path: Path, predict: Any = None) -> dict[str, dict[str, float]]:
        helper = Recognised(load_model(path), dataset)
        return {split: score(dataset, split, predict(helper) if predict else helper) for split in splits}

    def minutes(path: Path) -> float:
        return json.loads((path.parent / "done").read_text())["seconds"] / 60

    for backbone in preset.backbones:
        for variant, label, seeds in ((None, backbone, preset.seeds), ("km", f"{backbone} + KM (paper decoder: audio only)", preset.seeds),
                                      ("km-phones", f"{backbone} + KM, phone context (extension)", preset.seeds[:1]),
                                      ("km-rig", f"{backbone} + KM, rig prior (extension)", preset.seeds[:1]),
                                      ("km-rig-rec", f"{backbone} + KM, rig prior, trained on recognised phones (extension)", preset.seeds[:1])):
            paths = [train_one(dataset, items, preset, backbone, variant, seed, args.work / f"{backbone}-{variant or 'plain'}-s{seed}") for seed in seeds]
            scores = [evaluate_model(p) for p in paths]
            rows[label] = {split: summary([s[split] for s in scores]) for split in splits}
            rows[label].update(seeds=len(seeds), minutes=float(np.mean([minutes(p) for p in paths])), base=backbone if variant else None)
            print(f"{label}: " + ", ".join(f"{s} {rows[label][s]['lve_mm']:.3f}" for s in splits), flush=True)
        if args.no_ablations:
            continue
        seed = preset.seeds[0]
        first = args.work / f"{backbone}-km-s{seed}" / "best.safetensors"
        rows[ablation_label(backbone, "keys only, interpolated (no completion)", seed)] = {**evaluate_model(first, keys_only), "seeds": 1, "base": backbone}
        rows[ablation_label(backbone, "completing the true key motions (against them interpolated, last rows)", seed)] = {
            **evaluate_model(first, completed_true_keys), "seeds": 1}
        for variant, what in (("km-no-audio", "no audio guidance in completion"),
                              ("km-predicted", "completion learnt from the decoder's own keys"),
                              ("km-window", "±2 frames of audio at each key (key_window 2)"),
                              ("km-staged", "staged: keys, then completion on noisy true keys (the earlier form)")):
            path = train_one(dataset, items, preset, backbone, variant, seed, args.work / f"{backbone}-{variant}-s{seed}")
            rows[ablation_label(backbone, what, seed)] = {**evaluate_model(path), "seeds": 1, "minutes": minutes(path), "base": backbone}
            if variant == "km-no-audio":
                rows[ablation_label(backbone, "no audio guidance, completing the true key motions", seed)] = {
                    **evaluate_model(path, completed_true_keys), "seeds": 1}
    recognised = Recognised.__new__(Recognised)  # only its alignment cache is used
    between = lambda seq: true_keys_interpolated(seq, recognised._alignment(seq))  # noqa: E731
    rows["true key motions, interpolated (no learning)"] = {split: score(dataset, split, between) for split in splits}
    rows["rig driven by the aligner (no learning)"] = {split: score(dataset, split, rig_by_aligner(dataset)) for split in splits}
    rows["template (no motion)"] = {split: score(dataset, split, lambda seq: np.repeat(seq.template[None], len(seq.vertices), axis=0)) for split in splits}
    header = (f"Preset `{args.preset}`: corpus {corpus} ({len(items[0])} training sequences; held-out family "
              f"`{preset.corpus.held_out_family}`), E = {preset.epochs} epochs (+KM stages {km_stage_epochs(preset.epochs)}), "
              f"cosine schedule, seeds {', '.join(map(str, preset.seeds))}; test-time phones from the recognised words.")
    lines = [header, ""]
    for split in splits:
        lines += table(rows, split) + [""]
    (args.work / "results.json").write_text(json.dumps({"preset": args.preset, "epochs": preset.epochs, "rows": rows}, indent=1, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
