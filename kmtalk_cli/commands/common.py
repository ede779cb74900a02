"""What every command shares: the stderr console, error mapping, warnings and progress.

Library code raises :class:`KmtalkError` and warns with :class:`KmtalkWarning`; this module is
the single place that turns those into one line on stderr and an exit code.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import KmtalkError, KmtalkWarning, os_problem
from ..progress import ProgressMode, Reporter, current, reporting

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class AlignmentSource(str, Enum):
    """Where a key-motion model's phones come from: the built-in aligner, as at inference, or the
    corpus' own TextGrids (the true timings of a synthetic corpus)."""

    aligner = "aligner"
    true = "true"


ProgressOpt = Annotated[
    ProgressMode, typer.Option("--progress", help="bar (default), json (one event per line on stderr, for programs) or none.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Worker processes for a batch (each loads the model once).", min=1, max=64)]


def reporter() -> Reporter:
    """The running command's reporter (progress, messages, per-file results)."""
    return current()


#: Whether an error line was printed in this process (so the entry point never adds a second one).
_shown = {"error": False}


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line (an ``error`` event in JSON mode) and return the Exit to raise."""
    current().error(message)
    _shown["error"] = True
    return typer.Exit(code)


def error_shown() -> bool:
    """Whether :func:`fail` printed an error line in this process."""
    return _shown["error"]


def notice(message: str) -> None:
    current().warning(message)


def info(message: str) -> None:
    current().info(message)


@contextlib.contextmanager
def running(command: str, progress: ProgressMode | str = ProgressMode.bar, *, quiet: bool = False, files: int | None = None) -> Iterator[Reporter]:
    """A command's whole run: its reporter (``--progress``; ``--quiet`` turns the bar off), the
    ``start`` and ``done`` events, and library errors mapped to one line and an exit code."""
    mode = ProgressMode(progress)
    if quiet and mode is ProgressMode.bar:
        mode = ProgressMode.none
    with reporting(Reporter(mode, command, console=err_console)) as rep:
        if files is not None:
            rep.start(files)
        try:
            with user_errors():
                yield rep
        except typer.Exit as exc:
            rep.finish(ok=exc.exit_code == 0)
            raise
        except BaseException:
            rep.finish(ok=False)
            raise
        rep.finish(ok=True)


def finish(summary: Any, verb: str) -> None:
    """After a batch: the summary line, and exit 1 if any file failed."""
    from ..batch import summary_line

    if len(summary.results) > 1 or summary.count("ok") != len(summary.results):
        info(summary_line(summary, verb))
    if summary.failed:
        raise fail(f"{summary.failed} of {len(summary.results)} files failed.")


def finite(value: float | None) -> float | None:
    """Typer callback for float options: ranges let NaN through (every comparison with it is
    false), so each float option also refuses NaN and infinity here."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, not {value}.")
    return value


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Map library errors and Ctrl-C to one stderr line and a non-zero exit; show kmtalk warnings."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, KmtalkWarning):
            notice(str(message))
        else:
            original(message, category, filename, lineno, file, line)

    original = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always", KmtalkWarning)
        warnings.showwarning = show
        try:
            yield
        except KmtalkError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("Interrupted; no output was written.", code=130) from None
        except OSError as exc:  # a full disk, a vanished folder, a name too long: one line, not a traceback
            raise fail(os_problem(exc)) from None
        finally:
            warnings.showwarning = original


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (or JSON ``progress`` events), exposed to library code as a ``(done, total)`` callback."""
    with current().bar(description, enabled=enabled) as update:
        yield update


@contextlib.contextmanager
def step_progress(*, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Stages of unknown length (aligning, predicting): a spinner and elapsed time per stage
    (or JSON ``stage`` events), exposed to library code as a ``(stage name)`` callback."""
    with current().steps(enabled=enabled) as start:
        yield start
