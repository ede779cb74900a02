"""Key-frame selection: KMTalk's linguistic key motions, from a phone alignment.

The paper's key frames are the motion frames at phoneme boundaries: they sit near the
inflection points of the lip trajectories, so a face fixed at those frames pins down the whole
movement. Other rules are kept for the ablations: phone ``centers``, ``both`` together, and
``uniform`` spacing at the same density as ``boundaries``.

Every key frame carries its phone context: the phone just before and just after the frame's
time (for a boundary frame, the two phones it separates).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .alignment.phones import LABELS, SIL
from .errors import AlignmentError, MotionError
from .validate import require_finite

RULES = ("boundaries", "centers", "both", "uniform")
#: How far (seconds) an alignment's last phone may run past the audio before it is refused.
OVERRUN_TOLERANCE = 0.1
PHONE_INDEX = {label: i for i, label in enumerate(LABELS)}


@dataclass(frozen=True)
class KeyFrames:
    """Key frame indices of one sequence with their phone context."""

    indices: np.ndarray  # (K,) int64, sorted, unique, within [0, n_frames)
    left: tuple[str, ...]  # phone before each key frame
    right: tuple[str, ...]  # phone after each key frame
    n_frames: int
    fps: float
    rule: str

    @property
    def density(self) -> float:
        """Share of all frames that are key frames."""
        return len(self.indices) / max(self.n_frames, 1)

    def context_ids(self) -> np.ndarray:
        """(K, 2) indices into :data:`~kmtalk_cli.alignment.phones.LABELS` (SIL is 0)."""
        return np.array([[PHONE_INDEX.get(a, 0), PHONE_INDEX.get(b, 0)] for a, b in zip(self.left, self.right)], dtype=np.int64).reshape(-1, 2)

    def mask(self) -> np.ndarray:
        """(n_frames,) bool, True at key frames."""
        out = np.zeros(self.n_frames, dtype=bool)
        out[self.indices] = True
        return out


def _phone_at(starts: np.ndarray, ends: np.ndarray, labels: list[str], t: float) -> str:
    i = int(np.searchsorted(starts, t, side="right")) - 1
    if 0 <= i < len(labels) and t < ends[i]:
        return labels[i]
    return SIL


def select_key_frames(alignment: object, n_frames: int, fps: float, rule: str = "boundaries") -> KeyFrames:
    """Key frames of a sequence of ``n_frames`` at ``fps`` from ``alignment`` (an Alignment).

    Times map to the nearest frame (frame ``f`` is at ``f / fps`` seconds); frames are clipped
    to the sequence (an alignment may overrun the audio by rounding, not by more than
    :data:`OVERRUN_TOLERANCE`), de-duplicated, and the first and last frame are always included so
    completion never extrapolates.
    """
    if rule not in RULES:
        raise AlignmentError(f"Unknown key-frame rule '{rule}'; choose from {', '.join(RULES)}.")
    if n_frames < 1:
        raise AlignmentError("A sequence needs at least one frame to have key frames.")
    phones = [p for p in alignment.phones if p.end > p.start]  # type: ignore[attr-defined]
    if not any(p.label != SIL for p in phones):
        raise AlignmentError("The alignment has no phones, so there are no key motions to place.")
    duration = n_frames / fps
    speech_end = max(p.end for p in phones if p.label != SIL)
    if speech_end > duration + OVERRUN_TOLERANCE:
        raise AlignmentError(
            f"The alignment has speech until {speech_end:.2f} s but the audio is only {duration:.2f} s long; "
            "it belongs to another recording."
        )
    starts = np.array([p.start for p in phones])
    ends = np.array([p.end for p in phones])
    labels = [p.label for p in phones]

    def to_frames(times: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(np.asarray(times) * fps), 0, n_frames - 1).astype(np.int64)

    boundaries = to_frames(np.concatenate([starts, ends]))
    centers = to_frames((starts + ends) / 2)
    ends_frames = np.array([0, n_frames - 1], dtype=np.int64)
    if rule == "boundaries":
        chosen = np.concatenate([boundaries, ends_frames])
    elif rule == "centers":
        chosen = np.concatenate([centers, ends_frames])
    elif rule == "both":
        chosen = np.concatenate([boundaries, centers, ends_frames])
    else:
        count = len(np.unique(np.concatenate([boundaries, ends_frames])))
        chosen = np.rint(np.linspace(0, n_frames - 1, num=max(count, 2))).astype(np.int64)
    indices = np.unique(chosen)
    half = 0.5 / fps
    left = tuple(_phone_at(starts, ends, labels, f / fps - half) for f in indices)
    right = tuple(_phone_at(starts, ends, labels, f / fps + half) for f in indices)
    return KeyFrames(indices, left, right, n_frames, fps, rule)


@dataclass(frozen=True)
class KeyMotions:
    """Key frames and the face offsets (K, V·3) at them: what ``kmtalk keymotions`` writes and
    ``kmtalk complete`` reads (users may edit the offsets in between)."""

    frames: KeyFrames
    offsets: np.ndarray


def write_key_motions(keys: KeyMotions, path: Path | str, *, template: np.ndarray | None = None, force: bool = False) -> Path:
    """An ``.npz`` with ``indices``, ``left``/``right`` phones, ``offsets`` (K, V·3), ``fps``,
    ``n_frames``, ``rule`` and, with a template, absolute ``vertices`` (K, V, 3) at the key frames."""
    from .atomic import atomic_output

    arrays = {
        "indices": keys.frames.indices.astype(np.int64),
        "left": np.array(keys.frames.left, dtype="<U3"),
        "right": np.array(keys.frames.right, dtype="<U3"),
        "offsets": np.asarray(keys.offsets, dtype=np.float32),
        "fps": np.float64(keys.frames.fps),
        "n_frames": np.int64(keys.frames.n_frames),
        "rule": np.array(keys.frames.rule),
    }
    if template is not None:
        arrays["vertices"] = arrays["offsets"].reshape(len(keys.offsets), len(template), 3) + template[None]
    require_finite(arrays["offsets"], f"The key motions for {path}")
    with atomic_output(Path(path), force=force) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def read_key_motions(path: Path | str) -> KeyMotions:
    """Read :func:`write_key_motions` output, checking it is consistent."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            indices = np.asarray(data["indices"], dtype=np.int64)
            offsets = np.asarray(data["offsets"], dtype=np.float32)
            frames = KeyFrames(
                indices, tuple(str(x) for x in data["left"]), tuple(str(x) for x in data["right"]),
                int(data["n_frames"]), float(data["fps"]), str(data["rule"]),
            )
    except FileNotFoundError:
        raise MotionError(f"Key-motion file {path} does not exist.") from None
    except KeyError as exc:
        raise MotionError(f"{path} is not a key-motion file from `kmtalk keymotions` (it has no {exc}).") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise MotionError(f"{path} is not a key-motion .npz file from `kmtalk keymotions` (unreadable or truncated).") from None
    if offsets.ndim != 2 or len(offsets) != len(indices) or len(frames.left) != len(indices):
        raise MotionError(f"Key-motion file {path} is inconsistent: {len(indices)} key frames but offsets of shape {offsets.shape}.")
    require_finite(offsets, f"Key-motion file {path}")
    if frames.n_frames < 1 or not np.isfinite(frames.fps) or frames.fps <= 0:
        raise MotionError(f"Key-motion file {path} has an invalid frame count or rate ({frames.n_frames} frames at {frames.fps} fps).")
    if len(indices) and (indices.min() < 0 or indices.max() >= frames.n_frames or np.any(np.diff(indices) <= 0)):
        raise MotionError(f"Key-motion file {path} has key frames outside 0..{frames.n_frames - 1} or out of order.")
    return KeyMotions(frames, offsets)
