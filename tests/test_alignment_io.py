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


# --- non-finite and inverted times, per-chunk methods, other languages' phone sets ----------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phones", [["SIL", 0.0, "NaN"], ["HH", 0.1, 0.8]], "not a finite number"),
        ("phones", [["SIL", 0.0, 0.1], ["HH", 0.1, "Infinity"]], "not a finite number"),
        ("words", [["hello", 0.5, 0.1]], "ends .* before it starts"),
        ("duration", "NaN", "finite duration"),
        ("chunks", [["forced", 0.0, 0.4], ["allphone", 0.4, "NaN"]], "not a finite number"),
        ("chunks", [["guessed", 0.0, 0.8]], "unknown methods"),
    ],
)
def test_json_with_nan_or_inverted_times_is_refused(tmp_path: Path, field: str, value, message: str) -> None:
    import json

    data = sample().to_dict()
    data[field] = value
    path = tmp_path / "bad.align.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # json writes NaN/Infinity literals
    with pytest.raises(AlignmentError, match=message):
        read_json(path)


def test_writer_never_writes_nan(tmp_path: Path) -> None:
    from dataclasses import replace

    broken = replace(sample(), words=(Segment("hello", 0.1, float("nan")),))
    with pytest.raises(AlignmentError):
        write_json(broken, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_textgrid_with_inverted_interval_is_refused(tmp_path: Path) -> None:
    text = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.0
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.0
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = "HH"
        intervals [2]:
            xmin = 0.6
            xmax = 0.4
            text = "AH"
"""
    path = tmp_path / "inverted.TextGrid"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AlignmentError, match="inverted.TextGrid"):
        read_textgrid(path)


def test_chunk_methods_round_trip_and_summary(tmp_path: Path) -> None:
    from dataclasses import replace

    mixed = replace(sample(), method="mixed", chunks=(Segment("forced", 0.0, 0.6), Segment("allphone", 0.6, 0.8)))
    data = mixed.to_dict()
    assert data["methods"] == {"forced": 0.75, "allphone": 0.25}
    assert read_json(write_json(mixed, tmp_path / "m.json")) == mixed
    assert mixed.describe_method() == "forced 75%, allphone 25%"
    assert not mixed.forced
    assert sample().method_shares() == {"forced": 1.0}


def test_other_languages_phone_sets_map_and_report_what_does_not(tmp_path: Path) -> None:
    """A Mandarin-style MFA grid: tones and aspiration drop, retroflexes map, a click is reported."""
    grid = tgio.Textgrid()
    phones = [(0.0, 0.1, "ʂ"), (0.1, 0.3, "ɨ˥˩"), (0.3, 0.4, "tɕʰ"), (0.4, 0.5, "y˧˥"), (0.5, 0.6, "ǃ")]
    grid.addTier(tgio.IntervalTier("phones", phones, 0.0, 1.0))
    path = tmp_path / "zh.TextGrid"
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    with pytest.warns(Warning, match="no counterpart .*ǃ"):
        al = read_textgrid(path)
    assert [p.label for p in al.phones] == ["SH", "IH", "CH", "UW", "SIL"]
    assert any("ǃ" in n for n in al.notes)
