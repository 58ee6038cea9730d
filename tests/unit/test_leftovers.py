"""Which temporary files and folders of interrupted writes the next write removes, and when.

The rule (see :mod:`embed_sql._io`): never one whose lock is held; at once one made on this
host by a process that no longer runs; any other only once untouched for an hour. The kills
themselves are in tests/integration/test_crash.py.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embed_sql import _io
from embed_sql._io import (
    atomic_writer,
    clean_leftovers,
    clean_stale_dirs,
    publish_dir,
    temp_dir,
)
from embed_sql.exceptions import FileWriteError


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child.wait() == 0
    return child.pid


def leftover(
    folder: Path, name: str, *, host: str | None = None, pid: int, hours: float = 0
) -> Path:
    """A temporary file of ``name`` as a write by ``pid`` on ``host`` would have left it."""
    path = folder / f".{name}.tmp-{host or _io._host()}-{pid}-abcd1234"
    path.write_bytes(b"half a file")
    if hours:
        then = time.time() - hours * 3600
        os.utime(path, (then, then))
    return path


def test_a_dead_writers_file_is_removed_by_the_next_write_at_once(
    tmp_path: Path, dead_pid: int
) -> None:
    stale = leftover(tmp_path, "r.json", pid=dead_pid)
    _io.write_text_atomic(tmp_path / "r.json", "{}")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_locked_file_is_kept_whatever_its_age_and_pid(tmp_path: Path, dead_pid: int) -> None:
    held = leftover(tmp_path, "r.json", pid=dead_pid, hours=5)
    with open(held, "rb") as fh:  # a writer in another PID namespace would hold it so
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        _io.write_text_atomic(tmp_path / "r.json", "{}")
        assert held.exists()
    _io.write_text_atomic(tmp_path / "r.json", "{}")  # the lock is gone: so is the file
    assert not held.exists()


def test_a_running_process_or_another_host_keeps_a_young_file_for_an_hour(
    tmp_path: Path, dead_pid: int
) -> None:
    running = leftover(tmp_path, "r.json", pid=os.getppid())
    elsewhere = leftover(tmp_path, "r.json", host="00000000", pid=dead_pid)
    mine = leftover(tmp_path, "r.json", pid=os.getpid())  # maybe a thread of ours, unlocked yet
    _io.write_text_atomic(tmp_path / "r.json", "{}")
    assert running.exists()
    assert elsewhere.exists()
    assert mine.exists()
    for path in (running, elsewhere, mine):
        os.utime(path, (0, 0))
    _io.write_text_atomic(tmp_path / "r.json", "{}")
    assert not running.exists()
    assert not elsewhere.exists()
    assert not mine.exists()


def test_only_the_leftovers_of_the_file_written_are_removed(tmp_path: Path, dead_pid: int) -> None:
    other = leftover(tmp_path, "other.json", pid=dead_pid)
    _io.write_text_atomic(tmp_path / "r.json", "{}")
    assert other.exists()
    assert clean_leftovers(tmp_path) == 1  # any file's, when no name is given
    assert not other.exists()


def test_a_live_writers_file_and_its_scratch_file_survive_a_cleaner(tmp_path: Path) -> None:
    target = tmp_path / "x.index"
    with atomic_writer(target) as fh:
        temp = Path(fh.name)
        assert temp.parent == tmp_path
        assert temp.name.startswith(f".x.index.tmp-{_io._host()}-{os.getpid()}-")
        scratch = Path(f"{fh.name}.vectors")
        scratch.write_bytes(b"a graph")
        assert clean_leftovers(tmp_path, older_than=0) == 0  # locked: kept, however old
        assert temp.exists()
        assert scratch.exists()
        scratch.unlink()
        fh.write(b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.index"]


def test_a_dead_writers_scratch_file_goes_with_its_temporary_file(
    tmp_path: Path, dead_pid: int
) -> None:
    temp = leftover(tmp_path, "x.index", pid=dead_pid)
    scratch = Path(f"{temp}.vectors")
    scratch.write_bytes(b"a graph")
    orphan = tmp_path / f".x.index.tmp-{_io._host()}-{dead_pid}-gone1234.vectors"
    orphan.write_bytes(b"a graph whose temporary file is gone")
    assert clean_leftovers(tmp_path, name="x.index") == 3
    assert list(tmp_path.iterdir()) == []


def test_a_dead_builds_folder_is_removed_and_a_live_one_kept(tmp_path: Path, dead_pid: int) -> None:
    dead = tmp_path / f".tmp-fp32-{_io._host()}-{dead_pid}-abcd1234"
    (dead / "model.onnx").parent.mkdir()
    (dead / "model.onnx").write_bytes(b"half an export")
    with temp_dir(tmp_path, ".tmp-fp32-") as live:
        assert live.name.startswith(f".tmp-fp32-{_io._host()}-{os.getpid()}-")
        (live / "model.onnx").write_bytes(b"an export under way")
        assert clean_stale_dirs(tmp_path, ".tmp-", older_than=0) == 1
        assert not dead.exists()
        assert (live / "model.onnx").exists()  # locked by this build: kept, however old
    assert list(tmp_path.iterdir()) == []  # the block's end removes it when not renamed


def test_a_folder_renamed_into_place_is_kept(tmp_path: Path) -> None:
    with temp_dir(tmp_path, ".tmp-static-") as tmp:
        (tmp / "config.json").write_text("{}")
        os.rename(tmp, tmp_path / "static-0123")
    assert [p.name for p in tmp_path.iterdir()] == ["static-0123"]
    assert (tmp_path / "static-0123" / "config.json").read_text() == "{}"


@pytest.fixture
def flushed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths ``os.fsync`` is called on by embed_sql._io, in order."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(_io.os, "fsync", fsync)
    return seen


def test_a_published_folder_is_flushed_and_readable_as_a_mkdir_would_make_it(
    tmp_path: Path, flushed: list[str]
) -> None:
    final = tmp_path / "static-0123"
    with temp_dir(tmp_path, ".tmp-static-") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "model.onnx").write_bytes(b"weights")
        (tmp / "config.json").write_text("{}")
        assert (tmp.stat().st_mode & 0o777) == 0o700  # private while it is built
        publish_dir(tmp, final)
    umask = os.umask(0)
    os.umask(umask)
    assert (final.stat().st_mode & 0o777) == 0o777 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["static-0123"]
    names = [Path(p).name for p in flushed]
    # before the rename (under the temporary name): every file, then every folder's names,
    # deepest first; after it, the parent folder
    assert sorted(names[:2]) == ["config.json", "model.onnx"]
    assert all(".tmp-static-" in p for p in flushed[:4])
    assert names[2] == "sub"
    assert Path(flushed[3]).parent == tmp_path
    assert flushed[4:] == [str(tmp_path)]


def test_a_full_disk_while_publishing_names_the_entry_not_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with temp_dir(tmp_path, ".tmp-static-") as tmp:
        (tmp / "config.json").write_text("{}")
        monkeypatch.setattr(_io.os, "fsync", full)
        with pytest.raises(FileWriteError, match=r"static-0123.*free some space") as err:
            publish_dir(tmp, tmp_path / "static-0123")
        assert ".tmp-" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_written_file_is_flushed_then_its_folder_after_the_rename(
    tmp_path: Path, flushed: list[str]
) -> None:
    _io.write_text_atomic(tmp_path / "r.json", "{}")
    assert len(flushed) == 2
    assert ".r.json.tmp-" in flushed[0]
    assert flushed[1] == str(tmp_path)
