"""Is this text a transcript the built-in aligner can use? Binary data and non-Latin scripts.

A transcript beside the audio is read as text whatever it holds, and a wrong one would be
"force-aligned" anyway: the Viterbi search always finds some path. Two cheap checks catch what
no alignment score can: bytes that are not text at all, and writing in a script that the
English-only pocketsphinx dictionary and letter-to-sound rules cannot pronounce.
"""

from __future__ import annotations

import unicodedata

#: Above this share of undecodable or control characters, a "transcript" is binary data.
MAX_BINARY_SHARE = 0.02
#: Above this share of letters outside the Latin script, a transcript is not English.
MAX_FOREIGN_SHARE = 0.5
_TEXT_CONTROLS = frozenset("\n\r\t\f\v")


def looks_binary(text: str) -> bool:
    """True for NUL bytes, or more than :data:`MAX_BINARY_SHARE` of replacement/control characters.

    Files are read with ``errors="replace"``, so undecodable bytes arrive as U+FFFD.
    """
    if not text:
        return False
    if "\x00" in text:
        return True
    odd = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in _TEXT_CONTROLS))
    return odd / len(text) > MAX_BINARY_SHARE


def _script(ch: str) -> str:
    """The script a letter belongs to, from its Unicode name (``LATIN``, ``CJK``, ``ARABIC``…)."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


_SCRIPT_NAMES = {"CJK": "Chinese/Japanese (CJK ideographs)", "HIRAGANA": "Japanese", "KATAKANA": "Japanese",
                 "HANGUL": "Korean", "ARABIC": "Arabic", "HEBREW": "Hebrew", "CYRILLIC": "Cyrillic",
                 "GREEK": "Greek", "DEVANAGARI": "Devanagari", "THAI": "Thai"}


def foreign_script(text: str) -> str | None:
    """The main non-Latin script of ``text`` when most of its letters are not Latin, else None."""
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    if not letters:
        return None
    scripts: dict[str, int] = {}
    for ch in letters:
        script = _script(ch)
        if script != "LATIN":
            scripts[script] = scripts.get(script, 0) + 1
    foreign = sum(scripts.values())
    if foreign / len(letters) <= MAX_FOREIGN_SHARE:
        return None
    main = max(scripts, key=scripts.__getitem__)
    return _SCRIPT_NAMES.get(main, main.title())
