"""Align in a worker process while this one loads the model.

A cold ``kmtalk animate`` spends about a second importing torch and loading the model, and the
alignment (pocketsphinx, which holds the GIL, so a thread would not help) needs neither: run in
a fresh interpreter on the other core, it is mostly done by the time the model is ready. The
worker is started with ``python -m kmtalk_cli.align_ahead`` (not multiprocessing's "spawn",
which re-runs the caller's main script), reads the audio from a temporary file and answers with
a pickle on stdout: the alignment and the warnings it raised (raised again here), or the
:class:`~kmtalk_cli.errors.KmtalkError` it hit (raised again here). If the worker fails in any
other way the caller aligns in-process, as it would have without it.

Asked to, the worker also builds the bundled head's articulatory rig (the gate and the
liveliness layer pose it; building it imports SciPy's sparse matrices), which it has the time
to do before torch is ready; :meth:`AlignAhead.rig` hands it over (None if not asked for).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import warnings
from typing import Any

from .errors import KmtalkError


class AlignAhead:
    """An alignment started in a worker process; :meth:`result` waits for it."""

    def __init__(self, audio: Any, text: str | None, *, bundled_rig: bool = False) -> None:
        fd, self._input = tempfile.mkstemp(prefix="kmtalk-align-", suffix=".pickle")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump((audio, text, bundled_rig), fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._audio, self._text = audio, text
        self._rig: Any = None
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, self._input], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )

    def result(self) -> Any:
        """The alignment, with the worker's warnings raised here; aligned here if the worker failed."""
        try:
            out, _ = self._process.communicate()
        except BaseException:  # Ctrl-C while waiting: the worker goes too
            self._process.kill()
            raise
        finally:
            self._cleanup()
        try:
            status, value, caught, self._rig = pickle.loads(out)
        except Exception:  # noqa: BLE001 - a crashed worker: do the work here instead
            from .alignment import align

            return align(self._audio, self._text)
        for message, category in caught:
            warnings.warn(category(message), stacklevel=2)
        if status == "error":
            raise value
        return value

    def rig(self) -> Any:
        """The bundled head's rig built by the worker (after :meth:`result`); None if it was not asked for."""
        return self._rig

    def cancel(self) -> None:
        """Stop the worker (the model failed to load, or needs no alignment)."""
        self._process.kill()
        self._process.communicate()
        self._cleanup()

    def _cleanup(self) -> None:
        try:
            os.unlink(self._input)
        except FileNotFoundError:
            pass


def _work(path: str) -> tuple[str, Any, list[tuple[str, type[Warning]]], Any]:
    from .alignment import align

    with open(path, "rb") as fh:
        audio, text, bundled_rig = pickle.load(fh)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status, value = "ok", align(audio, text)
        except KmtalkError as exc:
            status, value = "error", exc
    return status, value, [(str(w.message), w.category) for w in caught], _bundled_rig() if bundled_rig else None


def _bundled_rig() -> Any:
    from .export.fit import rig_for
    from .face.template import bundled_template

    return rig_for(bundled_template())


if __name__ == "__main__":
    sys.stdout.buffer.write(pickle.dumps(_work(sys.argv[1]), protocol=pickle.HIGHEST_PROTOCOL))
