"""Pronunciations: CMUdict for known words, espeak-ng or the learnt G2P for the rest."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kmtalk_cli.alignment import lexicon
from kmtalk_cli.alignment.espeak import synthesize, text_to_phonemes
from kmtalk_cli.alignment.lexicon import espeak_g2p, pronounce
from kmtalk_cli.alignment.phones import LABELS


@pytest.fixture
def no_espeak(monkeypatch):
    """An install without the ``synth`` extra: ``import espeakng_loader`` fails."""
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    pronounce.cache_clear()
    yield
    pronounce.cache_clear()


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
    assert espeak_g2p("blorptastic") == espeak_g2p("blorptastic")


def test_without_espeak_unknown_words_get_the_learnt_pronunciation(no_espeak) -> None:
    assert not lexicon.espeak_installed()
    for word, must in (("kmtalk", {"K", "M", "T"}), ("zorblax", {"Z", "B", "L", "K", "S"})):
        p = pronounce(word)
        assert p.source == "g2p"
        assert must <= set(p.phones) and set(p.phones) <= set(LABELS)
    assert pronounce("zorblax's").phones == pronounce("zorblax").phones + ("Z",)
    assert pronounce("hello").source == "cmudict"
    assert pronounce("42").source == "none" and pronounce("42").phones == ()


def test_espeak_that_fails_to_load_falls_back_to_the_learnt_model(monkeypatch) -> None:
    from kmtalk_cli.alignment.espeak import EspeakError

    def broken(word: str, voice: str = "en-us") -> tuple[str, ...]:
        raise EspeakError("libespeak-ng failed to initialise.")

    monkeypatch.setattr(lexicon, "espeak_g2p", broken)
    assert lexicon.letter_to_sound("zorblax") == (lexicon.learnt_g2p("zorblax"), "g2p")


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


def test_core_dependencies_hold_no_gpl_package() -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(deps: list[str]) -> list[str]:
        return [dep.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower() for dep in deps]

    core = names(project["dependencies"])
    assert "cmudict" not in core and "espeakng-loader" not in core
    extras = project["optional-dependencies"]
    assert "espeakng-loader" in names(extras["synth"]) and "espeakng-loader" in names(extras["test"])


# --- `kmtalk align` on real speech with a word CMUdict lacks, espeak-ng absent ------------------

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CLIP = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav"
SAID = "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"


@pytest.mark.skipif(not CLIP.is_file(), reason="Debian package pocketsphinx-testdata is not installed")
def test_align_pronounces_an_unknown_word_without_espeak(no_espeak, tmp_path) -> None:
    """A respelt name ("dashwoode") is in neither dictionary; the learnt model must place it
    where the dictionary spelling lands, and the rest of the sentence must not move."""
    from typer.testing import CliRunner

    from kmtalk_cli.alignment import read_json
    from kmtalk_cli.cli import app

    runner = CliRunner()
    spans = {}
    for name, text in (("known", SAID), ("unknown", SAID.replace("dashwood", "dashwoode"))):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["align", str(CLIP), "--text", text, "-o", str(out), "-q"])
        assert result.exit_code == 0, result.stderr
        alignment = read_json(out)
        assert alignment.forced
        spans[name] = [(w.label, w.start, w.end) for w in alignment.words if w.label != "SIL"]
    assert pronounce("dashwoode").source == "g2p"
    assert [w for w, _, _ in spans["unknown"]] == SAID.replace("dashwood", "dashwoode").split()
    for (_, start, end), (_, start2, end2) in zip(spans["known"], spans["unknown"]):
        assert abs(start - start2) < 0.05 and abs(end - end2) < 0.05
