"""``python -m kmtalk_cli`` and the ``kmtalk`` console script.

The app is imported inside :func:`main`, so a Ctrl-C that lands while Python imports (before any
command's own error handling) still ends in one line and exit code 130, not a traceback.
"""

from __future__ import annotations

import sys

INTERRUPTED = "error: Interrupted; no output was written.\n"


def main() -> None:
    """Run the ``kmtalk`` app."""
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
        raise


if __name__ == "__main__":
    main()
