"""Phone set mappings and transcript normalisation."""

from __future__ import annotations

import pytest

from kmtalk_cli.alignment import phones
from kmtalk_cli.alignment.normalize import normalize_text, number_to_words, ordinal_words, year_to_words


def test_phone_set_has_39_phones_plus_silence() -> None:
    assert len(phones.PHONES) == 39
    assert phones.LABELS[0] == phones.SIL and len(set(phones.LABELS)) == 40


@pytest.mark.parametrize(
    ("label", "expected"),
    [("AH0", "AH"), ("ey1", "EY"), ("sil", "SIL"), ("", "SIL"), ("spn", "SIL"), ("AX", "AH"), ("QQ", None)],
)
def test_normalize_arpabet(label: str, expected: str | None) -> None:
    assert phones.normalize_arpabet(label) == expected


@pytest.mark.parametrize(
    ("ipa", "expected"),
    [("aj", ("AY",)), ("tʃ", ("CH",)), ("ɹ", ("R",)), ("ɑː", ("AA",)), ("tʰ", ("T",)), ("ɫ̩", ("L",)), ("ɚ", ("ER",)), ("ŋ", ("NG",))],
)
def test_mfa_ipa_to_arpabet(ipa: str, expected: tuple[str, ...]) -> None:
    assert phones.ipa_to_arpabet(ipa) == expected


@pytest.mark.parametrize(
    ("mnemonic", "expected"),
    [("'aI", ("AY",)), ("@L", ("AH", "L")), ("t#", ("T",)), ("tS", ("CH",)), ("_:", ()), (",oU", ("OW",)), ("3:", ("ER",))],
)
def test_espeak_to_arpabet(mnemonic: str, expected: tuple[str, ...]) -> None:
    assert phones.espeak_to_arpabet(mnemonic) == expected


def test_classes() -> None:
    assert phones.is_bilabial("M") and phones.is_labiodental("F1".rstrip("1"))
    assert phones.is_vowel("AA1") and not phones.is_vowel("P")
    assert phones.is_rounded("UW") and phones.is_silence("sp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have 42 apples.", "i have forty two apples"),
        ("Born in 1999.", "born in nineteen ninety nine"),
        ("In 2005 and 1900", "in two thousand five and nineteen hundred"),
        ("3.5 metres", "three point five metres"),
        ("the 21st time, 2nd and 100th", "the twenty first time second and one hundredth"),
        ("50% off", "fifty percent off"),
        ("It costs $3.50", "it costs three dollars and fifty cents"),
        ("a well-known fact", "a well known fact"),
        ("Don\u2019t touch John's car!", "don't touch john's car"),
        ("\u201cHello\u201d \u2014 she said", "hello she said"),
        ("the 1990s", "the nineteen nineties"),
        ("Caf\u00e9 'quoted'", "cafe quoted"),
        ("...!?", ""),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_number_words() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(1_000_017) == "one million seventeen"
    assert year_to_words(1805) == "eighteen oh five"
    assert ordinal_words(12) == "twelfth" and ordinal_words(30) == "thirtieth"
