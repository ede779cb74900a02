"""A trained model as the rest of the tool sees it: load a checkpoint, animate speech.

Whatever the checkpoint holds (a plain backbone, or a backbone with key motions), callers get a
:class:`LoadedModel` whose :meth:`~LoadedModel.predict_offsets` turns :class:`~kmtalk_cli.audio.Audio`
into per-frame vertex offsets at the model's frame rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ModelError


@dataclass
class LoadedModel:
    model: torch.nn.Module
    info: dict[str, Any]
    path: Path | None
    precision: str = "fp32"  # of the large layers (``kmtalk_cli.precision``)
    #: The last clip's audio features (the clip, the tensor): key motions and completion share them.
    _features: tuple[Any, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @property
    def backbone(self) -> str:
        return str(self.info["backbone"])

    @property
    def fps(self) -> float:
        return float(self.info["config"]["fps"])

    @property
    def n_vertices(self) -> int:
        return int(self.info["config"]["n_vertices"])

    @property
    def styles(self) -> list[str]:
        """Training subjects, in style-index order."""
        return list(self.info.get("styles", []))

    @property
    def uses_key_motions(self) -> bool:
        return self.info.get("kind") == "key-motion"

    def style_index(self, style: str | None) -> int | None:
        """Index of a training subject's style; None (average style) for None."""
        if style is None:
            return None
        if style not in self.styles:
            have = ", ".join(self.styles) or "none (the model has no styles)"
            raise ModelError(f"Style '{style}' is not one of this model's training subjects: {have}.")
        return self.styles.index(style)

    def n_frames(self, audio: Any) -> int:
        return max(1, int(round(audio.duration * self.fps)))

    def check_template(self, n_vertices: int) -> None:
        if n_vertices != self.n_vertices:
            raise ModelError(
                f"The model was trained for a template of {self.n_vertices} vertices; this template has {n_vertices}."
            )

    def predict_offsets(self, audio: Any, *, style: str | None = None, alignment: Any = None, n_frames: int | None = None) -> np.ndarray:
        """Audio → offsets (T, V·3) float32 at :attr:`fps` (``n_frames`` to fix T, e.g. to a ground
        truth's length). ``alignment`` is used by key-motion models."""
        n_frames = n_frames if n_frames is not None else self.n_frames(audio)
        index = self.style_index(style)
        with torch.inference_mode():
            if self.uses_key_motions:
                out = self.model.predict(_samples(audio), n_frames, style=index, alignment=alignment)
            else:
                out = self.model.predict(_samples(audio), n_frames, style=index)
        return out.detach().cpu().numpy().astype(np.float32)

    def encode(self, audio: Any) -> torch.Tensor:
        """Audio features at the model's frame rate; the last clip's are kept, so
        :meth:`predict_keys` and :meth:`complete_pieces` on the same clip encode it once."""
        self._need_key_motions()
        if self._features is None or self._features[0] is not audio:
            self._features = None  # the previous clip's go before this one's are made
            with torch.inference_mode():
                self._features = (audio, self.model.encode(_samples(audio), self.n_frames(audio)))
        return self._features[1]

    def predict_keys(self, audio: Any, alignment: Any, *, style: str | None = None, features: torch.Tensor | None = None) -> Any:
        """Key frames and the face there (:class:`~kmtalk_cli.keymotions.KeyMotions`); key-motion models only."""
        self._need_key_motions()
        features = self.encode(audio) if features is None else features
        with torch.inference_mode():
            return self.model.predict_keys(
                _samples(audio), self.n_frames(audio), alignment=alignment, style=self.style_index(style), features=features
            )

    def complete_pieces(self, audio: Any, keys: Any, *, style: str | None = None, features: torch.Tensor | None = None) -> Iterator[np.ndarray]:
        """Offsets completed from key motions, in consecutive (≤ 600, V·3) float32 pieces of
        frames, so a long clip never holds more than a window; key-motion models only."""
        self._need_key_motions()
        features = self.encode(audio) if features is None else features
        pieces = self.model.complete_pieces(_samples(audio), self.n_frames(audio), keys, style=self.style_index(style), features=features)

        def numpy_pieces() -> Iterator[np.ndarray]:
            with torch.inference_mode():
                for piece in pieces:
                    yield piece.detach().cpu().numpy().astype(np.float32, copy=False)

        return numpy_pieces()

    def complete(self, audio: Any, keys: Any, *, style: str | None = None) -> np.ndarray:
        """Offsets (T, V·3) completed from key motions, guided by the audio; key-motion models only."""
        return np.concatenate(list(self.complete_pieces(audio, keys, style=style)), axis=0)

    def _need_key_motions(self) -> None:
        if not self.uses_key_motions:
            where = f"Checkpoint {self.path}" if self.path is not None else "This model"
            raise ModelError(f"{where} was trained without key motions; train one with `kmtalk train --key-motions`.")


def _samples(audio: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32))


def load_model(path: Path | str, *, precision: str = "fp32") -> LoadedModel:
    """Load any kmtalk checkpoint (``.safetensors``) for inference.

    ``precision`` ``int8`` or ``bf16`` converts the large layers for faster CPU inference
    (:mod:`kmtalk_cli.precision`); checked before the weights are read, so a CPU without support
    fails fast.
    """
    from .backbones.checkpoint import load_backbone, read_checkpoint_info
    from .precision import apply_precision, check_precision

    check_precision(precision)
    path = Path(path)
    info = read_checkpoint_info(path)
    if info.get("kind") == "key-motion":
        from .keymotion_model import load_keymotion_model

        model, info = load_keymotion_model(path)
    else:
        model, info = load_backbone(path)
    apply_precision(model, precision)
    return LoadedModel(model, info, path, precision)
