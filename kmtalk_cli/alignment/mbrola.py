"""MBROLA voices: espeak-ng writes the phones and their durations, mbrola renders them exactly.

MBROLA is a diphone synthesiser: it is given a ``.pho`` file (phone, duration in ms, pitch
points) and plays exactly those durations, so its phone timings are ground truth without
any event offset. The programs and voices are optional system packages (on Debian the
``espeak-ng`` and ``mbrola`` programs and ``mbrola-us1`` … from contrib/non-free); they are
never bundled, because the voices' licence forbids commercial use. The ``espeakng-loader``
library cannot drive them (it ships no MBROLA phone tables), so this path runs the
``espeak-ng`` program, not the library.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import KmtalkError

#: Where Debian's mbrola-* packages put their voices (``<dir>/us1/us1``).
MBROLA_DIR = Path("/usr/share/mbrola")
#: The English MBROLA voices espeak-ng can drive, in the order subjects take them.
ENGLISH_VOICES: tuple[str, ...] = ("us1", "us2", "us3", "en1")
#: Speaker sex of each voice (us1 is a woman, the others men).
VOICE_GENDER: dict[str, str] = {"us1": "F", "us2": "M", "us3": "M", "en1": "M"}
#: Sample rate of the us/en MBROLA diphone databases.
MBROLA_RATE = 16_000
_TIMEOUT_S = 60


class MbrolaError(KmtalkError):
    """The MBROLA programs or voices are missing, or one of them failed."""


@dataclass(frozen=True)
class PhoPhone:
    """One line of a ``.pho`` file: the MBROLA (SAMPA) symbol and its exact span in seconds."""

    symbol: str
    start: float
    end: float


@dataclass(frozen=True)
class MbrolaSpeech:
    """Rendered speech plus the ``.pho`` that produced it (the timing ground truth)."""

    samples: np.ndarray  # (N,) float32 at ``sample_rate``
    sample_rate: int
    phones: tuple[PhoPhone, ...]
    pho: str
    text: str
    voice: str


def voice_database(voice: str) -> Path:
    """Path of a voice's diphone database (``us1`` → ``/usr/share/mbrola/us1/us1``)."""
    return MBROLA_DIR / voice / voice


def installed_voices(voices: tuple[str, ...] = ENGLISH_VOICES) -> tuple[str, ...]:
    """The voices of ``voices`` whose database is installed, in the given order."""
    return tuple(v for v in voices if voice_database(v).is_file())


def missing_reason(voices: tuple[str, ...] = ENGLISH_VOICES) -> str | None:
    """One sentence saying what is missing for MBROLA speech, or None when it can run.

    Checked up front so a corpus build fails before it writes anything.
    """
    absent = [name for name in ("espeak-ng", "mbrola") if shutil.which(name) is None]
    if not installed_voices(voices):
        absent.append(f"an English MBROLA voice ({', '.join(voices)} under {MBROLA_DIR})")
    if not absent:
        return None
    return (
        f"MBROLA voices need the espeak-ng and mbrola programs and an English MBROLA voice, and this machine lacks "
        f"{', '.join(absent)} (on Debian: apt install espeak-ng mbrola mbrola-us1, from contrib/non-free, not for commercial use)."
    )


def read_pho(text: str) -> tuple[PhoPhone, ...]:
    """Parse a ``.pho`` file: phones laid end to end from 0 s by their durations (ms)."""
    out: list[PhoPhone] = []
    t_ms = 0.0
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(";"):
            continue
        duration_ms = float(fields[1])
        out.append(PhoPhone(fields[0], t_ms / 1000.0, (t_ms + duration_ms) / 1000.0))
        t_ms += duration_ms
    return tuple(out)


def _run(command: list[str], stdin: bytes, what: str) -> bytes:
    """Run one of the two programs; any failure becomes an :class:`MbrolaError` sentence."""
    try:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MbrolaError(f"{what} could not be run ({exc}).") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MbrolaError(f"{what} failed (exit {done.returncode}): {detail[-1] if detail else 'no message'}.")
    return done.stdout


def pho_for(text: str, voice: str, *, rate: int | None = None, pitch: int | None = None) -> str:
    """espeak-ng's ``.pho`` for ``text`` in MBROLA voice ``voice`` (``us1``), at a rate (wpm) and pitch (0–99)."""
    command = ["espeak-ng", "-v", f"mb-{voice}", "-q", "--pho"]
    if rate is not None:
        command += ["-s", str(int(rate))]
    if pitch is not None:
        command += ["-p", str(int(pitch))]
    # The text goes on stdin so that one starting with "-" is never read as an option.
    return _run(command, text.encode("utf-8"), "espeak-ng").decode("utf-8")


def render_pho(pho: str, voice: str) -> np.ndarray:
    """mbrola's rendering of a ``.pho`` as float32 samples at :data:`MBROLA_RATE`.

    ``-e`` makes mbrola skip a diphone its database lacks instead of stopping; the raw
    output (``-.raw``) is 16-bit samples in the machine's byte order.
    """
    raw = _run(["mbrola", "-e", str(voice_database(voice)), "-", "-.raw"], pho.encode("utf-8"), "mbrola")
    pcm = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def synthesize_mbrola(text: str, voice: str = "us1", *, rate: int | None = None, pitch: int | None = None) -> MbrolaSpeech:
    """Speak ``text`` with an MBROLA voice; the returned phones are the exact ``.pho`` spans."""
    reason = missing_reason((voice,))
    if reason:
        raise MbrolaError(reason)
    pho = pho_for(text, voice, rate=rate, pitch=pitch)
    samples = render_pho(pho, voice)
    if samples.size == 0:
        raise MbrolaError(f"mbrola rendered no audio for {text!r} with voice {voice}.")
    return MbrolaSpeech(samples, MBROLA_RATE, read_pho(pho), pho, text, voice)
