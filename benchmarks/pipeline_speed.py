"""End-to-end ``kmtalk animate`` speed by stage on real speech: wall, RTF and peak RSS.

    python benchmarks/pipeline_speed.py [--lengths 5,20,60,600] [--repeats 1] [--compare DIR] [-- EXTRA ANIMATE ARGS]

Speech: the LibriVox clips of Debian's ``pocketsphinx-testdata``, concatenated to each length,
with their transcripts beside them (so the alignment is forced, as a user with a script gets).
Each run is a fresh ``kmtalk animate SPEECH -q -f -o out.npy`` process (default model: SelfTalk
+ KM), split into the stages the CLI reports (``benchmarks/stages.py``); ``--repeats`` keeps the
fastest run. The first line is the floor every run pays: a Python that imports torch and exits.

``--compare DIR`` also runs another kmtalk checkout (say, ``git archive`` of an older commit,
with ``DIR/kmtalk_cli/backbones`` a link to ``DIR/backbones``) through ``PYTHONPATH``,
interleaved with this one on the same files, so both rows see the same machine load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from librivox import make_speech  # noqa: E402
from stages import run_stages  # noqa: E402

COLUMNS = ("start-up", "model load", "alignment", "key motions", "completion", "writing")


def import_floor(repeats: int) -> float:
    """Seconds for ``python -c 'import torch'``: no kmtalk start-up can be below it."""
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import numpy, torch"], check=True)
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="5,20,60,600", help="seconds of speech, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", type=Path, help="another kmtalk checkout to run interleaved (see above)")
    parser.add_argument("extra", nargs="*", help="more `kmtalk animate` arguments (after --)")
    args = parser.parse_args()
    print(f"python -c 'import numpy, torch': {import_floor(max(1, args.repeats)):.2f} s")
    print()
    versions = [("this", None)]
    if args.compare is not None:
        env = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
        versions.append((args.compare.name, env))
    label = "| version " if len(versions) > 1 else ""
    print(label + "| audio | " + " | ".join(COLUMNS) + " | wall | RTF | peak RSS |")
    print(("|---" if label else "") + "|---:|" + "---:|" * (len(COLUMNS) + 3))
    with tempfile.TemporaryDirectory(prefix="kmtalk-speed-") as scratch:
        for seconds in (float(s) for s in args.lengths.split(",")):
            speech = make_speech(seconds, Path(scratch) / f"speech{seconds:g}.wav")
            duration = len(speech.read_bytes()) / 32000  # 16-bit mono 16 kHz; the header is noise
            command = ["animate", str(speech), "-q", "-f", "-o", str(Path(scratch) / "out.npy"), *args.extra]
            runs: dict[str, list] = {name: [] for name, _ in versions}
            for _ in range(max(1, args.repeats)):
                for name, env in versions:  # interleaved: both see the same load
                    # cwd: the scratch folder, so a checkout's own directory never shadows PYTHONPATH
                    runs[name].append(run_stages(command, env=env, cwd=scratch))
            for name, _ in versions:
                best = min(runs[name], key=lambda r: r.wall)
                cells = [f"{best.stages.get(c, 0.0):.2f}" for c in COLUMNS]
                print(
                    (f"| {name} " if label else "") + f"| {duration:.1f} s | " + " | ".join(cells)
                    + f" | {best.wall:.2f} s | {best.wall / duration:.3f} | {best.peak_rss / 1e9:.2f} GB |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
