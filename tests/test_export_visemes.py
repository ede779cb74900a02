"""Viseme timelines (Oculus-15, Rhubarb A–H/X, Preston Blair) in Rhubarb's TSV and JSON layouts."""

from __future__ import annotations

import json
import re
import warnings

import pytest

from kmtalk_cli.alignment.phones import LABELS
from kmtalk_cli.alignment.types import Alignment, Segment, write_json
from kmtalk_cli.errors import AlignmentError, KmtalkWarning, OutputError
from kmtalk_cli.export.visemes import (
    FALLBACK,
    OCULUS_VISEMES,
    REST,
    RHUBARB_SHAPES,
    RHUBARB_TO_PRESTON,
    TimedPhones,
    json_text,
    read_phones,
    tsv_text,
    visemes,
    write_visemes,
)


def timed(*phones: tuple[str, float, float]) -> TimedPhones:
    return TimedPhones(tuple(Segment(*p) for p in phones), phones[-1][2])


def values(track) -> list[str]:
    return [cue.value for cue in track.cues]


def quiet_visemes(phones, viseme_set):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known phones must not warn
        return visemes(phones, viseme_set)


HELLO_MOM = timed(("SIL", 0, 0.1), ("HH", 0.1, 0.15), ("AH", 0.15, 0.22), ("L", 0.22, 0.3), ("OW", 0.3, 0.5),
                  ("M", 0.5, 0.58), ("AA", 0.58, 0.78), ("M", 0.78, 0.85), ("SIL", 0.85, 1.0))


def test_every_arpabet_phone_has_a_viseme_in_every_set():
    for label in LABELS:
        phones = timed(("SIL", 0, 0.1), (label, 0.1, 0.35), ("SIL", 0.35, 0.5))
        assert set(values(quiet_visemes(phones, "oculus"))) <= set(OCULUS_VISEMES)
        assert set(values(quiet_visemes(phones, "rhubarb"))) <= set(RHUBARB_SHAPES)
        assert set(values(quiet_visemes(phones, "preston"))) <= set(RHUBARB_TO_PRESTON.values())


def test_oculus_sequence_with_hh_and_a_diphthong():
    track = quiet_visemes(HELLO_MOM, "oculus")
    assert values(track) == ["sil", "aa", "nn", "oh", "ou", "PP", "aa", "PP", "sil"]
    ow = [c for c in track.cues if c.value in ("oh", "ou")]
    assert ow[0].end == pytest.approx(0.3 + 0.6 * 0.2)  # diphthongs split 60/40
    assert track.cues[1].start == 0.1  # HH took the following vowel's shape, merged with it


def test_rhubarb_and_preston_shapes():
    track = quiet_visemes(HELLO_MOM, "rhubarb")
    assert values(track)[0] == "X" and values(track)[-1] == "X"
    assert [c.value for c in track.cues if c.start >= 0.5 and c.end <= 0.58] == ["A"]  # M closes the lips
    assert "E" in values(track) and "F" in values(track)  # OW: rounded, then puckered
    preston = quiet_visemes(HELLO_MOM, "preston")
    assert values(preston) == [RHUBARB_TO_PRESTON[v] for v in values(track)]
    fv = quiet_visemes(timed(("SIL", 0, 0.1), ("F", 0.1, 0.2), ("AA", 0.2, 0.5)), "rhubarb")
    assert values(fv) == ["X", "G", "D"]
    short, long = (quiet_visemes(timed(("AH", 0, d)), "rhubarb") for d in (0.1, 0.3))
    assert values(short) == ["C"] and values(long) == ["D"]


def test_stress_digits_and_case_are_normalised():
    track = quiet_visemes(timed(("sil", 0, 0.1), ("ah0", 0.1, 0.2), ("P", 0.2, 0.3), ("IY1", 0.3, 0.4)), "oculus")
    assert values(track) == ["sil", "aa", "PP", "ih"]


def test_unknown_phones_get_the_fallback_and_are_reported():
    phones = timed(("SIL", 0, 0.1), ("XX", 0.1, 0.2), ("AA", 0.2, 0.3), ("blorp", 0.3, 0.4), ("XX", 0.4, 0.5))
    for viseme_set in ("oculus", "rhubarb", "preston"):
        with pytest.warns(KmtalkWarning, match=r"3 phone\(s\).*XX, blorp") as record:
            track = visemes(phones, viseme_set)
        assert len(record) == 1 and FALLBACK[viseme_set] in str(record[0].message)
        assert values(track)[1] == FALLBACK[viseme_set] and values(track)[-1] == FALLBACK[viseme_set]
        assert track.unknown == ("XX", "blorp", "XX")


def test_alignment_json_with_unknown_labels_is_read(tmp_path):
    doc = Alignment(words=(), phones=(Segment("SIL", 0, 0.2), Segment("AA", 0.2, 0.5), Segment("SIL", 0.5, 0.6)),
                    backend="textgrid", method="forced", transcript=None, duration=0.6)
    path = write_json(doc, tmp_path / "take.align.json")
    data = json.loads(path.read_text())
    data["phones"][1][0] = "QQ"  # a hand edit the alignment reader would refuse
    path.write_text(json.dumps(data))
    with pytest.raises(AlignmentError):
        Alignment.from_dict(data)
    phones = read_phones(path)
    assert [p.label for p in phones.phones] == ["SIL", "QQ", "SIL"] and phones.duration == 0.6
    with pytest.warns(KmtalkWarning, match="QQ"):
        assert values(visemes(phones, "oculus")) == ["sil", "DD", "sil"]


def test_textgrid_with_unknown_labels_is_read(tmp_path):
    from praatio import textgrid as tgio

    grid = tgio.Textgrid()
    grid.addTier(tgio.IntervalTier("words", [(0.1, 0.5, "ma")], 0, 0.6))
    grid.addTier(tgio.IntervalTier("phones", [(0.1, 0.2, "M"), (0.2, 0.4, "AA1"), (0.4, 0.5, "ZZ9")], 0, 0.6))
    path = tmp_path / "take.TextGrid"
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    phones = read_phones(path)
    assert [p.label for p in phones.phones] == ["SIL", "M", "AA", "ZZ9", "SIL"]  # known labels as ARPAbet
    with pytest.warns(KmtalkWarning, match="ZZ9"):
        assert values(visemes(phones, "rhubarb")) == ["X", "A", "D", "B", "X"]


def test_tsv_layout_is_rhubarbs():
    track = quiet_visemes(timed(("SIL", 0, 0.1), ("AA", 0.1, 0.404), ("SIL", 0.404, 0.479)), "rhubarb")
    lines = tsv_text(track).splitlines()
    assert lines == ["0.00\tX", "0.10\tD", "0.40\tX", "0.47\tX"]  # the end, truncated to 0.01 s, closed
    assert all(re.fullmatch(r"\d+\.\d\d\t[A-HX]", line) for line in lines)


def test_json_layout_is_rhubarbs(tmp_path):
    audio = tmp_path / "hi.wav"
    track = visemes(HELLO_MOM, "oculus", sound_file=str(audio))
    text = json_text(track)
    assert re.search(r'"start": 0\.00, "end": 0\.10, "value": "sil"', text)
    doc = json.loads(text)
    assert doc["metadata"]["soundFile"] == str(audio.resolve()) and doc["metadata"]["duration"] == 1.0
    cues = doc["mouthCues"]
    assert cues[0]["start"] == 0 and cues[-1]["end"] == 1.0
    assert all(a["end"] == b["start"] for a, b in zip(cues, cues[1:]))
    assert all(c["end"] > c["start"] and set(c) == {"start", "end", "value"} for c in cues)


def test_cues_shorter_than_a_centisecond_vanish():
    track = quiet_visemes(timed(("SIL", 0, 0.1), ("P", 0.1, 0.104), ("AA", 0.104, 0.3)), "oculus")
    assert tsv_text(track).splitlines() == ["0.00\tsil", "0.10\taa", "0.30\tsil"]


def test_writer_picks_the_layout_by_suffix_and_keeps_existing_files(tmp_path):
    track = quiet_visemes(HELLO_MOM, "preston")
    assert write_visemes(track, tmp_path / "a.json").read_text().startswith("{")
    assert write_visemes(track, tmp_path / "a.tsv").read_text().startswith("0.00\trest")
    with pytest.raises(OutputError):
        write_visemes(track, tmp_path / "a.tsv")
    assert REST["preston"] == "rest"


def test_bad_inputs(tmp_path):
    with pytest.raises(AlignmentError, match="oculus, rhubarb, preston"):
        visemes(HELLO_MOM, "klingon")
    with pytest.raises(AlignmentError, match="neither"):
        read_phones(tmp_path / "take.txt")
    with pytest.raises(AlignmentError, match="does not exist"):
        read_phones(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"phones": [["AA", 0.5, 0.2]], "words": [], "backend": "x", "method": "x", "duration": 1}')
    with pytest.raises(AlignmentError, match="ends"):
        read_phones(tmp_path / "bad.json")
