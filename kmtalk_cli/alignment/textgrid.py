"""Praat TextGrids in Montreal Forced Aligner's layout: interval tiers ``words`` and ``phones``.

TextGrids are how alignments travel between tools (MFA writes them; people correct them in
Praat), so kmtalk reads MFA's output and hand-edited files, and writes files MFA users
recognise. MFA leaves silence as empty intervals; on write we do the same, on read every
spelling of silence becomes ``SIL``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from ..atomic import atomic_output
from ..errors import AlignmentError, KmtalkWarning
from .phones import SIL, any_to_arpabet, ipa_to_arpabet, is_silence
from .types import Alignment, Segment, fill_silence, validate

WORD_TIER = "words"
PHONE_TIER = "phones"
_WORD_NAMES = ("words", "word", "wrd", "ort", "orthography", "text")
PHONE_TIER_NAMES = ("phones", "phone", "phonemes", "phoneme", "phn", "segments", "mau", "kan")


def pick_tier(names: list[str], wanted: tuple[str, ...]) -> str | None:
    """Find a tier by common names, ignoring case; MFA multi-speaker grids use ``spk - words``."""
    lowered = {n.strip().lower(): n for n in names}
    for want in wanted:
        if want in lowered:
            return lowered[want]
    for want in wanted:
        for low, name in lowered.items():
            if low.endswith(f"- {want}") or low.endswith(f"-{want}") or low.endswith(f"_{want}"):
                return name
    return None


def _converter(labels: list[str]):  # noqa: ANN202 - a label → phones function
    """IPA for a tier with any non-ASCII label (``y`` is then a vowel, not ARPAbet's glide)."""
    return ipa_to_arpabet if any(not label.isascii() for label in labels) else any_to_arpabet


def unmapped_labels(labels: list[str]) -> list[str]:
    """The phone labels that have no counterpart in kmtalk's ARPAbet inventory, in first-seen order."""
    convert = _converter(labels)
    return list(dict.fromkeys(label for label in labels if not is_silence(label) and not convert(label)))


def phones_from_labels(intervals: list[tuple[float, float, str]]) -> list[Segment]:
    """TextGrid phone intervals (ARPAbet with stress, IPA, silence marks) → our phone set.

    A label that maps to several phones (a diphthong written as one IPA symbol never does,
    but ``n̩`` style syllabics might) splits its interval evenly; unknown labels become SIL
    so a typo in a hand-corrected file costs one phone, not the whole file.
    """
    out: list[Segment] = []
    convert = _converter([label for _, _, label in intervals])
    for start, end, label in intervals:
        if is_silence(label):
            out.append(Segment(SIL, start, end))
            continue
        phones = convert(label) or (SIL,)
        step = (end - start) / len(phones)
        for i, phone in enumerate(phones):
            out.append(Segment(phone, start + i * step, start + (i + 1) * step))
    return out


def _check_times(path: Path, tier: str, entries: list) -> None:
    """Refuse NaN, infinite or inverted interval times whatever praatio let through."""
    for e in entries:
        start, end = float(e.start), float(e.end)
        if not (math.isfinite(start) and math.isfinite(end)):
            raise AlignmentError(f"TextGrid {path}: tier {tier!r} has an interval with a time that is not a finite number.")
        if end < start:
            raise AlignmentError(f"TextGrid {path}: tier {tier!r} has an interval that ends ({end:.3f} s) before it starts ({start:.3f} s).")


def read_textgrid(path: Path | str, *, duration: float | None = None, transcript: str | None = None) -> Alignment:
    """Read an MFA-style (or hand-made) TextGrid into an :class:`Alignment`."""
    from praatio import textgrid as tgio

    path = Path(path)
    if not path.is_file():
        raise AlignmentError(f"TextGrid {path} does not exist.")
    try:
        grid = tgio.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    except Exception as exc:  # praatio raises many types for malformed files
        raise AlignmentError(f"TextGrid {path} could not be read ({type(exc).__name__}: {exc}).") from None
    phone_name = pick_tier(grid.tierNames, PHONE_TIER_NAMES)
    if phone_name is None:
        raise AlignmentError(
            f"TextGrid {path} has no phone tier (tiers: {', '.join(grid.tierNames) or 'none'}); "
            "name it 'phones'."
        )
    word_name = pick_tier(grid.tierNames, _WORD_NAMES)
    end_time = float(duration if duration is not None else grid.maxTimestamp)
    if not math.isfinite(end_time) or end_time <= 0:
        raise AlignmentError(f"TextGrid {path} ends at {end_time}, not a positive finite time.")
    phone_tier = grid.getTier(phone_name)
    if not isinstance(phone_tier, tgio.IntervalTier):
        raise AlignmentError(f"TextGrid {path}: tier {phone_name!r} is not an interval tier.")
    _check_times(path, phone_name, phone_tier.entries)
    if word_name is not None:
        _check_times(path, word_name, grid.getTier(word_name).entries)
    phone_intervals = [(float(e.start), min(float(e.end), end_time), e.label.strip()) for e in phone_tier.entries]
    phones = phones_from_labels([iv for iv in phone_intervals if iv[1] > iv[0]])
    notes = [f"read from {path.name}"]
    unknown = unmapped_labels([iv[2] for iv in phone_intervals])
    if unknown:
        message = (f"phones with no counterpart in kmtalk's ARPAbet inventory were kept as silence: "
                   f"{', '.join(unknown[:12])}{' …' if len(unknown) > 12 else ''}")
        notes.append(message)
        warnings.warn(f"TextGrid {path.name}: {message}.", KmtalkWarning, stacklevel=2)
    words: list[Segment] = []
    if word_name is not None:
        for e in grid.getTier(word_name).entries:
            label = e.label.strip()
            start, end = float(e.start), min(float(e.end), end_time)
            if label and not is_silence(label) and end > start:
                words.append(Segment(label.lower(), start, end))
    if transcript is None and words:
        transcript = " ".join(w.label for w in words)
    alignment = Alignment(
        words=tuple(words),
        phones=fill_silence(phones, end_time),
        backend="textgrid",
        method="forced",
        transcript=transcript,
        duration=end_time,
        notes=tuple(notes),
        source=str(path),
    )
    return validate(alignment)


def write_textgrid(alignment: Alignment, path: Path | str, *, force: bool = False) -> Path:
    """Write ``words`` and ``phones`` tiers as MFA does: silence left as empty intervals."""
    from praatio import textgrid as tgio

    grid = tgio.Textgrid()
    end = alignment.duration
    words = [(w.start, w.end, w.label) for w in alignment.words if w.end > w.start]
    phones = [(p.start, p.end, p.label) for p in alignment.phones if p.label != SIL and p.end > p.start]
    grid.addTier(tgio.IntervalTier(WORD_TIER, words, 0.0, end))
    grid.addTier(tgio.IntervalTier(PHONE_TIER, phones, 0.0, end))
    with atomic_output(Path(path), force=force) as tmp:
        grid.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")
    return Path(path)
