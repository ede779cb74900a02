"""Scoring an alignment against known phone timings (espeak-ng events, MBROLA .pho files).

Reference and aligner rarely agree on every phone (the synthesiser's pronunciation differs
from CMUdict's), so boundaries are compared only for phones the two sequences share, matched
by a longest-common-subsequence alignment of their labels.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .espeak import Synthesis
from .mbrola import read_pho
from .phones import SIL, espeak_to_arpabet, sampa_to_arpabet
from .types import Alignment


@dataclass(frozen=True)
class TimedPhone:
    """A reference phone: ARPAbet label and start time in seconds."""

    label: str
    start: float


def reference_from_espeak(synthesis: Synthesis) -> tuple[TimedPhone, ...]:
    """espeak-ng phoneme events → ARPAbet starts; a two-phone mnemonic shares its start."""
    out: list[TimedPhone] = []
    for event in synthesis.phonemes:
        for label in espeak_to_arpabet(event.name):
            out.append(TimedPhone(label, event.start))
    return tuple(out)


def parse_pho(text: str) -> tuple[TimedPhone, ...]:
    """An MBROLA .pho file (``phone duration_ms [pitch points]``) → ARPAbet start times.

    MBROLA renders exactly these durations, so the starts are exact ground truth.
    """
    return tuple(TimedPhone(label, phone.start) for phone in read_pho(text) for label in sampa_to_arpabet(phone.symbol))


def boundary_errors(reference: Sequence[TimedPhone], alignment: Alignment) -> np.ndarray:
    """Signed errors (aligner - reference, seconds) at each matched phone start.

    Silences and the very first phone are left out: a start at the edge of the audio is
    not a boundary between two mouth shapes.
    """
    ref = [p for p in reference if p.label != SIL]
    hyp = [p for p in alignment.phones if p.label != SIL]
    matcher = difflib.SequenceMatcher(a=[p.label for p in ref], b=[p.label for p in hyp], autojunk=False)
    errors: list[float] = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            r, h = ref[block.a + k], hyp[block.b + k]
            if block.a + k == 0:
                continue
            errors.append(h.start - r.start)
    return np.asarray(errors, dtype=float)
