"""How much of an utterance's hidden vocal effort does a key-motion model hear? A table per checkpoint.

A ``kmtalk synth`` utterance's effort scales its jaw and lips by 2^(6·effort/12) (``data/prosody.py``),
so a key decoder deaf to effort errs by that factor: its keys are too small in loud utterances and
too large in soft ones. For every held-out sequence this finds the single gain that best fits the
predicted key motions to the true ones (lip vertices, least squares) and regresses its logarithm
on the sequence's effort. The slope a deaf decoder shows is ln 2 · 6/12 = 0.347 per unit of effort;
one that hears effort perfectly shows 0. "Heard" is 1 − slope / 0.347.

    python benchmarks/effort_heard.py --corpus CORPUS --split test|unseen CHECKPOINT [CHECKPOINT ...]

The keys sit at the aligner's key frames, as in ``kmtalk evaluate``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keymotion_gain import CachedAlignments, predicted_keys, require_key_motion_checkpoints
from kmtalk_cli.data.prosody import EFFORT_DB, GAIN_DB_PER_OCTAVE
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.evaluation import resolve_regions
from kmtalk_cli.models import load_model

#: d log(gain) / d effort of the corpus' motion: the slope of a decoder that cannot hear effort.
DEAF_SLOPE = math.log(2.0) * EFFORT_DB / GAIN_DB_PER_OCTAVE


def best_gain(predicted: np.ndarray, true: np.ndarray) -> float:
    """The scalar g minimising |g · predicted − true|² (any matching shapes)."""
    return float((predicted * true).sum() / max(float((predicted * predicted).sum()), 1e-20))


def effort_fit(gains: list[float], efforts: list[float]) -> dict[str, float]:
    """Slope of log gain on effort, their correlation, and the share of effort heard."""
    g, e = np.log(np.asarray(gains)), np.asarray(efforts)
    slope = float(np.polyfit(e, g, 1)[0])
    return {"n": len(g), "r": float(np.corrcoef(g, e)[0, 1]), "slope": slope, "heard": 1.0 - slope / DEAF_SLOPE,
            "mean_abs_log_gain": float(np.abs(g).mean())}


def keys_with_prosody(dataset: Any, corpus: Path, split: str, helper: Any, lips: np.ndarray) -> Iterator[tuple[Any, dict, np.ndarray, np.ndarray, np.ndarray]]:
    """Each ``split`` sequence with hidden prosody: (its reference, its drawn prosody, key frames,
    predicted and true lip key motions (K, L, 3)). Voices that speak without it are skipped."""
    for ref in dataset.split(split):
        plan = corpus / "alignments" / f"{ref.name}.prosody.json"
        if not plan.is_file():  # voices that speak without hidden prosody (MBROLA, Festival)
            continue
        seq = dataset.load(ref)
        keys = predicted_keys(helper, seq)
        frames = keys.frames.indices
        predicted = np.asarray(keys.offsets).reshape(len(frames), -1, 3)[:, lips]
        yield ref, json.loads(plan.read_text()), frames, predicted, (seq.vertices[frames] - seq.template[None])[:, lips]


def require_corpus(path: Path) -> None:
    """Stop with one sentence unless ``path`` is a corpus."""
    if not (path / "splits.json").is_file():
        raise SystemExit(f"{path} is not a corpus (no splits.json); build one with `kmtalk synth`.")


def measure(dataset: Any, corpus: Path, split: str, checkpoint: Path) -> dict[str, float]:
    helper = CachedAlignments(load_model(checkpoint), dataset)
    gains, efforts = [], []
    for _, plan, _, predicted, true in keys_with_prosody(dataset, corpus, split, helper, resolve_regions(dataset).lips):
        gains.append(best_gain(predicted, true))
        efforts.append(plan["effort"])
    if len(gains) < 3:
        raise SystemExit(f"{corpus}'s {split} split has {len(gains)} sequences with hidden prosody; build the corpus with prosody.")
    return effort_fit(gains, efforts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus made by `kmtalk synth` with prosody")
    parser.add_argument("--split", default="test")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="key-motion checkpoints")
    args = parser.parse_args()
    require_key_motion_checkpoints(args.checkpoints, "effort_heard.py measures key motions")
    require_corpus(args.corpus)
    print(f"Corpus {args.corpus}, {args.split} split; a decoder deaf to effort has slope {DEAF_SLOPE:.3f}.\n")
    print("| checkpoint | sequences | r (log best gain, effort) | slope per unit effort | effort heard | mean abs log gain |")
    print("|---|---:|---:|---:|---:|---:|")
    dataset = open_dataset(args.corpus)
    for path in args.checkpoints:
        fit = measure(dataset, args.corpus, args.split, path)
        print(f"| {path} | {fit['n']} | {fit['r']:+.2f} | {fit['slope']:+.3f} | {fit['heard']:.0%} | {fit['mean_abs_log_gain']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
