"""What a checkpoint holds, read from its safetensors header without importing torch.

The CLI asks early (is this a key-motion model? which backbone?) and a cold ``animate`` only
starts its alignment worker beside torch's import while torch is not loaded yet, so these
questions must not load it. The weights themselves are read by
:mod:`kmtalk_cli.backbones.checkpoint`, which re-exports everything here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ModelError

FORMAT = "kmtalk-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "kmtalk"


def resolve_checkpoint_path(path: Path | str) -> Path:
    """A checkpoint file, or a training run folder (its ``best.safetensors``), else a clear error."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors"):
            if (path / name).is_file():
                return path / name
        raise ModelError(f"Checkpoint {path} is a directory without best.safetensors; give a checkpoint file (.safetensors).")
    if not path.exists():
        raise ModelError(f"Checkpoint {path} does not exist.")
    if not path.is_file():
        raise ModelError(f"Checkpoint {path} is not a regular file.")
    return path


def read_checkpoint_info(path: Path | str) -> dict[str, Any]:
    """The JSON description of a checkpoint, without loading its weights (or torch)."""
    from safetensors import safe_open

    path = resolve_checkpoint_path(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            metadata = fh.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise ModelError(f"Checkpoint {path} is not a readable safetensors file ({exc}).") from None
    if METADATA_KEY not in metadata:
        raise ModelError(f"Checkpoint {path} is a safetensors file but not a kmtalk checkpoint (no description).")
    try:
        info = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelError(f"Checkpoint {path} has a corrupt description ({exc}).") from None
    if info.get("format") != FORMAT or int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(f"Checkpoint {path} has an unsupported format ({info.get('format')} v{info.get('format_version')}).")
    return info
