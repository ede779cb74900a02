"""Festival voices: a second free synthesiser whose segment timings are its own ground truth.

Festival (X11-style licence) and its US English voices are Debian main packages: two diphone
males (``festvox-kallpc16k``, ``festvox-kdlpc16k``, BSD-style licences) and the CMU ARCTIC "slt"
female as an HTS voice (``festvox-us-slt-hts``, BSD-3/EST licences, 32 kHz; the corpus resamples).
They are an optional extra for building corpora
(``kmtalk synth --voices festival`` or ``espeak+festival``), never needed at run time: Festival
renders the segment durations it plans, and ``utt.save.segs`` writes each segment's end time,
so the phone timings are exact for its output. Festival's phone set (radio) is ARPAbet in lower
case with ``ax`` for schwa and ``pau`` for silence.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import KmtalkError

#: Voices the corpus may use, in the order subjects take them, with their folders (Debian package).
VOICE_DIRS: dict[str, Path] = {
    "kal_diphone": Path("/usr/share/festival/voices/english/kal_diphone"),  # festvox-kallpc16k
    "cmu_us_slt_arctic_hts": Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"),  # festvox-us-slt-hts
    "ked_diphone": Path("/usr/share/festival/voices/english/ked_diphone"),  # festvox-kdlpc16k
}
VOICES: tuple[str, ...] = tuple(VOICE_DIRS)
VOICE_GENDER: dict[str, str] = {"kal_diphone": "M", "cmu_us_slt_arctic_hts": "F", "ked_diphone": "M"}
PACKAGES = "festvox-kallpc16k festvox-us-slt-hts festvox-kdlpc16k"
_TIMEOUT_S = 60
#: Radio phones that are not ARPAbet spelt in lower case.
_RADIO: dict[str, str] = {"ax": "AH", "pau": "SIL", "axr": "ER", "h#": "SIL", "brth": "SIL"}


class FestivalError(KmtalkError):
    """Festival or its voice is missing, or it failed."""


@dataclass(frozen=True)
class FestivalSpeech:
    samples: np.ndarray  # (N,) float32
    sample_rate: int
    segments: tuple[tuple[str, float, float], ...]  # (ARPAbet or SIL, start s, end s)


def installed_voices() -> tuple[str, ...]:
    return tuple(v for v in VOICES if VOICE_DIRS[v].is_dir())


def missing_reason() -> str | None:
    """Why Festival corpora cannot be built here, or None."""
    if shutil.which("festival") is None:
        return f"the festival program is not installed (Debian: apt install festival {PACKAGES})."
    if not installed_voices():
        return f"no Festival voice of {', '.join(VOICES)} is installed (Debian: apt install {PACKAGES})."
    return None


def radio_to_arpabet(name: str) -> str:
    return _RADIO.get(name, name.upper())


def read_segs(text: str) -> tuple[tuple[str, float, float], ...]:
    """``utt.save.segs`` output (end time, colour, phone per line after ``#``) → (label, start, end)."""
    out, start = [], 0.0
    body = text.split("#", 1)[-1]
    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        end = float(parts[0])
        out.append((radio_to_arpabet(parts[2]), start, end))
        start = end
    return tuple(out)


def synthesize_festival(text: str, voice: str = "kal_diphone") -> FestivalSpeech:
    """Speak ``text`` with Festival at the voice's own rate and pitch (the corpus varies them by warping)."""
    import soundfile as sf

    reason = missing_reason()
    if reason:
        raise FestivalError(f"Cannot speak with Festival: {reason}")
    clean = "".join(c for c in text if c not in '"\\')
    with tempfile.TemporaryDirectory(prefix="kmtalk-festival-") as tmp:
        wav, segs, script = Path(tmp) / "out.wav", Path(tmp) / "out.segs", Path(tmp) / "say.scm"
        script.write_text(
            f"(voice_{voice})\n"
            f'(set! u (Utterance Text "{clean}"))\n(utt.synth u)\n'
            f'(utt.save.wave u "{wav}" \'riff)\n(utt.save.segs u "{segs}")\n',
            encoding="utf-8",
        )
        try:
            subprocess.run(["festival", "-b", str(script)], capture_output=True, timeout=_TIMEOUT_S, check=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise FestivalError(f"festival failed on {text!r} ({exc.__class__.__name__}).") from None
        if not wav.is_file() or not segs.is_file():
            raise FestivalError(f"festival wrote no speech for {text!r}.")
        samples, rate = sf.read(str(wav), dtype="float32")
        return FestivalSpeech(samples, int(rate), read_segs(segs.read_text(encoding="utf-8")))
