"""A trained model as the rest of the tool sees it: load a checkpoint, animate speech.

Whatever the checkpoint holds (a plain backbone, or a backbone with key motions), callers get a
:class:`LoadedModel` whose :meth:`~LoadedModel.predict_offsets` turns :class:`~kmtalk_cli.audio.Audio`
into per-frame vertex offsets at the model's frame rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import KmtalkWarning, ModelError, MotionError
from .validate import MAX_OFFSET_M, check_offsets, require_finite


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
        return self._checked(out.detach().cpu().numpy().astype(np.float32))

    def predict_pieces(self, audio: Any, *, style: str | None = None) -> Iterator[np.ndarray]:
        """:meth:`predict_offsets` of a plain model in consecutive (≤ 600, V·3) float32 pieces,
        so a long clip never holds the whole output."""
        if self.uses_key_motions:
            raise ModelError("A key-motion model predicts through its key motions; use predict_keys and complete_pieces.")
        pieces = self.model.predict_pieces(_samples(audio), self.n_frames(audio), style=self.style_index(style))

        def numpy_pieces() -> Iterator[np.ndarray]:
            with torch.inference_mode():
                for piece in pieces:
                    yield self._checked(piece.detach().cpu().numpy().astype(np.float32, copy=False))

        return numpy_pieces()

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
        if not has_speech(alignment):
            warnings.warn(KmtalkWarning("No speech was found (the alignment has no phones); the face stays at rest."), stacklevel=2)
            return no_key_motions(self.n_frames(audio), self.fps, self.n_vertices)
        features = self.encode(audio) if features is None else features
        with torch.inference_mode():
            keys = self.model.predict_keys(
                _samples(audio), self.n_frames(audio), alignment=alignment, style=self.style_index(style), features=features
            )
        self._check_keys(keys, f"Checkpoint {self.path}" if self.path is not None else "The model", predicted=True)
        return keys

    def complete_pieces(self, audio: Any, keys: Any, *, style: str | None = None, features: torch.Tensor | None = None) -> Iterator[np.ndarray]:
        """Offsets completed from key motions, in consecutive (≤ 600, V·3) float32 pieces of
        frames, so a long clip never holds more than a window; key-motion models only."""
        self._need_key_motions()
        n_frames = self.n_frames(audio)
        if len(keys.frames.indices) == 0:  # no speech: the face at rest
            return iter([np.zeros((n_frames, self.n_vertices * 3), dtype=np.float32)])
        self._check_keys(keys, "The key motions")
        features = self.encode(audio) if features is None else features
        pieces = self.model.complete_pieces(_samples(audio), n_frames, keys, style=self.style_index(style), features=features)

        def numpy_pieces() -> Iterator[np.ndarray]:
            with torch.inference_mode():
                for piece in pieces:
                    yield self._checked(piece.detach().cpu().numpy().astype(np.float32, copy=False))

        return numpy_pieces()

    def complete(self, audio: Any, keys: Any, *, style: str | None = None) -> np.ndarray:
        """Offsets (T, V·3) completed from key motions, guided by the audio; key-motion models only."""
        return np.concatenate(list(self.complete_pieces(audio, keys, style=style)), axis=0)

    def _checked(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets a damaged or diverged checkpoint would make (NaN, metres away) never leave the model."""
        low, high = float(np.min(offsets, initial=0.0)), float(np.max(offsets, initial=0.0))  # NaN survives both
        if np.isfinite(low) and np.isfinite(high) and max(high, -low) <= MAX_OFFSET_M:
            return offsets  # two passes without a temporary; the full check only says what is wrong
        return check_offsets(offsets, f"Checkpoint {self.path}" if self.path is not None else "The model")

    @staticmethod
    def _check_keys(keys: Any, what: str, *, predicted: bool = False) -> None:
        """Finite key motions (and, predicted, within a face's reach), without expanding all of
        them at once: codes and their map are checked, and the offsets only in blocks when a
        cheap bound does not already clear them."""
        parts = [np.asarray(p) for p in (keys.codes, keys.basis, keys.bias) if p is not None]
        if predicted and not all(np.isfinite(p).all() for p in parts):
            raise ModelError(f"{what} gave NaN or infinite key motions; the checkpoint is damaged or its training diverged.")
        for part in parts:
            require_finite(part, what, MotionError)
        if not predicted:
            return
        if keys.basis is None:
            check_offsets(keys.codes, what)
            return
        reach = np.abs(keys.codes) @ np.abs(keys.basis).max(axis=1) + (np.abs(keys.bias).max() if keys.bias is not None else 0.0)
        if len(reach) and float(reach.max()) > MAX_OFFSET_M:
            for start in range(0, len(keys.codes), 512):
                check_offsets(keys.expand(keys.codes[start : start + 512]), what)

    def _need_key_motions(self) -> None:
        if not self.uses_key_motions:
            where = f"Checkpoint {self.path}" if self.path is not None else "This model"
            raise ModelError(f"{where} was trained without key motions; train one with `kmtalk train --key-motions`.")


def has_speech(alignment: Any) -> bool:
    """Whether an alignment holds any spoken (non-silence) phone."""
    from .alignment.phones import SIL

    return any(p.label != SIL and p.end > p.start for p in getattr(alignment, "phones", ()))


def no_key_motions(n_frames: int, fps: float, n_vertices: int) -> Any:
    """Key motions with no key frames: what silence gives; completion keeps the face at rest."""
    from .keymotions import KeyFrames, KeyMotions

    frames = KeyFrames(np.zeros(0, dtype=np.int64), (), (), n_frames, fps, "boundaries")
    return KeyMotions(frames, np.zeros((0, n_vertices * 3), dtype=np.float32))


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
