"""Atomic file writes, shared by index files, reports and exports.

A file is written to a hidden temporary file beside its target, flushed to disk and renamed
over the target, so a reader sees the old file or the new one, never half of one. The new
file gets the user's usual mode (``0o666`` less the umask; ``mkstemp`` alone would make it
private, unreadable to a scheduler running as another user of the group). A crash leaves at
most a ``.<name>.tmp-*`` file behind; the next write of the same file removes those older
than an hour (a younger one may belong to a writer still at work).

Only a regular file is ever replaced (never a directory, device or FIFO, checked again just
before the rename), and every refusal or OS failure names the target, never the temporary
file: :class:`~embed_sql.exceptions.InvalidParameterError` for a path that cannot be a file,
:class:`~embed_sql.exceptions.FileWriteError` for a folder or disk that cannot take it.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from embed_sql.exceptions import FileWriteError, InvalidParameterError

__all__ = [
    "atomic_writer",
    "clean_leftovers",
    "clean_stale_dirs",
    "write_bytes_atomic",
    "write_text_atomic",
]

_TMP = ".tmp-"


def _target(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if not str(path) or target.is_dir():
        msg = f"cannot write a file at {str(path)!r}: give a file path, not a directory or ''"
        raise InvalidParameterError(msg)
    _refuse_special(target)
    if target.parent.exists() and not target.parent.is_dir():
        msg = f"cannot write {str(target)!r}: its folder {str(target.parent)!r} is a file"
        raise InvalidParameterError(msg)
    return target


def _refuse_special(target: Path) -> None:
    """Refuse to replace anything but a regular file (or a link to one): devices, FIFOs."""
    if target.exists() and not target.is_file():
        msg = (
            f"cannot replace {str(target)!r}: it is not a regular file (a device, FIFO, ...); "
            "give the path of a regular file"
        )
        raise InvalidParameterError(msg)


def _cannot_write(target: Path, exc: OSError) -> FileWriteError:
    """Return the error for an OS failure writing ``target`` (named, not its temporary file)."""
    hint = {
        errno.EACCES: "is its folder writable?",
        errno.EPERM: "is its folder writable?",
        errno.EROFS: "its folder is on a read-only file system",
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
    }.get(exc.errno or 0, "check the folder and the disk")
    msg = f"cannot write {str(target)!r}: {exc.strerror or exc} ({hint})"
    return FileWriteError(exc.errno or errno.EIO, msg)


def _usual_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends without error.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> with atomic_writer(p) as fh:
    ...     _ = fh.write(b"hello")
    >>> p.read_bytes()
    b'hello'
    """
    target = _target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(target.parent, name=target.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}{_TMP}", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh  # the caller's errors pass through as they are
            try:
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise _cannot_write(target, exc) from exc
        _refuse_special(target)  # again: it may have become a device while we wrote
        try:
            os.chmod(tmp, _usual_mode())
            os.replace(tmp, target)
        except OSError as exc:
            raise _cannot_write(target, exc) from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def clean_leftovers(
    folder: str | os.PathLike[str], *, name: str | None = None, older_than: float = 3600.0
) -> int:
    """Remove old temporary files of interrupted writes; return how many were removed.

    Those of ``name`` (or of any file) in ``folder``, older than ``older_than`` seconds.
    """
    removed = 0
    cutoff = time.time() - older_than
    pattern = f".{name}{_TMP}*" if name is not None else f".*{_TMP}*"
    for leftover in Path(folder).glob(pattern):
        try:
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def clean_stale_dirs(
    folder: str | os.PathLike[str], prefix: str, older_than: float = 3600.0
) -> int:
    """Remove ``prefix*`` directories in ``folder`` left by a killed build; return the count.

    Only those untouched for ``older_than`` seconds: a younger one may belong to a build
    running now in another process.
    """
    removed = 0
    cutoff = time.time() - older_than
    for leftover in Path(folder).glob(f"{prefix}*"):
        try:
            if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover)
                removed += 1
        except OSError:
            continue
    return removed
