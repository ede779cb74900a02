"""Batch throughput of ``kmtalk animate``: one CLI call per file vs one batch call.

    python benchmarks/batch.py [--lines 200] [--per-file 30] [--jobs 1,2] [--rtf-lines 100]

Real speech: Debian's ``pocketsphinx-testdata`` LibriVox sentences (public domain, 24.7 s in
all), force-aligned to their transcripts with the built-in aligner and cut between words
wherever the speaker pauses, into short lines (about 1-3 s) with the words said in each as a
``path,transcript`` manifest. The lines are repeated under new names until there are
``--lines`` of them. The same cutting with 3 s targets makes the ``--rtf-lines`` three-second
lines for the real-time factor (wall time of the whole batch / seconds of speech).

Rows: files per minute for ``--per-file`` separate ``kmtalk animate FILE --text ...`` calls
(each pays the start-up and the model load), and for one ``kmtalk animate lines.csv -o out/``
call per ``--jobs`` value over all lines. Default model (bundled SelfTalk + KM), fp32, with the
default articulatory gate and liveliness layer. Besides wall time it prints the CPU seconds
the kmtalk processes used and the load average, since on a shared machine the wall time
follows whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from librivox import CLIPS, transcripts  # noqa: E402

KMTALK = [sys.executable, "-m", "kmtalk_cli"]




def cut_lines(folder: Path, shortest: float, longest: float, pause: float = 0.12) -> list[tuple[np.ndarray, str]]:
    """Each clip cut between words where the gap is at least ``pause`` s (or, failing that, at
    any word boundary once ``longest`` is reached), into lines of ``shortest``-``longest`` s."""
    from kmtalk_cli.alignment import align
    from kmtalk_cli.audio import load_audio

    lines = []
    for name, text in sorted(transcripts(folder).items()):
        audio = load_audio(folder / f"{name}.wav")
        words = [w for w in align(audio, text).words if w.label.upper() not in ("SIL", "<SIL>", "")]
        start, said = None, []
        for i, word in enumerate(words):
            if start is None:
                start = max(0.0, word.start - 0.05)
            said.append(word.label.lower())
            gap = words[i + 1].start - word.end if i + 1 < len(words) else 1.0
            length = word.end - start
            if (length >= shortest and gap >= pause) or length >= longest or i + 1 == len(words):
                end = min(audio.duration, word.end + min(0.05, gap / 2))
                if end - start >= 0.5:
                    a, b = int(start * audio.sample_rate), int(end * audio.sample_rate)
                    lines.append((audio.samples[a:b], " ".join(said)))
                start, said = None, []
    return lines


def write_lines(lines: list[tuple[np.ndarray, str]], count: int, folder: Path, rate: int = 16_000) -> tuple[Path, float]:
    """``count`` lines as WAVs (repeating the cut ones) and their manifest; total seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, seconds = ["path,transcript"], 0.0
    for i in range(count):
        samples, text = lines[i % len(lines)]
        sf.write(folder / f"line{i:04d}.wav", samples, rate)
        rows.append(f"line{i:04d}.wav,{text}")
        seconds += len(samples) / rate
    manifest = folder / "lines.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest, seconds


@dataclass
class Timing:
    """Wall seconds, CPU seconds of the kmtalk processes (user + system, workers included) and the
    machine's load average while they ran: on a shared machine wall time follows the load, CPU
    time much less."""

    wall: float = 0.0
    cpu: float = 0.0
    load: list[float] = field(default_factory=list)

    def add(self, other: Timing) -> None:
        self.wall += other.wall
        self.cpu += other.cpu
        self.load += other.load


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str]) -> Timing:
    began, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([*KMTALK, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"kmtalk {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return Timing(time.perf_counter() - began, _children_cpu() - cpu, [os.getloadavg()[0]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--per-file", type=int, default=30, help="separate CLI calls timed (files/min extrapolates)")
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--rtf-lines", type=int, default=100)
    opts = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="kmtalk-batch-bench-"))
    try:
        short = cut_lines(opts.clips, 0.8, 2.5)
        manifest, seconds = write_lines(short, opts.lines, scratch / "short")
        print(f"{opts.lines} lines cut from {len(short)} distinct ones, {seconds / opts.lines:.2f} s each on average ({seconds:.0f} s of speech)\n", flush=True)
        print("| mode | files | wall (s) | files/min (wall) | CPU s per file | load avg |")
        print("|---|---|---|---|---|---|", flush=True)

        def row(label: str, n: int, t: Timing) -> None:
            print(f"| {label} | {n} | {t.wall:.1f} | {60 * n / t.wall:.0f} | {t.cpu / n:.2f} | {np.mean(t.load):.1f} |", flush=True)

        out = scratch / "single"
        out.mkdir()
        texts = dict(line.split(",", 1) for line in manifest.read_text().splitlines()[1:])
        single = Timing()
        for n in sorted(texts)[: opts.per_file]:
            single.add(run(["animate", str(manifest.parent / n), "--text", texts[n], "-o", str(out / (Path(n).stem + ".npy")), "-q"]))
        row(f"one call per file ({opts.per_file} files)", opts.per_file, single)
        for jobs in (int(j) for j in opts.jobs.split(",")):
            row(f"one batch call, --jobs {jobs}", opts.lines, run(["animate", str(manifest), "-o", str(scratch / f"batch{jobs}"), "--jobs", str(jobs), "-q"]))

        if opts.rtf_lines:
            three = cut_lines(opts.clips, 2.6, 3.4, pause=0.08)
            manifest3, seconds3 = write_lines(three, opts.rtf_lines, scratch / "three")
            print(f"\n{opts.rtf_lines} lines of {seconds3 / opts.rtf_lines:.2f} s on average ({len(three)} distinct), one batch call:\n")
            print("| jobs | wall (s) | speech (s) | RTF (wall) | CPU s per speech s | load avg |")
            print("|---|---|---|---|---|---|", flush=True)
            for jobs in (int(j) for j in opts.jobs.split(",")):
                t = run(["animate", str(manifest3), "-o", str(scratch / f"three{jobs}"), "--jobs", str(jobs), "-q"])
                print(f"| {jobs} | {t.wall:.1f} | {seconds3:.0f} | {t.wall / seconds3:.3f} | {t.cpu / seconds3:.3f} | {np.mean(t.load):.1f} |", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
