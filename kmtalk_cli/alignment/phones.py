"""The phone set every kmtalk stage speaks: 39 ARPAbet phones without stress, plus ``SIL``.

Aligners, TextGrids and synthesisers each label phones their own way (stress digits, IPA,
espeak-ng mnemonics, MBROLA SAMPA). Key motions depend only on *which* phone is spoken, so all
of them are mapped here, once, onto one small set the face model can learn.

Silence is always ``SIL`` (pocketsphinx's own label). MFA's empty intervals, ``sil``, ``sp``
and ``spn`` (spoken noise: laughter, unknown words) all become ``SIL``, because none of them
has a mouth shape we can key.
"""

from __future__ import annotations

import unicodedata

SIL = "SIL"

VOWELS: frozenset[str] = frozenset(
    "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()
)
CONSONANTS: frozenset[str] = frozenset(
    "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH".split()
)
#: The 39 ARPAbet phones (CMUdict's set), in a stable order for one-hot encodings.
PHONES: tuple[str, ...] = tuple(sorted(VOWELS | CONSONANTS))
#: ``PHONES`` plus silence: every label an :class:`~kmtalk_cli.alignment.types.Alignment` may hold.
LABELS: tuple[str, ...] = (SIL, *PHONES)

# Visually distinct classes the face model keys on.
BILABIAL: frozenset[str] = frozenset({"P", "B", "M"})
LABIODENTAL: frozenset[str] = frozenset({"F", "V"})
DENTAL: frozenset[str] = frozenset({"TH", "DH"})
ROUNDED: frozenset[str] = frozenset({"UW", "UH", "OW", "OY", "AO", "W", "SH", "ZH", "CH", "JH", "ER", "R"})
OPEN_VOWELS: frozenset[str] = frozenset({"AA", "AE", "AH", "AO", "AW", "AY"})

_SILENCE_ALIASES = frozenset({"", "sil", "sp", "spn", "sil.", "<sil>", "<s>", "</s>", "pau", "_", "#", "+nsn+", "+spn+"})


def strip_stress(phone: str) -> str:
    """``AH0`` → ``AH``: stress changes loudness and pitch, not the mouth shape."""
    return phone.rstrip("012")


def is_silence(label: str) -> bool:
    """True for every spelling of silence or non-speech the aligners emit."""
    return label.strip().lower() in _SILENCE_ALIASES or label == SIL


def is_vowel(phone: str) -> bool:
    """Vowels carry the jaw opening."""
    return strip_stress(phone) in VOWELS


def is_bilabial(phone: str) -> bool:
    """Lips must close for P, B, M: the most visible key motions."""
    return strip_stress(phone) in BILABIAL


def is_labiodental(phone: str) -> bool:
    """Lower lip to upper teeth (F, V)."""
    return strip_stress(phone) in LABIODENTAL


def is_rounded(phone: str) -> bool:
    """Lip rounding / protrusion."""
    return strip_stress(phone) in ROUNDED


def normalize_arpabet(label: str) -> str | None:
    """An ARPAbet label from any aligner (``ah0``, ``AH1``, ``sil``) → our set, or None if unknown."""
    if is_silence(label):
        return SIL
    phone = strip_stress(label.strip().upper())
    if phone in VOWELS or phone in CONSONANTS:
        return phone
    # ARPAbet extensions some dictionaries use.
    return _ARPABET_EXTRA.get(phone)


_ARPABET_EXTRA: dict[str, str] = {"AX": "AH", "AXR": "ER", "IX": "IH", "UX": "UW", "DX": "T", "NX": "N", "EL": "L", "EM": "M", "EN": "N", "Q": "T", "H": "HH"}


# --- MFA english_mfa (IPA-like) -------------------------------------------------------------

#: Base symbols after diacritics are removed; diphthongs and affricates first (longest match).
_IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    "aj": ("AY",), "aɪ": ("AY",), "aw": ("AW",), "aʊ": ("AW",), "ej": ("EY",), "eɪ": ("EY",),
    "ow": ("OW",), "oʊ": ("OW",), "əw": ("OW",), "əʊ": ("OW",), "ɔj": ("OY",), "ɔɪ": ("OY",),
    "tʃ": ("CH",), "dʒ": ("JH",), "ʧ": ("CH",), "ʤ": ("JH",),
    "ɑ": ("AA",), "a": ("AA",), "ɒ": ("AA",), "æ": ("AE",), "ə": ("AH",), "ʌ": ("AH",), "ɐ": ("AH",),
    "ɚ": ("ER",), "ɝ": ("ER",), "ɜ": ("ER",), "ɛ": ("EH",), "e": ("EY",), "ɪ": ("IH",), "ɨ": ("IH",),
    "i": ("IY",), "ʊ": ("UH",), "u": ("UW",), "ʉ": ("UW",), "ɔ": ("AO",), "o": ("OW",),
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "ɾ": ("T",), "ʔ": ("T",), "k": ("K",),
    "c": ("K",), "ɡ": ("G",), "g": ("G",), "ɟ": ("G",), "f": ("F",), "v": ("V",), "θ": ("TH",),
    "ð": ("DH",), "s": ("S",), "z": ("Z",), "ʃ": ("SH",), "ʒ": ("ZH",), "h": ("HH",), "ç": ("HH",),
    "m": ("M",), "ɱ": ("M",), "n": ("N",), "ɲ": ("N",), "ŋ": ("NG",), "l": ("L",), "ɫ": ("L",),
    "ʎ": ("L",), "ɹ": ("R",), "r": ("R",), "ɻ": ("R",), "j": ("Y",), "w": ("W",), "ʍ": ("W",),
    "x": ("K",),
    # Other languages' MFA phone sets, each to the English phone with the nearest mouth shape
    # (the face only shows the lips, jaw and tongue tip): front rounded vowels to rounded ones,
    # retroflex and alveolo-palatal sibilants to SH/ZH, uvular and pharyngeal sounds to HH.
    "ts": ("T", "S"), "dz": ("D", "Z"), "tɕ": ("CH",), "dʑ": ("JH",), "ʈʂ": ("CH",), "ɖʐ": ("JH",),
    "tʂ": ("CH",), "dʐ": ("JH",), "pf": ("P", "F"),
    "y": ("UW",), "ʏ": ("UH",), "ø": ("OW",), "œ": ("AO",), "ɶ": ("AO",), "ɯ": ("UH",), "ɤ": ("AH",),
    "ɵ": ("UH",), "ɘ": ("AH",), "ɞ": ("ER",), "ɑ̃": ("AA",), "ɜ̃": ("ER",),
    "β": ("B",), "ɸ": ("P",), "ʂ": ("SH",), "ʐ": ("ZH",), "ɕ": ("SH",), "ʑ": ("ZH",), "ɣ": ("G",),
    "χ": ("HH",), "ʁ": ("HH",), "ʀ": ("HH",), "ħ": ("HH",), "ʕ": ("HH",), "ɦ": ("HH",), "q": ("K",),
    "ɢ": ("G",), "ɴ": ("NG",), "ɳ": ("N",), "ʈ": ("T",), "ɖ": ("D",), "ɭ": ("L",), "ɬ": ("L",),
    "ɮ": ("L",), "ɽ": ("T",), "ʋ": ("V",), "ɥ": ("W",), "ɰ": ("W",), "ʝ": ("Y",), "ɧ": ("SH",),
    "ɺ": ("L",), "ʙ": ("B",),
}
# Length, aspiration, palatalisation, labialisation, syllabicity, nasalisation, stress, and the
# tone letters and digits of tonal languages' phone sets (tone does not change the mouth shape).
_IPA_DIACRITICS = frozenset("ːˑʰʲʷˠˤ̩̃̚ˈˌ̯̥̬˥˦˧˨˩0123456789")


def ipa_to_arpabet(label: str) -> tuple[str, ...]:
    """One MFA ``english_mfa`` (IPA) phone → ARPAbet; diacritics are dropped, not guessed at.

    Returns an empty tuple for a symbol outside the table so callers can decide (the
    TextGrid reader keeps the interval as the nearest known phone, never crashes).
    """
    if is_silence(label):
        return (SIL,)
    text = unicodedata.normalize("NFD", label.strip())
    base = "".join(ch for ch in text if ch not in _IPA_DIACRITICS and not unicodedata.combining(ch))
    out: list[str] = []
    i = 0
    while i < len(base):
        for size in (2, 1):
            piece = base[i : i + size]
            if len(piece) == size and piece in _IPA_TO_ARPABET:
                out.extend(_IPA_TO_ARPABET[piece])
                i += size
                break
        else:
            i += 1  # an unknown symbol: skip it rather than invent a phone
    return tuple(out)


def any_to_arpabet(label: str) -> tuple[str, ...]:
    """A phone label of unknown origin (ARPAbet with or without stress, or IPA) → ARPAbet."""
    arpa = normalize_arpabet(label)
    if arpa is not None:
        return (arpa,)
    return ipa_to_arpabet(label)


# --- espeak-ng mnemonics (en, en-us) --------------------------------------------------------

_ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "a": ("AE",), "a#": ("AH",), "aa": ("AE",), "A:": ("AA",), "A": ("AA",), "A@": ("AA", "R"),
    "A@r": ("AA", "R"), "aI": ("AY",), "aI@": ("AY", "ER"), "aI3": ("AY", "ER"), "aU": ("AW",),
    "aU@": ("AW", "ER"), "@": ("AH",), "@2": ("AH",), "@5": ("AH",), "@L": ("AH", "L"),
    "@r": ("ER",), "3": ("ER",), "3:": ("ER",), "3:r": ("ER",), "e": ("EH",), "E": ("EH",),
    "E2": ("EH",), "e@": ("EH", "R"), "eI": ("EY",), "i": ("IY",), "I": ("IH",), "I2": ("IH",),
    "I#": ("IH",), "i:": ("IY",), "i@": ("IH", "R"), "i@3": ("IH", "R"), "0": ("AA",),
    "O": ("AO",), "O:": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"), "OI": ("OY",),
    "oU": ("OW",), "oU#": ("OW",), "o": ("OW",), "u": ("UW",), "u:": ("UW",), "U": ("UH",),
    "U@": ("UH", "R"), "V": ("AH",), "IR": ("IH", "R"), "VR": ("AH", "R"), "3:#": ("ER",),
    "aI2": ("AY",), "eI#": ("EY",),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",), "f": ("F",),
    "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",), "S": ("SH",), "Z": ("ZH",),
    "h": ("HH",), "tS": ("CH",), "dZ": ("JH",), "m": ("M",), "n": ("N",), "N": ("NG",),
    "l": ("L",), "r": ("R",), "j": ("Y",), "w": ("W",), "t#": ("T",), "d#": ("D",), "?": ("T",),
    "x": ("K",), "n-": ("AH", "N"), "m-": ("AH", "M"), "l-": ("AH", "L"), "r-": ("R",),
    "z#": ("Z",), "s#": ("S",), "t2": ("T",), "d2": ("D",), "W": ("W",), "C": ("HH",),
}
_ESPEAK_STRESS = "'," + "%="


def espeak_to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """One espeak-ng phoneme mnemonic (``'aI``, ``@L``, ``t#``) → ARPAbet; pauses → ``()``.

    Unknown variants are retried without their trailing modifier (``#``, ``2``, ``:``),
    which espeak-ng uses for allophones of the same phoneme.
    """
    name = mnemonic.strip().lstrip(_ESPEAK_STRESS)
    if not name or name.startswith("_") or name in {"||", "|"}:
        return ()
    while name:
        if name in _ESPEAK_TO_ARPABET:
            return _ESPEAK_TO_ARPABET[name]
        name = name[:-1]
    return ()


# --- MBROLA us1/us2/us3/en1 SAMPA (for ground truth from .pho files) ------------------------

_SAMPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    "i": ("IY",), "i:": ("IY",), "I": ("IH",), "E": ("EH",), "e": ("EH",), "{": ("AE",), "A": ("AA",),
    "A:": ("AA",), "Q": ("AA",), "V": ("AH",), "O": ("AO",), "O:": ("AO",), "U": ("UH",),
    "u": ("UW",), "u:": ("UW",), "@": ("AH",), "r=": ("ER",), "3:": ("ER",), "@`": ("ER",),
    "EI": ("EY",), "eI": ("EY",), "AI": ("AY",), "aI": ("AY",), "OI": ("OY",), "@U": ("OW",),
    "oU": ("OW",), "aU": ("AW",), "I@": ("IH", "R"), "e@": ("EH", "R"), "U@": ("UH", "R"),
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",), "f": ("F",),
    "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",), "S": ("SH",), "Z": ("ZH",),
    "h": ("HH",), "tS": ("CH",), "dZ": ("JH",), "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",),
    "r": ("R",), "j": ("Y",), "w": ("W",), "4": ("T",), "?": ("T",), "n=": ("AH", "N"),
    "l=": ("AH", "L"), "m=": ("AH", "M"), "x": ("K",), "5": ("L",), "@L": ("AH", "L"),
}


def sampa_to_arpabet(symbol: str) -> tuple[str, ...]:
    """One MBROLA (SAMPA) phone → ARPAbet; ``_`` (pause) → ``(SIL,)``, unknown → ``()``.

    X-SAMPA diacritics after ``_`` (aspiration in ``t_h``) and a voice's numbered allophone
    (us3's ``O2``) keep the mouth shape of their base phone, so they fall back to it.
    """
    name = symbol.strip()
    if name in {"_", ""}:
        return (SIL,)
    for candidate in (name, name.split("_", 1)[0], name.rstrip("0123456789")):
        if candidate in _SAMPA_TO_ARPABET:
            return _SAMPA_TO_ARPABET[candidate]
    return ()
