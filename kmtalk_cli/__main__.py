"""``python -m kmtalk_cli`` and the ``kmtalk`` console script.

The app is imported inside :func:`main`, so a Ctrl-C that lands while Python imports (before any
command's own error handling) still ends in one line and exit code 130, not a traceback.

Torch's OpenMP threads are told to sleep, not spin, while they wait for work
(``OMP_WAIT_POLICY=PASSIVE`` unless the user set it): spinning threads took the CPU from the
aligner in the same process and its worker beside it, and on a machine where another program
was busy, made key motions and completion three to ten times slower. NumPy's BLAS gets one
thread (``OPENBLAS_NUM_THREADS=1`` unless set): its products here are small (the gate's rig
pose), they run beside torch's, and a second BLAS thread made the gate twice as slow.

A finished command leaves through :func:`fast_exit`: once torch is loaded, the interpreter's own
teardown (freeing every module object one by one) costs about 0.3 s on 2 cores, a fifth of a
short ``animate``; exit handlers still run and every output is already closed and renamed.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

INTERRUPTED = "error: Interrupted; no output was written.\n"


def main() -> None:
    """Run the ``kmtalk`` app."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads its OpenMP runtime
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read once, when NumPy loads OpenBLAS
    try:
        from .cli import app

        app(prog_name="kmtalk")
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED)
        raise SystemExit(130) from None
    except SystemExit as exc:  # Typer exits 130 without a word when Ctrl-C lands outside a command's own handling
        from .commands.common import error_shown

        if exc.code == 130 and not error_shown():
            sys.stderr.write(INTERRUPTED)
        fast_exit(exc.code)
        raise


def fast_exit(code: object) -> None:
    """End the process now with ``code`` (an int or None) after the exit handlers and a flush of
    stdout/stderr, skipping module teardown; returns (and the caller exits as usual) when other
    (non-daemon) threads still run, a torch process group is open, or the code is a message."""
    waited = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not (code is None or isinstance(code, int)) or "torch" not in sys.modules or waited:
        return
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:
        return
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    main()
