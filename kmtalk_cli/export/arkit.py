"""Fitted rig weights as ARKit blendshapes: Live Link Face CSV and a compact JSON.

Live Link Face (Epic's iPhone capture app) is how most ARKit animation travels between tools:
Unreal's importer, Blender and Maya add-ons and MetaHuman retargeting scripts all read its CSV.
Each row is ``Timecode, BlendShapeCount`` and then the 52 ARKit blendshapes in the app's order
(PascalCase), followed by head and eye rotations; we write the same 61 columns. The rig's 20
controls already carry ARKit names and fill their columns. With a
:class:`~kmtalk_cli.face.headpose.HeadPose` (the liveliness layer's, ``SPEECH.head.npz``) the
eye-look shapes and the head and eye rotations (radians) come from it too; without one, those
are 0, as are the remaining shapes. Weights use ARKit's convention (``mouthClose ≤ jawOpen``,
see :func:`~kmtalk_cli.export.fit.arkit_weights`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import MotionError
from ..face.headpose import HeadPose
from .fit import RigFit

#: The 52 ARKit blendshapes in Live Link Face's column order (ARKit's camelCase spelling).
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
#: Head and eye rotations that follow the blendshapes in a Live Link Face recording.
LIVE_LINK_ROTATIONS: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)
#: Rig control → ARKit blendshape. The rig was named after ARKit, so this is the identity on
#: its 20 controls; it is spelled out so a renamed control fails loudly, not silently.
RIG_TO_ARKIT: dict[str, str] = {
    name: name
    for name in (
        "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
        "mouthSmileLeft", "mouthSmileRight", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
        "mouthUpperUpLeft", "mouthUpperUpRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
        "browDownLeft", "browDownRight", "eyeBlinkLeft", "eyeBlinkRight",
    )
}
#: Eye rotation (radians) at which an eyeLook shape reaches 1: sideways, and up or down.
EYE_LOOK_RANGE = (math.radians(30.0), math.radians(25.0))
JSON_FORMAT = "kmtalk-arkit"
JSON_VERSION = 1

_COLUMN = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}


def live_link_header() -> list[str]:
    """The CSV header row: Timecode, BlendShapeCount, 52 PascalCase shapes, 9 rotations."""
    return ["Timecode", "BlendShapeCount", *(n[0].upper() + n[1:] for n in ARKIT_BLENDSHAPES), *LIVE_LINK_ROTATIONS]


def timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF.fff`` for a frame, as Live Link Face writes it.

    ``FF`` counts frames of the nominal rate (fps rounded, 30 for 29.97) within the second and
    ``.fff`` is the sub-frame remainder, so whole-number rates always end in ``.000``.
    """
    nominal = max(1, round(fps))
    position = frame * nominal / fps  # in nominal frames
    whole = math.floor(position + 1e-9)
    sub = min(int(round((position - whole) * 1000)), 999) if position - whole > 1e-9 else 0
    seconds, ff = divmod(whole, nominal)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{ff:02d}.{sub:03d}"


def arkit_table(weights: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(T, 52) ARKit weights in Live Link order from per-control weights (T, P) and their names."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != len(names):
        raise MotionError(f"Weights have shape {w.shape}; expected (T, {len(names)}) for the names given.")
    table = np.zeros((w.shape[0], len(ARKIT_BLENDSHAPES)), dtype=np.float32)
    for k, name in enumerate(names):
        if name not in RIG_TO_ARKIT:
            raise MotionError(f"Control {name!r} has no ARKit blendshape; known controls: {', '.join(RIG_TO_ARKIT)}.")
        table[:, _COLUMN[RIG_TO_ARKIT[name]]] = np.clip(w[:, k], 0.0, 1.0)
    return table


def eye_look_weights(gaze: np.ndarray) -> dict[str, np.ndarray]:
    """ARKit eyeLook weights (T,) from gaze yaw/pitch (T, 2) in radians (HeadPose's signs).

    Yaw towards the face's left is "out" for the left eye and "in" for the right one; pitch
    down is "down" for both. A weight reaches 1 at :data:`EYE_LOOK_RANGE`.
    """
    g = np.asarray(gaze, dtype=np.float64)
    yaw = g[:, 0] / EYE_LOOK_RANGE[0]
    pitch = g[:, 1] / EYE_LOOK_RANGE[1]
    left, right, down, up = (np.clip(x, 0.0, 1.0) for x in (yaw, -yaw, pitch, -pitch))
    return {
        "eyeLookOutLeft": left, "eyeLookInRight": left, "eyeLookInLeft": right, "eyeLookOutRight": right,
        "eyeLookDownLeft": down, "eyeLookDownRight": down, "eyeLookUpLeft": up, "eyeLookUpRight": up,
    }


def head_columns(table: np.ndarray, pose: HeadPose | None) -> tuple[np.ndarray, np.ndarray]:
    """The blendshape table with the eye-look columns from ``pose``, and the (T, 9) rotation columns."""
    rotations = np.zeros((len(table), len(LIVE_LINK_ROTATIONS)), dtype=np.float64)
    if pose is None:
        return table, rotations
    if pose.n_frames != len(table):
        raise MotionError(f"The head pose has {pose.n_frames} frames; the motion has {len(table)}.")
    table = table.copy()
    for name, weights in eye_look_weights(pose.gaze).items():
        table[:, _COLUMN[name]] = weights
    pitch, yaw, roll = (pose.rotation[:, k].astype(np.float64) for k in range(3))
    eye_yaw, eye_pitch = pose.gaze[:, 0].astype(np.float64), pose.gaze[:, 1].astype(np.float64)
    rotations[:, 0], rotations[:, 1], rotations[:, 2] = yaw, pitch, roll
    rotations[:, 3], rotations[:, 4] = eye_yaw, eye_pitch
    rotations[:, 6], rotations[:, 7] = eye_yaw, eye_pitch
    return table, rotations


def write_live_link_csv(fit: RigFit, path: str | Path, *, force: bool = False, head_pose: HeadPose | None = None) -> Path:
    """Write the fit as a Live Link Face CSV (one row per frame at ``fit.fps``), with the head and
    eye channels from ``head_pose`` when given."""
    table, rotations = head_columns(arkit_table(fit.arkit_weights, fit.names), head_pose)
    count = len(ARKIT_BLENDSHAPES) + len(LIVE_LINK_ROTATIONS)
    lines = [",".join(live_link_header())]
    for i, row in enumerate(table):
        values = ",".join(f"{x:.6f}" for x in row.tolist())
        turns = "".join(f",{x:.6f}" if x else ",0" for x in rotations[i].tolist())
        lines.append(f"{timecode(i, fit.fps)},{count},{values}{turns}")
    with atomic_output(Path(path), force=force) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def arkit_document(fit: RigFit) -> dict:
    """The JSON form: fps, the controls' ARKit names, per-frame weights and fit residuals.

    Only the rig's controls are listed; every other ARKit blendshape is 0 throughout.
    """
    weights = np.round(fit.arkit_weights.astype(np.float64), 5)
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "fps": fit.fps,
        "frames": fit.n_frames,
        "convention": "ARKit blendshape weights 0..1; mouthClose is at most jawOpen; unlisted ARKit shapes are 0",
        "names": [RIG_TO_ARKIT[n] for n in fit.names],
        "weights": weights.tolist(),
        "residual_mm": np.round(fit.residual_mm.astype(np.float64), 4).tolist(),
        "max_residual_mm": round(fit.max_residual_mm, 4),
    }


def write_arkit_json(fit: RigFit, path: str | Path, *, force: bool = False) -> Path:
    """Write :func:`arkit_document` atomically."""
    text = json.dumps(arkit_document(fit), separators=(",", ":"))
    with atomic_output(Path(path), force=force) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)
