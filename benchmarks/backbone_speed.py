"""Inference real-time factor of every backbone, and training throughput.

RTF = seconds of compute per second of audio for ``predict`` (audio encoder + decoder) on random
speech-length noise, at the default (CPU) size and at the papers' sizes with a wav2vec2 encoder
built from its config with random weights (this measures speed only). ``--precision`` adds rows
for the reduced-precision CPU inference modes (``kmtalk_cli.precision``: int8 or bf16 weights in
the large layers). Training throughput is frames per second of one optimiser step on a
batch of four 4-second clips at the default size (always fp32).

    python benchmarks/backbone_speed.py [--lengths 5,20,60,300] [--paper-lengths 5,20,60]
        [--backbones faceformer,codetalker,selftalk] [--threads 2] [--precision fp32,int8,bf16]
        [--repeats 1] [--no-training]
"""

from __future__ import annotations

import argparse
import time

import torch

from kmtalk_cli.backbones import create_backbone, get_backbone, list_backbones
from kmtalk_cli.backbones.base import Batch
from kmtalk_cli.precision import apply_precision, check_precision

#: The issue's targets at the papers' sizes (RTF, every length).
TARGETS = {"faceformer": 0.1, "codetalker": 0.3}


def rtf(model: torch.nn.Module, seconds: float, fps: float, repeats: int = 1) -> float:
    """Seconds of ``predict`` per second of audio; the best of ``repeats`` runs (others' load only adds)."""
    audio = torch.randn(int(seconds * 16000)) * 0.1
    n_frames = int(round(seconds * fps))
    model.predict(audio[:16000], int(fps))  # warm up
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        model.predict(audio, n_frames)
        best = min(best, time.perf_counter() - began)
    return best / seconds


def train_fps(name: str) -> float:
    model = create_backbone(name, n_styles=2)
    frames = 120
    batch = Batch(
        audio=torch.randn(4, 64000) * 0.1,
        audio_lengths=torch.full((4,), 64000),
        offsets=torch.randn(4, frames, model.config.vertex_dim) * 1e-3,
        frame_lengths=torch.full((4,), frames),
        style=torch.tensor([0, 1, 0, 1]),
    )
    stages = model.stages
    params = [p for p in model.trainable_parameters(stages[-1]) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, 1e-4)
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        loss, _ = model.loss(batch, stages[-1])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        best = min(best, time.perf_counter() - began)
    return 4 * frames / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="5,20,60,300")
    parser.add_argument("--paper-lengths", default="5,20,60")
    parser.add_argument("--backbones", default=",".join(b.name for b in list_backbones()))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", help="comma-separated: fp32, int8, bf16")
    parser.add_argument("--presets", default="default,paper-vocaset")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timed runs per cell")
    parser.add_argument("--no-training", action="store_true", help="skip the training throughput table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lengths = [float(x) for x in args.lengths.split(",") if x]
    paper_lengths = [float(x) for x in args.paper_lengths.split(",") if x]
    precisions = [p for p in args.precision.split(",") if p]
    for precision in precisions:
        check_precision(precision)
    cols = sorted(set(lengths) | set(paper_lengths))
    print(f"Inference RTF on {args.threads} CPU threads (lower is better; time / audio duration)\n")
    print("| backbone | size | precision | params (M) | " + " | ".join(f"{c:g} s" for c in cols) + " | target |")
    print("| --- | --- | --- | ---: | " + " | ".join("---:" for _ in cols) + " | ---: |")
    names = [n for n in args.backbones.split(",") if n]
    for name in names:
        presets = [p for p in get_backbone(name).presets if p in args.presets.split(",")]
        for preset in presets:
            for precision in precisions:
                model = create_backbone(name, preset=preset).eval()
                n_params = sum(p.numel() for p in model.parameters()) / 1e6
                apply_precision(model, precision)
                wanted = lengths if preset == "default" else paper_lengths
                cells = []
                for c in cols:
                    cells.append(f"{rtf(model, c, model.config.fps, args.repeats):.3f}" if c in wanted else "–")
                target = f"≤ {TARGETS[name]}" if preset != "default" and name in TARGETS else ""
                print(f"| {name} | {preset} | {precision} | {n_params:.1f} | " + " | ".join(cells) + f" | {target} |", flush=True)
                del model
    if args.no_training:
        return
    print("\nTraining throughput at the default size (batch of 4 × 4 s, one AdamW step, final stage)\n")
    print("| backbone | frames / s |\n| --- | ---: |")
    for name in names:
        print(f"| {name} | {train_fps(name):.0f} |", flush=True)


if __name__ == "__main__":
    main()
