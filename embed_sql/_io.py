"""Atomic file writes, shared by index files, reports and exports; and their leftovers.

A file is written to a hidden temporary file beside its target, flushed to disk and renamed
over the target, so a reader sees the old file or the new one, never half of one. The new
file gets the user's usual mode (``0o666`` less the umask; ``mkstemp`` alone would make it
private, unreadable to a scheduler running as another user of the group). Model cache
entries are built the same way in a temporary folder (:func:`temp_dir`), renamed into place.

A process killed while writing (SIGKILL, the OOM killer, a power cut) leaves its temporary
file or folder behind: ``.<name>.tmp-<host>-<pid>-<random>`` beside a file,
``<prefix><host>-<pid>-<random>`` for a folder, where ``<host>`` is a short hash of the host
name and ``<pid>`` the writer's process id. The writer holds an exclusive ``flock`` on it
(its file, or the folder itself) until it is renamed into place or removed. The next write
of the same file (the next build in the same cache folder) removes a leftover when it is
provably dead or old:

- never while its lock is held: a live writer holds it, whatever its age, even in another
  container or PID namespace (the kernel drops the lock when the process dies);
- at once when the lock is free, the leftover was made on this host, and its process no
  longer runs (``kill(pid, 0)`` fails with ``ESRCH``); not when that process is this one
  (a thread of ours may be between creating it and locking it);
- otherwise (made on another host sharing the folder, a pid that runs again, names of
  older embed_sql versions, a file system without locks) only once untouched for an hour,
  as before.

Durable as well as atomic: the new file (every file of a new folder) is flushed to disk
before the rename, and the folder holding it after, so a power cut leaves the old state or
the whole new one, never a renamed entry of empty files.

Only a regular file is ever replaced (never a directory, device or FIFO, checked again just
before the rename), and every refusal or OS failure names the target, never the temporary
file: :class:`~embed_sql.exceptions.InvalidParameterError` for a path that cannot be a file,
:class:`~embed_sql.exceptions.FileWriteError` for a folder or disk that cannot take it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from embed_sql.exceptions import FileWriteError, InvalidParameterError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; leftovers go by age alone
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_writer",
    "clean_leftovers",
    "clean_stale_dirs",
    "publish_dir",
    "temp_dir",
    "write_bytes_atomic",
    "write_text_atomic",
]

_TMP = ".tmp-"
#: how a temporary name ends: ``-<host>-<pid>-<random>``, then ``.<part>`` for a scratch
#: file of the same write (``mkstemp`` draws the random part from ``[a-z0-9_]``)
_OWNED = re.compile(
    r"-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[a-z0-9_]+(?P<part>\.[A-Za-z0-9_-]+)?$"
)
_HOUR = 3600.0


def _host() -> str:
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()


def _owned(prefix: str) -> str:
    """Return ``prefix`` followed by this process's host and pid: a temporary name's start."""
    return f"{prefix}{_host()}-{os.getpid()}-"


def _lock(fd: int) -> None:
    """Hold an exclusive lock on ``fd`` while the write lasts (where locks exist)."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    with suppress(OSError):  # a file system without locks: its leftovers go by age alone
        fcntl.flock(fd, fcntl.LOCK_EX)


def _held(path: Path) -> bool | None:
    """Whether a live writer holds the lock on ``path``; ``None`` when that cannot be told."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two cleaners never collide
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases our test lock
    return False


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts: its parent has not reaped it yet)."""
    if os.name != "posix" or pid <= 0:  # pragma: no cover - os.kill(pid, 0) ends it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _dead(leftover: Path, cutoff: float) -> bool:
    """Whether ``leftover`` is provably no live writer's, or untouched since ``cutoff``.

    See the module docstring for the rule. A scratch file of a write (``<temp>.<part>``) is
    judged by the lock of its write's temporary file.
    """
    match = _OWNED.search(leftover.name)
    owner = leftover
    if match is not None and match["part"]:
        owner = leftover.with_name(leftover.name[: -len(match["part"])])
    held = _held(owner)
    if held:
        return False
    if (
        held is False
        and match is not None
        and match["host"] == _host()
        and int(match["pid"]) != os.getpid()
        and not _running(int(match["pid"]))
    ):
        return True
    return leftover.lstat().st_mtime < cutoff


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


def _umask() -> int:
    """Return the umask, read without changing it where the system tells it (Linux)."""
    with suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0)  # elsewhere: set and restored (a thread creating files meanwhile
    os.umask(umask)  # would get them without the umask)
    return umask


def _usual_mode(folder: bool = False) -> int:
    return (0o777 if folder else 0o666) & ~_umask()


def _sync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename into it) to disk, where the system allows it."""
    with suppress(OSError):  # Windows, some network file systems: not supported
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends without error.

    The file's ``name`` is its temporary path, locked until the rename: a writer that needs
    a scratch file beside it calls it ``f"{fh.name}.<part>"`` (letters, digits, ``_``,
    ``-``), so that a kill's leftovers of both are recognised and removed together.

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
        fd, tmp = tempfile.mkstemp(prefix=_owned(f".{target.name}{_TMP}"), dir=target.parent)
    except OSError as exc:
        raise _cannot_write(target, exc) from exc
    try:
        _lock(fd)
        # the name is the temporary path; closing the file (after the rename) drops the lock
        fh = open(tmp, "wb", opener=lambda _path, _flags: fd)  # noqa: SIM115
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
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
        _sync_dir(target.parent)
    finally:
        try:
            fh.close()
        finally:
            Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_writer(path) as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def temp_dir(parent: str | os.PathLike[str], prefix: str) -> Iterator[Path]:
    """Yield a new folder in ``parent``, locked, for a build to rename into place.

    Named ``<prefix><host>-<pid>-<random>`` and removed when the block ends, unless it was
    renamed away; a killed build's folder is removed by :func:`clean_stale_dirs` as soon
    as its process is gone (see the module docstring).
    """
    folder = Path(parent)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_owned(prefix), dir=folder))
    try:
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _lock(fd)
        yield tmp
    finally:
        try:
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            os.close(fd)


def publish_dir(tmp: Path, final: Path) -> None:
    """Rename the finished build folder ``tmp`` (from :func:`temp_dir`) to ``final``, durably.

    Its files are flushed to disk first, it gets the usual folder mode (``0o777`` less the
    umask; ``mkdtemp`` makes it private) and the parent folder is flushed after the rename.
    An OS failure raises :class:`~embed_sql.exceptions.FileWriteError` (an ``OSError``)
    naming ``final``; after a failed rename the caller tells a lost race (another process
    published the same entry first) from a failure.
    """
    try:
        folders = [tmp]
        for path in tmp.rglob("*"):
            if path.is_symlink():
                continue
            if path.is_dir():
                folders.append(path)
            elif path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        for folder in reversed(folders):  # the names in each folder, deepest first
            _sync_dir(folder)
        os.chmod(tmp, _usual_mode(folder=True))
    except OSError as exc:  # a full disk shows at fsync: name the entry, not the temporary
        raise _cannot_write(final, exc) from exc
    try:
        os.rename(tmp, final)
    except OSError as exc:  # also a lost race (``final`` exists): the caller tells which
        raise _cannot_write(final, exc) from exc
    _sync_dir(final.parent)


def clean_leftovers(
    folder: str | os.PathLike[str], *, name: str | None = None, older_than: float = _HOUR
) -> int:
    """Remove temporary files of interrupted writes; return how many were removed.

    Those of ``name`` (or of any file) in ``folder`` whose writer is provably dead, or that
    are untouched for ``older_than`` seconds and not locked (see the module docstring).
    """
    removed = 0
    cutoff = time.time() - older_than
    pattern = f".{name}{_TMP}*" if name is not None else f".*{_TMP}*"
    for leftover in Path(folder).glob(pattern):
        try:
            if leftover.is_file() and _dead(leftover, cutoff):
                leftover.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def clean_stale_dirs(folder: str | os.PathLike[str], prefix: str, older_than: float = _HOUR) -> int:
    """Remove ``prefix*`` directories in ``folder`` left by a killed build; return the count.

    Those whose build is provably dead, or untouched for ``older_than`` seconds and not
    locked (see the module docstring): a folder in use by a build running now, in this
    process or another, is kept.
    """
    removed = 0
    cutoff = time.time() - older_than
    for leftover in Path(folder).glob(f"{prefix}*"):
        try:
            if leftover.is_dir() and not leftover.is_symlink() and _dead(leftover, cutoff):
                shutil.rmtree(leftover)
                removed += 1
        except OSError:
            continue
    return removed
