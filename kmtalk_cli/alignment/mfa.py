"""The Montreal Forced Aligner backend, used when a working ``mfa`` is on PATH.

MFA (Kaldi-based) is what the KMTalk paper used and is more accurate on real speech, but it
installs only through conda and downloads its models, so kmtalk never depends on it: it is run
as an external program on a temporary one-file corpus and its TextGrid is read back.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..audio import write_wav
from ..errors import AlignmentError
from .textgrid import read_textgrid
from .types import Alignment, validate

DEFAULT_MODEL = "english_us_arpa"
INSTALL_HINT = (
    "Install it with `conda install -c conda-forge montreal-forced-aligner`, then "
    f"`mfa model download acoustic {DEFAULT_MODEL}` and `mfa model download dictionary "
    f"{DEFAULT_MODEL}`; or use `--aligner pocketsphinx`, which needs no extra installation."
)
TIMEOUT = 600.0  # seconds: MFA is slow to start but a single file never needs this long


@dataclass(frozen=True)
class MfaJob:
    """Everything one ``mfa align`` run needs, so the command can be built and tested purely."""

    executable: str
    corpus: Path
    output: Path
    acoustic_model: str = DEFAULT_MODEL
    dictionary: str = DEFAULT_MODEL
    num_jobs: int = 1


def find_mfa(executable: str | None = None) -> str | None:
    """Path of the ``mfa`` program (``$KMTALK_MFA`` or PATH), or None."""
    name = executable or os.environ.get("KMTALK_MFA") or "mfa"
    return shutil.which(name)


def build_command(job: MfaJob) -> list[str]:
    """``mfa align CORPUS DICTIONARY ACOUSTIC_MODEL OUTPUT`` plus flags for a clean one-off run."""
    return [
        job.executable,
        "align",
        str(job.corpus),
        job.dictionary,
        job.acoustic_model,
        str(job.output),
        "--clean",
        "--overwrite",
        "--single_speaker",
        "--num_jobs",
        str(job.num_jobs),
        "--output_format",
        "long_textgrid",
    ]


def align_mfa(
    audio: Any,
    text: str | None,
    *,
    words: list[str] | None = None,
    source: str | None = None,
    acoustic_model: str = DEFAULT_MODEL,
    dictionary: str = DEFAULT_MODEL,
    mfa: str | None = None,
    **_: Any,
) -> Alignment:
    """Align with MFA; without a transcript, pocketsphinx ASR supplies one (as in the paper)."""
    executable = find_mfa(mfa)
    if executable is None:
        raise AlignmentError(f"The Montreal Forced Aligner (`mfa`) is not installed or not on PATH. {INSTALL_HINT}")
    notes: list[str] = []
    if words is None:
        from .pocketsphinx import recognise_words, to_pcm

        words = recognise_words(to_pcm(audio.samples))
        if not words:
            raise AlignmentError(
                "No transcript was given and speech recognition heard no words, so MFA has "
                "nothing to align; give a transcript or use `--aligner pocketsphinx`."
            )
        notes.append("transcript recognised by pocketsphinx for MFA")
    with tempfile.TemporaryDirectory(prefix="kmtalk-mfa-") as tmp:
        corpus, output = Path(tmp) / "corpus", Path(tmp) / "aligned"
        corpus.mkdir()
        output.mkdir()
        write_wav(audio, corpus / "utterance.wav")
        (corpus / "utterance.lab").write_text(" ".join(words) + "\n", encoding="utf-8")
        job = MfaJob(executable, corpus, output, acoustic_model, dictionary)
        try:
            proc = subprocess.run(build_command(job), capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AlignmentError(f"Running MFA ({executable}) failed: {exc}. {INSTALL_HINT}") from None
        grids = sorted(output.rglob("*.TextGrid"))
        if proc.returncode != 0 or not grids:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            raise AlignmentError(
                f"MFA did not align the audio (exit code {proc.returncode}"
                + (f": {' / '.join(tail)}" if tail else "")
                + f"). Check that its models are downloaded. {INSTALL_HINT}"
            )
        alignment = read_textgrid(grids[0], duration=audio.duration, transcript=text)
    return validate(
        replace(alignment, backend="mfa", method="forced" if text is not None else "recognised",
                notes=tuple(notes), source=source)
    )
