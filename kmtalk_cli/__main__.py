"""``python -m kmtalk_cli`` and the ``kmtalk`` console script.

The app is imported inside :func:`main`, so a Ctrl-C that lands while Python imports (before any
command's own error handling) still ends in one line and exit code 130, not a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``kmtalk`` app."""
    try:
        from .cli import app

        app(prog_name="kmtalk")
    except KeyboardInterrupt:
        sys.stderr.write("error: Interrupted; no output was written.\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
