"""Pronunciations: CMUdict for known words, espeak-ng letter-to-sound rules for the rest.

A forced aligner can only align words it can pronounce; names, brands and new words
("kmtalk") are exactly what users type. CMUdict covers 126k English words offline, read from
the copy pocketsphinx ships with its acoustic model (``cmudict-en-us.dict``, stress already
removed, BSD-licensed); espeak-ng's rules cover everything else, mapped to the same ARPAbet set
so one acoustic model handles both.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .espeak import EspeakError, text_to_phonemes
from .phones import espeak_to_arpabet, strip_stress


@dataclass(frozen=True)
class Pronunciation:
    """A word's phones (ARPAbet, no stress) and where they came from (``cmudict``/``espeak``)."""

    word: str
    phones: tuple[str, ...]
    source: str
    alternates: tuple[tuple[str, ...], ...] = ()


def cmudict_path() -> Path:
    """pocketsphinx's copy of CMUdict (the dictionary its English acoustic model was built with)."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"


def parse_dictionary(lines: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """``word P H O N E S`` lines, alternates written ``word(2)``, → word → pronunciations in order."""
    entries: dict[str, list[tuple[str, ...]]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) < 2:
            continue
        word = parts[0].split("(", 1)[0].lower()
        entries.setdefault(word, []).append(tuple(parts[1:]))
    return entries


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[tuple[str, ...]]]:
    """Load CMUdict once (~0.3 s); every later lookup is a dict access. Empty if it is missing."""
    try:
        text = cmudict_path().read_text(encoding="utf-8", errors="replace")
    except (ImportError, OSError):
        return {}
    return parse_dictionary(text.splitlines())


def cmudict_pronunciations(word: str) -> tuple[tuple[str, ...], ...]:
    """All CMUdict pronunciations of ``word``, stress stripped, first = most common."""
    entries = _cmudict().get(word.lower(), [])
    seen: list[tuple[str, ...]] = []
    for entry in entries:
        phones = tuple(strip_stress(p) for p in entry)
        if phones not in seen:
            seen.append(phones)
    return tuple(seen)


@functools.lru_cache(maxsize=65_536)
def g2p(word: str, voice: str = "en-us") -> tuple[str, ...]:
    """espeak-ng's pronunciation of any spelling, in ARPAbet (empty if it has none)."""
    phones: list[str] = []
    for espeak_word in text_to_phonemes(word, voice):
        for mnemonic in espeak_word:
            phones.extend(espeak_to_arpabet(mnemonic))
    return tuple(phones)


@functools.lru_cache(maxsize=65_536)
def pronounce(word: str) -> Pronunciation:
    """The pronunciation kmtalk uses for ``word``: CMUdict first, espeak-ng otherwise.

    Possessives and contractions missing from CMUdict ("kmtalk's") reuse the stem's
    pronunciation plus the suffix, which is what espeak-ng would do less reliably.
    """
    word = word.lower()
    known = cmudict_pronunciations(word)
    if known:
        return Pronunciation(word, known[0], "cmudict", known[1:])
    match = re.fullmatch(r"(.+)'(s|d|ll|re|ve)", word)
    if match:
        stem = pronounce(match.group(1))
        suffix = {"s": ("Z",), "d": ("D",), "ll": ("L",), "re": ("ER",), "ve": ("V",)}[match.group(2)]
        if stem.phones:
            return Pronunciation(word, stem.phones + suffix, stem.source)
    try:
        phones = g2p(word.replace("'", ""))
    except EspeakError:
        phones = ()
    return Pronunciation(word, phones, "espeak" if phones else "none")
