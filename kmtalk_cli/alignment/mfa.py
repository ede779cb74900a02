"""The Montreal Forced Aligner backend, used when a working ``mfa`` is on PATH.

MFA (Kaldi-based) is what the KMTalk paper used and is more accurate on real speech, but it
installs only through conda and downloads its models, so kmtalk never depends on it: it is run
as an external program on a temporary one-file corpus and its TextGrid is read back.

MFA's command line changes between generations, so the installed version is asked first
(``mfa version``) and the command is built for it:

* before 3.4: ``mfa align CORPUS DICTIONARY ACOUSTIC_MODEL OUTPUT`` (the only form);
* 3.4.x: the same form for models with a separate dictionary (deprecated there), and
  ``mfa align_hf CORPUS ACOUSTIC_MODEL OUTPUT`` for the newer models that carry their own
  dictionary;
* 4.x: ``mfa align CORPUS ACOUSTIC_MODEL OUTPUT`` is the newer form, and the old one is
  renamed ``mfa align_legacy CORPUS DICTIONARY ACOUSTIC_MODEL OUTPUT``;
* 5 and later: the legacy form is gone, so a separate dictionary cannot be used.

Phone labels of any MFA model (ARPAbet, or the IPA-based MFA phone sets of other languages)
are mapped onto kmtalk's inventory by :mod:`.phones`; what has no counterpart is reported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..audio import write_wav
from ..errors import AlignmentError
from .normalize import normalize_words
from .textgrid import read_textgrid
from .transcript import foreign_script
from .types import Alignment, validate

DEFAULT_MODEL = "english_us_arpa"
#: ``--mfa-dictionary`` value meaning "the dictionary distributed with the acoustic model" (3.4+).
BUNDLED = "bundled"
INSTALL_HINT = (
    "Install it with `conda install -c conda-forge montreal-forced-aligner`, then "
    f"`mfa model download acoustic {DEFAULT_MODEL}` and `mfa model download dictionary "
    f"{DEFAULT_MODEL}`; or use `--aligner pocketsphinx`, which needs no extra installation."
)
TIMEOUT = 600.0  # seconds: MFA is slow to start but a single file never needs this long
VERSION_TIMEOUT = 60.0


@dataclass(frozen=True)
class MfaJob:
    """Everything one ``mfa`` alignment run needs, so the command can be built and tested purely.

    ``dictionary`` None means the acoustic model's own dictionary; ``version`` is MFA's
    ``(major, minor)``, or None when it could not be told (the pre-3.4 form is used then).
    """

    executable: str
    corpus: Path
    output: Path
    acoustic_model: str = DEFAULT_MODEL
    dictionary: str | None = DEFAULT_MODEL
    num_jobs: int = 1
    version: tuple[int, int] | None = None


def find_mfa(executable: str | None = None) -> str | None:
    """Path of the ``mfa`` program (``$KMTALK_MFA`` or PATH), or None."""
    name = executable or os.environ.get("KMTALK_MFA") or "mfa"
    return shutil.which(name)


def parse_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` from what ``mfa version`` prints (``3.1.0``, ``v4.0.0a1``), or None."""
    match = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def mfa_version(executable: str) -> tuple[int, int] | None:
    """Ask the installed MFA for its version; None if it does not say."""
    try:
        proc = subprocess.run([executable, "version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_version(proc.stdout) or parse_version(proc.stderr)


def _model_argument(name: str) -> str:
    """An MFA model name as is, or a path made absolute (MFA runs in its own directory layout)."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def build_command(job: MfaJob) -> list[str]:
    """The ``mfa`` command line for ``job`` in the form its MFA version wants (module docstring)."""
    version = job.version or (3, 0)
    model = _model_argument(job.acoustic_model)
    if job.dictionary is None:
        if version < (3, 4):
            raise AlignmentError(
                f"MFA {version[0]}.{version[1]} has no models with their own dictionary; "
                "pass --mfa-dictionary (an MFA dictionary name or a file)."
            )
        verb = "align_hf" if version < (4, 0) else "align"
        positional = [verb, str(job.corpus), model, str(job.output)]
    else:
        if version >= (5, 0):
            raise AlignmentError(
                f"MFA {version[0]}.{version[1]} no longer takes a separate dictionary; use a model "
                f"that carries its own (--mfa-dictionary {BUNDLED})."
            )
        verb = "align_legacy" if version >= (4, 0) else "align"
        positional = [verb, str(job.corpus), _model_argument(job.dictionary), model, str(job.output)]
    return [
        job.executable,
        *positional,
        "--clean",
        "--overwrite",
        "--single_speaker",
        "--num_jobs",
        str(job.num_jobs),
        "--output_format",
        "long_textgrid",
    ]


def mfa_words(text: str | None) -> list[str] | None:
    """The words MFA is given: normalised English, or the text's own words in another script."""
    if text is None:
        return None
    if foreign_script(text) is not None:
        words = text.split()
    else:
        words = normalize_words(text)
    if not words:
        raise AlignmentError(f"The transcript {text.strip()[:60]!r} contains no words; give the words spoken in the audio.")
    return words


def align_mfa(
    audio: Any,
    text: str | None,
    *,
    words: list[str] | None = None,
    source: str | None = None,
    acoustic_model: str | None = None,
    dictionary: str | None = None,
    mfa: str | None = None,
    **_: Any,
) -> Alignment:
    """Align with MFA; without a transcript, pocketsphinx ASR supplies one (as in the paper).

    ``acoustic_model`` and ``dictionary`` are MFA model names or paths (default
    ``english_us_arpa`` for both; the dictionary defaults to the acoustic model's name, and
    ``"bundled"`` means the model's own dictionary).
    """
    executable = find_mfa(mfa)
    if executable is None:
        raise AlignmentError(f"The Montreal Forced Aligner (`mfa`) is not installed or not on PATH. {INSTALL_HINT}")
    acoustic_model = acoustic_model or DEFAULT_MODEL
    if dictionary is None and (Path(acoustic_model).suffix or os.sep in acoustic_model):
        raise AlignmentError(
            f"The MFA acoustic model {acoustic_model} is a file, so its dictionary cannot be named after it; "
            f"pass --mfa-dictionary (an MFA dictionary name or file, or '{BUNDLED}' for the model's own)."
        )
    dictionary = dictionary or acoustic_model
    version = mfa_version(executable)
    notes: list[str] = [
        f"MFA {'.'.join(map(str, version)) if version else '(version unknown)'} with acoustic model "
        f"{acoustic_model} and {'its own dictionary' if dictionary == BUNDLED else 'dictionary ' + dictionary}"
    ]
    if words is None:
        words = mfa_words(text)
    if words is None:
        from .pocketsphinx import recognise_words, to_pcm

        words = recognise_words(to_pcm(audio.samples))
        if not words:
            raise AlignmentError(
                "No transcript was given and speech recognition heard no words, so MFA has "
                "nothing to align; give a transcript or use `--aligner pocketsphinx`."
            )
        notes.append("transcript recognised by pocketsphinx (English) for MFA")
    with tempfile.TemporaryDirectory(prefix="kmtalk-mfa-") as tmp:
        corpus, output = Path(tmp) / "corpus", Path(tmp) / "aligned"
        corpus.mkdir()
        output.mkdir()
        write_wav(audio, corpus / "utterance.wav")
        (corpus / "utterance.lab").write_text(" ".join(words) + "\n", encoding="utf-8")
        job = MfaJob(executable, corpus, output, acoustic_model, None if dictionary == BUNDLED else dictionary,
                     version=version)
        command = build_command(job)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AlignmentError(f"Running MFA ({executable}) failed: {exc}. {INSTALL_HINT}") from None
        grids = sorted(output.rglob("*.TextGrid"))
        if proc.returncode != 0 or not grids:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            raise AlignmentError(
                f"MFA did not align the audio (`{' '.join(command[1:2])}` exited with code {proc.returncode}"
                + (f": {' / '.join(tail)}" if tail else "")
                + f"). Check that its models are downloaded. {INSTALL_HINT}"
            )
        alignment = read_textgrid(grids[0], duration=audio.duration, transcript=text)
    grid_notes = tuple(n for n in alignment.notes if not n.startswith("read from"))
    return validate(
        replace(alignment, backend="mfa", method="forced" if text is not None else "recognised",
                notes=tuple(notes) + grid_notes, source=source)
    )
