"""Bundled default checkpoints (trained by ``tools/train_defaults.py``) and how to find them.

A file here is named ``<backbone>.safetensors`` (plain) or ``<backbone>-km.safetensors`` (with
key motions), each with a model card ``<same>.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


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
