"""Speech → timed phones: where KMTalk's key motions go.

``align(audio, text)`` picks a backend (MFA when installed, else pocketsphinx, or a
TextGrid someone already made), normalises the transcript and returns an
:class:`Alignment` whose ``method`` and ``notes`` say whether any fallback was needed.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import AlignmentError, KmtalkWarning
from .normalize import normalize_text, normalize_words
from .phones import PHONES, SIL
from .transcript import foreign_script, looks_binary
from .types import Alignment, Segment, read_json, validate, write_json

__all__ = [
    "PHONES",
    "SIL",
    "Alignment",
    "Segment",
    "align",
    "find_textgrid",
    "find_transcript",
    "normalize_text",
    "normalize_words",
    "read_json",
    "write_json",
]

BACKENDS = ("auto", "pocketsphinx", "mfa", "textgrid")
TRANSCRIPT_SUFFIXES = (".txt", ".lab")


def find_transcript(audio_path: Path | str) -> str | None:
    """The transcript stored beside the audio (``clip.txt`` or MFA's ``clip.lab``), if any."""
    path = Path(audio_path)
    for suffix in TRANSCRIPT_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file() and candidate != path:
            text = candidate.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                return text
    return None


def find_textgrid(audio_path: Path | str) -> Path | None:
    """A TextGrid beside the audio with the same stem (MFA's output naming)."""
    path = Path(audio_path)
    for suffix in (".TextGrid", ".textgrid", ".Textgrid"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def transcript_words(text: str | None) -> list[str] | None:
    """Normalised words, None for "no transcript", :class:`AlignmentError` if nothing speakable."""
    if text is None:
        return None
    if not text.strip():
        raise AlignmentError(
            "The transcript is empty; give the words spoken in the audio, or no transcript "
            "at all to have them recognised."
        )
    script = foreign_script(text)
    if script is not None:
        raise AlignmentError(
            f"The transcript is written in {script}, but the built-in pocketsphinx aligner is "
            "English-only; for other languages use `--aligner mfa` with that language's MFA "
            "models (--mfa-acoustic-model, --mfa-dictionary)."
        )
    words = normalize_words(text)
    if not words:
        raise AlignmentError(
            f"The transcript {text.strip()[:60]!r} contains no words (only punctuation or "
            "symbols); give the words spoken in the audio."
        )
    return words


def _load(audio_or_path: Any) -> Any:
    """Accept an :class:`~kmtalk_cli.audio.Audio` or anything ``load_audio`` reads."""
    from ..audio import Audio, load_audio

    if isinstance(audio_or_path, Audio):
        return audio_or_path
    return load_audio(Path(audio_or_path))


def mfa_usable() -> bool:
    """True when an ``mfa`` executable is on PATH (``auto`` then prefers it)."""
    from .mfa import find_mfa

    return find_mfa() is not None


def _usable_text(text: str | None) -> tuple[str | None, tuple[str, ...]]:
    """Drop a "transcript" that is binary data (a stray file beside the audio), saying so."""
    if text is None or not looks_binary(text):
        return text, ()
    message = "the transcript is not text (it holds binary data), so it was ignored and the words were recognised"
    warnings.warn(message[0].upper() + message[1:] + ".", KmtalkWarning, stacklevel=3)
    return None, (message,)


def align(audio_or_path: Any, text: str | None = None, backend: str = "auto", **options: Any) -> Alignment:
    """Align speech to phones.

    ``backend``: ``auto`` (MFA if an ``mfa`` executable is on PATH, else pocketsphinx; the
    alignment's notes say which ran), ``pocketsphinx``, ``mfa`` or ``textgrid`` (reads
    ``textgrid=`` or the audio's sibling ``.TextGrid``). ``text`` None means "no transcript":
    words are recognised first; binary data in place of a transcript is ignored with a warning.
    Options: ``max_chunk`` (s) and ``jobs`` (worker processes) for pocketsphinx;
    ``acoustic_model``/``dictionary``/``mfa`` for MFA; ``textgrid`` (path).
    """
    if backend not in BACKENDS:
        raise AlignmentError(f"Unknown aligner {backend!r}; choose one of {', '.join(BACKENDS)}.")
    source = None if not isinstance(audio_or_path, (str, Path)) else str(audio_or_path)
    text, notes = _usable_text(text)
    if backend == "textgrid":
        from .textgrid import read_textgrid

        grid = options.get("textgrid")
        if grid is None:
            audio_path = source or getattr(audio_or_path, "source", None)
            grid = find_textgrid(audio_path) if audio_path else None
        if grid is None:
            raise AlignmentError(
                "The textgrid aligner needs a TextGrid: pass one, or put clip.TextGrid beside clip.wav."
            )
        duration = None
        if not isinstance(audio_or_path, (str, Path)) or Path(audio_or_path).exists():
            duration = _load(audio_or_path).duration
        return read_textgrid(grid, duration=duration, transcript=text)
    use_mfa = backend == "mfa" or (backend == "auto" and mfa_usable())
    if use_mfa:
        from .mfa import align_mfa, mfa_words

        words = mfa_words(text)
    else:
        words = transcript_words(text)
    audio = _load(audio_or_path)
    if source is None and getattr(audio, "source", None) is not None:
        source = str(audio.source)
    if backend == "auto":
        notes += ("aligner auto chose MFA (an `mfa` program is on PATH)" if use_mfa
                  else "aligner auto chose pocketsphinx (no `mfa` program on PATH)",)
    if use_mfa:
        result = align_mfa(audio, text, words=words, source=source, **options)
    else:
        from .pocketsphinx import align_pocketsphinx

        allowed = {k: v for k, v in options.items() if k in {"max_chunk", "jobs"}}
        result = align_pocketsphinx(audio.samples, words, transcript=text, source=source, **allowed)
    return replace(result, notes=notes + result.notes) if notes else result
