"""Transcript normalisation: turn written text into the spoken words an aligner can match.

Aligners only know words in their dictionaries; "42", "$5" or "—" would make the forced
alignment fail outright. Normalisation writes numbers out as they are usually read, splits
hyphenated words, and keeps word-internal apostrophes ("don't", "john's") that CMUdict lists.
"""

from __future__ import annotations

import re
import unicodedata

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "°": " degrees "}
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def number_to_words(n: int) -> str:
    """Cardinal number in words: 42 → "forty two" (no "and", as US speakers read it)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 1000:
        return " ".join(_below_thousand(n))
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            count, n = divmod(n, value)
            words += [number_to_words(count), name]
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def year_to_words(n: int) -> str:
    """Years are read in pairs: 1999 → "nineteen ninety nine", 2005 → "two thousand five"."""
    high, low = divmod(n, 100)
    if n % 1000 < 10 and n >= 2000:
        return number_to_words(n)  # 2000-2009 → "two thousand (five)"
    if low == 0:
        return f"{number_to_words(high)} hundred"
    if low < 10:
        return f"{number_to_words(high)} oh {_ONES[low]}"
    return f"{number_to_words(high)} {number_to_words(low)}"


def ordinal_words(n: int) -> str:
    """21 → "twenty first": make the last word of the cardinal ordinal."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _digits(text: str) -> str:
    """Spell a digit string one digit at a time (decimals, long codes)."""
    return " ".join(_ONES[int(d)] for d in text)


def _spell_number(token: str, *, as_year: bool = True) -> str:
    """A bare number token (may hold thousands commas or a decimal point) → words."""
    token = token.replace(",", "")
    if "." in token:
        whole, frac = token.split(".", 1)
        head = number_to_words(int(whole)) if whole else "zero"
        return f"{head} point {_digits(frac)}" if frac else head
    if len(token) > 1 and token.startswith("0"):
        return _digits(token)
    n = int(token)
    if as_year and 1100 <= n <= 2099 and len(token) == 4:
        return year_to_words(n)
    return number_to_words(n)


_CURRENCY_RE = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?")
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+")
_DECADE_RE = re.compile(r"\b(\d{2,4})'?s\b")


def _currency(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[match.group(1)]
    whole = int(match.group(2).replace(",", ""))
    out = f" {number_to_words(whole)} {one if whole == 1 else many}"
    if match.group(3):
        cents = int(match.group(3).ljust(2, "0"))
        if cents:
            out += f" and {number_to_words(cents)} {sub_one if cents == 1 else sub_many}"
    return out + " "


def _decade(match: re.Match[str]) -> str:
    """1990s → "nineteen nineties"; the plural goes on the last word."""
    words = _spell_number(match.group(1)).split()
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return " " + " ".join(words) + " "


def _unify_characters(text: str) -> str:
    """Curly quotes, dashes and compatibility forms → ASCII, so later rules see one spelling."""
    text = unicodedata.normalize("NFKC", text)
    for src, dst in (("\u2018", "'"), ("\u2019", "'"), ("\u02bc", "'"), ("`", "'"), ("\u201c", '"'),
                     ("\u201d", '"'), ("\u2013", " "), ("\u2014", " "), ("\u2212", "-"), ("\u2026", " ")):
        text = text.replace(src, dst)
    # Accents are not in the ARPAbet dictionaries: "café" → "cafe".
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return text


def normalize_words(text: str) -> list[str]:
    """Written text → lower-case spoken words; empty when nothing speakable remains."""
    text = _unify_characters(text)
    text = _CURRENCY_RE.sub(_currency, text)
    text = _ORDINAL_RE.sub(lambda m: f" {ordinal_words(int(m.group(1)))} ", text)
    text = _DECADE_RE.sub(_decade, text)
    text = re.sub(r"(?<=\d)\s*%", " percent", text)
    text = _NUMBER_RE.sub(lambda m: f" {_spell_number(m.group(0))} ", text)
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = text.lower()
    # Keep apostrophes only inside words ("don't", "john's"); drop quote marks around words.
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    text = re.sub(r"[^a-z']+", " ", text)  # hyphens, punctuation and anything else split words
    return text.split()


def normalize_text(text: str) -> str:
    """:func:`normalize_words` joined by single spaces (what aligners take)."""
    return " ".join(normalize_words(text))
