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
