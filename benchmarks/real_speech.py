"""Do the bundled defaults animate *real* speech sensibly? Checks on human LibriVox recordings.

    python benchmarks/real_speech.py [--clips DIR] [--models faceformer-km,faceformer,...]

The clips are Debian's ``pocketsphinx-testdata`` LibriVox sentences (public domain) with their
transcripts. For every bundled checkpoint (and the rig baseline), per clip:

* **loudness r** — Pearson correlation between the mouth opening (the inner-lip gap of
  ``kmtalk_cli.face.rig.lip_gap``: facing iBUG inner-lip landmarks, averaged) and the speech loudness (RMS in dB over each frame's 40 ms
  window, floored 50 dB below the clip's peak), both at the motion's fps. Mouths open with the
  voice and close in pauses, so it should be clearly positive.
* **m/b/p closed** — the share of bilabial phones (M, B, P in the forced alignment) during which
  the lips close at least once: the gap falls within 1 mm of the rest pose's gap, or
  (for faces that do not reach rest) to under 25% of the clip's 95th-percentile opening.

The alignment comes from the built-in aligner with each clip's transcript, as in
``kmtalk align speech.wav --text ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from librivox import CLIPS, transcripts  # noqa: E402

BILABIALS = {"M", "B", "P"}




def lip_gap_mm(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap per frame in mm (T,), as the corpus checks measure it."""
    from kmtalk_cli.face.rig import lip_gap

    return lip_gap(vertices, landmarks) * 1000.0


def loudness_db(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float) -> np.ndarray:
    """RMS level in dB of a 40 ms window centred on each frame, floored 50 dB below the peak."""
    half = int(0.02 * sample_rate)
    centres = (np.arange(n_frames) / fps * sample_rate).astype(int)
    rms = np.array([np.sqrt(np.mean(samples[max(0, c - half) : c + half] ** 2) + 1e-12) for c in centres])
    db = 20 * np.log10(rms)
    return np.maximum(db, db.max() - 50.0)


def check_clip(animation, audio, alignment, rest_gap: float) -> tuple[float, float, int]:
    """(loudness r, share of m/b/p phones with a lip closure, number of m/b/p phones)."""
    gap = lip_gap_mm(animation.vertices, animation.template.landmarks)
    fps = animation.fps
    loud = loudness_db(audio.samples, audio.sample_rate, len(gap), fps)
    r = float(np.corrcoef(gap, loud)[0, 1]) if gap.std() > 0 else 0.0
    closed_below = max(rest_gap + 1.0, 0.25 * np.percentile(gap, 95))
    bilabial = [p for p in alignment.phones if p.label in BILABIALS]
    closed = 0
    for p in bilabial:
        a, b = int(np.floor(p.start * fps)), int(np.ceil(p.end * fps)) + 1
        if len(gap[a:b]) and gap[a:b].min() <= closed_below:
            closed += 1
    return r, closed / max(len(bilabial), 1), len(bilabial)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=CLIPS, help="Folder of <name>.wav + 'transcription' (pocketsphinx layout).")
    parser.add_argument("--models", default="", help="Comma-separated: <backbone>, <backbone>-km, rig or a checkpoint path (default: every bundled one + rig).")
    parser.add_argument("--no-gate", action="store_true", help="Animate without the articulatory gate (kmtalk_cli.face.gate).")
    args = parser.parse_args()

    from kmtalk_cli import animate
    from kmtalk_cli.alignment import align
    from kmtalk_cli.audio import load_audio
    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.weights import bundled_checkpoints

    if not args.clips.is_dir():
        raise SystemExit(f"{args.clips} is missing; install Debian's pocketsphinx-testdata or pass --clips.")
    models = [m for m in args.models.split(",") if m] or [c.path.stem for c in bundled_checkpoints()] + ["rig"]
    head = bundled_template()
    rest_gap = float(lip_gap_mm(head.vertices[None], head.landmarks)[0])
    texts = transcripts(args.clips)
    print(f"rest inner-lip gap of the bundled head: {rest_gap:.2f} mm")
    print(f"| {'clip':<44} | {'s':>4} | {'model':<15} | {'loudness r':>10} | {'m/b/p closed':>12} |")
    print(f"|{'-' * 46}|{'-' * 6}|{'-' * 17}|{'-' * 12}|{'-' * 14}|")
    totals: dict[str, list[tuple[float, float, int]]] = {m: [] for m in models}
    for name, text in sorted(texts.items()):
        audio = load_audio(args.clips / f"{name}.wav")
        alignment = align(audio, text)
        for model in models:
            if Path(model).exists():  # a checkpoint file or run folder of your own
                anim = animate(audio, checkpoint=model, alignment=alignment, gate=not args.no_gate, liveliness=False)
            else:
                backbone, km = (model[:-3], True) if model.endswith("-km") else (model, False)
                anim = animate(audio, backbone=backbone, key_motions=km if backbone != "rig" else None, alignment=alignment,
                               gate=not args.no_gate, liveliness=False)
            r, share, n = check_clip(anim, audio, alignment, rest_gap)
            totals[model].append((r, share, n))
            print(f"| {name:<44} | {audio.duration:>4.1f} | {model:<15} | {r:>10.2f} | {share:>7.0%} of {n:<2} |")
    print("\nmean over clips (m/b/p pooled over phones):")
    for model, rows in totals.items():
        n = sum(x[2] for x in rows)
        pooled = sum(x[1] * x[2] for x in rows) / max(n, 1)
        print(f"  {model:<15} loudness r {np.mean([x[0] for x in rows]):.2f}   m/b/p closed {pooled:.0%} of {n}")


if __name__ == "__main__":
    main()
