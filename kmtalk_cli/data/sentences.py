"""A seeded generator of short, phonetically rich English sentences for the synthetic corpus.

Real corpora (VOCASET's TIMIT-style prompts) are chosen so every phone appears often; here a
small grammar fills templates from word lists, and when a phonemizer is given, each sentence
is the best of a few candidates at covering the phones seen least so far.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

# Words picked so the rare phones (ZH, OY, UH, TH, DH, NG, JH, CH, SH, AW) are well represented.
NOUNS: tuple[str, ...] = (
    "boy", "girl", "teacher", "farmer", "pilot", "doctor", "child", "judge", "mother", "father",
    "brother", "neighbor", "cook", "fisherman", "singer", "youth", "queen", "king", "soldier",
    "nurse", "lawyer", "thief", "sheriff", "butcher", "chef", "rooster", "mouse", "cow", "owl",
    "goose", "wolf", "zebra", "giraffe", "horse", "pigeon", "monkey", "tiger", "bear",
)
OBJECTS: tuple[str, ...] = (
    "treasure", "measure", "vision", "garage", "beige coat", "coin", "voice", "toy", "oyster",
    "book", "wood", "foot", "hook", "pudding", "cushion", "sugar", "wool", "ring", "thing",
    "song", "string", "bridge", "cage", "badge", "jacket", "cheese", "church", "chair",
    "watch", "shoe", "shell", "ship", "fish", "dish", "brush", "moon", "spoon", "roof", "boot",
    "flute", "fruit", "cloud", "house", "crown", "towel", "flower", "mouth", "path", "cloth",
    "feather", "leather", "weather vane", "bathtub", "thumb", "month", "apple", "map",
    "lamp", "hat", "bag", "basket", "kettle", "pepper", "bottle", "marble", "violin", "vase",
    "envelope", "helmet", "pillow", "window", "yellow box", "orange", "olive", "umbrella",
    "engine", "puzzle", "zipper", "blizzard", "usual plan", "television", "decision",
)
VERBS_PAST: tuple[str, ...] = (
    "found", "bought", "moved", "pushed", "pulled", "washed", "watched", "chose", "measured",
    "joined", "judged", "enjoyed", "avoided", "shook", "took", "cooked", "stood on",
    "thought about", "threw", "brought", "caught", "fetched", "hid", "lifted", "loved",
    "painted", "polished", "rowed", "sold", "stole", "touched", "used", "weighed", "wrapped",
    "borrowed", "carried", "dropped", "fixed", "grabbed", "hugged", "kept", "mended",
)
ADJECTIVES: tuple[str, ...] = (
    "big", "small", "shiny", "rough", "smooth", "huge", "tiny", "noisy", "quiet", "soft",
    "hot", "cold", "old", "young", "golden", "wooden", "woolen", "leather", "purple", "yellow",
    "orange", "pink", "blue", "green", "brown", "thick", "thin", "joyful", "lazy", "busy",
    "cheap", "shallow", "azure", "usual", "genuine", "foolish", "good", "rich", "poor", "vague",
)
PLACES: tuple[str, ...] = (
    "in the garage", "near the church", "by the bridge", "on the roof", "under the bed",
    "behind the house", "at the zoo", "in the kitchen", "on the ship", "beside the path",
    "through the woods", "across the field", "at the pleasure boat", "in the azure pool",
    "on the beach", "under the moon", "in the vault", "at the village", "by the mouth of the river",
    "with the other thing",
)
TIMES: tuple[str, ...] = (
    "yesterday", "this morning", "at noon", "last June", "every Thursday", "on Monday",
    "before the show", "after lunch", "during the storm", "at the usual hour", "in the evening",
)
ADVERBS: tuple[str, ...] = (
    "quickly", "slowly", "gently", "loudly", "quietly", "joyfully", "thoughtfully", "boldly",
    "usually", "oddly", "happily", "shyly", "with pleasure", "without a sound",
)
NAMES: tuple[str, ...] = (
    "Bob", "Joyce", "Judy", "Zoe", "Paul", "Vivian", "Hugh", "Ruth", "George", "Sheila",
    "Owen", "Maggie", "Theo", "Chuck", "Nathan", "Yvonne", "Walter", "Beth", "Howard", "Irene",
)

Template = Callable[[np.random.Generator], str]


def _pick(rng: np.random.Generator, words: Sequence[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _templates() -> tuple[Template, ...]:
    """Sentence patterns; each draws its words from ``rng`` only, so output depends on the seed alone."""

    def t1(r: np.random.Generator) -> str:
        adj = _pick(r, ADJECTIVES)
        return f"The {_pick(r, NOUNS)} {_pick(r, VERBS_PAST)} {_article(adj)} {adj} {_pick(r, OBJECTS)} {_pick(r, PLACES)}."

    def t2(r: np.random.Generator) -> str:
        return f"{_pick(r, NAMES)} {_pick(r, ADVERBS)} {_pick(r, VERBS_PAST)} the {_pick(r, OBJECTS)} {_pick(r, TIMES)}."

    def t3(r: np.random.Generator) -> str:
        return f"{_pick(r, TIMES).capitalize()}, the {_pick(r, ADJECTIVES)} {_pick(r, NOUNS)} {_pick(r, VERBS_PAST)} my {_pick(r, OBJECTS)}."

    def t4(r: np.random.Generator) -> str:
        return f"Why did {_pick(r, NAMES)} leave the {_pick(r, OBJECTS)} {_pick(r, PLACES)}?"

    def t5(r: np.random.Generator) -> str:
        return f"Please give the {_pick(r, ADJECTIVES)} {_pick(r, OBJECTS)} to {_pick(r, NAMES)} and the {_pick(r, NOUNS)}."

    def t6(r: np.random.Generator) -> str:
        return f"{_pick(r, NAMES)} thought the {_pick(r, NOUNS)} was {_pick(r, ADJECTIVES)}, but the {_pick(r, OBJECTS)} was {_pick(r, ADJECTIVES)}."

    def t7(r: np.random.Generator) -> str:
        return f"Look at the {_pick(r, ADJECTIVES)} {_pick(r, OBJECTS)} {_pick(r, PLACES)}."

    def t8(r: np.random.Generator) -> str:
        return f"The {_pick(r, NOUNS)} and the {_pick(r, NOUNS)} {_pick(r, VERBS_PAST)} {_pick(r, NAMES)}'s {_pick(r, OBJECTS)}."

    return (t1, t2, t3, t4, t5, t6, t7, t8)


def generate_sentences(
    n: int,
    seed: int,
    *,
    phonemize: Callable[[str], Sequence[str]] | None = None,
    candidates: int = 6,
    max_words: int = 14,
) -> list[str]:
    """``n`` distinct sentences, the same for the same seed (and phonemizer).

    With ``phonemize`` (text → ARPAbet phones) each pick favours candidates rich in the phones
    counted least so far, which evens out coverage of rare phones.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
    templates = _templates()
    counts: Counter[str] = Counter()
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        pool = []
        for _ in range(max(1, candidates)):
            text = templates[int(rng.integers(len(templates)))](rng)
            if text not in seen and len(text.split()) <= max_words:
                pool.append(text)
        if not pool:
            if attempts > 100 * (n + 1):
                raise RuntimeError("sentence generator exhausted")  # unreachable with these lists
            continue
        if phonemize is None:
            best = pool[0]
        else:
            scored = []
            for text in pool:
                phones = list(phonemize(text))
                gain = sum(1.0 / (1.0 + counts[p]) for p in set(phones))
                scored.append((gain / max(len(phones), 1) ** 0.25, text, phones))
            _, best, phones = max(scored, key=lambda item: item[0])
            counts.update(phones)
        seen.add(best)
        out.append(best)
    return out
