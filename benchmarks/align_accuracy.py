"""Aligner accuracy on speech with exactly known phone timings, plus real LibriVox speech.

Ground truth: MBROLA voices (the .pho durations espeak-ng writes are rendered exactly) and
espeak-ng's own voices (phoneme events; they run a steady ~15 ms ahead of what an aligner
sees, reported as "bias"). LibriVox clips have no phone timings: only the forced-path rate
and speed are reported. MBROLA needs Debian's espeak-ng, mbrola and mbrola-us1/us2/us3/en1
(contrib/non-free); missing voices are skipped.

    python benchmarks/align_accuracy.py --sentences 30 --voices en-us,mb-us1
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmtalk_cli.alignment import align
from kmtalk_cli.alignment.espeak import synthesize
from kmtalk_cli.alignment.evaluate import TimedPhone, boundary_errors, parse_pho, reference_from_espeak
from kmtalk_cli.alignment.mbrola import missing_reason, synthesize_mbrola
from kmtalk_cli.audio import Audio, from_array, load_audio

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore every summer.",
    "Please bring me a cup of hot chocolate with whipped cream.",
    "My grandmother visited Vienna in 1999.",
    "We will meet at the bridge just before the thunderstorm arrives.",
    "A thick fog rolled over the harbour and hid the boats.",
    "Could you measure the width of that window for the new curtains?",
    "Judge Harris approved the budget for the village school.",
    "The children played with a yellow ball in the garden.",
    "Few people know how to choose a really good melon.",
    "Our flight to Boston was delayed by 3 hours.",
    "He poured fresh orange juice into a tall glass.",
    "Maybe the puppy buried the bone beneath the oak tree.",
    "Every morning the baker wakes up before sunrise.",
    "They found an old map hidden inside a leather book.",
    "Five violins played softly while the audience waited.",
    "Why would anyone paint the whole house purple?",
    "The shepherd counted his sheep twice before nightfall.",
    "Thank you for the lovely flowers and the kind note.",
    "Zebras and giraffes wandered across the dusty plain.",
    "It was a pleasure to watch the vivid autumn leaves fall.",
    "The museum opens at nine and closes at half past five.",
    "Bob kept his umbrella by the door in case of rain.",
    "Measuring the voltage requires a steady hand and patience.",
    "Wolves howled somewhere beyond the frozen river.",
    "A young boy asked the pilot about the engine noise.",
    "Good food and warm company make a perfect evening.",
    "The thief escaped through the narrow alley behind the church.",
    "Jenny whispered a joke that made everybody laugh.",
    "Fresh bread smells wonderful when it comes out of the oven.",
    "Kmtalk moves the lips of a virtual zorblax with ease.",
    "Ships usually anchor near the rocky northern point.",
)
DEFAULT_VOICES = "en-us,en-us+f3,en-us+m3,mb-us1,mb-us2,mb-us3,mb-en1"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@dataclass
class Row:
    """Accumulated results for one voice."""

    name: str
    n: int = 0
    forced: int = 0
    audio_s: float = 0.0
    align_s: float = 0.0
    asr_s: float = 0.0
    errors: list[np.ndarray] | None = None


def mbrola(text: str, voice: str) -> tuple[Audio, tuple[TimedPhone, ...]] | None:
    """Synthesise with an MBROLA voice (``mb-us1``); None when espeak-ng/mbrola or the voice is missing."""
    name = voice.removeprefix("mb-")
    if missing_reason((name,)) is not None:
        return None
    speech = synthesize_mbrola(text, name)
    return from_array(speech.samples, speech.sample_rate), parse_pho(speech.pho)


def run_one(row: Row, audio: Audio, text: str, reference: tuple[TimedPhone, ...] | None, asr: bool) -> None:
    """Align once with the transcript (timed, scored) and optionally once without (timed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        result = align(audio, text, backend="pocketsphinx")
        row.align_s += time.perf_counter() - t
        if asr:
            t = time.perf_counter()
            align(audio, None, backend="pocketsphinx")
            row.asr_s += time.perf_counter() - t
    row.n += 1
    row.audio_s += audio.duration
    row.forced += result.forced
    if reference is not None and result.forced:
        row.errors = (row.errors or []) + [boundary_errors(reference, result)]


def fmt(row: Row, asr: bool) -> str:
    """One table line."""
    if row.n == 0:
        return f"| {row.name:<10} | skipped (not installed) |"
    e = np.abs(np.concatenate(row.errors)) * 1000 if row.errors else None
    bias = np.concatenate(row.errors).mean() * 1000 if row.errors else None
    cells = [
        f"{row.name:<10}", f"{row.n:>3}", f"{100 * row.forced / row.n:6.1f}",
        f"{e.mean():6.1f}" if e is not None else "     -", f"{np.median(e):6.1f}" if e is not None else "     -",
        f"{np.percentile(e, 90):6.1f}" if e is not None else "     -", f"{bias:+6.1f}" if bias is not None else "     -",
        f"{row.align_s / row.audio_s:5.3f}", f"{row.asr_s / row.audio_s:5.3f}" if asr else "    -",
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES), help="sentences per voice (max %(default)s)")
    parser.add_argument("--voices", default=DEFAULT_VOICES, help="comma-separated espeak-ng voices; mb-* are MBROLA")
    parser.add_argument("--no-asr", action="store_true", help="skip the transcript-free timing")
    parser.add_argument("--no-librivox", action="store_true", help="skip the LibriVox clips")
    args = parser.parse_args(argv)
    asr = not args.no_asr
    sentences = SENTENCES[: max(1, args.sentences)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm = synthesize("warm up")
        align(from_array(warm.samples, warm.sample_rate), None, backend="pocketsphinx")  # load models once
    print("| voice      |   n | forced% | MAE ms | median |    p90 | bias ms | RTF  | RTF no-text |")
    print("|------------|-----|--------|--------|--------|--------|--------|-------|-------|")
    for voice in [v.strip() for v in args.voices.split(",") if v.strip()]:
        row = Row(voice)
        for text in sentences:
            if voice.startswith("mb-"):
                made = mbrola(text, voice)
                if made is None:
                    break
                audio, reference = made
            else:
                syn = synthesize(text, voice)
                audio, reference = from_array(syn.samples, syn.sample_rate), reference_from_espeak(syn)
            run_one(row, audio, text, reference, asr)
        print(fmt(row, asr), flush=True)
    if not args.no_librivox and LIBRIVOX.is_dir():
        row = Row("librivox")
        for line in (LIBRIVOX / "transcription").read_text().splitlines():
            text, _, clip = line.rpartition("(")
            text = text.replace("<s>", "").replace("</s>", "").strip()
            run_one(row, load_audio(LIBRIVOX / f"{clip.strip(') ')}.wav"), text, None, asr)
        print(fmt(row, asr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
