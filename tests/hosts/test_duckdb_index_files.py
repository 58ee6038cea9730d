"""Index files from SQL: embed_load_index refuses what is not an index file, at once.

The refusal names the file and the fix (DuckDB wraps it, keeping our words); saving with
``path :=`` to somewhere that cannot hold a file names that path, never a temporary file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

import embed_sql
from embed_sql.vectors import VectorIndex


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    connection.execute(
        "CREATE TABLE docs AS SELECT i AS id, 'doc ' || i AS title FROM range(5) t(i)"
    )
    connection.execute("CREATE TABLE docs_v AS SELECT id, title, embed(title) AS v FROM docs")
    yield connection
    connection.close()


def load_sql(path: Path | str) -> str:
    return f"SELECT embed_load_index('docs_index', '{path}')"


def test_embed_load_index_refuses_a_fifo_without_blocking(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.index"
    os.mkfifo(fifo)
    errors: list[str] = []

    def attempt() -> None:
        try:
            con.sql(load_sql(fifo)).fetchall()
        except duckdb.Error as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # unblock the reader so the thread can end
        with open(fifo, "wb"):
            pass
        pytest.fail("embed_load_index blocked on a FIFO")
    assert len(errors) == 1
    assert str(fifo) in errors[0]
    assert "not a regular file" in errors[0]


@pytest.mark.parametrize("what", ["directory", "/dev/null", "empty", "crafted"])
def test_embed_load_index_refuses_what_is_not_an_index_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, what: str
) -> None:
    path = {"directory": tmp_path, "/dev/null": Path("/dev/null")}.get(what, tmp_path / "x")
    if what == "empty":
        path.write_bytes(b"")
    if what == "crafted":  # a graph whose first node claims a negative level, checksums valid
        from tests.hostile_index import craft, split

        x = np.random.default_rng(0).normal(size=(30, 32)).astype(np.float32)
        good = VectorIndex.build(x, range(30), M=4).save(tmp_path / "good.index")
        header, sections = split(good)
        blob = sections["vectors"]
        rows, width = np.frombuffer(blob[:8], "<u4")
        at = 8 + int(rows) * int(width) + 64 + 40
        bad = blob[:at] + (-5).to_bytes(2, "little", signed=True) + blob[at + 2 :]
        craft(path, header, {**sections, "vectors": bad})
    with pytest.raises(duckdb.Error) as info:
        con.sql(load_sql(path)).fetchall()
    assert str(path) in str(info.value)
    assert "save()" in str(info.value)


@pytest.mark.parametrize("target", ["/dev/null", "directory"])
def test_embed_create_index_path_names_the_target_it_cannot_write(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, target: str
) -> None:
    path = tmp_path if target == "directory" else Path(target)
    sql = f"SELECT embed_create_index('docs_index', 'docs_v', path := '{path}')"
    with pytest.raises((duckdb.Error, embed_sql.EmbedSQLError)) as info:
        con.sql(sql).fetchall()
    assert repr(str(path)) in str(info.value)
    assert ".tmp-" not in str(info.value)


def test_embed_load_index_verify_false_skips_only_the_vector_checksums(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "docs.index"
    con.execute(f"SELECT embed_create_index('docs_index', 'docs_v', path := '{path}')").fetchall()
    want = con.sql("FROM embed_knn_join('docs_v', 'docs_index', k := 2)").fetchall()
    assert con.sql(f"SELECT embed_load_index('again', '{path}', verify := false)").fetchall() == [
        (5,)
    ]
    got = con.sql("FROM embed_knn_join('docs_v', 'again', k := 2)").fetchall()
    assert got == want
    with pytest.raises(duckdb.Error, match="verify is NULL"):
        con.sql(f"SELECT embed_load_index('x', '{path}', verify := NULL)").fetchall()
    # a structural change (a truncated file) is refused either way
    data = bytearray(path.read_bytes())
    short = tmp_path / "short.index"
    short.write_bytes(bytes(data[: len(data) // 2]))
    for verify in ("true", "false"):
        with pytest.raises(duckdb.Error, match="IndexFileError"):
            con.sql(f"SELECT embed_load_index('y', '{short}', verify := {verify})").fetchall()
    with pytest.raises(embed_sql.InvalidParameterError, match="verify=False needs mmap=True"):
        embed_sql.load_index(con, "z", path, mmap=False, verify=False)
