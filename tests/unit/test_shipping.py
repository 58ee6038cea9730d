"""Files shipped to cluster workers (model cache entries, index files) leave nothing behind:
written once per node, atomically, and a killed writer's leftovers or an old index removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embed_sql import _io
from embed_sql.distributed.batches import KnnBatch, materialize_files, shipped_file
from embed_sql.vectors import VectorIndex


@pytest.fixture(scope="module")
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert child.wait() == 0
    return child.pid


def test_model_files_are_published_whole_and_a_killed_workers_folder_removed(
    tmp_path: Path, dead_pid: int
) -> None:
    root = tmp_path / "models" / "minilm" / "fp32-abc"
    root.parent.mkdir(parents=True)
    killed = root.parent / f".tmp-{root.name}-{_io._host()}-{dead_pid}-x1y2"
    killed.mkdir()
    (killed / "model.onnx").write_bytes(b"half")
    files = {"model.onnx": b"weights", "tokenizer/vocab.txt": b"a\nb\n"}
    assert materialize_files(files, root) == root
    assert sorted(p.name for p in root.parent.iterdir()) == ["fp32-abc"]
    assert (root / "tokenizer" / "vocab.txt").read_bytes() == b"a\nb\n"
    umask = os.umask(0)
    os.umask(umask)
    assert (root.stat().st_mode & 0o777) == 0o777 & ~umask  # readable as a mkdir'd folder
    (root / "model.onnx").write_bytes(b"kept")
    materialize_files({"model.onnx": b"other"}, root)  # there already: reused as it is
    assert (root / "model.onnx").read_bytes() == b"kept"


def test_a_shipped_index_is_written_once_and_old_ones_and_leftovers_removed(
    tmp_path: Path, dead_pid: int
) -> None:
    index = VectorIndex.build(np.eye(4, dtype=np.float32), [1, 2, 3, 4], exact=True)
    data = index.save(tmp_path / "docs.index").read_bytes()
    folder = tmp_path / "shipped"
    folder.mkdir()
    old = folder / "0123456789abcdef01234567.index"
    old.write_bytes(b"an index of last week")
    day_ago = time.time() - 2 * 86_400
    os.utime(old, (day_ago, day_ago))
    recent = folder / "76543210fedcba9876543210.index"
    recent.write_bytes(b"an index of this morning")
    name = "aaaaaaaaaaaaaaaaaaaaaaaa.index"
    killed = folder / f".{name}.tmp-{_io._host()}-{dead_pid}-k1"
    killed.write_bytes(b"half an index")

    local = shipped_file(data, folder)
    assert local.read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == sorted([local.name, recent.name])
    inode = local.stat().st_ino
    os.utime(local, (day_ago, day_ago))
    assert shipped_file(data, folder) == local  # reused as it is, and touched: in use again
    assert local.stat().st_ino == inode
    assert local.stat().st_mtime > day_ago + 86_400


def test_a_join_actor_maps_the_shipped_bytes_whatever_file_is_at_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    index = VectorIndex.build(np.eye(4, dtype=np.float32), [1, 2, 3, 4], exact=True)
    data = index.save(tmp_path / "docs.index").read_bytes()
    other = VectorIndex.build(np.eye(4, dtype=np.float32), [5, 6, 7, 8], exact=True)
    stale = other.save(tmp_path / "stale.index")  # another version at the path the driver named
    batch = KnnBatch(str(stale), 2, data=data)
    (shipped,) = (tmp_path / f"embed_sql-shipped-{os.getuid()}").iterdir()
    assert shipped.suffix == ".index"
    assert batch.index.keys().to_pylist() == [1, 2, 3, 4]  # the bytes shipped, not the file
