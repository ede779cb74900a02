"""The learnt letter-to-sound model: alignment, context table, the bundled table, unseen words."""

from __future__ import annotations

import gzip
import random

import pytest

from kmtalk_cli.alignment import g2p
from kmtalk_cli.alignment.lexicon import _cmudict
from kmtalk_cli.alignment.phones import PHONES
from kmtalk_cli.metrics import edit_distance

# A toy dictionary whose spelling rules are regular enough to learn from a handful of words.
TOY = {
    "cat": [("K", "AE1", "T")],
    "bat": [("B", "AE1", "T")],
    "tab": [("T", "AE1", "B")],
    "tax": [("T", "AE1", "K", "S")],
    "box": [("B", "AA1", "K", "S")],
    "cot": [("K", "AA1", "T")],
    "phot": [("F", "AA1", "T")],
    "a.b.": [("EY", "B", "IY")],  # not plain letters: left out
}


def _aligned(pairs) -> dict[str, list[tuple[str, ...]]]:
    return {
        "".join(g2p.LETTERS[i] for i in letters): [g2p._chunk_phones(int(c)) for c in chunks]
        for group, chunk_rows in g2p.align_letters(pairs)
        for letters, chunks in zip(group, chunk_rows)
    }


def test_alignment_gives_each_letter_zero_one_or_two_phones() -> None:
    pairs = g2p.training_pairs(TOY)
    assert ("cat", ("K", "AE", "T")) in pairs and all(word != "a.b." for word, _ in pairs)
    aligned = _aligned(pairs)
    assert aligned["tax"] == [("T",), ("AE",), ("K", "S")]
    assert aligned["cat"] == [("K",), ("AE",), ("T",)]


def test_alignment_of_real_dictionary_words_finds_silent_letters() -> None:
    entries = _cmudict()
    words = sorted(w for w, _ in g2p.training_pairs(entries))
    sample = set(random.Random(0).sample(words, 15_000)) | {"phone", "graph", "knight", "taxi", "made"}
    aligned = _aligned(g2p.training_pairs({w: entries[w] for w in sample}))
    # A digraph's sound goes to one of its letters; which one is the model's choice, but it is
    # the same choice every time.
    assert sorted(aligned["phone"][:2]) == [(), ("F",)] and aligned["phone"][2:] == [("OW",), ("N",), ()]
    assert aligned["graph"][3:] == aligned["phone"][:2]
    assert aligned["knight"][:3] == [(), ("N",), ("AY",)] and aligned["knight"][3:] == [(), (), ("T",)]
    assert aligned["taxi"] == [("T",), ("AE",), ("K", "S"), ("IY",)]
    assert aligned["made"] == [("M",), ("EY",), ("D",), ()]


def test_toy_model_generalises_to_unseen_spellings() -> None:
    model = g2p.learn(TOY)
    assert model.pronounce("cab") == ("K", "AE", "B")
    assert model.pronounce("cox") == ("K", "AA", "K", "S")
    assert model.pronounce("Tax!") == ("T", "AE", "K", "S")


def test_table_keeps_only_windows_that_overrule_narrower_ones() -> None:
    model = g2p.learn(TOY)
    # "a" is AE in cat/bat/tab/tax but AA nowhere: the bare letter decides, no wider window needed.
    assert model.table["a"] == ("AE",)
    assert not any(len(w) > 1 and w[len(w) // 2 - (len(w) % 2 == 0)] == "a" and p == ("AE",) for w, p in model.table.items())
    assert model.table["o"] in {("AA",), ()}


def test_dump_and_parse_round_trip() -> None:
    model = g2p.learn(TOY)
    again = g2p.parse_table(g2p.dump_table(model))
    assert dict(again.table) == dict(model.table)
    assert again.pronounce("taxcab") == model.pronounce("taxcab")


def test_spellable_keeps_plain_letters_only() -> None:
    assert g2p.spellable("Zoë's") == "zoes"
    assert g2p.spellable("R2-D2") == "rd"
    assert g2p.spellable("42") == ""
    assert g2p.bundled().pronounce("42") == ()


def test_learnt_from_most_of_cmudict_it_pronounces_held_out_words() -> None:
    """Real generalisation, kept fast: learn from 25k words, score 400 others (phone error rate)."""
    entries = _cmudict()
    words = sorted(w for w, _ in g2p.training_pairs(entries))
    random.Random(1).shuffle(words)
    model = g2p.learn({w: entries[w] for w in words[:25_000]})
    errors = length = 0
    for word in words[25_000:25_400]:
        reference = tuple(p.rstrip("012") for p in entries[word][0])
        guess = model.pronounce(word)
        errors += edit_distance(guess, reference)
        length += len(reference)
    assert errors / length < 0.2


def test_bundled_table_pronounces_words_cmudict_lacks() -> None:
    model = g2p.bundled()
    assert g2p.TABLE_PATH.stat().st_size < 2_000_000
    assert len(model.table) > 10_000
    for word, must in (("kmtalk", ("K", "M", "T")), ("zorblax", ("Z", "B", "L", "K", "S")), ("blorptastic", ("B", "L", "P", "T", "S"))):
        phones = model.pronounce(word)
        assert set(phones) <= set(PHONES)
        assert _in_order(must, phones), (word, phones)
    assert model.pronounce("made") == ("M", "EY", "D")
    assert model.pronounce("johnn") == ("JH", "AA", "N")  # a doubled consonant is never wholly silent


def test_bundled_table_knows_the_dictionary_it_was_learnt_from() -> None:
    entries = _cmudict()
    words = sorted(w for w, _ in g2p.training_pairs(entries))
    sample = random.Random(2).sample(words, 2000)
    right = sum(g2p.bundled().pronounce(w) in {tuple(p.rstrip("012") for p in ref) for ref in entries[w]} for w in sample)
    assert right / len(sample) > 0.9


@pytest.mark.slow
def test_bundled_table_is_what_the_build_tool_learns() -> None:
    learnt = g2p.dump_table(g2p.learn(_cmudict()))
    assert gzip.decompress(g2p.TABLE_PATH.read_bytes()).decode("ascii") == learnt



def _in_order(needles: tuple[str, ...], haystack: tuple[str, ...]) -> bool:
    it = iter(haystack)
    return all(any(p == n for p in it) for n in needles)


def test_an_empty_dictionary_learns_a_model_that_says_nothing() -> None:
    assert g2p.learn({}).pronounce("anything") == ()
