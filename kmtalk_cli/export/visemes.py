"""Viseme timelines from timed phones: Oculus-15, Rhubarb A–H/X and Preston Blair.

Game engines and 2D animation tools key mouth shapes, not phones. Three sets are common:

* **Oculus/MPEG-4 (15)**: ``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``, what 3D character
  pipelines (Meta's lipsync, Ready Player Me, VRM) carry as blendshapes.
* **Rhubarb (A–H, X)**: Rhubarb Lip Sync's Hanna-Barbera mouth chart. Shapes follow
  Rhubarb's phone rules (open vowels D, mid C, rounded E/F, bilabials A, F/V G, long L H,
  silence X; AH, AY, AW, ER and L change shape with duration); where a phone allows several
  shapes, we keep the previous shape if allowed, else anticipate the next phone's, else take
  the first listed. Rhubarb's in-between tweens and timing optimisation are not reproduced.
* **Preston Blair**: Rhubarb's shapes renamed by Rhubarb's own table
  (A→MBP, B→etc, C→E, D→AI, E→O, F→U, G→FV, H→L, X→rest).

Diphthongs (AW AY EY OW OY) take two visemes, 60 % / 40 % of the phone, as Rhubarb times them.
HH has no mouth shape of its own and borrows the following vowel's first viseme (else the
preceding vowel's, else the fallback). Labels are normalised first (stress digits, lower case,
every spelling of silence; a TextGrid's IPA as the alignment reader maps it); a label that
still is no ARPAbet phone gets the set's :data:`FALLBACK` viseme, the slightly open,
teeth-together shape each set uses for ordinary consonants, and all of them are reported in
one warning.

Every set is written in Rhubarb's own TSV and JSON layouts (times in seconds with two
decimals, the last TSV line the end of the audio with a closed mouth), so any tool that reads
Rhubarb output reads ours.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..alignment.phones import SIL, VOWELS, any_to_arpabet, is_silence, normalize_arpabet
from ..alignment.types import Alignment, Segment, fill_silence
from ..atomic import atomic_output
from ..errors import AlignmentError, KmtalkWarning

VISEME_SETS: tuple[str, ...] = ("oculus", "rhubarb", "preston")
OCULUS_VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
RHUBARB_SHAPES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H", "X")
#: Rhubarb's own renaming of its shapes to Preston Blair's (its ``--datUsePrestonBlair``).
RHUBARB_TO_PRESTON: dict[str, str] = {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U", "G": "FV", "H": "L", "X": "rest"}
#: Closed, resting mouth of each set: silence and the end of the audio.
REST: dict[str, str] = {"oculus": "sil", "rhubarb": "X", "preston": "rest"}
#: Shape for a phone label that is no ARPAbet phone.
FALLBACK: dict[str, str] = {"oculus": "DD", "rhubarb": "B", "preston": "etc"}
#: Share of a diphthong's duration given to its first viseme.
DIPHTHONG_SPLIT = 0.6

_OCULUS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("AA", "AE", "AH"), ("aa",)),
    "AO": ("oh",), "EH": ("E",), "ER": ("RR",),
    **dict.fromkeys(("IH", "IY", "Y"), ("ih",)),
    **dict.fromkeys(("UH", "UW", "W"), ("ou",)),
    "AW": ("aa", "ou"), "AY": ("aa", "ih"), "EY": ("E", "ih"), "OW": ("oh", "ou"), "OY": ("oh", "ih"),
    **dict.fromkeys(("P", "B", "M"), ("PP",)),
    **dict.fromkeys(("F", "V"), ("FF",)),
    **dict.fromkeys(("TH", "DH"), ("TH",)),
    **dict.fromkeys(("T", "D"), ("DD",)),
    **dict.fromkeys(("N", "NG", "L"), ("nn",)),
    **dict.fromkeys(("K", "G"), ("kk",)),
    **dict.fromkeys(("CH", "JH", "SH", "ZH"), ("CH",)),
    **dict.fromkeys(("S", "Z"), ("SS",)),
    "R": ("RR",),
    SIL: ("sil",),
}


def _rhubarb_options(phone: str, duration: float) -> tuple[str, ...]:
    """Rhubarb's shapes for one phone: a string of allowed shapes per viseme, by duration."""
    if phone == "AH":
        return ("C",) if duration < 0.20 else ("D",)
    if phone == "AY":
        return ("C", "B") if duration < 0.20 else ("D", "B")
    if phone == "AW":
        return ("C", "E") if duration < 0.30 else ("D", "E")
    if phone == "ER":
        return ("BC",) if duration < 0.07 else ("E",)
    if phone == "L":
        return ("HBEF",) if duration < 0.20 else ("H",)
    return _RHUBARB[phone]


#: Allowed shapes per viseme (first = preferred); the long form where duration matters.
_RHUBARB: dict[str, tuple[str, ...]] = {
    "AH": ("D",), "AY": ("D", "B"), "AW": ("D", "E"), "ER": ("E",), "L": ("H",),
    "AO": ("E",), "AA": ("D",), "IY": ("B",), "UW": ("F",), "EH": ("C",), "IH": ("B",), "UH": ("F",), "AE": ("C",),
    "EY": ("C", "B"), "OW": ("E", "F"), "OY": ("E", "B"),
    **dict.fromkeys(("P", "B", "M"), ("A",)),
    **dict.fromkeys(("T", "D", "CH", "JH", "TH", "DH", "S", "Z", "SH", "ZH"), ("BF",)),
    **dict.fromkeys(("K", "G"), ("BCEFH",)),
    **dict.fromkeys(("F", "V"), ("G",)),
    "N": ("BCFH",), "NG": ("BCEF",), "R": ("BEF",), "Y": ("BCF",), "W": ("F",),
    SIL: ("X",),
}


@dataclass(frozen=True)
class Cue:
    """One mouth shape held from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    value: str


@dataclass(frozen=True)
class VisemeTrack:
    """A viseme timeline: cues tiling ``[0, duration]``, and the labels that needed the fallback."""

    viseme_set: str
    cues: tuple[Cue, ...]
    duration: float
    sound_file: str | None = None
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimedPhones:
    """Phone labels as a file spelled them (stress digits, IPA, typos), tiling ``[0, duration]``."""

    phones: tuple[Segment, ...]
    duration: float
    source: str | None = None

    def __post_init__(self) -> None:
        times = (self.duration, *(t for p in self.phones for t in (p.start, p.end)))
        if not all(math.isfinite(float(t)) for t in times):
            where = f" of {self.source}" if self.source else ""
            raise AlignmentError(f"The alignment{where} has NaN or infinite times; visemes need real times.")

    @classmethod
    def from_alignment(cls, alignment: Alignment) -> TimedPhones:
        return cls(tuple(alignment.phones), alignment.duration, alignment.source)


# --------------------------------------------------------------------------------------------
# Reading phones without rejecting unknown labels
# --------------------------------------------------------------------------------------------


def _label(item: object) -> str:
    """The label of a ``[label, start, end]`` or ``{"label", ...}`` phone entry."""
    if isinstance(item, Mapping):
        return str(item.get("label", ""))
    if isinstance(item, (list, tuple)) and item:
        return str(item[0])
    return ""


def _as_silence(item: object) -> object:
    """The same entry labelled SIL, so the alignment reader checks its times but not its label."""
    if isinstance(item, Mapping):
        return {**item, "label": SIL}
    if isinstance(item, (list, tuple)) and item:
        return [SIL, *item[1:]]
    return item  # malformed: the alignment reader says so


def _read_json_phones(path: Path) -> TimedPhones:
    """A kmtalk alignment JSON, validated for timing; labels kept as written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AlignmentError(f"Alignment file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AlignmentError(f"Alignment file {path} is not readable JSON ({exc}).") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("phones"), list):
        raise AlignmentError(f"Alignment file {path} is not a kmtalk alignment (no 'phones' list).")
    labels = [_label(item) for item in data["phones"]]
    alignment = Alignment.from_dict({**data, "phones": [_as_silence(item) for item in data["phones"]]})
    phones = tuple(Segment(label.strip(), p.start, p.end) for label, p in zip(labels, alignment.phones))
    return TimedPhones(phones, alignment.duration, str(data.get("source") or "") or None)


def _read_textgrid_phones(path: Path) -> TimedPhones:
    """A TextGrid's phone tier with labels as written (the alignment reader maps unknown ones to SIL)."""
    from praatio import textgrid as tgio

    from ..alignment.textgrid import PHONE_TIER_NAMES, pick_tier, read_textgrid

    alignment = read_textgrid(path)  # validates the file and finds its duration
    grid = tgio.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    tier = grid.getTier(pick_tier(grid.tierNames, PHONE_TIER_NAMES))
    phones: list[Segment] = []
    for entry in tier.entries:
        start, end, label = float(entry.start), min(float(entry.end), alignment.duration), entry.label.strip()
        if end <= start:
            continue
        # ARPAbet or MFA's IPA, as the alignment reader maps them; anything else is kept as written.
        arpabet = (SIL,) if is_silence(label) else any_to_arpabet(label) or (label,)
        step = (end - start) / len(arpabet)
        phones.extend(Segment(p, start + k * step, start + (k + 1) * step) for k, p in enumerate(arpabet))
    return TimedPhones(fill_silence(phones, alignment.duration), alignment.duration, alignment.source)


def read_phones(path: str | Path) -> TimedPhones:
    """Timed phones from a kmtalk alignment ``.json`` or a ``.TextGrid``, unknown labels kept."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json_phones(path)
    if suffix == ".textgrid":
        if not path.is_file():
            raise AlignmentError(f"TextGrid {path} does not exist.")
        return _read_textgrid_phones(path)
    raise AlignmentError(f"Alignment {path} is neither a kmtalk alignment (.json) nor a TextGrid (.TextGrid).")


# --------------------------------------------------------------------------------------------
# Phones → visemes
# --------------------------------------------------------------------------------------------


def _normalised(phones: Sequence[Segment]) -> tuple[list[Segment], list[str]]:
    """Phones in our ARPAbet set (stress, case and silence spellings normalised) and the unknown labels.

    An unknown phone keeps its time with the empty label, which no table knows: the fallback.
    """
    out: list[Segment] = []
    unknown: list[str] = []
    for seg in phones:
        phone = normalize_arpabet(seg.label)
        if phone is None:
            unknown.append(seg.label)
        out.append(Segment(phone or "", seg.start, seg.end))
    return out, unknown


def _borrowed_vowel(phones: list[Segment], i: int) -> Segment | None:
    """The vowel HH takes its shape from: the next phone if a vowel, else the previous one."""
    for j in (i + 1, i - 1):
        if 0 <= j < len(phones) and phones[j].label in VOWELS:
            return Segment(phones[j].label, phones[i].start, phones[i].end)
    return None


def _spans(seg: Segment, n: int) -> list[tuple[float, float]]:
    """Time spans of a phone's visemes: the whole phone, or a diphthong's 60 % / 40 %."""
    if n == 1:
        return [(seg.start, seg.end)]
    cut = seg.start + DIPHTHONG_SPLIT * (seg.end - seg.start)
    return [(seg.start, cut), (cut, seg.end)]


def _oculus(phones: list[Segment]) -> list[Cue]:
    cues: list[Cue] = []
    for i, seg in enumerate(phones):
        source = _borrowed_vowel(phones, i) if seg.label == "HH" else seg
        names = _OCULUS.get(source.label, (FALLBACK["oculus"],)) if source is not None else (FALLBACK["oculus"],)
        if seg.label == "HH":
            names = names[:1]  # the vowel's onset
        cues.extend(Cue(a, b, v) for (a, b), v in zip(_spans(seg, len(names)), names))
    return cues


def _rhubarb(phones: list[Segment]) -> list[Cue]:
    """Rhubarb shapes; where a phone allows several, keep the last shape, else anticipate the next."""
    options: list[tuple[str, ...]] = []
    for i, seg in enumerate(phones):
        source = _borrowed_vowel(phones, i) if seg.label == "HH" else seg
        if source is None or source.label not in _RHUBARB:
            options.append((FALLBACK["rhubarb"],))
        else:
            slots = _rhubarb_options(source.label, seg.end - seg.start)
            options.append(slots[:1] if seg.label == "HH" else slots)
    cues: list[Cue] = []
    for i, (seg, slots) in enumerate(zip(phones, options)):
        following = options[i + 1][0][0] if i + 1 < len(options) else "X"
        for (a, b), allowed in zip(_spans(seg, len(slots)), slots):
            previous = cues[-1].value if cues else "X"
            shape = previous if previous in allowed else following if following in allowed else allowed[0]
            cues.append(Cue(a, b, shape))
    return cues


def visemes(phones: TimedPhones | Alignment, viseme_set: str = "oculus", *, sound_file: str | None = None) -> VisemeTrack:
    """The viseme timeline of ``phones`` in one of :data:`VISEME_SETS`.

    Labels that are no ARPAbet phone get :data:`FALLBACK` and are reported in one
    :class:`~kmtalk_cli.errors.KmtalkWarning` (how many, which labels).
    """
    if viseme_set not in VISEME_SETS:
        raise AlignmentError(f"Unknown viseme set {viseme_set!r}; choose one of {', '.join(VISEME_SETS)}.")
    timed = TimedPhones.from_alignment(phones) if isinstance(phones, Alignment) else phones
    normalised, unknown = _normalised(timed.phones)
    cues = _oculus(normalised) if viseme_set == "oculus" else _rhubarb(normalised)
    if viseme_set == "preston":
        cues = [Cue(c.start, c.end, RHUBARB_TO_PRESTON[c.value]) for c in cues]
    if unknown:
        labels = ", ".join(sorted(set(unknown)))
        warnings.warn(
            KmtalkWarning(
                f"{len(unknown)} phone(s) with labels outside ARPAbet ({labels}) are shown as the "
                f"fallback viseme {FALLBACK[viseme_set]!r}."
            ),
            stacklevel=2,
        )
    return VisemeTrack(viseme_set, tuple(_merged(cues)), timed.duration, sound_file or timed.source, tuple(unknown))


def _merged(cues: list[Cue]) -> list[Cue]:
    """Adjacent cues with the same shape become one; empty cues disappear."""
    out: list[Cue] = []
    for cue in cues:
        if cue.end <= cue.start:
            continue
        if out and out[-1].value == cue.value:
            out[-1] = Cue(out[-1].start, cue.end, cue.value)
        else:
            out.append(cue)
    return out


# --------------------------------------------------------------------------------------------
# Rhubarb's TSV and JSON layouts
# --------------------------------------------------------------------------------------------


def centisecond_cues(track: VisemeTrack) -> tuple[list[tuple[int, int, str]], int]:
    """Cues on Rhubarb's clock: whole centiseconds, none empty, the last ending at the duration.

    Rhubarb truncates the duration to a multiple of 0.01 s and rounds cue boundaries; cues
    that vanish in the rounding are dropped and equal neighbours merged again.
    """
    end_cs = int(math.floor(track.duration * 100 + 1e-6))
    out: list[tuple[int, int, str]] = []
    for cue in track.cues:
        start, end = min(round(cue.start * 100), end_cs), min(round(cue.end * 100), end_cs)
        if end <= start:
            continue
        if out and out[-1][2] == cue.value:
            out[-1] = (out[-1][0], end, cue.value)
        elif out and out[-1][1] != start:
            out[-1] = (out[-1][0], start, out[-1][2])
            out.append((start, end, cue.value))
        else:
            out.append((start, end, cue.value))
    if not out:
        out = [(0, end_cs, REST[track.viseme_set])]
    out[0] = (0, out[0][1], out[0][2])
    out[-1] = (out[-1][0], end_cs, out[-1][2])
    return out, end_cs


def _seconds(cs: int) -> str:
    return f"{cs // 100}.{cs % 100:02d}"


def tsv_text(track: VisemeTrack) -> str:
    """Rhubarb TSV: ``start<TAB>shape`` per cue, then the end of the audio with a closed mouth."""
    cues, end_cs = centisecond_cues(track)
    lines = [f"{_seconds(start)}\t{value}" for start, _, value in cues]
    lines.append(f"{_seconds(end_cs)}\t{REST[track.viseme_set]}")
    return "\n".join(lines) + "\n"


def json_text(track: VisemeTrack) -> str:
    """Rhubarb JSON: ``metadata`` (soundFile, duration; plus visemeSet) and ``mouthCues``."""
    cues, end_cs = centisecond_cues(track)
    sound = str(Path(track.sound_file).resolve()) if track.sound_file else ""
    rows = ",\n".join(
        f'    {{ "start": {_seconds(a)}, "end": {_seconds(b)}, "value": {json.dumps(v)} }}' for a, b, v in cues
    )
    return (
        "{\n"
        '  "metadata": {\n'
        f'    "soundFile": {json.dumps(sound)},\n'
        f'    "duration": {_seconds(end_cs)},\n'
        f'    "visemeSet": {json.dumps(track.viseme_set)}\n'
        "  },\n"
        '  "mouthCues": [\n'
        f"{rows}\n"
        "  ]\n"
        "}\n"
    )


def write_visemes(track: VisemeTrack, path: str | Path, *, force: bool = False) -> Path:
    """Write ``track`` as Rhubarb JSON if ``path`` ends in ``.json``, else as Rhubarb TSV."""
    path = Path(path)
    text = json_text(track) if path.suffix.lower() == ".json" else tsv_text(track)
    with atomic_output(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
