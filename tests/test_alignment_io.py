"""Alignment data: validation, JSON and TextGrid round trips, MFA-layout and hand-made grids."""

from __future__ import annotations

from pathlib import Path

import pytest
from praatio import textgrid as tgio

from kmtalk_cli.alignment import find_textgrid, find_transcript
from kmtalk_cli.alignment.textgrid import read_textgrid, write_textgrid
from kmtalk_cli.alignment.types import Alignment, Segment, fill_silence, read_json, validate, write_json
from kmtalk_cli.errors import AlignmentError


def sample() -> Alignment:
    phones = fill_silence(
        [Segment("HH", 0.1, 0.18), Segment("AH", 0.18, 0.25), Segment("L", 0.25, 0.33), Segment("OW", 0.33, 0.5)], 0.8
    )
    return Alignment(
        words=(Segment("hello", 0.1, 0.5),), phones=phones, backend="pocketsphinx", method="forced",
        transcript="Hello!", duration=0.8, notes=("a note",), source="x.wav",
    )


def test_fill_silence_tiles_duration() -> None:
    phones = sample().phones
    assert phones[0] == Segment("SIL", 0.0, 0.1) and phones[-1] == Segment("SIL", 0.5, 0.8)
    assert all(a.end == b.start for a, b in zip(phones, phones[1:]))


def test_json_round_trip(tmp_path: Path) -> None:
    path = write_json(sample(), tmp_path / "a.json")
    assert read_json(path) == sample()
    with pytest.raises(Exception):
        write_json(sample(), path)  # exists without force
    write_json(sample(), path, force=True)


@pytest.mark.parametrize(
    "bad",
    [
        dict(phones=(Segment("AH", 0.2, 0.1),)),
        dict(phones=(Segment("AH", 0.0, 0.3), Segment("L", 0.2, 0.4))),
        dict(phones=(Segment("AH", 0.0, 2.0),)),
        dict(phones=(Segment("XX", 0.0, 0.3),)),
        dict(duration=0.0),
    ],
)
def test_validation_rejects(bad: dict) -> None:
    from dataclasses import replace

    with pytest.raises(AlignmentError):
        validate(replace(sample(), **bad))


def test_read_json_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(AlignmentError, match="not readable JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "x.json").write_text('{"words": []}')
    with pytest.raises(AlignmentError, match="Not a kmtalk alignment"):
        read_json(tmp_path / "x.json")


def test_textgrid_round_trip(tmp_path: Path) -> None:
    path = write_textgrid(sample(), tmp_path / "a.TextGrid")
    back = read_textgrid(path)
    assert back.phones == sample().phones
    assert back.words == sample().words
    assert back.backend == "textgrid"
    # MFA leaves silence empty: no "SIL" label is written.
    assert '"SIL"' not in path.read_text()


def write_mfa_grid(path: Path, *, word_tier: str = "words", phone_tier: str = "phones", ipa: bool = False) -> None:
    """A grid laid out as MFA writes it: stressed ARPAbet (or IPA), silence as empty intervals."""
    grid = tgio.Textgrid()
    grid.addTier(tgio.IntervalTier(word_tier, [(0.2, 0.6, "hi"), (0.7, 1.1, "bob")], 0, 1.3))
    labels = ["HH", "AY1", "B", "AA1", "B"] if not ipa else ["h", "aj", "b", "ɑː", "b"]
    times = [(0.2, 0.3), (0.3, 0.6), (0.7, 0.8), (0.8, 1.0), (1.0, 1.1)]
    grid.addTier(tgio.IntervalTier(phone_tier, [(a, b, l) for (a, b), l in zip(times, labels)], 0, 1.3))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)


@pytest.mark.parametrize(("words", "phones", "ipa"), [("words", "phones", False), ("Word", "Phones", True), ("spk1 - words", "spk1 - phones", False)])
def test_reads_mfa_layout(tmp_path: Path, words: str, phones: str, ipa: bool) -> None:
    path = tmp_path / "clip.TextGrid"
    write_mfa_grid(path, word_tier=words, phone_tier=phones, ipa=ipa)
    al = read_textgrid(path)
    assert [p.label for p in al.phones] == ["SIL", "HH", "AY", "SIL", "B", "AA", "B", "SIL"]
    assert [w.label for w in al.words] == ["hi", "bob"]
    assert al.duration == pytest.approx(1.3) and al.transcript == "hi bob"


def test_textgrid_without_phone_tier(tmp_path: Path) -> None:
    grid = tgio.Textgrid()
    grid.addTier(tgio.IntervalTier("notes", [(0.0, 1.0, "x")], 0, 1))
    grid.save(str(tmp_path / "n.TextGrid"), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(AlignmentError, match="no phone tier"):
        read_textgrid(tmp_path / "n.TextGrid")
    with pytest.raises(AlignmentError, match="does not exist"):
        read_textgrid(tmp_path / "missing.TextGrid")


def test_find_sidecars(tmp_path: Path) -> None:
    wav = tmp_path / "clip.wav"
    wav.write_bytes(b"")
    assert find_transcript(wav) is None and find_textgrid(wav) is None
    (tmp_path / "clip.lab").write_text("hello there\n")
    write_mfa_grid(tmp_path / "clip.TextGrid")
    assert find_transcript(wav) == "hello there"
    assert find_textgrid(wav) == tmp_path / "clip.TextGrid"
