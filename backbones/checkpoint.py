"""Checkpoints: one ``.safetensors`` file holding the weights *and* a JSON description.

The JSON (backbone name, config, template id and vertex count, fps, style subjects, training
data, metrics) lives in the safetensors header's metadata, so loading needs nothing but the file
and never unpickles anything. Weights may be stored as float16 to keep bundled files small;
they load back as float32.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_output
from ..checkpoint_info import FORMAT, FORMAT_VERSION, METADATA_KEY, read_checkpoint_info, resolve_checkpoint_path  # noqa: F401 - re-exported
from ..errors import ModelError


def save_checkpoint(
    model: nn.Module, path: Path | str, info: dict[str, Any], *, half: bool = False, force: bool = True
) -> Path:
    """Write ``model``'s state and ``info`` (JSON-able) atomically to ``path``.

    ``info`` must say what to rebuild: ``kind`` (``"backbone"`` or ``"key-motion"``), the
    ``backbone`` name and its ``config`` dict; everything else is description.
    """
    from safetensors.torch import save_file

    missing = [k for k in ("kind", "backbone", "config") if k not in info]
    if missing:
        raise ValueError(f"checkpoint info lacks {', '.join(missing)}")
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            value = value.to(torch.float16)
        tensors[key] = value.contiguous().clone()
    for key, value in tensors.items():  # a diverged model is never saved as if it were one
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelError(f"Not saving {Path(path).name}: tensor {key} holds NaN or infinite values (the training diverged; try a lower --lr).")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **info}
    path = Path(path)
    with atomic_output(path, force=force) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(header, sort_keys=True)})
    return path


#: A stored weight larger than this in magnitude is damage, not training (trained weights stay
#: within a few tens).
MAX_WEIGHT = 1e6


def load_state(path: Path | str, model: nn.Module) -> None:
    """Load the weights of ``path`` into ``model`` (float16 storage is cast to the model's dtype)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"Checkpoint {path} has unreadable weights ({exc}).") from None
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    check_weights(state, path)  # after the cast: float32 checks are vectorised, float16 ones were 10x slower
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"Checkpoint {path} does not fit its own configuration "
            f"(missing {len(result.missing_keys)}, unexpected {len(result.unexpected_keys)} tensors)."
        )


def check_weights(state: dict[str, torch.Tensor], path: Path | str) -> None:
    """Refuse weights with NaN, infinity or absurd magnitudes: damaged bytes or a diverged run."""
    for name, value in state.items():
        if not value.is_floating_point() or value.numel() == 0:
            continue
        biggest = float(value.abs().max())  # one pass: NaN and infinity propagate to the maximum
        if not math.isfinite(biggest):
            raise ModelError(f"Checkpoint {path} is damaged: tensor {name} holds NaN or infinite values.")
        if biggest > MAX_WEIGHT:
            raise ModelError(f"Checkpoint {path} is damaged or diverged: tensor {name} holds a weight of {biggest:.3g}.")


def load_backbone(path: Path | str):  # noqa: ANN201 - (Backbone, info)
    """Rebuild a plain backbone checkpoint: the model in eval mode and its description."""
    from . import create_backbone

    path = resolve_checkpoint_path(path)
    info = read_checkpoint_info(path)
    if info.get("kind") != "backbone":
        raise ModelError(f"Checkpoint {path} holds a '{info.get('kind')}' model, not a plain backbone.")
    model = create_backbone(info["backbone"], info["config"])
    load_state(path, model)
    model.eval()
    return model, info
