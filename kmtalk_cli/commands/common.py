"""What every command shares: the stderr console, error mapping, warnings and progress.

Library code raises :class:`KmtalkError` and warns with :class:`KmtalkWarning`; this module is
the single place that turns those into one line on stderr and an exit code.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import KmtalkError, KmtalkWarning

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one error line and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def notice(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str) -> None:
    err_console.print(escape(message))


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


def os_problem(exc: OSError) -> str:
    """One sentence for an operating-system error the library did not turn into a KmtalkError."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"The disk is full (or a file size limit was reached){where}; no output was written."
    return f"{exc.strerror or exc}{where}."


@contextlib.contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr, exposed to library code as a ``(done, total)`` callback."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not enabled,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def step_progress(*, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Stages of unknown length (aligning, predicting): a spinner and elapsed time per stage,
    exposed to library code as a ``(stage name)`` callback; each stage stays listed when done."""
    with Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, disable=not enabled) as bar:
        current: list[int] = []

        def start(name: str) -> None:
            if current:
                bar.update(current[-1], total=1, completed=1)
            current.append(bar.add_task(name, total=None))

        yield start
        if current:
            bar.update(current[-1], total=1, completed=1)
