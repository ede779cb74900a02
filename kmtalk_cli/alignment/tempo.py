"""Speech slowed down for the aligner, pitch kept.

pocketsphinx's phone models have three states of at least one 10 ms frame each, so a phone
shorter than 30 ms cannot be followed. A fast talker's reduced vowels and stops are often
shorter, and then the forced search finds no path through the very words that were said (or a
poor one, which the fit check turns away). Played slower, the same speech fits; times found in
it are scaled back.
"""

from __future__ import annotations

import subprocess

import numpy as np

#: Seconds ffmpeg may take to stretch one chunk (chunks are at most 25 s of audio).
TIMEOUT = 60.0


def slow_down(samples: np.ndarray, tempo: float, rate: int = 16_000) -> np.ndarray | None:
    """``samples`` played at ``tempo`` (0.5–1) of their speed with the pitch kept (ffmpeg's
    ``atempo``), or None where ffmpeg (imageio-ffmpeg) is missing or fails."""
    if not 0.5 <= tempo <= 1.0:
        raise ValueError(f"tempo must lie in [0.5, 1], got {tempo}")
    from ..audio import ffmpeg_executable

    exe = ffmpeg_executable()
    if exe is None:
        return None
    raw = ["-f", "f32le", "-ar", str(rate), "-ac", "1"]
    command = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", *raw, "-i", "pipe:0",
               "-filter:a", f"atempo={tempo:g}", *raw, "pipe:1"]
    try:
        done = subprocess.run(command, input=np.ascontiguousarray(samples, dtype="<f4").tobytes(),
                              capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or not done.stdout:
        return None
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)
