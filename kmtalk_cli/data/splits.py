"""The standard splits of VOCASET and BIWI, for corpora that come without a ``splits.json``.

VOCASET (FaceFormer/CodeTalker/SelfTalk): 8 training subjects on sentences 1–40, 2 validation
and 2 test subjects on sentences 21–40. BIWI: 6 subjects train on sentences 1–32, validate on
33–36 and are tested on 37–40 (Test-A); the other 8 subjects are Test-B.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

VOCASET_SUBJECTS = {
    "train": (
        "FaceTalk_170728_03272_TA", "FaceTalk_170904_00128_TA", "FaceTalk_170725_00137_TA", "FaceTalk_170915_00223_TA",
        "FaceTalk_170811_03274_TA", "FaceTalk_170913_03279_TA", "FaceTalk_170904_03276_TA", "FaceTalk_170912_03278_TA",
    ),
    "val": ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA"),
    "test": ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA"),
}
BIWI_TRAIN_SUBJECTS = ("F2", "F3", "F4", "M3", "M4", "M5")


def _sentence_number(name: str) -> int | None:
    match = re.search(r"(\d+)$", name.rsplit("_", 1)[-1])
    return int(match.group(1)) if match else None


def standard_splits(names: Iterable[str]) -> dict[str, list[str]] | None:
    """VOCASET or BIWI splits for these sequence names, or None when the corpus is neither."""
    names = sorted(names)
    subjects = {n.rsplit("_", 1)[0] for n in names}
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    if subjects & set(VOCASET_SUBJECTS["train"]):
        for n in names:
            subject, number = n.rsplit("_", 1)[0], _sentence_number(n)
            if number is None:
                continue
            if subject in VOCASET_SUBJECTS["train"] and number <= 40:
                out["train"].append(n)
            for split in ("val", "test"):
                if subject in VOCASET_SUBJECTS[split] and 21 <= number <= 40:
                    out[split].append(n)
        out["subjects"] = {k: [s for s in v if s in subjects] for k, v in VOCASET_SUBJECTS.items()}  # type: ignore[assignment]
        return out
    if subjects & set(BIWI_TRAIN_SUBJECTS):
        out["test_b"] = []
        for n in names:
            subject, number = n.rsplit("_", 1)[0], _sentence_number(n)
            if number is None:
                continue
            if subject in BIWI_TRAIN_SUBJECTS:
                split = "train" if number <= 32 else "val" if number <= 36 else "test"
                out[split].append(n)
            elif 37 <= number <= 40:
                out["test_b"].append(n)
        out["subjects"] = {"train": [s for s in BIWI_TRAIN_SUBJECTS if s in subjects]}  # type: ignore[assignment]
        return out
    return None
