"""Long audio: wall time and peak memory by stage for 1, 10 and 30 minutes of real speech.

    python benchmarks/long_audio.py [--minutes 1,10,30] [--models default,faceformer-paper-int8]

Speech: Debian's LibriVox clips concatenated to each length, with the transcript (forced
alignment). Each row is one fresh ``kmtalk animate SPEECH -q -f -o out.npy`` process split by
stage (``benchmarks/stages.py``): seconds per stage and the peak RSS reached by the end of it.

Models: ``default`` (the bundled SelfTalk + KM) and ``faceformer-paper-int8``: FaceFormer at the
paper's VOCASET size (wav2vec2-base encoder, built from its config) with key motions, random
weights (nothing can be downloaded; speed does not depend on the values), fitted to the bundled
head's vertex count and run with ``--precision int8``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from librivox import make_speech  # noqa: E402
from stages import run_stages  # noqa: E402

STAGES = ("start-up", "model load", "alignment", "key motions", "completion", "writing")


def paper_faceformer_km(path: Path) -> Path:
    """A paper-size FaceFormer + key motions checkpoint with random weights, for the bundled head."""
    import torch

    from kmtalk_cli.backbones import create_backbone
    from kmtalk_cli.backbones.checkpoint import save_checkpoint
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.keymotion_model import KeyMotionConfig, KeyMotionModel

    torch.manual_seed(0)
    km = KeyMotionConfig()
    backbone = create_backbone("faceformer", preset="paper-vocaset", n_vertices=bundled_template().n_vertices, condition_dim=km.embed_dim)
    model = KeyMotionModel(backbone, km)
    info = {"kind": "key-motion", "backbone": "faceformer", "config": backbone.config.to_dict(), "key_motions": km.to_dict()}
    return save_checkpoint(model, path, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", default="1,10,30")
    parser.add_argument("--models", default="default,faceformer-paper-int8")
    parser.add_argument("--build-checkpoint", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_checkpoint is not None:  # in a child: a peak RSS is inherited by the processes started after it
        paper_faceformer_km(args.build_checkpoint)
        return
    print("| model | audio | " + " | ".join(STAGES) + " | wall | RTF | peak RSS |")
    print("|---|---:|" + "---:|" * (len(STAGES) + 3))
    with tempfile.TemporaryDirectory(prefix="kmtalk-long-") as scratch:
        work = Path(scratch)
        extra = {"default": []}
        if "faceformer-paper-int8" in args.models:
            checkpoint = work / "ff-paper.safetensors"
            subprocess.run([sys.executable, __file__, "--build-checkpoint", str(checkpoint)], check=True)
            extra["faceformer-paper-int8"] = ["-c", str(checkpoint), "--precision", "int8"]
        for minutes in (float(m) for m in args.minutes.split(",")):
            speech = make_speech(minutes * 60, work / f"speech{minutes:g}.wav")
            duration = len(speech.read_bytes()) / 32000
            for model in args.models.split(","):
                run = run_stages(["animate", str(speech), "-q", "-f", "-o", str(work / "out.npy"), *extra[model]], cwd=scratch)
                cells = [f"{run.stages.get(s, 0.0):.1f} s / {run.stage_peaks.get(s, 0) / 1e9:.2f} GB" for s in STAGES]
                print(
                    f"| {model} | {duration / 60:.1f} min | " + " | ".join(cells)
                    + f" | {run.wall:.1f} s | {run.wall / duration:.3f} | {run.peak_rss / 1e9:.2f} GB |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
