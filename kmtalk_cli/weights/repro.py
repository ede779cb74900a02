"""The bundled default model's reproducibility check: a small corpus today's code builds, one figure.

README figures once reproduced only with the corpus code the weights were trained on. This
pins the other direction: the default model (SelfTalk + key motions), scored on a small corpus
built by *today's* ``kmtalk synth``, must give the lip error recorded in its model card. A
change to the generator, the rig, the aligner-free scoring path or the model code that moves
it shows up as a failing test, and the card is then updated on purpose (with the reason).

Scored with the corpus' true phone timings (no aligner: fast and exact) and each subject's own
style; LVE is the true-L2 lip error in mm, pooled over every frame of every sequence.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.synth import PRESETS, SynthOptions

#: The corpus: ``kmtalk synth --preset tiny --sentences 2 --seed 0`` (3 subjects × 2 sentences).
REPRO_OPTIONS: SynthOptions = replace(PRESETS["tiny"], sentences=2, seed=0, workers=1)
REPRO_COMMAND = "kmtalk synth --preset tiny --sentences 2 --seed 0"
#: The checkpoint checked: what `kmtalk animate` uses with no flags.
REPRO_CHECKPOINT = ("selftalk", True)
#: Relative tolerance: fp16 weights and CPU kernels differ by far less (the figure moves by
#: about 1e-4 between thread counts); a generator or model change moves it by more.
REPRO_TOLERANCE = 0.01
_LINE = re.compile(r"^Reproducibility figure: LVE ([0-9.]+) mm", re.M)


def repro_lve(checkpoint: Path, corpus: Path) -> float:
    """Pooled true-L2 lip error (mm) of ``checkpoint`` on every sequence of ``corpus`` (true timings)."""
    from ..data.dataset import open_dataset
    from ..evaluation import resolve_regions
    from ..metrics import lve_mm
    from ..models import load_model

    dataset = open_dataset(corpus)
    model = load_model(checkpoint)
    lips = resolve_regions(dataset).lips
    errors = []
    for ref in dataset.sequences:
        seq = dataset.load(ref)
        alignment = dataset.alignment(ref) if model.uses_key_motions else None
        style = seq.subject if seq.subject in model.styles else None
        offsets = model.predict_offsets(seq.audio, style=style, alignment=alignment, n_frames=len(seq.vertices))
        pred = offsets.reshape(len(seq.vertices), -1, 3) + seq.template
        errors.append(lve_mm(pred, seq.vertices, lips))
    return float(np.mean(np.concatenate(errors)))


def card_section(lve: float, note: str) -> str:
    """The model card's reproducibility section (parsed back by :func:`recorded_lve`)."""
    return (
        "## Reproducibility check\n"
        f"Reproducibility figure: LVE {lve:.4f} mm on `{REPRO_COMMAND}` (all 6 sequences, true phone timings, own styles),\n"
        f"tolerance ±{REPRO_TOLERANCE:.0%}; checked by `tests/test_weights.py`. {note}\n"
    )


def recorded_lve(card: Path) -> float | None:
    """The figure a model card records, or None when it has none."""
    match = _LINE.search(Path(card).read_text(encoding="utf-8"))
    return float(match.group(1)) if match else None
