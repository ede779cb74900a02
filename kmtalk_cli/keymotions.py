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
    ``kmtalk complete`` reads (users may edit the offsets in between).

    The offsets are held as ``codes`` (K, C) mapped by ``basis`` (C, V·3) and ``bias`` (V·3,):
    the key decoder's last layer is linear, so its low-dimensional input *is* the key motion,
    exactly, at a few per cent of the size. Without a basis the codes are the offsets themselves
    (``KeyMotions(frames, offsets)``). Linear interpolation commutes with the map (the weights sum
    to one), so completion interpolates codes and expands only the frames it is working on.
    """

    frames: KeyFrames
    codes: np.ndarray
    basis: np.ndarray | None = None
    bias: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """V·3, the width of an offset row."""
        return int(self.basis.shape[1]) if self.basis is not None else int(self.codes.shape[1])

    @property
    def offsets(self) -> np.ndarray:
        """(K, V·3) float32 offsets at the key frames (materialised: K·V·3 floats)."""
        return self.expand(self.codes)

    def expand(self, codes: np.ndarray) -> np.ndarray:
        """Rows of codes (or of their interpolation) → offset rows (…, V·3) float32."""
        codes = np.asarray(codes, dtype=np.float32)
        if self.basis is None:
            return codes
        out = codes @ self.basis
        return out + self.bias if self.bias is not None else out


#: Version of the ``.keys.npz`` layout :func:`write_key_motions` writes (files without one are 1:
#: float32 ``offsets`` and absolute ``vertices``); :func:`read_key_motions` reads both.
KEYS_FORMAT_VERSION = 2
#: Plain key offsets larger than this in float32 are stored in float16 (a few minutes of speech
#: on the bundled head; below it they are stored exactly).
FLOAT16_ABOVE_BYTES = 64 << 20


def write_key_motions(keys: KeyMotions, path: Path | str, *, template: np.ndarray | None = None, force: bool = False) -> Path:
    """An ``.npz`` with ``format_version``, ``indices``, ``left``/``right`` phones, ``fps``,
    ``n_frames``, ``rule`` and the key motions: ``codes`` (K, C), ``basis`` (C, V·3) and ``bias``
    (V·3,) float32 (offsets = codes @ basis + bias, exact) when the keys came from the key
    decoder and that is smaller, else ``offsets`` (K, V·3): float32, or float16 (under 0.01 mm
    off for offsets under 3 cm, in metres) beyond :data:`FLOAT16_ABOVE_BYTES`.

    ``template`` is accepted for compatibility and unused: absolute vertices are the template
    plus the offsets, and storing them doubled the file (760 MB for 10 minutes of speech).
    """
    from .atomic import atomic_output

    del template
    arrays = {
        "format_version": np.int64(KEYS_FORMAT_VERSION),
        "indices": keys.frames.indices.astype(np.int64),
        "left": np.array(keys.frames.left, dtype="<U3"),
        "right": np.array(keys.frames.right, dtype="<U3"),
        "fps": np.float64(keys.frames.fps),
        "n_frames": np.int64(keys.frames.n_frames),
        "rule": np.array(keys.frames.rule),
    }
    as_codes = keys.basis is not None and keys.codes.size + keys.basis.size + keys.dim < keys.codes.shape[0] * keys.dim // 2
    if as_codes:
        arrays["codes"] = np.asarray(keys.codes, dtype=np.float32)
        arrays["basis"] = np.asarray(keys.basis, dtype=np.float32)
        arrays["bias"] = np.asarray(keys.bias if keys.bias is not None else np.zeros(keys.dim), dtype=np.float32)
        for name in ("codes", "basis", "bias"):
            require_finite(arrays[name], f"The key motions for {path}")
    else:
        offsets = keys.offsets
        exact = offsets.size * 4 <= FLOAT16_ABOVE_BYTES
        arrays["offsets"] = offsets.astype(np.float32 if exact else np.float16)
        require_finite(arrays["offsets"], f"The key motions for {path}")
    with atomic_output(Path(path), force=force) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


def read_key_motions(path: Path | str) -> KeyMotions:
    """Read :func:`write_key_motions` output (this version or version 1), checking it is consistent."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"]) if "format_version" in data.files else 1
            if version > KEYS_FORMAT_VERSION:
                raise MotionError(f"{path} is a version {version} key-motion file; this kmtalk reads up to version {KEYS_FORMAT_VERSION}.")
            indices = np.asarray(data["indices"], dtype=np.int64)
            if "codes" in data.files:
                codes = np.asarray(data["codes"], dtype=np.float32)
                basis = np.asarray(data["basis"], dtype=np.float32)
                bias = np.asarray(data["bias"], dtype=np.float32)
            else:
                codes, basis, bias = np.asarray(data["offsets"], dtype=np.float32), None, None
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
    if codes.ndim != 2 or len(codes) != len(indices) or len(frames.left) != len(indices):
        raise MotionError(f"Key-motion file {path} is inconsistent: {len(indices)} key frames but offsets of shape {codes.shape}.")
    if basis is not None and (basis.ndim != 2 or basis.shape[0] != codes.shape[1] or bias.shape != (basis.shape[1],)):
        raise MotionError(f"Key-motion file {path} is inconsistent: codes of width {codes.shape[1]} but a basis of shape {basis.shape}.")
    for part in (codes, basis, bias):
        if part is not None:
            require_finite(part, f"Key-motion file {path}")
    if frames.n_frames < 1 or not np.isfinite(frames.fps) or frames.fps <= 0:
        raise MotionError(f"Key-motion file {path} has an invalid frame count or rate ({frames.n_frames} frames at {frames.fps} fps).")
    if len(indices) and (indices.min() < 0 or indices.max() >= frames.n_frames or np.any(np.diff(indices) <= 0)):
        raise MotionError(f"Key-motion file {path} has key frames outside 0..{frames.n_frames - 1} or out of order.")
    return KeyMotions(frames, codes, basis, bias)
