"""How a long command tells the outside world how far it is: a Rich bar for people, one JSON
object per line for programs (a game editor, a pipeline), or nothing.

Every command reports through one :class:`Reporter`; library code only ever sees the plain
callbacks it hands out (``(done, total)`` for a bar, ``(name)`` for a stage), so the library
does not know which mode is on. The JSON events are:

========  ===========================================================================
event     fields (besides ``event``, ``command`` and ``elapsed`` seconds)
========  ===========================================================================
start     ``files`` (how many inputs, or null)
stage     ``name``: a stage of unknown length started (aligning, loading the model)
progress  ``fraction`` 0..1, ``done``, ``total``, ``label``
file      ``path``, ``status`` (ok, failed, skipped), ``outputs``, ``message``, ``seconds``
epoch     ``kmtalk train``: ``stage``, ``epoch``, ``train_loss``, ``val_loss``, ``val_lve_mm``, ``seconds``, ``parts``
info      ``message``
warning   ``message``
error     ``message``
done      ``ok`` (bool), ``succeeded``, ``failed``, ``skipped``, ``seconds``
========  ===========================================================================
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import IO, Any

Update = Callable[[int, int], None]
Stage = Callable[[str], None]


class ProgressMode(str, Enum):
    """``bar``: Rich bars and readable lines; ``json``: events on stderr; ``none``: no bars."""

    bar = "bar"
    json = "json"
    none = "none"


#: A progress event is written at most this often (seconds) unless the fraction moved by ``_MIN_STEP``.
_MIN_INTERVAL = 0.5
_MIN_STEP = 0.01


class Reporter:
    """One command's progress, messages and per-file results, in one of the :class:`ProgressMode` s."""

    def __init__(self, mode: ProgressMode | str = ProgressMode.bar, command: str = "", *, stream: IO[str] | None = None, console: Any = None) -> None:
        self.mode = ProgressMode(mode)
        self.command = command
        self._stream = stream
        self._console = console
        self._began = time.perf_counter()
        self._started = False
        self.counts = {"ok": 0, "failed": 0, "skipped": 0}

    # -- output ---------------------------------------------------------------------------------
    @property
    def console(self) -> Any:
        """The Rich console on stderr (made on first use, so JSON mode never imports Rich)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console

    def emit(self, event: str, **fields: Any) -> None:
        """Write one JSON event line (JSON mode only)."""
        if self.mode is not ProgressMode.json:
            return
        if not self._started and event != "start":
            self.start()
        record = {"event": event, "command": self.command, "elapsed": round(time.perf_counter() - self._began, 3), **fields}
        stream = self._stream or sys.stderr
        stream.write(json.dumps(record, default=str) + "\n")
        stream.flush()

    def _print(self, markup: str) -> None:
        self.console.print(markup)

    def info(self, message: str) -> None:
        if self.mode is ProgressMode.json:
            self.emit("info", message=message)
        else:
            from rich.markup import escape

            self._print(escape(message))

    def warning(self, message: str) -> None:
        if self.mode is ProgressMode.json:
            self.emit("warning", message=message)
        else:
            from rich.markup import escape

            self._print(f"[yellow]warning:[/] {escape(message)}")

    def error(self, message: str) -> None:
        if self.mode is ProgressMode.json:
            self.emit("error", message=message)
        else:
            from rich.markup import escape

            self._print(f"[bold red]error:[/] {escape(message)}")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, files: int | None = None) -> None:
        """The ``start`` event, once (an earlier event sends it with ``files`` null)."""
        if self._started:
            return
        self._started = True
        self.emit("start", files=files)

    def file(self, path: Path | str, status: str, *, outputs: tuple[Path, ...] | list[Path] = (), message: str = "", seconds: float | None = None) -> None:
        """One input's result: ``ok``, ``failed`` (with ``message``) or ``skipped`` (outputs exist)."""
        self.counts[status] += 1
        self.emit("file", path=str(path), status=status, outputs=[str(p) for p in outputs], message=message,
                  seconds=None if seconds is None else round(seconds, 3))
        if self.mode is ProgressMode.json:
            return
        if status == "failed":
            self.error(f"{path}: {message}")
        elif message:
            self.info(message)

    def finish(self, ok: bool) -> None:
        self.emit("done", ok=ok, succeeded=self.counts["ok"], failed=self.counts["failed"], skipped=self.counts["skipped"],
                  seconds=round(time.perf_counter() - self._began, 3))

    # -- progress -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def bar(self, description: str, *, enabled: bool = True) -> Iterator[Update]:
        """A bar over ``(done, total)`` units: Rich on stderr, throttled ``progress`` events, or nothing."""
        if self.mode is ProgressMode.json:
            yield self._json_updates(description)
            return
        if self.mode is ProgressMode.none or not enabled:
            yield lambda done, total: None
            return
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                      console=self.console, transient=True) as rich_bar:
            task = rich_bar.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                rich_bar.update(task, completed=done, total=total)

            yield update

    def _json_updates(self, label: str) -> Update:
        last = {"fraction": -1.0, "at": 0.0}

        def update(done: int, total: int) -> None:
            fraction = min(1.0, max(0.0, done / total)) if total else 0.0
            now = time.perf_counter()
            if fraction < 1.0 and fraction - last["fraction"] < _MIN_STEP and now - last["at"] < _MIN_INTERVAL:
                return
            if fraction == last["fraction"]:
                return
            last.update(fraction=fraction, at=now)
            self.emit("progress", fraction=round(fraction, 4), done=done, total=total, label=label)

        return update

    @contextlib.contextmanager
    def steps(self, *, enabled: bool = True) -> Iterator[Stage]:
        """Stages of unknown length: a spinner per stage (kept listed when done), or ``stage`` events."""
        if self.mode is ProgressMode.json:
            yield lambda name: self.emit("stage", name=name)
            return
        if self.mode is ProgressMode.none or not enabled:
            yield lambda name: None
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=self.console) as spinner:
            current: list[int] = []

            def start(name: str) -> None:
                if current:
                    spinner.update(current[-1], total=1, completed=1)
                current.append(spinner.add_task(name, total=None))

            yield start
            if current:
                spinner.update(current[-1], total=1, completed=1)


_current: list[Reporter] = []


def current() -> Reporter:
    """The reporter of the running command (a plain Rich one outside any command)."""
    if not _current:
        _current.append(Reporter())
    return _current[-1]


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` the one :func:`current` returns for the duration of a command."""
    _current.append(reporter)
    try:
        yield reporter
    finally:
        _current.remove(reporter)
