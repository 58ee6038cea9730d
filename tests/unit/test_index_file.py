"""The index file format: layout, compatibility with older files, and refusals."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.vectors import IndexFileError, VectorIndex
from embed_sql.vectors.index_file import read_index_file, write_index_file

MAGIC = b"EMBEDSQL-INDEX\x00\x01"


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def parse(path: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    """Read a file by the documented layout, without the module's reader."""
    data = path.read_bytes()
    assert data[: len(MAGIC)] == MAGIC
    (head_len,) = struct.unpack("<Q", data[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    header = json.loads(data[start : start + head_len])
    offset, sections = start + head_len, {}
    for s in header["sections"]:
        sections[s["name"]] = data[offset : offset + s["length"]]
        offset += s["length"]
    assert offset == len(data)
    return header, sections


def test_exact_index_file_has_the_documented_layout(tmp_path: Path) -> None:
    x = vectors(10)
    idx = VectorIndex.build(x, [f"k{i}" for i in range(10)], exact=True, model="m")
    idx.meta["table"] = "docs"
    header, sections = parse(idx.save(tmp_path / "a.index"))
    assert list(header) == [
        *["format", "model", "model_key", "metric", "dim", "dtype", "exact", "rescore"],
        *["count", "labels", "params", "meta", "sections"],
    ]
    assert header["format"] == 1
    assert header["params"] == {"M": 16, "ef_construction": 64, "ef_search": 48}
    assert header["meta"] == {"table": "docs"}
    assert list(sections) == ["keys", "alive", "vectors"]
    assert sections["vectors"] == x.tobytes()
    assert sections["alive"] == np.packbits(np.ones(10, bool)).tobytes()
    keys = pa.ipc.open_stream(sections["keys"]).read_all().column("key")
    assert keys.to_pylist() == [f"k{i}" for i in range(10)]
    for s in header["sections"]:  # type: ignore[attr-defined]
        assert s["sha256"] == hashlib.sha256(sections[s["name"]]).hexdigest()


def test_rescoring_graph_file_carries_the_float32_matrix(tmp_path: Path) -> None:
    x = vectors(50)
    header, sections = parse(VectorIndex.build(x, range(50)).save(tmp_path / "a.index"))
    assert list(sections) == ["keys", "alive", "vectors", "matrix"]
    assert sections["matrix"] == x.tobytes()
    assert (header["dtype"], header["rescore"]) == ("f16", True)


def test_files_with_usearch_parameter_names_still_load(tmp_path: Path) -> None:
    x = vectors(200)
    new = VectorIndex.build(x, range(200), M=8, ef_construction=50, ef_search=20)
    path = new.save(tmp_path / "new.index")
    file = read_index_file(path)
    fields = {k: v for k, v in file.header.items() if k not in ("format", "sections")}
    fields["params"] = {"connectivity": 8, "expansion_add": 50, "expansion_search": 20}
    old = write_index_file(tmp_path / "old.index", fields, file.sections)
    want = new.search(x[:50], 3)  # the same graph answers the same (the build is threaded)
    for opened in (VectorIndex.load(old), VectorIndex.view(old)):
        got = opened.search(x[:50], 3)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.distances, want.distances)
        header, _ = parse(opened.save(tmp_path / "again.index"))
        assert header["params"] == {"M": 8, "ef_construction": 50, "ef_search": 20}


def test_saved_file_gets_the_usual_mode_and_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "a.index"
    VectorIndex.build(vectors(5), range(5), exact=True).save(path)
    viewed = VectorIndex.view(path)
    VectorIndex.build(vectors(7, seed=1), range(7), exact=True).save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert len(VectorIndex.load(path)) == 7
    assert len(viewed) == 5  # a view keeps reading the file it mapped
    np.testing.assert_array_equal(viewed.vectors(), vectors(5))
    assert [p.name for p in tmp_path.iterdir()] == ["a.index"]


def test_other_formats_and_missing_sections_are_refused(tmp_path: Path) -> None:
    path = VectorIndex.build(vectors(5), range(5), exact=True).save(tmp_path / "a.index")
    file = read_index_file(path)
    fields = {k: v for k, v in file.header.items() if k not in ("format", "sections")}
    no_alive = {k: v for k, v in file.sections.items() if k != "alive"}
    write_index_file(tmp_path / "b.index", fields, no_alive)
    with pytest.raises(IndexFileError, match="no section 'alive'"):
        VectorIndex.load(tmp_path / "b.index")
    data = path.read_bytes().replace(b'"format": 1', b'"format": 9', 1)
    (tmp_path / "c.index").write_bytes(data)
    with pytest.raises(IndexFileError, match="index format 9"):
        VectorIndex.view(tmp_path / "c.index")
    (tmp_path / "d.index").write_bytes(MAGIC + struct.pack("<Q", 5) + b"{not json")
    with pytest.raises(IndexFileError, match="header is not JSON"):
        VectorIndex.load(tmp_path / "d.index")
    (tmp_path / "e.index").write_bytes(MAGIC[:10])
    with pytest.raises(IndexFileError, match="too short"):
        VectorIndex.load(tmp_path / "e.index")


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    for exact in (True, False):
        path = VectorIndex(4, exact=exact, metric="l2").save(tmp_path / f"{exact}.index")
        for opened in (VectorIndex.load(path), VectorIndex.view(path)):
            assert (len(opened), opened.label_count, opened.dim) == (0, 0, 4)
            assert opened.search(vectors(2, dim=4), 3).counts.tolist() == [0, 0]


def test_a_viewed_index_searches_with_its_saved_ef_search(tmp_path: Path) -> None:
    x = np.random.default_rng(3).normal(size=(300, 8)).astype(np.float32)
    index = VectorIndex.build(x, np.arange(300), ef_search=7, threads=1)
    path = index.save(tmp_path / "ef.index")
    loaded, viewed = VectorIndex.load(path), VectorIndex.view(path)
    assert loaded._hnsw.ef_search == viewed._hnsw.ef_search == 7  # type: ignore[union-attr]
    a, b = loaded.search(x[:50], 5), viewed.search(x[:50], 5)
    assert (a.labels == b.labels).all()


def test_a_write_removes_old_leftovers_of_interrupted_writes(tmp_path: Path) -> None:
    from embed_sql._io import write_text_atomic

    old, young = tmp_path / ".r.json.tmp-old", tmp_path / ".r.json.tmp-young"
    for leftover in (old, young):
        leftover.write_bytes(b"half a file")
    os.utime(old, (0, 0))  # left by a crash long ago
    write_text_atomic(tmp_path / "r.json", "{}")
    assert (tmp_path / "r.json").read_text() == "{}"
    assert not old.exists()
    assert young.exists()  # may belong to a writer still at work
    mode = stat.S_IMODE((tmp_path / "r.json").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_loading_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.index"
    os.mkfifo(fifo)
    for opener in (VectorIndex.load, VectorIndex.view):
        with pytest.raises(IndexFileError, match="not a regular file"):
            opener(fifo)


def test_saving_a_graph_does_not_hold_a_second_copy_of_it_in_memory(tmp_path: Path) -> None:
    import tracemalloc

    x = np.random.default_rng(4).normal(size=(20_000, 32)).astype(np.float32)
    index = VectorIndex.build(x, np.arange(20_000), dtype="f32", M=8, threads=1)
    graph_bytes = index._hnsw._index.serialized_length  # type: ignore[union-attr]
    tracemalloc.start()
    try:
        path = index.save(tmp_path / "big.index")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < graph_bytes / 2  # streamed a chunk at a time, not the graph's bytes
    reopened = VectorIndex.view(path)
    np.testing.assert_array_equal(reopened.search(x[:20], 3).labels, index.search(x[:20], 3).labels)


def test_loading_a_graph_does_not_copy_its_bytes_before_usearch_reads_them(
    tmp_path: Path,
) -> None:
    import tracemalloc

    x = np.random.default_rng(5).normal(size=(20_000, 32)).astype(np.float32)
    path = VectorIndex.build(x, np.arange(20_000), dtype="f32", M=8, threads=1).save(
        tmp_path / "g.index"
    )
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = VectorIndex.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.75 * size  # the file once (and small temporaries), not a graph copy
    assert len(loaded) == 20_000
