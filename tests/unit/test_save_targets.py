"""Saving to places that cannot hold an index file: each refusal names the target and the fix.

Never the hidden temporary file beside it, never a foreign ``OSError``, and nothing left
behind; a device or FIFO is never replaced.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from embed_sql._io import write_text_atomic
from embed_sql.exceptions import EmbedSQLError
from embed_sql.vectors import VectorIndex


def small() -> VectorIndex:
    return VectorIndex.build(np.eye(3, dtype=np.float32), [1, 2, 3], exact=True)


def refused_save(target: str | Path, *words: str) -> str:
    """Saving to ``target`` raises an EmbedSQLError naming it (not a temporary file)."""
    with pytest.raises(EmbedSQLError) as info:
        small().save(target)
    msg = str(info.value)
    assert repr(str(target)) in msg, msg
    assert ".tmp-" not in msg, msg
    for word in words:
        assert word in msg, msg
    return msg


def test_an_empty_path_is_refused() -> None:
    refused_save("", "give a file path")


def test_a_directory_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "inside").write_text("x")
    refused_save(tmp_path, "directory")
    assert [p.name for p in tmp_path.iterdir()] == ["inside"]


def test_dev_null_is_refused_and_stays_a_device() -> None:
    refused_save("/dev/null", "not a regular file")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.index"
    os.mkfifo(fifo)
    refused_save(fifo, "not a regular file")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    refused_save(tmp_path / "plain" / "a.index", "folder")
    assert (tmp_path / "plain").read_text() == "x"


def test_a_read_only_folder_is_refused_naming_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root writes anyway: fail the temporary file as the OS would

        def denied(*args: object, prefix: str = "", dir: str = "", **kw: object) -> tuple[int, str]:
            name = os.path.join(dir, f"{prefix}abc123")
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)

        monkeypatch.setattr(tempfile, "mkstemp", denied)
    try:
        refused_save(folder / "a.index", "writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_failing_write_names_the_target_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    refused_save(tmp_path / "a.index", "No space left")
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_becomes_a_device_during_the_write_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.index"
    real_fsync = os.fsync

    def swap_in_a_fifo(fd: int) -> None:
        real_fsync(fd)
        os.mkfifo(target)  # what a root adversary could do with a device node

    monkeypatch.setattr(os, "fsync", swap_in_a_fifo)
    refused_save(target, "not a regular file")
    assert stat.S_ISFIFO(os.stat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["a.index"]


def test_text_writes_are_refused_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(EmbedSQLError, match=repr(str(tmp_path))):
        write_text_atomic(tmp_path, "{}")


def test_a_graph_that_fails_to_serialise_names_the_target_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embed_sql.vectors.hnsw import HNSWGraph

    def broken(self: HNSWGraph, path: Path) -> None:
        msg = f"Failed to open {path}"  # as usearch reports an I/O error
        raise RuntimeError(msg)

    index = VectorIndex.build(np.eye(3, dtype=np.float32), [1, 2, 3])
    monkeypatch.setattr(HNSWGraph, "save_to", broken)
    with pytest.raises(EmbedSQLError, match=repr(str(tmp_path / "a.index"))):
        index.save(tmp_path / "a.index")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_streaming_names_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embed_sql.vectors import index_file

    real_head, calls = index_file._head, []

    def full_on_the_rewrite(*args: object) -> bytes:
        calls.append(1)
        if len(calls) == 2:  # the header rewritten after the sections: a write that fails
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_head(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(index_file, "_head", full_on_the_rewrite)
    refused_save(tmp_path / "a.index", "No space left")
    assert list(tmp_path.iterdir()) == []
