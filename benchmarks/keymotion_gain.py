"""The paper's "adding key motions improves existing methods" table, reproduced on the synthetic corpus.

Each backbone is trained with and without key motions under the same budget and seed, then
scored on the test split (held-out subjects *and* sentences) with alignments from the built-in
aligner on the test audio (given the sentence text, as the paper's ASR would), not the true
timings. Ablations run on one backbone; the floor is the rig itself driven by the aligner.

Budget: ``--epochs E`` passes over the training data for a plain backbone's final stage; a
key-motion model's backbone gets the same E passes to learn completion, and its key-motion
decoder 1.5·E (``keys``) + E/2 (``refine``) passes of its own. Those passes run the audio
encoder and the small decoder only, about a fifth of a backbone pass each, and the decoder
needs them: at 6 passes its interpolated keys scored 1.98–2.43 mm lip error over two seeds,
at 18 (cosine schedule) 1.90–1.98 mm. CodeTalker's motion prior gets E passes in both. Same
seed (initial weights included), same data, same batches; every stage decays its learning
rate along a cosine (``--lr-schedule``). The table prints each model's training minutes.
``--config FILE`` sets sizes: a JSON object of backbone name → config fields, plus
``"key_motions"`` → key-motion options (e.g. the bundled defaults' sizes).

    python benchmarks/keymotion_gain.py --corpus /tmp/voca --runs /tmp/kmruns [--epochs 9] [--seeds 0]
        [--backbones faceformer,codetalker,selftalk] [--ablations faceformer] [--ablate uniform,no-audio]
        [--train-limit N]

Prints Markdown tables and writes ``RUNS/results.json``. Finished runs are reused.

    python benchmarks/keymotion_gain.py --corpus /tmp/defaults/corpus --runs /tmp/bundled --bundled

scores the bundled default weights instead (trained by ``tools/train_defaults.py`` on that
corpus with their own, larger budgets; no training here, no ablations).

    python benchmarks/keymotion_gain.py --corpus /tmp/defaults/corpus --runs /tmp/scored --split unseen \
        --checkpoints /tmp/seed1/runs/selftalk-km/model/best.safetensors,...

scores key-motion checkpoints trained elsewhere (the bundled recipe's seeds and ablations): each
one's full LVE, its keys-only LVE and the share of the keys-only error completion removes; then
the same checkpoint completing the *true* key motions, against their interpolation (what
completion adds when the keys are right). ``--timings true`` gives every row the corpus' true
phones instead of the aligner's (what the aligner's errors cost).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from kmtalk_cli.backbones.checkpoint import read_checkpoint_info
from kmtalk_cli.trainable import build_run
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.errors import KmtalkError
from kmtalk_cli.evaluation import ModelPredictions, evaluate, resolve_regions
from kmtalk_cli.models import load_model
from kmtalk_cli.training import TrainOptions, load_items, seed_everything, train

ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("uniform key frames (same density)", {"rule": "uniform"}),
    "linear": ("no key-motion decoder (linear read-out)", {"decoder": "linear"}),
    "no-audio": ("no audio guidance in completion", {"audio_guidance": False}),
    "no-phones": ("phone context off", {"phone_context": False}),
}


class CachedAlignments(ModelPredictions):
    """Align each test recording once, whichever model is scored."""

    cache: dict[str, Any] = {}

    def _alignment(self, seq: Any) -> Any:  # noqa: D102
        key = f"{self.alignments}:{seq.name}"
        if key not in self.cache:
            self.cache[key] = super()._alignment(seq)
        return self.cache[key]


SIZES: dict[str, Any] = {}  # --config: backbone name → config fields, "key_motions" → options
LR_SCHEDULE = ["cosine"]  # --lr-schedule
SPLIT = ["test"]  # --split: the held-out split every row is scored on
KEY_EPOCHS, REFINE_EPOCHS = 1.5, 0.5  # the key-motion decoder's own stages, in multiples of the budget


def run(dataset: Any, items: tuple[list, list], backbone: str, km: dict[str, Any] | None, epochs: int, seed: int, out: Path, batch_size: int) -> Path:
    best = out / "best.safetensors"
    if (out / "done").is_file():
        return best
    km_options = None if km is None else {**SIZES.get("key_motions", {}), **km}
    seed_everything(seed)
    model, description, lips = build_run(
        backbone, dataset, overrides=SIZES.get(backbone, {}), key_motions=km is not None, key_motion_overrides=km_options or {}
    )
    stage_epochs = {}
    if km is not None:
        stage_epochs = {"keys": math.ceil(epochs * KEY_EPOCHS), "complete": epochs, "refine": math.ceil(epochs * REFINE_EPOCHS)}
    options = TrainOptions(epochs=epochs, stage_epochs=stage_epochs, batch_size=batch_size, seed=seed, val_predict_items=4, lr_schedule=LR_SCHEDULE[0])
    began = time.perf_counter()
    result = train(model, items[0], items[1], out, description, options, lips=lips)
    (out / "done").write_text(json.dumps({"seconds": round(time.perf_counter() - began, 1), "epochs": [h.__dict__ for h in result.history]}, default=str))
    return best


def score(dataset: Any, predict: Any) -> dict[str, float]:
    regions = resolve_regions(dataset)
    report = evaluate(dataset, SPLIT[0], predict, lip_idx=regions.lips, upper_idx=regions.upper_face)
    p = report.pooled
    return {"lve_paper": p.lve_paper, "lve_mm": p.lve_mm, "fdd": p.fdd, "mve_mm": p.mve_mm, "frames": p.frames}


def aligned(dataset: Any, seq: Any) -> Any:
    """The aligner's phones for a test recording (given its text), shared with the models' rows."""
    key = f"aligner:{seq.name}"
    if key not in CachedAlignments.cache:
        CachedAlignments.cache[key] = dataset.phones(dataset.ref(seq.name), seq.audio, "aligner")
    return CachedAlignments.cache[key]


def rig_floor(dataset: Any) -> dict[str, float]:
    """The rig (no learning) driven by the aligner's phones, on each test subject's own face."""
    from kmtalk_cli.face.rig import build_rig
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.pipeline import rig_motion

    head = bundled_template()
    rig = build_rig(head)
    return score(dataset, lambda seq: rig_motion(aligned(dataset, seq), head, len(seq.vertices), seq.fps, rig=rig, rest=seq.template))


def interpolated_face(seq: Any, indices: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Offsets ``rows`` (K, V·3) at key frames ``indices``, linearly interpolated over the whole
    sequence and put on its template: (T, V, 3) vertices, as a model would predict them."""
    from kmtalk_cli.windowed import interpolate_rows, neighbours

    n = len(seq.vertices)
    return interpolate_rows(np.asarray(rows, dtype=np.float32), neighbours(indices, 0, n)).numpy().reshape(n, -1, 3) + seq.template


def true_keys_interpolated(seq: Any, alignment: Any) -> np.ndarray:
    """The *true* face at the key frames of ``alignment``, linearly interpolated: what is left
    between the keys is all a completion could add to perfect key motions."""
    from kmtalk_cli.keymotions import select_key_frames

    n = len(seq.vertices)
    indices = select_key_frames(alignment, n, float(seq.fps)).indices
    return interpolated_face(seq, indices, (seq.vertices[indices] - seq.template[None]).reshape(len(indices), -1))


def _speech_and_style(helper: Any, seq: Any) -> tuple[Any, int | None]:
    """The sequence's speech as a tensor and the style index ``helper`` scores it with."""
    import torch

    return torch.from_numpy(seq.audio.samples.astype(np.float32)), helper.model.style_index(helper.style_for(seq.subject))


def require_key_motion_checkpoints(paths: list[Path], why: str) -> None:
    """Stop with one sentence (before any corpus work) unless every path is a key-motion checkpoint."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"No checkpoint at {', '.join(missing)}.")
    try:
        plain = [str(p) for p in paths if read_checkpoint_info(p).get("kind") != "key-motion"]
    except KmtalkError as exc:  # not a checkpoint at all
        raise SystemExit(str(exc)) from None
    if plain:
        raise SystemExit(f"{', '.join(plain)} holds no key-motion model; {why}.")


def predicted_keys(helper: Any, seq: Any) -> Any:
    """The key motions a key-motion model (``helper``: its :class:`ModelPredictions`) predicts for ``seq``."""
    audio, style = _speech_and_style(helper, seq)
    return helper.model.model.predict_keys(audio, len(seq.vertices), alignment=helper._alignment(seq), style=style)


def keys_only(helper: Any) -> Any:
    """Predictions of a key-motion model made of its key motions alone, linearly interpolated:
    completion left out."""

    def predict(seq: Any) -> np.ndarray:
        keys = predicted_keys(helper, seq)
        return interpolated_face(seq, keys.frames.indices, keys.offsets)

    return predict


def completed_true_keys(helper: Any) -> Any:
    """Predictions of a key-motion model whose completion is given the *true* face at its key
    frames (the aligner's): what completion does with perfect key motions. Scored against
    :func:`true_keys_interpolated`, it separates what completion can add between keys from the
    key decoder's own error, which completion cannot see."""
    from kmtalk_cli.keymotions import KeyMotions, select_key_frames

    def predict(seq: Any) -> np.ndarray:
        n = len(seq.vertices)
        audio, style = _speech_and_style(helper, seq)
        frames = select_key_frames(helper._alignment(seq), n, float(seq.fps), helper.model.model.km_config.rule)
        truth = (seq.vertices[frames.indices] - seq.template[None]).reshape(len(frames.indices), -1).astype(np.float32)
        offsets = helper.model.model.complete(audio, n, KeyMotions(frames, truth), style=style)
        return offsets.numpy().reshape(n, -1, 3) + seq.template

    return predict


def model_score(dataset: Any, path: Path, alignments: str = "aligner") -> dict[str, float]:
    scores = score(dataset, CachedAlignments(load_model(path), dataset, alignments=alignments))
    done = path.parent / "done"
    if done.is_file():  # trained here: how long it took
        scores["minutes"] = json.loads(done.read_text())["seconds"] / 60
    return scores


def keys_only_score(dataset: Any, path: Path) -> dict[str, float]:
    """A key-motion model's predicted key motions, linearly interpolated: completion left out."""
    return score(dataset, keys_only(CachedAlignments(load_model(path), dataset)))


def completion_rows(dataset: Any, paths: list[Path], timings: str = "aligner") -> tuple[list[str], dict[str, Any]]:
    """Full and keys-only LVE of each key-motion checkpoint and what completion removes; then the
    same with the true key motions: interpolated, and completed by each checkpoint. ``timings``:
    the phones every row gets, the aligner's or the corpus' true ones (``true``)."""
    lines = ["| checkpoint | LVE (mm) | keys only, interpolated (mm) | completion removes | true keys completed (mm) | completion removes |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    phones = (lambda seq: dataset.alignment(dataset.ref(seq.name))) if timings == "true" else (lambda seq: aligned(dataset, seq))
    between = score(dataset, lambda seq: true_keys_interpolated(seq, phones(seq)))
    results: dict[str, Any] = {"timings": timings, "true_keys_interpolated": between}
    for path in paths:
        helper = CachedAlignments(load_model(path), dataset, alignments=timings)  # one model for every row
        full, only, oracle = score(dataset, helper), score(dataset, keys_only(helper)), score(dataset, completed_true_keys(helper))
        share = (only["lve_mm"] - full["lve_mm"]) / only["lve_mm"]
        oracle_share = (between["lve_mm"] - oracle["lve_mm"]) / between["lve_mm"]
        results[str(path)] = {"full": full, "keys_only": only, "completion_share": share, "true_keys_completed": oracle,
                              "true_keys_completion_share": oracle_share}
        lines.append(f"| {path} | {full['lve_mm']:.3f} | {only['lve_mm']:.3f} | {share:.1%} | {oracle['lve_mm']:.3f} | {oracle_share:.1%} |")
        print(lines[-1], flush=True)
    lines.append(f"| true key motions, interpolated (no model) | | | | {between['lve_mm']:.3f} | |")
    return lines, results


def row(label: str, m: dict[str, float], base: dict[str, float] | None = None, seeds: list[dict[str, float]] | None = None) -> str:
    gain = "" if base is None else f"{100 * (m['lve_mm'] - base['lve_mm']) / base['lve_mm']:+.1f}%"
    each = " / ".join(f"{s['lve_mm']:.3f}" for s in seeds) if seeds and len(seeds) > 1 else ""
    minutes = f"{m['minutes']:.1f}" if "minutes" in m else ""
    return f"| {label} | {m['lve_paper'] * 1e5:.4f} | {m['lve_mm']:.3f} | {each} | {gain} | {m['fdd'] * 1e7:+.4f} | {m['mve_mm']:.3f} | {minutes} |"


HEADER = (
    "| model | LVE paper (×1e-5 m²) | LVE (mm) | LVE per seed | ΔLVE | FDD (×1e-7 m²) | MVE (mm) | training min |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="vocaset-like corpus (built with `kmtalk synth` if missing)")
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--backbones", default="faceformer,codetalker,selftalk")
    parser.add_argument("--ablations", default="faceformer", help="backbone to ablate ('' for none)")
    parser.add_argument("--ablate", default=",".join(ABLATIONS), help=f"which ablations: {', '.join(ABLATIONS)}")
    parser.add_argument("--train-limit", type=int, default=0, help="use only the first N training sequences (0: all)")
    parser.add_argument("--bundled", action="store_true", help="score the bundled default weights instead of training")
    parser.add_argument("--config", type=Path, help="JSON sizes: backbone → config fields, 'key_motions' → options")
    parser.add_argument("--lr-schedule", default="cosine", choices=("cosine", "constant"))
    parser.add_argument("--split", default="test", help="held-out split to score (test, or unseen for a held-out voice family)")
    parser.add_argument("--checkpoints", default="", help="comma-separated key-motion checkpoints to score (full and keys only); no training")
    parser.add_argument("--timings", default="aligner", choices=("aligner", "true"),
                        help="with --checkpoints: phones from the aligner (what a user gets) or the corpus' true TextGrids")
    args = parser.parse_args()
    LR_SCHEDULE[0] = args.lr_schedule
    SPLIT[0] = args.split
    if args.config:
        SIZES.update(json.loads(args.config.read_text()))
    if args.bundled:
        args.ablations, args.seeds = "", "0"
    checkpoints = [Path(p) for p in args.checkpoints.split(",") if p]
    require_key_motion_checkpoints(checkpoints, "--checkpoints scores key motions and completion")

    if not args.corpus.is_dir():
        from kmtalk_cli.data.synth import PRESETS, build_corpus

        build_corpus(args.corpus, PRESETS["vocaset-like"])
    dataset = open_dataset(args.corpus)
    if checkpoints:
        lines, scored = completion_rows(dataset, checkpoints, args.timings)
        args.runs.mkdir(parents=True, exist_ok=True)
        (args.runs / "results.json").write_text(json.dumps({"split": args.split, "checkpoints": scored}, indent=2))
        print("\n".join([f"Corpus {args.corpus} ({args.split}: {len(dataset.split(args.split))} held-out sequences); {args.timings} timings.", "", *lines]))
        return
    styles = dataset.train_subjects()
    train_refs = dataset.split("train")
    if args.train_limit:
        train_refs = train_refs[:: max(1, len(train_refs) // args.train_limit)][: args.train_limit]
    items = ([], []) if args.bundled else (load_items(dataset, train_refs, styles), load_items(dataset, dataset.split("val"), styles))
    results: dict[str, Any] = {"epochs": args.epochs, "train_sequences": len(items[0]), "bundled": args.bundled, "rows": {}}
    budget = "the bundled default weights" if args.bundled else f"{len(items[0])} training sequences, {args.epochs} epochs budget, seeds {args.seeds}"
    lines = [f"Corpus {args.corpus} ({args.split}: {len(dataset.split(args.split))} held-out sequences); "
             f"{budget}; aligner timings.", "", HEADER]
    seeds = [int(s) for s in args.seeds.split(",")]

    def checkpoint(backbone: str, km: dict[str, Any] | None, seed: int) -> Path:
        if args.bundled:
            from kmtalk_cli.weights import find_bundled

            found = find_bundled(backbone, km is not None)
            if found is None:
                raise SystemExit(f"No bundled {backbone}{' + KM' if km is not None else ''}; run tools/train_defaults.py.")
            return found.path
        out = args.runs / f"{backbone}{'-km' if km is not None else ''}-s{seed}"
        return run(dataset, items, backbone, km, args.epochs, seed, out, args.batch_size)

    for backbone in [b for b in args.backbones.split(",") if b]:
        for km in (None, {}):
            scores = []
            for seed in seeds:
                scores.append(model_score(dataset, checkpoint(backbone, km, seed)))
            mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
            label = f"{backbone}{' + KM' if km is not None else ''}"
            results["rows"][label] = {"mean": mean, "seeds": scores}
            base = results["rows"].get(backbone, {}).get("mean") if km is not None else None
            lines.append(row(label, mean, base, scores))
            print(lines[-1], flush=True)
            if km is not None:
                only = keys_only_score(dataset, checkpoint(backbone, km, seeds[0]))
                results["rows"][f"{label}, key motions only"] = {"mean": only}
                lines.append(row(f"{label}, key motions only, interpolated (no completion)", only, base))
                print(lines[-1], flush=True)
    still = score(dataset, lambda seq: np.repeat(seq.template[None], len(seq.vertices), axis=0))
    results["rows"]["template (no motion)"] = {"mean": still}
    lines.append(row("template (no motion)", still))
    floor = rig_floor(dataset)
    results["rows"]["rig (aligner timings, no learning)"] = {"mean": floor}
    lines.append(row("rig (aligner timings, no learning)", floor))
    between = score(dataset, lambda seq: true_keys_interpolated(seq, aligned(dataset, seq)))
    results["rows"]["true key motions, interpolated"] = {"mean": between}
    lines.append(row("true key motions, interpolated (what completion can add between keys)", between))
    if args.ablations:
        b = args.ablations
        full = args.runs / f"{b}-km-s{seeds[0]}" / "best.safetensors"
        lines += ["", f"Ablations on {b} + KM (seed {seeds[0]}):", "", HEADER]
        base = results["rows"][f"{b} + KM"]["seeds"][0]
        lines.append(row(f"{b} + KM (full)", base))
        true = model_score(dataset, full, alignments="true")
        results["rows"][f"{b} + KM, true timings"] = {"mean": true}
        lines.append(row("… with the true timings instead of the aligner's", true, base))
        for key in [k for k in args.ablate.split(",") if k]:
            label, change = ABLATIONS[key]
            out = args.runs / f"{b}-km-{key}-s{seeds[0]}"
            m = model_score(dataset, run(dataset, items, b, change, args.epochs, seeds[0], out, args.batch_size))
            results["rows"][f"{b} + KM, {label}"] = {"mean": m}
            lines.append(row(f"… {label}", m, base))
            print(lines[-1], flush=True)
    args.runs.mkdir(parents=True, exist_ok=True)
    (args.runs / "results.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
