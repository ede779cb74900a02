"""Atomic output files: write to a temporary sibling, rename on success.

A failed or interrupted run must never leave a half-written file or destroy an existing one,
so every writer in kmtalk goes through :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError


def check_output_path(path: Path, *, force: bool = False) -> Path:
    """Fail early, before any work, if ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise OutputError(f"Output {path} is a directory; give a file name.")
    if path.exists() and not force:
        raise OutputError(f"Output {path} already exists; pass --force to overwrite it.")
    if not parent.is_dir():
        raise OutputError(f"Output directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Output directory {parent} is not writable.")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    The temporary file keeps ``path``'s suffix so tools that pick a format by extension
    (ffmpeg, numpy) behave as they would on the final name.
    """
    path = check_output_path(Path(path), force=force)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent or "."
        )
    except OSError as exc:
        raise OutputError(f"Cannot write in {path.parent}: {exc.strerror}.") from None
    os.close(fd)
    tmp = Path(tmp_name)
    mode = 0o666 & ~_umask()  # mkstemp makes 0600; outputs get the usual permissions
    os.chmod(tmp, mode)
    try:
        yield tmp
        os.chmod(tmp, mode)  # again: some writers (safetensors) replace the file rather than fill it
        if not force and path.exists():
            raise OutputError(f"Output {path} appeared while writing; pass --force to overwrite it.")
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"Cannot write {path}: {exc.strerror}.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
