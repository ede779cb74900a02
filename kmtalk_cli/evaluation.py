"""Evaluate predicted motion against a corpus split: per-sequence and pooled LVE, FDD and MVE.

Predictions come from a callable (sequence → absolute (T, V, 3) vertices), so a checkpoint
(:class:`ModelPredictions`) and a directory of saved files (:class:`SavedPredictions`, the layouts
FaceFormer, CodeTalker and SelfTalk write) are scored by the same code. The report names the
regions it used and the units of every number, because papers disagree on both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .atomic import atomic_output
from .data.dataset import Dataset, Sequence, SequenceRef
from .errors import DatasetError, KmtalkError, MotionError
from .motion import as_vertex_sequence, load_motion

__all__ = [
    "Convention",
    "EvaluationReport",
    "ModelPredictions",
    "PooledResult",
    "RegionUse",
    "Regions",
    "SavedPredictions",
    "SequenceFailure",
    "SequenceResult",
    "convention_for",
    "evaluate",
    "format_markdown",
    "predictions_from_dir",
    "resolve_regions",
    "write_json",
    "write_markdown",
]

REPORT_FORMAT = "kmtalk-evaluation"
REPORT_VERSION = 1
BIWI_VERTICES = 23_370
#: CodeTalker's file name for a prediction made with a given subject's style.
CONDITION_MARK = "_condition_"

DEFINITIONS = {
    "lve_paper": "per frame, max over lip vertices of the squared L2 error (no square root), mean over all frames pooled (CodeTalker cal_metric)",
    "lve_mm": "per frame, max over lip vertices of the true L2 error, mean over all frames pooled",
    "fdd": "dyn(GT) - dyn(pred), signed, mean over sequences; dyn = mean over upper-face vertices of the std over time of the squared displacement from the subject template",
    "mve_mm": "per frame, mean L2 error over all vertices, mean over all frames pooled",
}


def _power(scale: float) -> str:
    """1e-05 → "1e-5": the way papers write their scale factors."""
    return f"1e{round(np.log10(scale))}"


@dataclass(frozen=True)
class Convention:
    """How the papers print numbers for this kind of data, and what a length unit is."""

    name: str
    length_unit: str  # "m", or BIWI's normalised unit
    lve_scale: float  # papers print LVE paper divided by this
    fdd_scale: float  # and FDD divided by this
    note: str = ""

    @property
    def lve_label(self) -> str:
        return f"×{_power(self.lve_scale)} {self.squared}"

    @property
    def fdd_label(self) -> str:
        return f"×{_power(self.fdd_scale)} {self.squared}"

    @property
    def squared(self) -> str:
        return "m²" if self.length_unit == "m" else "u²"

    @property
    def milli(self) -> str:
        """The unit of the "mm" columns: millimetres, or thousandths of a BIWI unit."""
        return "mm" if self.length_unit == "m" else "×1e-3 u"


VOCASET_LIKE = Convention("VOCASET-like", "m", 1e-5, 1e-7)
BIWI = Convention(
    "BIWI",
    "BIWI unit",
    1e-4,
    1e-5,
    note="u is BIWI's normalised length unit (each mesh scaled by the square root of its surface area, about 0.19 m), so the millimetre columns are thousandths of u.",
)


def convention_for(dataset: Dataset) -> Convention:
    """BIWI (23,370-vertex meshes in normalised units) or VOCASET-like (metres)."""
    if any(t.shape[0] == BIWI_VERTICES for t in dataset.templates.values()):
        return BIWI
    return VOCASET_LIKE


@dataclass(frozen=True)
class Regions:
    """The vertex sets the metrics use, and where they came from."""

    lips: np.ndarray
    upper_face: np.ndarray
    source: str


def _vertex_count(dataset: Dataset) -> int:
    return next(iter(dataset.templates.values())).shape[0]


def resolve_regions(dataset: Dataset, *, required: tuple[str, ...] = ("lips", "upper_face")) -> Regions:
    """``lips``/``upper_face`` from the dataset's ``regions/``, else from the bundled head when the
    mesh is the bundled head's; CodeTalker's ``lve.txt``/``fdd.txt`` count as those two.

    Evaluation needs both; training needs only the lips (``required=("lips",)``), and a region
    that is not required and not found comes back empty.
    """
    wanted = ("lips", "upper_face")
    found = {name: dataset.regions[name] for name in wanted if name in dataset.regions}
    source = f"{dataset.root / 'regions'}"
    if len(found) < len(wanted):
        from .face.template import bundled_template

        head = bundled_template()
        if head.n_vertices == _vertex_count(dataset) and all(name in head.regions for name in wanted):
            own = [name for name in wanted if name in found]
            found = {name: found.get(name, head.regions[name]) for name in wanted}
            source = f"bundled head {head.name}" + (f"; {own[0]} from {dataset.root / 'regions'}" if own else "")
    missing = [name for name in required if name not in found]
    if missing:
        raise DatasetError(
            f"Dataset {dataset.root} has no {' or '.join(missing)} region; add regions/lips.txt and "
            "regions/upper_face.txt (vertex indices, as CodeTalker's lve.txt and fdd.txt)."
        )
    empty = np.zeros(0, dtype=np.int64)
    return Regions(np.asarray(found.get("lips", empty)), np.asarray(found.get("upper_face", empty)), source)


@dataclass(frozen=True)
class RegionUse:
    metric: str
    name: str
    vertices: int
    source: str


@dataclass(frozen=True)
class SequenceResult:
    """One sequence's metrics, each the mean over its frames (FDD: its signed value)."""

    name: str
    subject: str
    frames: int
    lve_paper: float
    lve_mm: float
    fdd: float
    mve_mm: float


@dataclass(frozen=True)
class PooledResult:
    """LVE and MVE pooled over all frames of all sequences; FDD the mean over sequences."""

    sequences: int
    frames: int
    lve_paper: float
    lve_mm: float
    fdd: float
    mve_mm: float


@dataclass(frozen=True)
class SequenceFailure:
    name: str
    message: str


@dataclass(frozen=True)
class EvaluationReport:
    dataset: str
    split: str
    model: str
    fps: float
    convention: Convention
    regions: tuple[RegionUse, ...]
    sequences: tuple[SequenceResult, ...]
    pooled: PooledResult
    failures: tuple[SequenceFailure, ...] = ()

    @property
    def units(self) -> dict[str, str]:
        c = self.convention
        return {"lve_paper": c.squared, "lve_mm": c.milli, "fdd": c.squared, "mve_mm": c.milli}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; metric values are unscaled (the paper scales are listed separately)."""
        return {
            "format": REPORT_FORMAT,
            "version": REPORT_VERSION,
            "dataset": self.dataset,
            "split": self.split,
            "model": self.model,
            "fps": self.fps,
            "convention": asdict(self.convention),
            "regions": [asdict(r) for r in self.regions],
            "units": self.units,
            "definitions": DEFINITIONS,
            "pooled": asdict(self.pooled),
            "sequences": [asdict(s) for s in self.sequences],
            "failures": [asdict(f) for f in self.failures],
        }


def _check_region(indices: np.ndarray, n_vertices: int, name: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n_vertices:
        raise DatasetError(f"The {name} region must be non-empty vertex indices within 0..{n_vertices - 1}.")
    return idx


def evaluate(
    dataset: Dataset,
    split: str,
    predict: Callable[[Sequence], np.ndarray],
    *,
    lip_idx: np.ndarray,
    upper_idx: np.ndarray,
    regions_source: str = "given",
    model: str = "",
    with_audio: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationReport:
    """Score ``predict`` (absolute (T, V, 3) vertices per sequence) on one split.

    A sequence whose prediction fails with a :class:`KmtalkError` is recorded in
    ``failures`` and left out of the pooled values; if every sequence fails, the first error
    is raised. ``with_audio=False`` skips reading speech (saved predictions do not need it).
    """
    refs = dataset.split(split)
    if not refs:
        raise DatasetError(f"Split '{split}' of dataset {dataset.root} has no sequences.")
    n_vertices = _vertex_count(dataset)
    lips = _check_region(lip_idx, n_vertices, "lips")
    upper = _check_region(upper_idx, n_vertices, "upper_face")
    rows: list[SequenceResult] = []
    failures: list[SequenceFailure] = []
    lve_p, lve_m, mve = [], [], []
    for done, ref in enumerate(refs):
        if progress:
            progress(done, len(refs))
        try:
            seq = dataset.load(ref, with_audio=with_audio)
            pred = as_vertex_sequence(predict(seq), n_vertices, name=f"The prediction for {ref.name}")
            frame_lve = metrics.lve_paper(pred, seq.vertices, lips)
            frame_mm = metrics.lve_mm(pred, seq.vertices, lips)
            frame_mve = metrics.mve_mm(pred, seq.vertices)
            seq_fdd = metrics.fdd(pred, seq.vertices, seq.template, upper)
        except KmtalkError as exc:
            failures.append(SequenceFailure(ref.name, str(exc)))
            continue
        lve_p.append(frame_lve)
        lve_m.append(frame_mm)
        mve.append(frame_mve)
        rows.append(
            SequenceResult(ref.name, ref.subject, len(frame_lve), float(frame_lve.mean()), float(frame_mm.mean()), seq_fdd, float(frame_mve.mean()))
        )
    if progress:
        progress(len(refs), len(refs))
    if not rows:
        raise MotionError(f"Every sequence of split '{split}' failed; the first: {failures[0].name}: {failures[0].message}")
    pooled = PooledResult(
        sequences=len(rows),
        frames=sum(r.frames for r in rows),
        lve_paper=float(np.concatenate(lve_p).mean()),
        lve_mm=float(np.concatenate(lve_m).mean()),
        fdd=float(np.mean([r.fdd for r in rows])),
        mve_mm=float(np.concatenate(mve).mean()),
    )
    regions = (
        RegionUse("lve", "lips", int(lips.size), regions_source),
        RegionUse("fdd", "upper_face", int(upper.size), regions_source),
        RegionUse("mve", "all", n_vertices, "every vertex"),
    )
    return EvaluationReport(
        str(dataset.root), split, model, dataset.fps, convention_for(dataset), regions, tuple(rows), pooled, tuple(failures)
    )


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def format_markdown(report: EvaluationReport) -> str:
    """The report as Markdown: what was evaluated, the regions and units, the table, definitions."""
    c = report.convention
    p = report.pooled
    total = len(report.sequences) + len(report.failures)
    lips, upper = report.regions[0], report.regions[1]
    lines = [
        f"# Evaluation on {Path(report.dataset).name} / {report.split}",
        "",
        f"- Model: {report.model or 'unnamed'}",
        f"- Data: `{report.dataset}`, split `{report.split}`: {p.sequences} of {total} sequences, {p.frames} frames at {report.fps:g} fps",
        f"- Regions ({lips.source}): LVE over `{lips.name}` ({lips.vertices} vertices), FDD over `{upper.name}` ({upper.vertices} vertices), MVE over all {report.regions[2].vertices} vertices",
        f"- Units ({c.name} convention): LVE paper in {c.lve_label} and FDD in {c.fdd_label}, as the papers print them; LVE and MVE in {c.milli} (true L2)",
    ]
    if c.note:
        lines.append(f"- {c.note}")
    header = ["sequence", "subject", "frames", f"LVE paper ({c.lve_label})", f"LVE ({c.milli})", f"FDD ({c.fdd_label})", f"MVE ({c.milli})"]

    def cells(r: SequenceResult | PooledResult) -> list[str]:
        return [f"{r.lve_paper / c.lve_scale:.4f}", f"{r.lve_mm:.3f}", f"{r.fdd / c.fdd_scale:+.4f}", f"{r.mve_mm:.3f}"]

    lines += ["", _row(header), _row(["---", "---", "---:", "---:", "---:", "---:", "---:"])]
    lines += [_row([r.name, r.subject, str(r.frames), *cells(r)]) for r in report.sequences]
    lines.append(_row(["**pooled**", "", str(p.frames), *(f"**{v}**" for v in cells(p))]))
    lines += [
        "",
        f"- LVE paper: {DEFINITIONS['lve_paper']}; papers call it mm, but it is a squared length.",
        f"- LVE: {DEFINITIONS['lve_mm']}.",
        f"- FDD: {DEFINITIONS['fdd']}; positive when the prediction moves less than the ground truth.",
        f"- MVE: {DEFINITIONS['mve_mm']}.",
    ]
    if report.failures:
        lines += ["", f"## Failed sequences ({len(report.failures)} of {total}, left out of the pooled values)", ""]
        lines += [f"- `{f.name}`: {f.message}" for f in report.failures]
    return "\n".join(lines) + "\n"


def write_json(report: EvaluationReport, path: Path, *, force: bool = False) -> Path:
    """Write the report as strict JSON: a NaN or infinite metric is refused, never written as ``NaN``."""
    try:
        text = json.dumps(report.to_dict(), indent=1, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise MotionError("The evaluation produced a NaN or infinite metric; check the predictions and ground truth for non-finite values.") from None
    with atomic_output(Path(path), force=force) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def write_markdown(report: EvaluationReport, path: Path, *, force: bool = False) -> Path:
    with atomic_output(Path(path), force=force) as tmp:
        tmp.write_text(format_markdown(report), encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------------------------
# Prediction sources
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedPredictions:
    """Prediction files for a split: ``<name>.npy`` or CodeTalker's ``<name>_condition_<subj>.npy``,
    each (T, V·3) or (T, V, 3) absolute positions at the dataset's frame rate."""

    directory: Path
    files: Mapping[str, Path]

    @property
    def description(self) -> str:
        return f"predictions in {self.directory}"

    def __call__(self, seq: Sequence) -> np.ndarray:
        return load_motion(self.files[seq.name], seq.template.shape[0])


def _pick(name: str, subject: str, plain: Mapping[str, Path], conditions: Mapping[str, Path], style: str | None) -> Path | None:
    """The file for one sequence: the plain name, else the chosen, own or only condition."""
    if name in plain:
        return plain[name]
    if style is not None:
        return conditions.get(style)
    if subject in conditions:
        return conditions[subject]
    if len(conditions) == 1:
        return next(iter(conditions.values()))
    if conditions:
        raise MotionError(
            f"Sequence {name} has predictions for several conditions ({', '.join(sorted(conditions))}) "
            "and none for its own subject; choose one with --style."
        )
    return None


def predictions_from_dir(pred_dir: Path | str, sequences: Iterable[SequenceRef], *, style: str | None = None) -> SavedPredictions:
    """Index ``pred_dir`` for ``sequences``; a missing prediction is an error before any work.

    ``style`` picks CodeTalker's ``_condition_<style>`` files; without it the sequence's own
    subject is used (BIWI Test-A), or the only condition present.
    """
    directory = Path(pred_dir)
    if not directory.is_dir():
        raise MotionError(f"Prediction directory {directory} does not exist.")
    plain: dict[str, Path] = {}
    conditioned: dict[str, dict[str, Path]] = {}
    for path in sorted(directory.glob("*.npy")):
        name, mark, condition = path.stem.rpartition(CONDITION_MARK)
        if mark:
            conditioned.setdefault(name, {})[condition] = path
        else:
            plain[path.stem] = path
    refs = list(sequences)
    files: dict[str, Path] = {}
    missing: list[str] = []
    for ref in refs:
        found = _pick(ref.name, ref.subject, plain, conditioned.get(ref.name, {}), style)
        if found is None:
            missing.append(ref.name)
        else:
            files[ref.name] = found
    if missing:
        wanted = f"_condition_{style}.npy" if style else ".npy (or <name>_condition_<subject>.npy)"
        raise MotionError(
            f"{directory} lacks predictions for {len(missing)} of {len(refs)} sequences "
            f"(first: {', '.join(missing[:3])}); expected <name>{wanted}."
        )
    return SavedPredictions(directory, files)


@dataclass(frozen=True)
class ModelPredictions:
    """A loaded checkpoint animating each sequence's speech; offsets are added to its template.

    ``style``: one training subject for every sequence; otherwise ``style_mode`` ``own`` uses
    the sequence's subject when the model was trained on it (else the average style), and
    ``average`` always the average style. Key-motion models get phones from the aligner
    (``alignments="aligner"``) or the corpus' TextGrids (``"true"``).
    """

    model: Any  # kmtalk_cli.models.LoadedModel
    dataset: Dataset
    style: str | None = None
    style_mode: str = "own"
    alignments: str = "aligner"

    def __post_init__(self) -> None:
        if self.style_mode not in ("own", "average"):
            raise ValueError(f"style_mode must be 'own' or 'average', not {self.style_mode!r}")
        if self.alignments not in ("aligner", "true"):
            raise ValueError(f"alignments must be 'aligner' or 'true', not {self.alignments!r}")
        self.model.check_template(_vertex_count(self.dataset))
        self.model.style_index(self.style)  # an unknown style fails before any work

    @property
    def description(self) -> str:
        m = self.model
        where = f" {m.path}" if m.path is not None else ""
        if self.style is not None:
            style = f"style {self.style}"
        elif self.style_mode == "own" and m.styles:
            style = "own subject's style when trained on it, else the average style"
        else:
            style = "average style"
        kind = "key-motion " if m.uses_key_motions else ""
        phones = f", phones from {'the corpus TextGrids' if self.alignments == 'true' else 'the aligner'}" if m.uses_key_motions else ""
        return f"{kind}{m.backbone} checkpoint{where} ({style}{phones})"

    def style_for(self, subject: str) -> str | None:
        if self.style is not None:
            return self.style
        return subject if self.style_mode == "own" and subject in self.model.styles else None

    def _alignment(self, seq: Sequence) -> Any:
        ref = self.dataset.ref(seq.name)
        if self.alignments == "true":
            return self.dataset.alignment(ref)  # says so when the corpus has no TextGrid
        return self.dataset.phones(ref, seq.audio, "aligner")

    def __call__(self, seq: Sequence) -> np.ndarray:
        if seq.audio is None:
            raise DatasetError(f"Sequence {seq.name} has no speech to drive the model.")
        alignment = self._alignment(seq) if self.model.uses_key_motions else None
        offsets = self.model.predict_offsets(
            seq.audio, style=self.style_for(seq.subject), alignment=alignment, n_frames=len(seq.vertices)
        )
        return as_vertex_sequence(offsets, seq.template.shape[0], name=f"The model's output for {seq.name}") + seq.template
