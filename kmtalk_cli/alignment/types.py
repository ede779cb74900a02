"""What an aligner hands to the rest of kmtalk: timed words and phones, and how they were found.

Key motions sit at phone boundaries, so downstream stages need only labels and times; the
``backend``/``method``/``notes`` fields exist so a user (and the benchmark) can tell a true
forced alignment from a fallback without reading logs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_output
from ..errors import AlignmentError
from .phones import LABELS, SIL

BACKENDS = ("pocketsphinx", "mfa", "textgrid", "energy")
METHODS = ("forced", "recognised", "allphone", "energy")
#: The summary ``method`` of an alignment whose chunks were found in different ways.
MIXED = "mixed"
#: Slack for rounding in files written by other tools (Praat writes 15+ digits; MFA rounds).
TIME_TOLERANCE = 1e-3
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Segment:
    """One labelled interval, in seconds from the start of the audio."""

    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start

    def to_list(self) -> list[Any]:
        """Compact JSON form ``[label, start, end]``: alignments of long audio stay small."""
        return [self.label, round(self.start, 4), round(self.end, 4)]


@dataclass(frozen=True)
class Alignment:
    """Words and phones of one utterance; ``phones`` tile ``[0, duration]`` with ``SIL`` in gaps."""

    words: tuple[Segment, ...]
    phones: tuple[Segment, ...]
    backend: str
    method: str
    transcript: str | None
    duration: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    source: str | None = None
    #: How each stretch was aligned: segments labelled with a method, tiling the audio. Empty
    #: means the whole file was aligned one way, ``method``.
    chunks: tuple[Segment, ...] = field(default_factory=tuple)

    @property
    def forced(self) -> bool:
        """True when the phones come from a forced alignment to words (no fallback)."""
        return self.method == "forced"

    def method_shares(self) -> dict[str, float]:
        """Share of the audio's duration aligned by each method, largest first."""
        spans = self.chunks or (Segment(self.method, 0.0, self.duration),)
        total = sum(s.duration for s in spans) or 1.0
        shares: dict[str, float] = {}
        for span in spans:
            shares[span.label] = shares.get(span.label, 0.0) + span.duration / total
        return dict(sorted(shares.items(), key=lambda item: -item[1]))

    def describe_method(self) -> str:
        """``forced``, or for a mixed alignment ``forced 97%, allphone 3%``."""
        shares = self.method_shares()
        if len(shares) == 1:
            return next(iter(shares))
        return ", ".join(f"{name} {share:.0%}" for name, share in shares.items())

    def boundaries(self) -> list[float]:
        """Times where one phone ends and the next begins: where key motions go."""
        return [p.start for p in self.phones[1:]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; ``from_dict`` inverts it."""
        return {
            "format": "kmtalk-alignment",
            "version": FORMAT_VERSION,
            "backend": self.backend,
            "method": self.method,
            "transcript": self.transcript,
            "duration": round(self.duration, 6),
            "source": self.source,
            "methods": {name: round(share, 4) for name, share in self.method_shares().items()},
            "chunks": [c.to_list() for c in self.chunks],
            "notes": list(self.notes),
            "words": [w.to_list() for w in self.words],
            "phones": [p.to_list() for p in self.phones],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alignment:
        """Rebuild and validate; a malformed file becomes an :class:`AlignmentError`."""
        try:
            words = tuple(_segment(s) for s in data["words"])
            phones = tuple(_segment(s) for s in data["phones"])
            alignment = cls(
                words=words,
                phones=phones,
                backend=str(data["backend"]),
                method=str(data["method"]),
                transcript=data.get("transcript"),
                duration=float(data["duration"]),
                notes=tuple(str(n) for n in data.get("notes", ())),
                source=data.get("source"),
                chunks=tuple(_segment(s) for s in data.get("chunks") or ()),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AlignmentError(f"Not a kmtalk alignment: missing or malformed field ({exc}).") from None
        return validate(alignment)


def _segment(item: Any) -> Segment:
    """Accept ``[label, start, end]`` or ``{"label", "start", "end"}``."""
    if isinstance(item, Mapping):
        return Segment(str(item["label"]), float(item["start"]), float(item["end"]))
    label, start, end = item
    return Segment(str(label), float(start), float(end))


def _check_tier(segments: Iterable[Segment], duration: float, what: str) -> None:
    """Sorted, non-overlapping, non-negative and inside the audio."""
    previous_end = 0.0
    for seg in segments:
        if not (math.isfinite(seg.start) and math.isfinite(seg.end)):
            raise AlignmentError(f"{what} {seg.label!r} has a time that is not a finite number ({seg.start}-{seg.end}).")
        if seg.end < seg.start:
            raise AlignmentError(f"{what} {seg.label!r} ends ({seg.end:.3f} s) before it starts ({seg.start:.3f} s).")
        if seg.start < previous_end - TIME_TOLERANCE:
            raise AlignmentError(
                f"{what} {seg.label!r} at {seg.start:.3f} s overlaps the previous one or is out of order."
            )
        if seg.start < -TIME_TOLERANCE or seg.end > duration + TIME_TOLERANCE:
            raise AlignmentError(
                f"{what} {seg.label!r} ({seg.start:.3f}-{seg.end:.3f} s) lies outside the "
                f"{duration:.3f} s of audio."
            )
        previous_end = seg.end


def validate(alignment: Alignment) -> Alignment:
    """Raise :class:`AlignmentError` unless the alignment is usable; return it unchanged."""
    if not math.isfinite(alignment.duration) or alignment.duration <= 0:
        raise AlignmentError(f"An alignment needs a positive, finite duration, got {alignment.duration}.")
    _check_tier(alignment.words, alignment.duration, "Word")
    _check_tier(alignment.phones, alignment.duration, "Phone")
    _check_tier(alignment.chunks, alignment.duration, "Chunk")
    odd = sorted({c.label for c in alignment.chunks} - set(METHODS))
    if odd:
        raise AlignmentError(f"Alignment has chunks with unknown methods: {', '.join(odd)}.")
    unknown = sorted({p.label for p in alignment.phones} - set(LABELS))
    if unknown:
        raise AlignmentError(f"Alignment has phone labels outside ARPAbet: {', '.join(unknown)}.")
    return alignment


def fill_silence(phones: Iterable[Segment], duration: float, *, min_gap: float = 1e-4) -> tuple[Segment, ...]:
    """Make phones tile ``[0, duration]``: gaps become ``SIL``, adjacent ``SIL`` merge.

    Consumers then never need to special-case the audio before the first or after the last phone.
    """
    out: list[Segment] = []

    def push(seg: Segment) -> None:
        if seg.end - seg.start <= 0:
            return
        if out and out[-1].label == SIL and seg.label == SIL:
            out[-1] = Segment(SIL, out[-1].start, seg.end)
        else:
            out.append(seg)

    cursor = 0.0
    for seg in sorted(phones, key=lambda s: s.start):
        start, end = max(seg.start, cursor), min(seg.end, duration)
        if start - cursor > min_gap:
            push(Segment(SIL, cursor, start))
        elif out:
            start = cursor  # close sub-frame gaps by extending into them
        else:
            start = 0.0 if start <= min_gap else start
        if end > start:
            push(Segment(seg.label, start, end))
            cursor = end
    if duration - cursor > min_gap:
        push(Segment(SIL, cursor, duration))
    elif out and out[-1].end < duration:
        out[-1] = replace(out[-1], end=duration)
    return tuple(out)


def shift(segments: Iterable[Segment], offset: float) -> tuple[Segment, ...]:
    """Move segments by ``offset`` seconds (chunk-local times → whole-audio times)."""
    return tuple(Segment(s.label, s.start + offset, s.end + offset) for s in segments)


def to_json(alignment: Alignment) -> str:
    """The alignment as the JSON text :func:`write_json` writes (ending in a newline)."""
    return json.dumps(alignment.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(alignment: Alignment, path: Path | str, *, force: bool = False) -> Path:
    """Write the alignment as JSON atomically (a crash never leaves half a file)."""
    text = to_json(validate(alignment))
    with atomic_output(Path(path), force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: Path | str) -> Alignment:
    """Read an alignment written by :func:`write_json`, with a clear error for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AlignmentError(f"Alignment file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlignmentError(f"Alignment file {path} is not readable JSON ({exc}).") from None
    if not isinstance(data, Mapping):
        raise AlignmentError(f"Alignment file {path} does not hold a JSON object.")
    return Alignment.from_dict(data)
