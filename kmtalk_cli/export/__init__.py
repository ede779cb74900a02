"""A motion in the formats other tools read: ARKit weights, glTF, mesh sequences (and visemes).

:func:`export_motion` is what the ``export`` and ``animate`` commands share: it checks every
output before any work, fits the rig once for all formats that need weights, and picks
between the glTF's morph targets and a baked variant by how well the morph targets fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..atomic import check_output_path
from ..errors import MotionError, OutputError
from ..face.headpose import HeadPose
from ..face.template import FaceTemplate
from ..validate import check_motion_scale
from .fit import DEFAULT_SMOOTHING, RigFit, fit_rig, linear_basis, rig_for

#: Formats made from a vertex motion.
MOTION_FORMATS: tuple[str, ...] = ("arkit-csv", "arkit-json", "glb", "obj", "ply")
#: Every ``--format``; ``visemes`` is made from an alignment.
FORMATS: tuple[str, ...] = (*MOTION_FORMATS, "visemes")
#: Formats that write a folder of per-frame files rather than one file.
SEQUENCE_FORMATS: tuple[str, ...] = ("obj", "ply")
#: A glb is baked when its morph targets miss some face vertex by more than this (mm).
BAKE_THRESHOLD_MM = 1.5

Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    """``"glb,arkit-csv"`` (or a list) → known format names in order, without repeats."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [item.strip().lower() for item in items if item.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        what = f"Unknown export format {', '.join(repr(n) for n in unknown)}" if unknown else "No export format given"
        raise OutputError(f"{what}; choose from {', '.join(FORMATS)}.")
    return list(dict.fromkeys(names))


def default_output(stem: Path, fmt: str, viseme_set: str = "oculus") -> Path:
    """Where ``fmt`` goes for an output stem: ``take.csv``, ``take.arkit.json``, ``take.glb``,
    ``take_obj/``, ``take_ply/``, ``take.<set>.tsv``."""
    names = {
        "arkit-csv": f"{stem.name}.csv",
        "arkit-json": f"{stem.name}.arkit.json",
        "glb": f"{stem.name}.glb",
        "obj": f"{stem.name}_obj",
        "ply": f"{stem.name}_ply",
        "visemes": f"{stem.name}.{viseme_set}.tsv",
    }
    return stem.with_name(names[fmt])


def check_outputs(targets: Mapping[str, Path], *, force: bool = False) -> None:
    """Fail before any work if one of the outputs cannot be written."""
    for fmt, path in targets.items():
        if fmt in SEQUENCE_FORMATS:
            from .meshseq import check_output_directory  # here: animate with no --export imports no exporter

            check_output_directory(path, force=force)
        else:
            check_output_path(path, force=force)


#: ARKit weights are refused when the rig misses the motion by more than this RMS (mm): they
#: would animate something else than the motion.
MAX_FIT_RMS_MM = 25.0


def check_fit(fit: RigFit, formats: Sequence[str]) -> None:
    """Refuse weight formats when the rig cannot follow the motion (wrong units or another face)."""
    rms = float(np.mean(fit.residual_mm))
    if formats and not rms <= MAX_FIT_RMS_MM:
        raise MotionError(
            f"The rig cannot follow this motion (RMS error {rms:.3g} mm, more than {MAX_FIT_RMS_MM:g} mm), so "
            f"{', '.join(formats)} would be wrong; check the motion is in metres on this template."
        )


def _write_glb(
    path: Path,
    template: FaceTemplate,
    vertices: np.ndarray,
    fit: RigFit | None,
    rig_basis: np.ndarray | None,
    fps: float,
    audio_path: str | Path | None,
    force: bool,
    bake: bool | None,
    log: Log,
    head_pose: HeadPose | None = None,
) -> Path:
    """Morph targets with the fitted weights, or per-frame baked shapes (see :func:`write_motion`);
    on the bundled head the parts are nodes of their own, turned by ``head_pose`` when given."""
    from .gltf import write_baked_glb, write_glb

    audio = str(audio_path) if audio_path is not None else None
    if fit is None or rig_basis is None or bake is True:
        log(f"{path.name}: baked per-frame shapes (--bake).")
        return write_baked_glb(path, template, vertices, fps, audio_path=audio, force=force, head_pose=head_pose)
    miss = fit.morph_max_residual_mm
    if bake is None and miss > BAKE_THRESHOLD_MM:
        log(f"{path.name}: baked per-frame shapes; the rig's morph targets miss by up to {miss:.2f} mm (> {BAKE_THRESHOLD_MM} mm).")
        return write_baked_glb(path, template, vertices, fps, audio_path=audio, force=force, head_pose=head_pose)
    log(f"{path.name}: {len(fit.names)} ARKit-named morph targets, largest vertex error {miss:.2f} mm.")
    return write_glb(
        path, template, morph_names=fit.names, morph_deltas=rig_basis, weights=fit.morph_weights,
        fps=fps, audio_path=audio, force=force, head_pose=head_pose,
    )


def write_motion(
    vertices: np.ndarray,
    template: FaceTemplate,
    targets: Mapping[str, Path],
    fps: float,
    audio_path: str | Path | None = None,
    force: bool = False,
    *,
    bake: bool | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    frame_stem: str | None = None,
    log: Log | None = None,
    progress: Progress | None = None,
    head_pose: HeadPose | None = None,
) -> list[Path]:
    """Write a motion (T, V, 3) in each format of ``targets`` (format → path); return the paths.

    ``head_pose`` (head rotation and gaze beside the motion) fills the Live Link CSV's head,
    eye-rotation and eye-look channels.

    ``bake``: for ``glb``, True bakes per-frame shapes, False always uses the rig's morph
    targets, None bakes when they miss the motion by more than :data:`BAKE_THRESHOLD_MM`.
    ``frame_stem`` names the files of OBJ/PLY sequences (default: the folder's name).
    """
    from ..motion import as_vertex_sequence

    log = log or (lambda message: None)
    unknown = [fmt for fmt in targets if fmt not in MOTION_FORMATS]
    if unknown:
        raise OutputError(f"{', '.join(unknown)} cannot be made from a motion; motion formats are {', '.join(MOTION_FORMATS)}.")
    v = as_vertex_sequence(vertices, template.n_vertices, name="The motion")
    check_motion_scale(v, template.vertices, "The motion")
    check_outputs(targets, force=force)

    fit = rig_basis = None
    needs_fit = any(fmt.startswith("arkit") for fmt in targets) or ("glb" in targets and bake is not True)
    if needs_fit:
        rig = rig_for(template)
        fit = fit_rig(v, template, fps, rig=rig, smoothing=smoothing)
        rig_basis = linear_basis(rig)
        log(fit.summary())
        check_fit(fit, [fmt for fmt in targets if fmt.startswith("arkit")])

    written: list[Path] = []
    for fmt, path in targets.items():
        path = Path(path)
        if fmt == "arkit-csv":
            from .arkit import write_live_link_csv

            written.append(write_live_link_csv(fit, path, force=force, head_pose=head_pose))
        elif fmt == "arkit-json":
            from .arkit import write_arkit_json

            written.append(write_arkit_json(fit, path, force=force))
        elif fmt == "glb":
            written.append(_write_glb(path, template, v, fit, rig_basis, fps, audio_path, force, bake, log, head_pose))
        else:
            from .meshseq import write_obj_sequence, write_ply_sequence

            writer = write_obj_sequence if fmt == "obj" else write_ply_sequence
            writer(v, template.faces, path, frame_stem or path.name, force=force, progress=progress)
            written.append(path)
    return written


def export_motion(
    vertices: np.ndarray,
    template: FaceTemplate,
    formats: str | Sequence[str],
    out_stem: Path,
    fps: float,
    audio_path: str | Path | None = None,
    force: bool = False,
    *,
    bake: bool | None = None,
    smoothing: float = DEFAULT_SMOOTHING,
    log: Log | None = None,
    progress: Progress | None = None,
    head_pose: HeadPose | None = None,
) -> list[Path]:
    """Write a motion in ``formats`` next to ``out_stem`` (see :func:`default_output` for names)."""
    out_stem = Path(out_stem)
    targets = {fmt: default_output(out_stem, fmt) for fmt in parse_formats(formats)}
    return write_motion(
        vertices, template, targets, fps, audio_path, force,
        bake=bake, smoothing=smoothing, frame_stem=out_stem.name, log=log, progress=progress, head_pose=head_pose,
    )
