"""Alignment speed on long real speech with its transcript: one process vs worker processes.

LibriVox clips from Debian's pocketsphinx-testdata (public domain, 16 kHz, with transcripts)
are concatenated, half a second of silence between them, to the requested lengths, and aligned
with the pocketsphinx backend at each ``--jobs``. Prints wall time, CPU time of this process
and its workers, the real-time factor (wall / audio), how the chunks were aligned, and the
largest boundary difference between the runs (or, if a tie broke differently somewhere, how
many phones differ and whether the words agree).

    python benchmarks/align_speed.py --minutes 1 10 --jobs 1 2
"""

from __future__ import annotations

import argparse
import difflib
import os
import resource
import time
import warnings
from pathlib import Path

import numpy as np

from kmtalk_cli.alignment import align
from kmtalk_cli.audio import TARGET_RATE, from_array, load_audio

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
PAUSE = 0.5  # seconds of silence between clips


def clips() -> list[tuple[np.ndarray, str]]:
    """The LibriVox clips and their transcripts (``<s>``/``</s>`` markers removed)."""
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        text, _, name = line.rpartition("(")
        audio = load_audio(LIBRIVOX / f"{name.strip(') ')}.wav")
        out.append((audio.samples, text.replace("<s>", "").replace("</s>", "").strip()))
    return out


def long_speech(minutes: float) -> tuple[np.ndarray, str]:
    """Clips repeated in order until ``minutes`` of audio; the transcript follows them."""
    pause = np.zeros(int(PAUSE * TARGET_RATE), np.float32)
    pieces, words, total = [], [], 0
    source = clips()
    while total < minutes * 60 * TARGET_RATE:
        samples, text = source[len(words) % len(source)]
        pieces += [samples, pause]
        words.append(text)
        total += len(samples) + len(pause)
    return np.concatenate(pieces), " ".join(words)


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def compare(a, b) -> str:  # noqa: ANN001 - two Alignments of the same audio
    """Largest boundary shift when the phone labels agree; else how many phones differ, counted
    chunk by chunk (the clips repeat, so one long diff would pair the wrong repetitions)."""
    la, lb = [p.label for p in a.phones], [p.label for p in b.phones]
    if la == lb:
        return f"{max(abs(x.start - y.start) for x, y in zip(a.phones, b.phones)) * 1000:.0f} ms"
    changed = 0
    for span in a.chunks or (None,):
        def inside(phones):  # noqa: ANN001, ANN202
            return [p.label for p in phones if span is None or span.start <= p.start < span.end]
        ops = difflib.SequenceMatcher(a=inside(a.phones), b=inside(b.phones), autojunk=False).get_opcodes()
        changed += sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in ops if tag != "equal")
    words = "same words" if [w.label for w in a.words] == [w.label for w in b.words] else "words differ"
    return f"{changed} of {len(la)} phones, {words}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"CPUs available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'audio':>8} {'jobs':>4} {'wall s':>7} {'cpu s':>7} {'RTF':>6} {'chunks':>6}  {'methods':<28} {'vs first run':>30}")
    for minutes in args.minutes:
        samples, text = long_speech(minutes)
        audio = from_array(samples, TARGET_RATE)
        first = None
        for jobs in args.jobs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cpu0, t0 = cpu_seconds(), time.perf_counter()
                result = align(audio, text, backend="pocketsphinx", jobs=jobs)
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            if first is None:
                first, delta = result, "-"
            else:
                delta = compare(first, result)
            print(f"{audio.duration:7.0f}s {jobs:>4} {wall:7.1f} {cpu:7.1f} {wall / audio.duration:6.3f} "
                  f"{max(1, len(result.chunks)):>6}  {result.describe_method():<28} {delta:>30}")


if __name__ == "__main__":
    main()
