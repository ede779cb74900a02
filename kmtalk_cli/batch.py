"""Many inputs, one command: expand what the user named into items, run a job over them.

Inputs are files, directories (their files with the job's suffixes), glob patterns (quoted, so
the shell leaves them alone; ``**`` recurses) or manifests: a ``.txt`` of paths, or a
``.csv``/``.tsv`` with ``path`` and optional ``transcript`` columns. Relative manifest paths
are relative to the manifest.

:func:`run_batch` loads the job's model once per worker (:meth:`BatchJob.setup`), runs items
in this process or in ``jobs`` worker processes, reports each file's success or failure to a
:class:`~kmtalk_cli.progress.Reporter` and keeps going past failures. In a batch an item whose
outputs all exist is skipped unless ``force``, so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from .errors import KmtalkError, KmtalkWarning, os_problem
from .progress import ProgressMode, Reporter, reporting

MANIFEST_SUFFIXES = (".txt", ".csv", ".tsv")
#: What a directory or a glob contributes to commands that read speech (videos only when named:
#: a folder of clips often holds the mp4s rendered from them).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".raw", ".pcm")
#: ... and to commands that read a motion.
MOTION_SUFFIXES = (".npy", ".npz")
#: Files kmtalk writes beside a motion; a directory or a glob never counts them as inputs.
SIDECAR_SUFFIXES = (".keys.npz", ".head.npz")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class BatchItem:
    """One input file and, from a csv/tsv manifest, what is said in it."""

    path: Path
    text: str | None = None


@dataclass(frozen=True)
class Inputs:
    """The expanded inputs; ``batch`` is False only for one plain file named on its own."""

    items: tuple[BatchItem, ...]
    batch: bool


class BatchJob(Protocol):
    """What a command runs over its items. Must pickle (a dataclass of plain settings) for ``jobs > 1``."""

    def outputs(self, item: BatchItem) -> list[Path]:
        """The files ``item`` writes (for skipping finished items and catching clashes)."""

    def setup(self) -> Any:
        """Once per worker: load what every item shares (the model). Returned to :meth:`run`."""

    def run(self, item: BatchItem, state: Any, force: bool) -> list[Path]:
        """Make one item's outputs and return them; raise :class:`KmtalkError` on bad input.
        Progress goes through :func:`kmtalk_cli.progress.current` (its bars and stages)."""


@dataclass(frozen=True)
class ItemResult:
    item: BatchItem
    status: str  # ok, failed, skipped
    outputs: tuple[Path, ...] = ()
    message: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchSummary:
    results: tuple[ItemResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")


# -- inputs ------------------------------------------------------------------------------------
def expand_inputs(specs: Iterable[Path | str], suffixes: Sequence[str]) -> Inputs:
    """Files, directories, globs and manifests → items in the order named (sorted within each
    directory or pattern), each file once. ``suffixes`` are the name endings of the job's input
    types (``.wav``, ``.align.json``) that directories and patterns contribute."""
    specs = [str(s) for s in specs]
    if not specs:
        raise KmtalkError("No inputs were given.")
    wanted = tuple(s.lower() for s in suffixes)
    items: list[BatchItem] = []
    batch = len(specs) > 1
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            batch = True
            found = sorted(p for p in path.iterdir() if p.is_file() and _counts(p, wanted))
            if not found:
                raise KmtalkError(f"Directory {path} holds no {'/'.join(wanted)} files.")
            items += [BatchItem(p) for p in found]
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES and path.suffix.lower() not in wanted:
            batch = True
            items += read_manifest(path)
        elif path.is_file():
            items.append(BatchItem(path))
        elif _GLOB_CHARS & set(spec):
            batch = True
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and _counts(Path(p), wanted))
            if not found:
                raise KmtalkError(f"No {'/'.join(wanted)} files match {spec}.")
            items += [BatchItem(p) for p in found]
        else:
            raise KmtalkError(f"Input {path} does not exist.")
    seen: set[Path] = set()
    unique = []
    for item in items:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return Inputs(tuple(unique), batch)


def _counts(path: Path, wanted: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return name.endswith(wanted) and not name.endswith(SIDECAR_SUFFIXES) and not name.startswith(".")


def read_manifest(path: Path) -> list[BatchItem]:
    """A ``.txt`` of paths (one a line, ``#`` comments) or a ``.csv``/``.tsv`` with a ``path`` column
    and an optional ``transcript`` (or ``text``) column; without a header, path then transcript."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise KmtalkError(f"Manifest {path} cannot be read ({exc}).") from None
    base = path.parent
    items: list[BatchItem] = []
    if path.suffix.lower() == ".txt":
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                items.append(BatchItem(_relative(base, line)))
    else:
        rows = [r for r in csv.reader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",") if any(c.strip() for c in r)]
        path_col, text_col = 0, 1
        if rows and "path" in [c.strip().lower() for c in rows[0]]:
            header = [c.strip().lower() for c in rows.pop(0)]
            path_col = header.index("path")
            text_col = next((header.index(n) for n in ("transcript", "text") if n in header), -1)
        for number, row in enumerate(rows, start=1):
            if path_col >= len(row) or not row[path_col].strip():
                raise KmtalkError(f"Manifest {path}, row {number}: no path.")
            said = row[text_col].strip() if 0 <= text_col < len(row) and row[text_col].strip() else None
            items.append(BatchItem(_relative(base, row[path_col].strip()), said))
    if not items:
        raise KmtalkError(f"Manifest {path} lists no files.")
    return items


def _relative(base: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else base / p


def output_for(source: Path, target: Path | None, suffix: str, *, batch: bool) -> Path:
    """Where one input's output goes: beside it (``target`` None), into a directory, or the named file.

    In a batch ``target`` must be a directory; it is made when it does not exist yet.
    """
    if target is None:
        return source.with_name(source.stem + suffix)
    if target.is_dir():
        return target / (source.stem + suffix)
    if batch:
        raise KmtalkError(f"With several inputs, {target} must be a directory.")
    return target


def batch_output(target: Path | None, batch: bool) -> Path | None:
    """A batch's ``-o``: a directory, made if it does not exist yet (a file name is refused)."""
    if target is None or not batch:
        return target
    if target.exists() and not target.is_dir():
        raise KmtalkError(f"With several inputs, -o must be a directory; {target} is a file.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KmtalkError(f"Cannot make the output directory {target} ({exc.strerror}).") from None
    return target


def check_clashes(job: BatchJob, items: Sequence[BatchItem]) -> None:
    """Two inputs whose outputs would land on the same file (same stem, one output directory)."""
    owner: dict[Path, Path] = {}
    for item in items:
        for out in job.outputs(item):
            key = Path(os.path.abspath(out))
            if key in owner and owner[key] != item.path:
                raise KmtalkError(f"{owner[key]} and {item.path} would both write {out}; rename one or use a manifest with other names.")
            owner[key] = item.path


# -- running -----------------------------------------------------------------------------------
class _FileReporter(Reporter):
    """The reporter a job sees inside one file of a batch: its bars move the batch's bar,
    its stages and lines stay quiet (the batch reports each file once)."""

    def __init__(self, update: Callable[[int, int], None] | None = None) -> None:
        super().__init__(ProgressMode.none)
        self._update = update

    @contextlib.contextmanager
    def bar(self, description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
        yield self._update or (lambda done, total: None)

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        warnings.warn(message, KmtalkWarning, stacklevel=2)


def run_inputs(job: BatchJob, inputs: Inputs, *, reporter: Reporter, jobs: int = 1, force: bool = False, label: str = "Files") -> BatchSummary:
    """One plain file: run it here with the command's own progress, errors raised as they come
    (an existing output needs ``force``). Otherwise :func:`run_batch`."""
    reporter.start(len(inputs.items))
    if inputs.batch:
        check_clashes(job, inputs.items)
        return run_batch(job, inputs.items, reporter=reporter, jobs=jobs, force=force, label=label)
    began = time.perf_counter()
    item = inputs.items[0]
    outs = job.run(item, job.setup(), force)
    result = ItemResult(item, "ok", tuple(outs), "", time.perf_counter() - began)
    _report(reporter, result)
    return BatchSummary((result,), result.seconds)


def run_batch(job: BatchJob, items: Sequence[BatchItem], *, reporter: Reporter, jobs: int = 1, force: bool = False, label: str = "Files") -> BatchSummary:
    """Run ``job`` over ``items``: skip finished items (unless ``force``), report each result,
    carry on past failures. ``jobs > 1`` runs that many worker processes, each loading the
    model once; otherwise everything runs here, with progress inside each file."""
    began = time.perf_counter()
    results: list[ItemResult] = []
    todo: list[BatchItem] = []
    for item in items:
        outs = job.outputs(item)
        if not force and outs and all(p.exists() for p in outs):
            results.append(_report(reporter, ItemResult(item, "skipped", tuple(outs))))
        else:
            todo.append(item)
    total = len(items)
    with reporter.bar(label) as update:
        update(len(results), total)
        if jobs <= 1 or len(todo) <= 1:
            state: list[Any] = []
            for item in todo:
                base = len(results)

                def inner(done: int, of: int, base: int = base) -> None:
                    update(base * 1000 + (1000 * min(done, of) // of if of > 0 else 0), total * 1000)

                if not state:
                    state.append(_setup(job))
                with reporting(_FileReporter(inner)):
                    results.append(_report(reporter, _run_one(job, item, state[0], force)))
                update(len(results), total)
        else:
            for result in _run_pool(job, todo, jobs, force):
                results.append(_report(reporter, result))
                update(len(results), total)
    order = {item.path: i for i, item in enumerate(items)}
    return BatchSummary(tuple(sorted(results, key=lambda r: order[r.item.path])), time.perf_counter() - began)


def _setup(job: BatchJob) -> Any:
    """The shared state, or the error that made it impossible (every item then fails with it)."""
    try:
        return job.setup()
    except KmtalkError as exc:
        return exc


def _run_one(job: BatchJob, item: BatchItem, state: Any, force: bool) -> ItemResult:
    """One item, its kmtalk warnings collected (they are reported with its path)."""
    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KmtalkWarning)
        try:
            if isinstance(state, KmtalkError):
                raise state
            outs = job.run(item, state, force)
        except KmtalkError as exc:
            result = ItemResult(item, "failed", (), str(exc), time.perf_counter() - began)
        except OSError as exc:  # a full disk or a vanished folder fails this file; the batch goes on
            result = ItemResult(item, "failed", (), os_problem(exc), time.perf_counter() - began)
        else:
            result = ItemResult(item, "ok", tuple(outs), "", time.perf_counter() - began)
    notes = tuple(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, KmtalkWarning)))
    return replace(result, warnings=notes)


def _report(reporter: Reporter, result: ItemResult) -> ItemResult:
    for note in result.warnings:
        reporter.warning(f"{result.item.path}: {note}")
    reporter.file(result.item.path, result.status, outputs=result.outputs, message=result.message, seconds=result.seconds)
    return result


# One job and its shared state per worker process, set by the pool's initializer.
_worker: dict[str, Any] = {}


def _init_worker(job: BatchJob, threads: int) -> None:
    import sys

    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch is imported here
    _worker["job"] = job
    _worker["state"] = _setup(job)
    _worker["reporter"] = _FileReporter()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _work(item: BatchItem, force: bool) -> ItemResult:
    with reporting(_worker["reporter"]):
        return _run_one(_worker["job"], item, _worker["state"], force)


def _run_pool(job: BatchJob, items: Sequence[BatchItem], jobs: int, force: bool) -> Iterator[ItemResult]:
    """Results as they finish from ``jobs`` worker processes, spawned rather than forked so no
    half-initialised torch thread pool is inherited; each uses its share of the cores."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=context, initializer=_init_worker, initargs=(job, threads)) as pool:
        futures = {pool.submit(_work, item, force): item for item in items}
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:  # the worker died (killed, out of memory): that file failed
                    yield ItemResult(futures[future], "failed", (), f"The worker process failed ({type(exc).__name__}: {exc}).")
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def summary_line(summary: BatchSummary, verb: str) -> str:
    """``12 animated, 3 skipped (outputs exist), 1 failed in 41.2 s``."""
    parts = [f"{summary.count('ok')} {verb}"]
    if summary.count("skipped"):
        parts.append(f"{summary.count('skipped')} skipped (outputs exist; --force remakes them)")
    if summary.failed:
        parts.append(f"{summary.failed} failed")
    return ", ".join(parts) + f" in {summary.seconds:.1f} s"
