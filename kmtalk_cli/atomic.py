"""Atomic output files: write to a temporary sibling, rename on success; one run's outputs together.

A failed or interrupted run must never leave a half-written file or destroy an existing one,
so every writer in kmtalk goes through :func:`atomic_output` (folders: :func:`atomic_directory`).
Inside :func:`transaction` those writers only stage their temporary files; the transaction
renames all of them at its end, or removes all of them if anything fails (Ctrl-C included), so
the outputs of one run land together or not at all.

The output rule every command shares (:func:`check_output_path`): ``-o`` names the exact file
to write and must end in the suffix of the format the command writes; anything else is refused
before any work, so no run ever writes one format under another format's name.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import OutputError

#: Longest file name (bytes) most file systems take; checked before any work.
NAME_MAX = 255
#: Characters of the final name kept in a temporary name, so a long name still leaves room.
_TMP_STEM = 40


def require_suffix(path: Path, suffixes: Iterable[str], what: str) -> Path:
    """Refuse ``path`` unless it ends in one of ``suffixes`` (case-insensitive), before any work.

    ``what`` names the format, e.g. ``"a NumPy motion"``; the message says which names work.
    """
    path = Path(path)
    allowed = tuple(suffixes)
    name = path.name.lower()
    if not any(name.endswith(s.lower()) and len(name) > len(s) for s in allowed):
        names = " or ".join(allowed)
        raise OutputError(f"Output {path} must end in {names}: this command writes {what} there.")
    return path


def check_output_path(path: Path, *, force: bool = False, suffixes: Iterable[str] | None = None, what: str = "") -> Path:
    """Fail early, before any work, if ``path`` cannot be written (or has the wrong suffix)."""
    path = Path(path)
    if suffixes is not None:
        require_suffix(path, suffixes, what or "its format")
    parent = path.parent if str(path.parent) else Path(".")
    if len(os.fsencode(path.name)) > NAME_MAX:
        raise OutputError(f"Output name {path.name[:40]}… is {len(os.fsencode(path.name))} bytes long; file names are limited to {NAME_MAX} bytes.")
    if path.exists() and path.is_dir():
        raise OutputError(f"Output {path} is a directory; give a file name.")
    if path.exists() and not force:
        raise OutputError(f"Output {path} already exists; pass --force to overwrite it.")
    check_parent(parent)
    return path


def check_parent(parent: Path) -> None:
    """The folder an output goes into must exist, be a folder, and be writable."""
    above = next((p for p in (parent, *parent.parents) if p.exists() or p.is_symlink()), None)
    if above is not None and above != parent and not above.is_dir():
        raise OutputError(f"Output directory {parent} cannot exist: {above} is a file, not a directory.")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"Output directory {parent} is a file, not a directory.")
    if not parent.is_dir():
        raise OutputError(f"Output directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Output directory {parent} is not writable.")


def os_error_message(exc: OSError, what: str) -> str:
    """One sentence for an OS error while writing ``what`` (a full disk gets a plain word)."""
    short_write = exc.errno is None and "written" in str(exc)  # numpy's words for a write the disk cut short
    if short_write or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"Cannot write {what}: the disk is full (or a file size limit was reached); nothing was written."
    if exc.errno == errno.ENAMETOOLONG:
        return f"Cannot write {what}: the file name is too long."
    return f"Cannot write {what}: {exc.strerror or exc}."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass
class _Staged:
    tmp: Path
    final: Path
    force: bool
    backup: Path | None = None
    replaced: bool = False


@dataclass
class Transaction:
    """Temporary outputs staged by :func:`atomic_output`/:func:`atomic_directory`, renamed together."""

    staged: list[_Staged] = field(default_factory=list)

    def stage(self, tmp: Path, final: Path, force: bool) -> None:
        self.staged.append(_Staged(Path(tmp), Path(final), force))

    def discard(self) -> None:
        """Remove every staged temporary output."""
        for item in self.staged:
            _remove(item.tmp)
        self.staged.clear()

    def commit(self) -> list[Path]:
        """Move every staged output into place; on any failure put the old files back.

        Ctrl-C is held off while the renames run (they take milliseconds), and runs writing into
        the same folder commit one at a time, so concurrent runs never mix their outputs.
        """
        with _no_interrupt(), _folder_locks({item.final.parent for item in self.staged}):
            try:
                for item in self.staged:
                    if item.final.exists() and not item.force:
                        raise OutputError(f"Output {item.final} appeared while writing; pass --force to overwrite it.")
                for item in self.staged:
                    if item.final.exists() or item.final.is_symlink():
                        item.backup = item.final.with_name(f".{item.final.name[:_TMP_STEM]}.{os.getpid()}.old")
                        os.replace(item.final, item.backup)
                    os.replace(item.tmp, item.final)
                    item.replaced = True
            except OSError as exc:
                self._roll_back()
                raise OutputError(os_error_message(exc, str(item.final))) from None
            except BaseException:
                self._roll_back()
                raise
            for item in self.staged:
                if item.backup is not None:
                    _remove(item.backup)
        done = [item.final for item in self.staged]
        self.staged.clear()
        return done

    def _roll_back(self) -> None:
        for item in reversed(self.staged):
            if item.replaced:
                _remove(item.final)
            if item.backup is not None and item.backup.exists():
                os.replace(item.backup, item.final)
            _remove(item.tmp)
        self.staged.clear()


_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("kmtalk_transaction", default=None)


@contextlib.contextmanager
def transaction() -> Iterator[Transaction]:
    """Every atomic output written inside the block lands at its end, all together, or none does.

    Nested transactions join the outer one.
    """
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    txn = Transaction()
    token = _current.set(txn)
    try:
        yield txn
    except BaseException:
        txn.discard()
        raise
    finally:
        _current.reset(token)
    txn.commit()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) until the block ends; a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _folder_locks(folders: set[Path]) -> Iterator[None]:
    """An exclusive flock on each output folder, in a fixed order, for the renames."""
    fds: list[int] = []
    try:
        for folder in sorted(str(f if str(f) else Path(".")) for f in folders):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock


def _tmp_name(path: Path) -> tuple[str, str]:
    """Prefix and suffix of a temporary sibling: hidden, short, and keeping ``path``'s suffix."""
    return f".{path.stem[:_TMP_STEM]}.", f".part{path.suffix[:_TMP_STEM]}"


@contextlib.contextmanager
def atomic_output(path: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    The temporary file keeps ``path``'s suffix so tools that pick a format by extension
    (ffmpeg, numpy) behave as they would on the final name. Inside :func:`transaction` the
    move waits for the transaction's end.
    """
    path = check_output_path(Path(path), force=force)
    prefix, suffix = _tmp_name(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent or ".")
    except OSError as exc:
        raise OutputError(os_error_message(exc, f"in {path.parent}")) from None
    os.close(fd)
    tmp = Path(tmp_name)
    mode = 0o666 & ~_umask()  # mkstemp makes 0600; outputs get the usual permissions
    os.chmod(tmp, mode)
    staged = False
    try:
        try:
            yield tmp
        except OSError as exc:
            raise OutputError(os_error_message(exc, str(path))) from None
        if not tmp.is_file():
            raise OutputError(f"Cannot write {path}: the writer produced no file.")
        os.chmod(tmp, mode)  # again: some writers (safetensors) replace the file rather than fill it
        _land(tmp, path, force)
        staged = True
    finally:
        if not staged:
            _remove(tmp)


def _land(tmp: Path, final: Path, force: bool) -> None:
    """Stage ``tmp`` for ``final`` in the open transaction, or move it into place now when none is
    open (a failed move rolls back and removes ``tmp`` itself)."""
    txn = _current.get()
    if txn is not None:
        txn.stage(tmp, final, force)
        return
    solo = Transaction()
    solo.stage(tmp, final, force)
    solo.commit()


@contextlib.contextmanager
def atomic_directory(directory: Path, *, force: bool = False, check=None) -> Iterator[Path]:  # noqa: ANN001
    """Yield a temporary sibling folder; it replaces ``directory`` only if the block succeeds
    (inside :func:`transaction`, at the transaction's end). ``check(directory, force=)`` vets
    the target first (default: :func:`check_parent` on its folder)."""
    directory = Path(directory)
    if check is not None:
        check(directory, force=force)
    parent = directory.parent if str(directory.parent) else Path(".")
    check_parent(parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name[:_TMP_STEM]}.", suffix=".part", dir=parent))
    except OSError as exc:
        raise OutputError(os_error_message(exc, f"in {parent}")) from None
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; outputs are ordinary folders
    staged = False
    try:
        try:
            yield tmp
        except OSError as exc:
            raise OutputError(os_error_message(exc, str(directory))) from None
        _land(tmp, directory, True)
        staged = True
    finally:
        if not staged:
            _remove(tmp)
