"""Pronunciations: CMUdict for known words, letter-to-sound rules for the rest.

A forced aligner can only align words it can pronounce; names, brands and new words
("kmtalk") are exactly what users type. CMUdict covers 126k English words offline, read from
the copy pocketsphinx ships with its acoustic model (``cmudict-en-us.dict``, stress already
removed, BSD-licensed). Other words go to espeak-ng's hand-written rules when the optional
``synth`` extra (GPL) is installed, else to kmtalk's own model learnt from CMUdict
(:mod:`.g2p`); both speak the same ARPAbet set, so one acoustic model handles either.
Neither is loaded until a word CMUdict lacks turns up.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .phones import espeak_to_arpabet, strip_stress


@dataclass(frozen=True)
class Pronunciation:
    """A word's phones (ARPAbet, no stress) and where they came from.

    ``source`` is ``cmudict``, ``espeak`` (espeak-ng's rules), ``g2p`` (kmtalk's learnt rules)
    or ``none`` (nothing pronounceable in the spelling).
    """

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


def espeak_installed() -> bool:
    """True when espeak-ng's library (the optional ``synth`` extra) can be imported."""
    try:
        import espeakng_loader  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=65_536)
def espeak_g2p(word: str, voice: str = "en-us") -> tuple[str, ...]:
    """espeak-ng's pronunciation of any spelling, in ARPAbet (empty if it has none).

    Raises :class:`~.espeak.EspeakError` when espeak-ng is not installed or fails to load.
    """
    from .espeak import text_to_phonemes

    phones: list[str] = []
    for espeak_word in text_to_phonemes(word, voice):
        for mnemonic in espeak_word:
            phones.extend(espeak_to_arpabet(mnemonic))
    return tuple(phones)


def learnt_g2p(word: str) -> tuple[str, ...]:
    """kmtalk's own letter-to-sound model (learnt from CMUdict) for any spelling."""
    from .g2p import bundled

    return bundled().pronounce(word)


def letter_to_sound(word: str) -> tuple[tuple[str, ...], str]:
    """Phones for a spelling CMUdict lacks and their source: espeak-ng if installed, else ``g2p``."""
    if espeak_installed():
        from .espeak import EspeakError

        try:
            phones = espeak_g2p(word)
        except EspeakError:
            phones = ()
        if phones:
            return phones, "espeak"
    phones = learnt_g2p(word)
    return phones, "g2p" if phones else "none"


@functools.lru_cache(maxsize=65_536)
def pronounce(word: str) -> Pronunciation:
    """The pronunciation kmtalk uses for ``word``: CMUdict first, letter-to-sound rules otherwise.

    Possessives and contractions missing from CMUdict ("kmtalk's") reuse the stem's
    pronunciation plus the suffix, which letter-to-sound rules get right less reliably.
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
    phones, source = letter_to_sound(word.replace("'", ""))
    return Pronunciation(word, phones, source)
