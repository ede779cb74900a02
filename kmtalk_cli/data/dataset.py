"""Reader for the talking-face on-disk contract shared by FaceFormer, CodeTalker and SelfTalk.

``templates.pkl`` (subject → (V, 3) rest shape), ``vertices_npy/<subject>_<sentence>.npy``
((T, V·3) absolute positions) and ``wav/<same>.wav``; the subject is the file name up to its
last underscore. VOCASET, BIWI and ``kmtalk synth`` corpora all read the same way, so every
tool runs on them unchanged. Sequences load lazily: a corpus is gigabytes, a test uses a few.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, KmtalkError
from ..face.template import read_regions_dir, read_templates_pkl

#: Native frame rates of the known corpora; VOCASET is captured at 60 and used at 30.
NATIVE_FPS = {"vocaset": 60.0, "biwi": 25.0, "synth": 30.0}


def subject_of(name: str) -> str:
    """``FaceTalk_170725_00137_TA_sentence01`` → ``FaceTalk_170725_00137_TA`` (up to the last underscore)."""
    return name.rsplit("_", 1)[0] if "_" in name else name


@dataclass(frozen=True)
class SequenceRef:
    """Where one sequence's files are; nothing is loaded until asked."""

    name: str
    subject: str
    vertices_path: Path
    wav_path: Path | None
    textgrid_path: Path | None
    rig_path: Path | None


@dataclass(frozen=True, eq=False)
class Sequence:
    """One loaded sequence: (T, V, 3) float32 metres at ``fps``, plus 16 kHz speech if present."""

    name: str
    subject: str
    vertices: np.ndarray
    fps: float
    audio: object | None  # kmtalk_cli.audio.Audio
    template: np.ndarray  # (V, 3) the subject's rest shape


@dataclass(frozen=True, eq=False)
class Dataset:
    """A corpus directory: subjects' rest shapes, sequence index, regions and splits."""

    root: Path
    templates: dict[str, np.ndarray]
    sequences: tuple[SequenceRef, ...]
    fps: float  # after any downsampling
    stride: int  # keep every ``stride``-th captured frame
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    splits: dict[str, list[str]] = field(default_factory=dict)

    def train_subjects(self) -> list[str]:
        """The subjects whose styles a model learns: the split's ``subjects.train`` or the train split's subjects."""
        named = self.splits.get("subjects", {}).get("train") if isinstance(self.splits.get("subjects"), dict) else None
        if named:
            return list(named)
        return sorted({s.subject for s in self.split("train")})

    @property
    def subjects(self) -> tuple[str, ...]:
        """Subjects that have both a template and at least one sequence."""
        return tuple(sorted({s.subject for s in self.sequences}))

    def split(self, name: str) -> tuple[SequenceRef, ...]:
        """The sequences of ``train``/``val``/``test`` from ``splits.json`` (or VOCASET's/BIWI's standard split)."""
        if name not in self.splits:
            have = ", ".join(sorted(k for k in self.splits if isinstance(self.splits[k], list))) or "none"
            raise DatasetError(f"Dataset {self.root} has no split '{name}'; available: {have}.")
        wanted = set(self.splits[name])
        return tuple(s for s in self.sequences if s.name in wanted)

    def ref(self, name: str) -> SequenceRef:
        """The sequence called ``name``."""
        for s in self.sequences:
            if s.name == name:
                return s
        raise DatasetError(f"Dataset {self.root} has no sequence '{name}'.")

    def load(self, ref: SequenceRef | str, *, with_audio: bool = True) -> Sequence:
        """Read one sequence's vertices (downsampled to ``fps``) and, if asked, its speech."""
        if isinstance(ref, str):
            ref = self.ref(ref)
        template = self.templates[ref.subject]
        try:
            raw = np.load(ref.vertices_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"Sequence file {ref.vertices_path} is not a readable .npy array ({exc}).") from None
        raw = np.asarray(raw)
        if raw.ndim == 2 and raw.shape[1] == template.size:
            raw = raw.reshape(len(raw), -1, 3)
        if raw.ndim != 3 or raw.shape[1:] != template.shape:
            raise DatasetError(
                f"Sequence {ref.vertices_path.name} has shape {raw.shape}, which does not match subject "
                f"{ref.subject}'s template of {template.shape[0]} vertices."
            )
        vertices = raw[:: self.stride].astype(np.float32)
        audio = None
        if with_audio and ref.wav_path is not None:
            from ..audio import load_audio

            audio = load_audio(ref.wav_path)
        return Sequence(ref.name, ref.subject, vertices, self.fps, audio, template)

    def alignment(self, ref: SequenceRef):  # noqa: ANN201 - Alignment, imported lazily
        """The ground-truth alignment of a sequence, when the corpus has one (synth corpora do)."""
        if ref.textgrid_path is None:
            raise DatasetError(f"Sequence {ref.name} has no TextGrid in {self.root / 'alignments'}.")
        from ..alignment.textgrid import read_textgrid

        return read_textgrid(ref.textgrid_path)

    def phones(self, ref: SequenceRef, audio: Any, source: str = "true"):  # noqa: ANN201 - Alignment or None
        """The phones a key-motion model gets for a sequence: the corpus' TextGrid (``true``; None
        when there is none) or the built-in aligner on its speech and transcript (``aligner``),
        which is what the model is given at inference, timing errors and fallbacks included."""
        if source == "true":
            return self.alignment(ref) if ref.textgrid_path is not None else None
        if source != "aligner":
            raise ValueError(f"source must be 'true' or 'aligner', not {source!r}")
        import warnings

        from ..alignment import align, find_transcript

        with warnings.catch_warnings(record=True) as caught:  # said again with the sequence's name
            warnings.simplefilter("always")
            alignment = align(audio, find_transcript(ref.wav_path) if ref.wav_path is not None else None)
        for w in caught:
            warnings.warn(w.category(f"{ref.name}: {w.message}"), stacklevel=2)
        return alignment


def open_dataset(
    root: Path | str,
    *,
    fps: float | None = None,
    native_fps: float | None = None,
    require_audio: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Dataset:
    """Index a corpus directory; check every sequence has a template (and a wav if required).

    ``native_fps`` is the capture rate (guessed: 60 for VOCASET-like names, 25 for BIWI, else
    the synth corpus's ``metadata.json`` or 30); ``fps`` the rate wanted. Only whole-number
    strides are offered (60 → 30 for VOCASET), as the reference implementations do.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Dataset directory {root} does not exist.")
    pkl = root / "templates.pkl"
    vdir = root / "vertices_npy"
    if not pkl.is_file():
        raise DatasetError(f"Dataset {root} has no templates.pkl (subject → rest shape).")
    if not vdir.is_dir():
        raise DatasetError(f"Dataset {root} has no vertices_npy/ directory.")
    try:
        templates = {k: np.asarray(v, dtype=np.float32) for k, v in read_templates_pkl(pkl).items()}
    except KmtalkError as exc:
        raise DatasetError(str(exc)) from None
    metadata: dict = {}
    if (root / "metadata.json").is_file():
        try:
            metadata = json.loads((root / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            metadata = {}
    files = sorted(vdir.glob("*.npy"))
    if not files:
        raise DatasetError(f"Dataset {root} has no sequences in vertices_npy/.")
    refs: list[SequenceRef] = []
    missing_subjects: set[str] = set()
    for i, path in enumerate(files):
        name = path.stem
        subject = subject_of(name)
        if subject not in templates:
            missing_subjects.add(subject)
            continue
        wav = root / "wav" / f"{name}.wav"
        if not wav.is_file():
            if require_audio:
                raise DatasetError(f"Sequence {name} has no speech file {wav}.")
            wav = None
        grid = root / "alignments" / f"{name}.TextGrid"
        rig = root / "rig" / f"{name}.npy"
        refs.append(SequenceRef(name, subject, path, wav, grid if grid.is_file() else None, rig if rig.is_file() else None))
        if progress:
            progress(i + 1, len(files))
    if missing_subjects:
        raise DatasetError(
            f"Dataset {root} has sequences for subjects missing from templates.pkl: {', '.join(sorted(missing_subjects))}."
        )
    if native_fps is None:
        if metadata.get("fps"):
            native_fps = float(metadata["fps"])
        elif any(s.subject.startswith("FaceTalk") for s in refs):
            native_fps = NATIVE_FPS["vocaset"]
        elif any(t.shape[0] == 23370 for t in templates.values()):
            native_fps = NATIVE_FPS["biwi"]
        else:
            native_fps = 30.0
    target = float(fps) if fps is not None else (30.0 if native_fps == 60.0 else native_fps)
    ratio = native_fps / target
    stride = int(round(ratio))
    if stride < 1 or abs(ratio - stride) > 1e-6:
        raise DatasetError(f"Cannot resample {native_fps:g} fps data to {target:g} fps; choose a whole divisor of {native_fps:g}.")
    regions: dict[str, np.ndarray] = {}
    if (root / "regions").is_dir():
        n = next(iter(templates.values())).shape[0]
        try:
            regions = read_regions_dir(root / "regions", n)
        except KmtalkError as exc:
            raise DatasetError(str(exc)) from None
    splits: dict = {}
    if (root / "splits.json").is_file():
        try:
            splits = json.loads((root / "splits.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"splits.json in {root} is not readable JSON ({exc}).") from None
    else:
        from .splits import standard_splits

        splits = standard_splits(s.name for s in refs) or {}
    return Dataset(root, templates, tuple(refs), target, stride, regions, splits)
