"""Bundled default checkpoints (trained by ``tools/train_defaults.py``) and how to find them.

A file here is named ``<backbone>.safetensors`` (plain) or ``<backbone>-km.safetensors`` (with
key motions), each with a model card ``<same>.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any


#: What ``kmtalk animate`` uses with no --backbone: SelfTalk + KM, the key-motion method on the
#: backbone with the lowest lip error (README, "Bundled weights").
DEFAULT_BACKBONE = "selftalk"


@dataclass(frozen=True)
class BundledCheckpoint:
    backbone: str
    key_motions: bool
    path: Path
    styles: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.backbone}{' + KM' if self.key_motions else ''}"


def weights_dir() -> Path:
    return Path(str(resources.files(__name__)))


def bundled_checkpoints() -> list[BundledCheckpoint]:
    """Every bundled checkpoint that is present and readable."""
    from ..backbones.checkpoint import read_checkpoint_info
    from ..errors import ModelError

    found = []
    for path in sorted(weights_dir().glob("*.safetensors")):
        try:
            info = read_checkpoint_info(path)
        except ModelError:
            continue
        found.append(BundledCheckpoint(info["backbone"], info.get("kind") == "key-motion", path, tuple(info.get("styles", []))))
    return found


def find_bundled(backbone: str, key_motions: bool) -> BundledCheckpoint | None:
    for c in bundled_checkpoints():
        if c.backbone == backbone and c.key_motions == key_motions:
            return c
    return None


# -- model cards ----------------------------------------------------------------------------------
FACTS_FENCE = "```json"

_BACKBONE_TITLES = {"faceformer": "FaceFormer", "codetalker": "CodeTalker", "selftalk": "SelfTalk"}


def card_facts(info: dict[str, Any], n_params: int, n_bytes: int, sha256: str) -> dict[str, Any]:
    """What a card states about its checkpoint, as data (checked against the file by the tests)."""
    return {
        "backbone": info["backbone"],
        "kind": info.get("kind"),
        "parameters": n_params,
        "bytes": n_bytes,
        "sha256": sha256,
        "dtype": "float16",
        "config": {k: (f"{len(v)} vertex indices" if k.endswith("_vertices") and isinstance(v, list) else v) for k, v in info["config"].items()},
        "key_motions": info.get("key_motions"),
        "styles": info.get("styles", []),
        "training": info.get("training", {}),
        "metrics": info.get("metrics", {}),
    }


#: Held-out splits a card reports, and what each holds.
_SPLITS = {"test": "test (unseen subjects and sentences)", "unseen": "unseen (a voice family never trained on)"}


def _metric_rows(metrics: dict[str, Any]) -> str:
    rows = []
    for split, label in _SPLITS.items():
        m = metrics.get(split)
        if m:
            rows.append(f"| {label} | {m['lve_mm']:.3f} | {m['lve_paper']:.3g} | {m['fdd']:.3g} | {m['mve_mm']:.3f} |")
    return "\n".join(rows) or "| (not evaluated) | | | | |"


def card_text(file_name: str, info: dict[str, Any], n_params: int, n_bytes: int, sha256: str, reproducibility: str = "") -> str:
    """The model card (Markdown) of a bundled checkpoint: prose for people, a JSON block for tools.

    ``reproducibility``: the default model's :func:`~kmtalk_cli.weights.repro.card_section`, if any.
    """
    facts = card_facts(info, n_params, n_bytes, sha256)
    title = _BACKBONE_TITLES.get(facts["backbone"], facts["backbone"]) + (" + key motions" if facts["kind"] == "key-motion" else "")
    training = facts["training"]
    stages = ", ".join(f"{name} {n}" for name, n in (training.get("options", {}).get("stage_epochs") or {}).items())
    km = facts["key_motions"] or {}
    method = " with KMTalk key motions (key-motion decoder + completion)" if facts["kind"] == "key-motion" else ""
    if km.get("rig_prior"):
        method = " with KMTalk key motions (the rig's face at each key frame, corrected from the audio by the key-motion decoder; completion)"
    phones = {"aligner": "the built-in aligner's, as at inference", "true": "the corpus' true TextGrids"}.get(training.get("alignments", ""), "")
    return f"""# {title} — kmtalk bundled default (`{file_name}`)

A {_BACKBONE_TITLES.get(facts['backbone'], facts['backbone'])} backbone{method},
{n_params / 1e6:.2f} M parameters stored in float16 ({n_bytes / 1e6:.1f} MB), for the bundled head
({facts['config']['n_vertices']} vertices) at {facts['config']['fps']:g} fps. Speech goes in through the
log-mel encoder trained with it; no pretrained speech model and no download is involved.

## Training
- Data: the synthetic corpus made by `{training.get('data', '?')}` ({training.get('data_code', 'this kmtalk')}; subjects, splits and
  voices in its DATACARD.md; espeak-ng voices, rig-driven motion on the bundled head).
- Command: `{training.get('command', '?')}`, where `config.json` holds `{json.dumps(training.get('config_file', {}))}` (seed {training.get('seed', '?')}; epochs per stage: {stages or 'see the command'});
  all six defaults: `{training.get('regenerate', 'python tools/train_defaults.py')}`.
- Speech augmentation during training: room reverberation, band-limiting, coloured noise, gain.
{f"- Phones for the key motions in training: {phones}." + chr(10) if phones else ""}- Time: {training.get('minutes', '?')} min on {training.get('threads', '?')} CPU thread(s).
- Styles (`--style`): {', '.join(facts['styles'])}.

## Results on held-out splits{' (phones from the built-in aligner)' if facts['kind'] == 'key-motion' else ''}
| split | LVE (mm, true L2) | LVE (paper form, m²) | FDD (m²) | MVE (mm) |
|---|---:|---:|---:|---:|
{_metric_rows(facts['metrics'])}

{reproducibility + chr(10) if reproducibility else ""}## Limits
Trained on synthetic speech and rig-made motion: it moves the bundled head's jaw and lips in
time with speech, not any one person's captured manner. Real recordings are checked in the
README (mouth opening against loudness, lip closure on m/b/p). Licence: MIT, like kmtalk; the head
is menpo3d's (BSD-3-Clause).

## Facts
{FACTS_FENCE}
{json.dumps(facts, indent=1, sort_keys=True)}
```
"""


def read_card_facts(card: Path) -> dict[str, Any]:
    """The JSON block of a model card."""
    text = card.read_text(encoding="utf-8")
    start = text.index(FACTS_FENCE) + len(FACTS_FENCE)
    return json.loads(text[start : text.index("```", start)])
