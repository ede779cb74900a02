"""How much of an autoregressive backbone's error is its own feedback (exposure bias)?

FaceFormer and CodeTalker train teacher-forced (frame t reads the *true* frame t − 1, or its
true codes) but generate free-running (frame t reads their own frame t − 1). This scores each
checkpoint on the test split both ways: ``free`` is what a user gets; ``teacher-forced`` feeds
the ground truth of the previous frame, which no user has, so it only bounds what the decoder
could do without its own errors feeding back. For a key-motion model both runs use the same
predicted key motions (aligner timings) and the teacher-forced one feeds the true residual
over their interpolation. The gap explains much of where key motions help these backbones.

    python benchmarks/exposure_bias.py --corpus /tmp/voca RUN_DIR/best.safetensors [...]

Prints a Markdown table (lip error in mm, pooled over the test split).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from keymotion_gain import CachedAlignments, score
from kmtalk_cli.data.dataset import open_dataset
from kmtalk_cli.models import load_model


def teacher_forced(helper: CachedAlignments) -> Any:
    """A predict function that feeds each frame the true previous frame (or true residual)."""
    loaded = helper.model
    model = loaded.model.eval()

    @torch.inference_mode()
    def predict(seq: Any) -> np.ndarray:
        n = len(seq.vertices)
        audio = torch.from_numpy(seq.audio.samples.astype(np.float32))
        style = loaded.style_index(helper.style_for(seq.subject))
        truth = torch.from_numpy((seq.vertices - seq.template).reshape(1, n, -1).astype(np.float32))
        if loaded.uses_key_motions:
            keys = model.predict_keys(audio, n, alignment=helper._alignment(seq), style=style)
            offsets = model.complete(audio, n, keys, style=style, target=truth)[None]
        else:
            style_t = None if style is None else torch.tensor([style])
            lengths = torch.tensor([n])
            features = model.encode_audio(audio[None], torch.tensor([audio.shape[0]]), lengths)
            offsets = model.decode(features, lengths, style=style_t, target=truth)
        return offsets[0].numpy().reshape(n, -1, 3) + seq.template

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args()
    dataset = open_dataset(args.corpus)
    lines = ["| checkpoint | backbone | key motions | free-running LVE (mm) | teacher-forced LVE (mm) | gap (mm) |", "|---|---|---|---:|---:|---:|"]
    for path in args.checkpoints:
        helper = CachedAlignments(load_model(path), dataset)
        free = score(dataset, helper)["lve_mm"]
        forced = score(dataset, teacher_forced(helper))["lve_mm"]
        km = "yes" if helper.model.uses_key_motions else "no"
        lines.append(f"| {path.parent.name} | {helper.model.backbone} | {km} | {free:.3f} | {forced:.3f} | {free - forced:.3f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
