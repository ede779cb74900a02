"""Pronunciations: CMUdict for known words, espeak-ng G2P for the rest."""

from __future__ import annotations

from kmtalk_cli.alignment.espeak import synthesize, text_to_phonemes
from kmtalk_cli.alignment.lexicon import g2p, pronounce
from kmtalk_cli.alignment.phones import LABELS


def test_known_word_uses_cmudict_without_stress() -> None:
    p = pronounce("Hello")
    assert p.source == "cmudict"
    assert p.phones == ("HH", "AH", "L", "OW")
    assert ("HH", "EH", "L", "OW") in p.alternates


def test_unknown_words_get_espeak_pronunciations() -> None:
    for word, must in (("kmtalk", {"K", "M", "T"}), ("zorblax", {"Z", "B", "L", "K", "S"})):
        p = pronounce(word)
        assert p.source == "espeak"
        assert must <= set(p.phones)
        assert set(p.phones) <= set(LABELS)


def test_possessive_of_unknown_word_adds_suffix() -> None:
    assert pronounce("zorblax's").phones == pronounce("zorblax").phones + ("Z",)


def test_g2p_is_cached_and_pure() -> None:
    assert g2p("blorptastic") == g2p("blorptastic")


def test_text_to_phonemes_splits_words() -> None:
    words = text_to_phonemes("hello world")
    assert len(words) == 2 and words[0][0] == "h"


def test_synthesis_reports_phoneme_events() -> None:
    syn = synthesize("Hello world.")
    assert syn.sample_rate == 22_050 and syn.duration > 0.5
    starts = [p.start for p in syn.phonemes]
    assert starts == sorted(starts) and starts[-1] <= syn.duration + 1e-6
    assert [p.name for p in syn.phonemes][:2] == ["h", "@"]


# --- CMUdict from pocketsphinx's own copy (no GPL package) ----------------------------------

# CMUdict 0.7b pronunciations (stress removed) of words whose entries people get wrong:
# alternates in CMUdict's order, silent letters, contractions, possessives.
CMUDICT_SAMPLE = {
    "read": [("R", "EH", "D"), ("R", "IY", "D")],
    "the": [("DH", "AH"), ("DH", "IY")],
    "tomato": [("T", "AH", "M", "EY", "T", "OW"), ("T", "AH", "M", "AA", "T", "OW")],
    "either": [("IY", "DH", "ER"), ("AY", "DH", "ER")],
    "thought": [("TH", "AO", "T")],
    "xylophone": [("Z", "AY", "L", "AH", "F", "OW", "N")],
    "colonel": [("K", "ER", "N", "AH", "L")],
    "worcester": [("W", "UH", "S", "T", "ER")],
    "don't": [("D", "OW", "N", "T"), ("D", "OW", "N")],
    "john's": [("JH", "AA", "N", "Z")],
}


def test_pronunciations_come_from_pocketsphinx_cmudict_and_agree() -> None:
    from kmtalk_cli.alignment.lexicon import _cmudict, cmudict_path, cmudict_pronunciations

    assert cmudict_path().is_file()
    assert len(_cmudict()) > 120_000
    for word, expected in CMUDICT_SAMPLE.items():
        assert [list(p) for p in cmudict_pronunciations(word)] == [list(p) for p in expected], word
        assert pronounce(word).source == "cmudict" and pronounce(word).phones == expected[0]


def test_parse_dictionary_keeps_alternates_in_order() -> None:
    from kmtalk_cli.alignment.lexicon import parse_dictionary

    parsed = parse_dictionary(["live L IH V", "live(2) L AY V", "", "a AH", "a(2) EY"])
    assert parsed == {"live": [("L", "IH", "V"), ("L", "AY", "V")], "a": [("AH",), ("EY",)]}


def test_core_dependencies_hold_no_gpl_dictionary_package() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [dep.split(">")[0].split("=")[0].split("<")[0].strip().lower() for dep in project["dependencies"]]
    assert "cmudict" not in names
