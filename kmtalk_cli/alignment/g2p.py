"""Letter-to-sound rules learnt from CMUdict: a pronunciation for any spelling, no GPL engine.

Words CMUdict lacks (names, brands, new words) still need phones before they can be aligned.
The model is learnt from the dictionary itself in two steps:

1. **Alignment.** Each word's letters are aligned to its phones, every letter taking zero, one
   or two phones ("ph" → F + nothing, "x" → K S). Hard EM: a Viterbi alignment under the current
   letter → phones probabilities, then those probabilities re-counted from the alignments.
2. **Letter contexts.** Every letter of the aligned dictionary is a training example: its
   phones given the letters around it. A chain of ever wider windows (the letter alone, then one
   letter to its right, then one each side, then more to the right, ...) is counted; a window's majority is stored only
   where it disagrees with the narrower window it extends, which keeps the table small.

A letter is pronounced from the widest window around it that the dictionary contained, so
regular spellings follow the general rules and exceptions seen in training win where they apply.
Learning takes seconds (vectorised over words of equal shape); the table learnt from the whole
of pocketsphinx's CMUdict ships with the package (``g2p_table.txt.gz``, built by
``tools/build_g2p_table.py``) so nothing is learnt at run time.
"""

from __future__ import annotations

import functools
import gzip
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .phones import PHONES

#: The letters the model spells with; anything else in a word is dropped before pronouncing it.
LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: Stands for "outside the word" in a letter window.
EDGE = "#"
#: Letter windows (letters left, letters right), narrowest first; each widens the one before it
#: by one letter, so a window's text alone tells which one it is. Right context comes first
#: because English spells ahead ("made": the final e lengthens the a).
WINDOWS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 1), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4), (4, 4))
#: Where the bundled table lives.
TABLE_PATH = Path(__file__).with_name("g2p_table.txt.gz")

_N_PHONES = len(PHONES)
_PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}
# A letter's phones as one integer: 0 none, 1..39 one phone, then every ordered pair.
_N_CHUNKS = 1 + _N_PHONES + _N_PHONES * _N_PHONES
_RADIX = len(LETTERS) + 1  # letter codes 1..26, the edge 0


def _chunk_phones(chunk: int) -> tuple[str, ...]:
    """The phones an integer chunk stands for."""
    if chunk == 0:
        return ()
    if chunk <= _N_PHONES:
        return (PHONES[chunk - 1],)
    first, second = divmod(chunk - 1 - _N_PHONES, _N_PHONES)
    return (PHONES[first], PHONES[second])


@dataclass(frozen=True)
class LetterToSound:
    """A learnt letter-context table: window text (``#`` outside the word) → that letter's phones."""

    table: Mapping[str, tuple[str, ...]]
    windows: tuple[tuple[int, int], ...] = WINDOWS

    def letter_phones(self, letters: str, i: int) -> tuple[str, ...]:
        """Phones of ``letters[i]`` from the widest window around it that the table holds."""
        pad = max(max(left, right) for left, right in self.windows)
        padded = EDGE * pad + letters + EDGE * pad
        centre = i + pad
        found: tuple[str, ...] = ()
        for left, right in self.windows:
            phones = self.table.get(padded[centre - left:centre + right + 1])
            if phones is not None:
                found = phones
        return found

    def pronounce(self, word: str) -> tuple[str, ...]:
        """ARPAbet phones (no stress) for any spelling; empty if it has no letters.

        Letters are pronounced one by one, so both of a doubled consonant can come out silent
        ("johnn"), which CMUdict almost never does (under 1% of its doubled consonants): then the
        second one takes the letter's own sound.
        """
        letters = spellable(word)
        each = [self.letter_phones(letters, i) for i in range(len(letters))]
        for i in range(1, len(letters)):
            if letters[i] == letters[i - 1] and letters[i] not in "aeiou" and not each[i] and not each[i - 1]:
                each[i] = self.table.get(letters[i], ())
        return tuple(phone for phones in each for phone in phones)


def spellable(word: str) -> str:
    """``word`` lower-cased, accents dropped, reduced to the letters a-z (``"Zoë's"`` → ``"zoes"``)."""
    plain = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in plain if ch in LETTERS)


def training_pairs(entries: Mapping[str, Sequence[Sequence[str]]]) -> list[tuple[str, tuple[str, ...]]]:
    """(spelling, first pronunciation) for every dictionary word written in plain letters.

    Abbreviations with dots, possessives and hyphenated entries are left out: their letters do
    not spell their sounds the ordinary way. Stress digits are removed.
    """
    pairs: list[tuple[str, tuple[str, ...]]] = []
    for word, pronunciations in entries.items():
        if not pronunciations or not word or any(ch not in LETTERS for ch in word):
            continue
        phones = tuple(p.rstrip("012") for p in pronunciations[0])
        if phones and all(p in _PHONE_INDEX for p in phones):
            pairs.append((word, phones))
    return pairs


@dataclass(frozen=True)
class _Group:
    """Words of one spelling length and one pronunciation length, as index arrays."""

    letters: np.ndarray  # (B, n) letter indices 0..25
    phones: np.ndarray  # (B, m) phone indices 0..38


def _groups(pairs: Iterable[tuple[str, tuple[str, ...]]]) -> list[_Group]:
    """Words grouped by (letters, phones) lengths; words needing over two phones a letter are dropped."""
    by_shape: dict[tuple[int, int], tuple[list[list[int]], list[list[int]]]] = {}
    for word, phones in pairs:
        if len(phones) > 2 * len(word):
            continue
        letters, sounds = by_shape.setdefault((len(word), len(phones)), ([], []))
        letters.append([LETTERS.index(ch) for ch in word])
        sounds.append([_PHONE_INDEX[p] for p in phones])
    return [
        _Group(np.asarray(letters, dtype=np.int64).reshape(len(letters), n), np.asarray(sounds, dtype=np.int64).reshape(len(sounds), m))
        for (n, m), (letters, sounds) in sorted(by_shape.items())
    ]


def _viterbi(group: _Group, cost: np.ndarray) -> np.ndarray:
    """Each letter's chunk (B, n) in the cheapest alignment; ``cost`` is (26, chunks) −log P."""
    letters, phones = group.letters, group.phones
    batch, n = letters.shape
    m = phones.shape[1]
    rows = np.arange(batch)[:, None]
    single = 1 + phones  # (B, m) chunk of phone j alone
    pair = 1 + _N_PHONES + phones[:, :-1] * _N_PHONES + phones[:, 1:]  # (B, m-1) phones j, j+1
    best = np.full((batch, m + 1), np.inf)
    best[:, 0] = 0.0
    steps = np.zeros((batch, n, m + 1), dtype=np.int8)
    for i in range(n):
        row_cost = cost[letters[:, i]]  # (B, chunks)
        options = np.full((3, batch, m + 1), np.inf)
        options[0] = best + row_cost[:, :1]
        if m >= 1:
            options[1, :, 1:] = best[:, :-1] + row_cost[rows, single]
        if m >= 2:
            options[2, :, 2:] = best[:, :-2] + row_cost[rows, pair]
        steps[:, i] = np.argmin(options, axis=0)
        best = np.min(options, axis=0)
    chunks = np.zeros((batch, n), dtype=np.int64)
    j = np.full(batch, m)
    flat = np.arange(batch)
    for i in range(n - 1, -1, -1):
        step = steps[flat, i, j].astype(np.int64)
        j = j - step
        start = np.minimum(j, max(m - 1, 0))
        after = np.minimum(j + 1, max(m - 1, 0))
        first = phones[flat, start] if m else np.zeros(batch, dtype=np.int64)
        second = phones[flat, after] if m else np.zeros(batch, dtype=np.int64)
        chunks[:, i] = np.where(step == 0, 0, np.where(step == 1, 1 + first, 1 + _N_PHONES + first * _N_PHONES + second))
    return chunks


def _initial_cost(groups: Sequence[_Group]) -> np.ndarray:
    """−log P(chunk | letter) before any alignment: letters and phones that share words go together.

    A letter's single phones start from how often that phone appears in words spelt with it;
    silence and pairs start unlikely, so the first alignment uses them only where it must.
    """
    together = np.full((len(LETTERS), _N_PHONES), 1e-3)
    for group in groups:
        m = group.phones.shape[1]
        for i in range(group.letters.shape[1]):
            np.add.at(together, (group.letters[:, i, None], group.phones), 1.0 / m)
    single = together / together.sum(axis=1, keepdims=True)
    prob = np.empty((len(LETTERS), _N_CHUNKS))
    prob[:, 0] = 0.1
    prob[:, 1:1 + _N_PHONES] = 0.9 * single
    prob[:, 1 + _N_PHONES:] = 1e-4 * (single[:, :, None] * single[:, None, :]).reshape(len(LETTERS), -1)
    return -np.log(prob / prob.sum(axis=1, keepdims=True))


def align_letters(pairs: Sequence[tuple[str, tuple[str, ...]]], iterations: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hard-EM letter → phones alignment: (letters, chunks) arrays per word group, same shapes."""
    groups = _groups(pairs)
    cost = _initial_cost(groups)
    aligned: list[np.ndarray] = []
    for _ in range(iterations):
        aligned = [_viterbi(group, cost) for group in groups]
        counts = np.full((len(LETTERS), _N_CHUNKS), 1e-3)
        for group, chunks in zip(groups, aligned):
            np.add.at(counts, (group.letters, chunks), 1.0)
        cost = -np.log(counts / counts.sum(axis=1, keepdims=True))
    return [(group.letters, chunks) for group, chunks in zip(groups, aligned)]


def _window_codes(letters: np.ndarray, left: int, right: int) -> np.ndarray:
    """An integer per letter naming its window's text (edges included), shape of ``letters``."""
    batch, n = letters.shape
    pad = max(left, right)
    padded = np.zeros((batch, n + 2 * pad), dtype=np.int64)
    padded[:, pad:pad + n] = letters + 1
    codes = np.zeros((batch, n), dtype=np.int64)
    for offset in range(-left, right + 1):
        codes = codes * _RADIX + padded[:, pad + offset:pad + offset + n]
    return codes


def _window_text(code: int, width: int) -> str:
    """The window text an integer from :func:`_window_codes` stands for."""
    chars = []
    for _ in range(width):
        code, digit = divmod(code, _RADIX)
        chars.append(EDGE if digit == 0 else LETTERS[digit - 1])
    return "".join(reversed(chars))


def learn_table(
    aligned: Sequence[tuple[np.ndarray, np.ndarray]], windows: tuple[tuple[int, int], ...] = WINDOWS
) -> LetterToSound:
    """Count every letter window's phones and keep the majorities that overrule a narrower window.

    Ties go to what the narrower window says, so a window that adds nothing is never stored.
    """
    letters = [group for group, _ in aligned]
    chunks = np.concatenate([c.ravel() for _, c in aligned])
    backed_off = np.full(chunks.shape, -1, dtype=np.int64)  # the narrower window's answer per letter
    table: dict[str, tuple[str, ...]] = {}
    for left, right in windows:
        codes = np.concatenate([_window_codes(group, left, right).ravel() for group in letters])
        pairs, first, counts = np.unique(codes * _N_CHUNKS + chunks, return_index=True, return_counts=True)
        window, chunk = np.divmod(pairs, _N_CHUNKS)
        score = counts * 2 + (chunk == backed_off[first])
        order = np.lexsort((-score, window))
        window, chunk, first = window[order], chunk[order], first[order]
        is_first = np.ones(window.shape, dtype=bool)
        is_first[1:] = window[1:] != window[:-1]
        known, winner = window[is_first], chunk[is_first]
        parent = backed_off[first[is_first]]
        for code, best, before in zip(known.tolist(), winner.tolist(), parent.tolist()):
            if best != before:
                table[_window_text(code, left + right + 1)] = _chunk_phones(best)
        backed_off = winner[np.searchsorted(known, codes)]
    return LetterToSound(table, windows)


def learn(entries: Mapping[str, Sequence[Sequence[str]]], windows: tuple[tuple[int, int], ...] = WINDOWS) -> LetterToSound:
    """A letter-to-sound model learnt from a pronouncing dictionary (word → pronunciations)."""
    pairs = training_pairs(entries)
    return learn_table(align_letters(pairs), windows) if pairs else LetterToSound({}, windows)


def dump_table(model: LetterToSound) -> str:
    """The table as text: one ``window phones`` line per entry (``-`` for a silent letter), sorted."""
    lines = [f"{window} {'_'.join(phones) or '-'}" for window, phones in sorted(model.table.items())]
    return "\n".join(lines) + "\n"


def parse_table(text: str) -> LetterToSound:
    """Read :func:`dump_table`'s text back."""
    table: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        window, _, phones = line.partition(" ")
        if window:
            table[window] = () if phones == "-" else tuple(phones.split("_"))
    return LetterToSound(table)


@functools.lru_cache(maxsize=1)
def bundled() -> LetterToSound:
    """The model learnt from pocketsphinx's CMUdict that ships with kmtalk (read once, ~0.1 s)."""
    return parse_table(gzip.decompress(TABLE_PATH.read_bytes()).decode("ascii"))
