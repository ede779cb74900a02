"""Rigid head pose and eye gaze over time: what moves the head and eyes as whole bodies.

A mesh motion (``.npy``) holds the face's deformation in the head's own frame, as VOCASET and
BIWI do (their head pose is removed). Head rotation and gaze are rigid transforms, so they
travel beside it as a :class:`HeadPose` (``SPEECH.head.npz``): the renderer turns the whole
head and the eyeballs by it, the glb drives its head and eye nodes with it, and the Live Link
CSV writes its head-rotation and eye-look channels from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import MotionError

#: Suffix of the head-pose file written beside a motion (``take.npy`` → ``take.head.npz``).
HEAD_POSE_SUFFIX = ".head.npz"
#: Largest rotation a head pose may hold (radians); beyond this it is not a talking head.
MAX_ROTATION = np.pi / 2


@dataclass(frozen=True)
class HeadPose:
    """Per-frame head rotation and gaze at ``fps``.

    ``rotation`` (T, 3) radians: pitch (nod, positive looks down), yaw (positive turns to the
    face's left), roll (positive tilts towards the face's left shoulder), applied about the
    neck pivot. ``gaze`` (T, 2) radians: eye yaw and pitch relative to the head, same signs.
    """

    fps: float
    rotation: np.ndarray
    gaze: np.ndarray

    def __post_init__(self) -> None:
        rotation = np.asarray(self.rotation, dtype=np.float32)
        gaze = np.asarray(self.gaze, dtype=np.float32)
        if rotation.ndim != 2 or rotation.shape[1] != 3:
            raise MotionError(f"A head rotation track must be (T, 3); got {rotation.shape}.")
        if gaze.shape != (len(rotation), 2):
            raise MotionError(f"A gaze track must be (T, 2) with T = {len(rotation)}; got {gaze.shape}.")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionError(f"A head pose needs a positive frame rate; got {self.fps}.")
        if not (np.isfinite(rotation).all() and np.isfinite(gaze).all()):
            raise MotionError("A head pose holds NaN or infinite angles.")
        if np.abs(rotation).max(initial=0.0) > MAX_ROTATION or np.abs(gaze).max(initial=0.0) > MAX_ROTATION:
            raise MotionError("A head pose holds angles beyond 90°; angles are in radians.")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "gaze", gaze)

    @property
    def n_frames(self) -> int:
        return len(self.rotation)

    @classmethod
    def still(cls, n_frames: int, fps: float) -> HeadPose:
        """A head that looks straight ahead and does not move."""
        return cls(fps, np.zeros((n_frames, 3), np.float32), np.zeros((n_frames, 2), np.float32))


def head_pose_path(motion: Path) -> Path:
    """Where the head pose of ``motion`` lives: ``take.npy`` → ``take.head.npz``."""
    motion = Path(motion)
    return motion.with_name(motion.stem + HEAD_POSE_SUFFIX)


def write_head_pose(pose: HeadPose, path: Path, *, force: bool = False) -> Path:
    """Write ``pose`` atomically as an ``.npz`` (``fps``, ``rotation``, ``gaze``)."""
    path = Path(path)
    with atomic_output(path, force=force) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, fps=np.float32(pose.fps), rotation=pose.rotation, gaze=pose.gaze)
    return path


def read_head_pose(path: Path) -> HeadPose:
    """Read a head pose written by :func:`write_head_pose`; any damage is a :class:`MotionError`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return HeadPose(float(data["fps"]), data["rotation"], data["gaze"])
    except MotionError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise MotionError(f"{path} is not a readable head pose ({exc.__class__.__name__}).") from None
