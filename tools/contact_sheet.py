"""Regenerate the README's contact sheet: the bundled default model on real speech, three views.

    python tools/contact_sheet.py [--audio examples/amiable.wav] [--out docs/contact_sheet.png]

Runs ``kmtalk animate`` (default model, no flags) on the speech in a scratch directory, picks
four moments from its alignment (rest, the widest open vowel, a bilabial closure, an F/V) and
renders each from the front, three-quarter and profile views with the head's teeth, tongue,
mouth cavity, eyes and scalp, labelled with the phone and time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("front", "three-quarter", "profile")
#: (label, phones) of the moments shown, in order; the first match with the widest mouth wins.
MOMENTS = (("open", ("AA", "AE", "AH", "AO", "AW", "AY")), ("m/b/p", ("M", "B", "P")), ("f/v", ("F", "V")))


def lip_gap(frames: np.ndarray, template) -> np.ndarray:
    """Inner-lip gap per frame (metres) at the mouth's middle."""
    up, low = template.region("lip_contour_upper"), template.region("lip_contour_lower")
    mid_up = up[np.argsort(np.abs(template.vertices[up, 0]))[:3]]
    mid_low = low[np.argsort(np.abs(template.vertices[low, 0]))[:3]]
    return frames[:, mid_up, 1].mean(axis=1) - frames[:, mid_low, 1].mean(axis=1)


def pick_moments(phones: list, gap: np.ndarray, fps: float) -> list[tuple[str, int]]:
    """(label, frame) for rest and each of :data:`MOMENTS`: per class, the phone middle with the
    widest (open) or narrowest (closures, f/v) lip gap."""
    chosen = [("rest", 0)]
    for label, wanted in MOMENTS:
        best = None
        for name, start, end in phones:
            if name.rstrip("012") not in wanted:
                continue
            frame = min(int(round((start + end) / 2 * fps)), len(gap) - 1)
            score = gap[frame] if label == "open" else -gap[frame]
            if best is None or score > best[0]:
                best = (score, frame, name.rstrip("012"))
        if best is not None:
            chosen.append((f"{best[2]} {best[1] / fps:.2f}S", best[1]))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=ROOT / "examples" / "amiable.wav")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "contact_sheet.png")
    parser.add_argument("--size", type=int, default=240, help="pixels per tile")
    args = parser.parse_args(argv)

    from kmtalk_cli.face.template import bundled_template
    from kmtalk_cli.motion import load_motion
    from kmtalk_cli.render import RenderOptions
    from kmtalk_cli.render.camera import camera_view
    from kmtalk_cli.render.pipeline import render_stills
    from kmtalk_cli.render.png import tile, write_png

    head = bundled_template()
    with tempfile.TemporaryDirectory(prefix="kmtalk-sheet-") as tmp:
        speech = Path(tmp) / args.audio.name
        shutil.copy(args.audio, speech)
        text = args.audio.with_suffix(".txt")
        if text.is_file():
            shutil.copy(text, speech.with_suffix(".txt"))
        subprocess.run([sys.executable, "-m", "kmtalk_cli", "animate", str(speech), "-q"], check=True)
        frames = load_motion(speech.with_suffix(".npy"), head.n_vertices)
        phones = json.loads(speech.with_suffix(".align.json").read_text())["phones"]
    fps = 30.0
    moments = pick_moments(phones, lip_gap(frames, head), fps)
    rows = []
    for label, frame in moments:
        row = []
        for view in VIEWS:
            options = RenderOptions(size=args.size, view=camera_view(view), labels=(f"{label} {view}",))
            row += render_stills(frames[frame: frame + 1], head, options=options)
        rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, tile(rows))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): " + ", ".join(f"{l} (frame {f})" for l, f in moments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
