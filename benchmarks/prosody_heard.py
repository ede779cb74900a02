"""Which hidden prosody does a key decoder hear, key by key, and how much of its key error is it?

A ``kmtalk synth`` word's jaw and lip gain is a product of hidden factors (``data/prosody.py``):
the utterance's vocal effort, the word's emphasis, the rest of its loudness (a random part), its
local speaking rate and the utterance's articulation. For every key frame inside a word this takes
the gain that best maps the predicted key motion onto the true one (lip vertices, least squares)
and regresses its logarithm on the logarithms of those factors, weighted by the key's size. A
coefficient of 1 means the decoder is deaf to that factor (its keys miss it entirely), 0 that it
hears it, below 0 that it overdoes it. Then the error with each factor's fitted part taken out of
the keys, and with the best gain per key (the most any amplitude correction could do).

    python benchmarks/prosody_heard.py --corpus CORPUS --splits train,test,unseen CHECKPOINT [CHECKPOINT ...]

Scoring the training split too shows what the decoder memorised: a factor no listener can hear
(the effort in level-normalised speech) that it "hears" on its training utterances it learnt by
heart. The keys sit at the aligner's key frames, as in ``kmtalk evaluate``; the error is the mean
over keys of the mean lip-vertex distance (mm).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from effort_heard import keys_with_prosody, require_corpus
from keymotion_gain import CachedAlignments, require_key_motion_checkpoints
from kmtalk_cli.data import prosody
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.evaluation import resolve_regions
from kmtalk_cli.models import load_model

FACTORS = ("effort", "emphasis", "loudness rest", "local rate", "articulation")


def word_factors(plan: dict[str, Any], word: dict[str, Any]) -> np.ndarray:
    """The natural log of each hidden factor of one word's gain, in the order of :data:`FACTORS`."""
    per_db = math.log(2.0) / prosody.GAIN_DB_PER_OCTAVE
    effort_db, emphasis_db = prosody.EFFORT_DB * plan["effort"], prosody.EMPHASIS_DB * word["emphasis"]
    return np.array([
        per_db * effort_db,
        per_db * emphasis_db,
        per_db * (word["loudness_db"] - effort_db - emphasis_db),
        -prosody.RATE_EXPONENT * math.log(word["rate"]),
        math.log(1.0 + prosody.ARTICULATION_GAIN * plan["articulation"]),
    ])


def deafness(predicted: np.ndarray, true: np.ndarray, factors: np.ndarray) -> dict[str, Any]:
    """``predicted``/``true`` (K, L, 3) key motions, ``factors`` (K, len(FACTORS)) → each factor's
    coefficient (1 deaf, 0 heard), the per-key error as predicted, with each factor's fitted part
    (and all of them) taken out, and with the best gain per key."""
    pp = (predicted**2).sum(axis=(1, 2))
    pt = (predicted * true).sum(axis=(1, 2))
    keep = pp > np.quantile(pp, 0.2)  # a key at rest has no amplitude to misjudge
    gain = pt / np.maximum(pp, 1e-20)  # the best gain per key
    log_gain = np.log(np.clip(gain, 0.05, 20.0))
    design = np.c_[factors, np.ones(len(factors))][keep]
    weight = np.sqrt(pp[keep])[:, None]
    coef = np.linalg.lstsq(design * weight, log_gain[keep] * weight[:, 0], rcond=None)[0][: len(FACTORS)]

    def error(scale: np.ndarray) -> float:
        return float(np.linalg.norm(scale[:, None, None] * predicted - true, axis=-1).mean() * 1000)

    out = {"keys": len(predicted), "coef": dict(zip(FACTORS, coef)), "error": error(np.ones(len(predicted)))}
    out["without"] = {name: error(np.exp(factors[:, i] * coef[i])) for i, name in enumerate(FACTORS)}
    out["without all"] = error(np.exp(factors @ coef))
    out["best gain per key"] = error(np.clip(gain, 0.0, 5.0))
    return out


def collect(dataset: Any, corpus: Path, split: str, helper: Any, lips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted and true lip key motions of every key inside a word, and the word's factors."""
    predicted, true, factors = [], [], []
    for ref, plan, frames, keys, truth in keys_with_prosody(dataset, corpus, split, helper, lips):
        words = [w for w in dataset.alignment(ref).words if w.label.strip()]
        if len(words) != len(plan["words"]):  # a word espeak-ng gave no phones: no safe pairing
            continue
        for k, frame in enumerate(frames):
            t = frame / dataset.fps
            inside = [i for i, w in enumerate(words) if w.start <= t < w.end]
            if inside:
                predicted.append(keys[k])
                true.append(truth[k])
                factors.append(word_factors(plan, plan["words"][inside[0]]))
    if len(predicted) < 10:
        raise SystemExit(f"{corpus}'s {split} split has {len(predicted)} keys inside words with hidden prosody; build the corpus with prosody.")
    return np.asarray(predicted), np.asarray(true), np.asarray(factors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus made by `kmtalk synth` with prosody")
    parser.add_argument("--splits", default="train,test,unseen", help="comma-separated splits to score")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="key-motion checkpoints")
    args = parser.parse_args()
    require_key_motion_checkpoints(args.checkpoints, "prosody_heard.py measures key motions")
    require_corpus(args.corpus)
    dataset = open_dataset(args.corpus)
    splits = [s for s in args.splits.split(",") if s]
    unknown = [s for s in splits if s not in dataset.splits]
    if unknown:
        raise SystemExit(f"{args.corpus} has no split {', '.join(unknown)}; it has {', '.join(k for k in dataset.splits if k != 'subjects')}.")
    lips = resolve_regions(dataset).lips
    print(f"Corpus {args.corpus}. Coefficients: 1 = deaf to the factor, 0 = hears it. Errors: mean lip-vertex distance at the keys (mm).\n")
    print(f"| checkpoint | split | keys | {' | '.join(FACTORS)} | error | {' | '.join('without ' + f for f in FACTORS)} | without all | best gain per key |")
    print("|---|---|---:|" + "---:|" * (2 * len(FACTORS) + 3))
    for path in args.checkpoints:
        helper = CachedAlignments(load_model(path), dataset)
        for split in splits:
            fit = deafness(*collect(dataset, args.corpus, split, helper, lips))
            coefs = " | ".join(f"{fit['coef'][f]:+.2f}" for f in FACTORS)
            without = " | ".join(f"{fit['without'][f]:.3f}" for f in FACTORS)
            print(f"| {path} | {split} | {fit['keys']} | {coefs} | {fit['error']:.3f} | {without} | {fit['without all']:.3f} | {fit['best gain per key']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
