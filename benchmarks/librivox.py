"""Real speech of any length for the benchmarks: Debian's LibriVox clips, concatenated, with their transcripts.

The clips (``pocketsphinx-testdata``, public domain, 16 kHz, 24.7 s in all) are repeated in
order until the requested length is reached; the transcript is the clips' words in the same
order, so a forced alignment covers the whole recording.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

CLIPS = Path("/usr/share/pocketsphinx/test/data/librivox")


def transcripts(folder: Path = CLIPS) -> dict[str, str]:
    """``<s> words </s> (name)`` lines → name → words."""
    found = {}
    for line in (folder / "transcription").read_text().splitlines():
        m = re.match(r"\s*<s>(.*)</s>\s*\((.+)\)", line)
        if m:
            found[m.group(2).strip()] = m.group(1).strip()
    return found


def make_speech(seconds: float, out: Path, folder: Path = CLIPS) -> Path:
    """Write ``out`` (.wav, 16 kHz) of whole clips, at least ``seconds`` long (the shortest
    single clip that is not shorter, for short lengths), and ``out``'s ``.txt`` transcript."""
    words = transcripts(folder)
    clips = [(name, sf.read(folder / f"{name}.wav", dtype="float32")[0]) for name in sorted(words)]
    fitting = [c for c in clips if len(c[1]) >= seconds * 16000]
    if fitting:  # a single real sentence
        chosen = [min(fitting, key=lambda c: len(c[1]))]
    else:
        chosen, total, i = [], 0, 0
        while total < seconds * 16000:
            chosen.append(clips[i % len(clips)])
            total += len(clips[i % len(clips)][1])
            i += 1
    gap = np.zeros(int(0.2 * 16000), dtype=np.float32)
    audio = np.concatenate([piece for _, samples in chosen for piece in (samples, gap)][:-1])
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, 16000, subtype="PCM_16")
    out.with_suffix(".txt").write_text(" ".join(words[name] for name, _ in chosen) + "\n")
    return out
