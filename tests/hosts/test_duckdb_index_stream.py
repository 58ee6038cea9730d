"""embed_create_index reads its table in batches into the index, never the whole column."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import embed_sql
from embed_sql.vectors import VectorIndex, from_numpy

ROWS = 150_000  # more than two of the read's 65,536-row batches


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    rng = np.random.default_rng(0)
    mat = rng.normal(size=(ROWS, 8)).astype(np.float32)
    valid = rng.random(ROWS) > 0.01
    valid[:70_000] = False  # the first batch holds NULL vectors only
    valid[70_000] = True
    src = pa.table({"id": np.arange(ROWS) * 2, "v": from_numpy(mat, valid=valid)})
    connection.register("src", src)
    connection.execute("CREATE TABLE docs AS SELECT id, v::FLOAT[8] AS v FROM src")
    connection.unregister("src")
    yield connection
    connection.close()


def test_the_table_goes_into_the_index_batch_by_batch(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    original = VectorIndex.from_batches.__func__  # type: ignore[attr-defined]

    def spy(cls: type[VectorIndex], batches: object, **kw: object) -> VectorIndex:
        def counted() -> Iterator[pa.RecordBatch]:
            for batch in batches:  # type: ignore[attr-defined]
                seen.append(batch.num_rows)
                yield batch

        return original(cls, counted(), **kw)

    monkeypatch.setattr(VectorIndex, "from_batches", classmethod(spy))
    [(made,)] = con.sql("SELECT embed_create_index('ix', 'docs', exact := true)").fetchall()
    assert len(seen) >= 3
    assert max(seen) <= 65_536
    assert sum(seen) == ROWS
    present = con.sql("SELECT id, v FROM docs WHERE v IS NOT NULL ORDER BY id").to_arrow_table()
    assert made == present.num_rows
    # the same index a build over the whole column gives, and fresh for the table's SQL
    whole = VectorIndex.build(present.column("v"), present.column("id"), exact=True)
    con.execute("CREATE TABLE q AS SELECT id, v FROM docs WHERE v IS NOT NULL AND id % 997 = 0")
    query = "SELECT left_key, right_key FROM embed_knn_join('q', 'ix', k := 3) ORDER BY ALL"
    got = con.sql(query).fetchall()
    q = con.sql("SELECT id, v FROM q").to_arrow_table()
    labels = whole.search(q.column("v"), 3).labels
    ids = q.column("id").to_pylist()
    want = sorted(
        (ids[i], k) for i, row in enumerate(labels) for k in whole.key_of(row).to_pylist()
    )
    assert len(got) == 3 * q.num_rows
    assert got == want


def test_a_failed_build_leaves_the_connection_usable(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.Error, match="preset='quick' is not known"):
        con.sql("SELECT embed_create_index('ix', 'docs', preset := 'quick')").fetchall()
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO docs VALUES (-1, NULL)")
    con.execute("COMMIT")
    made = con.sql("SELECT embed_create_index('ix', 'docs', exact := true)").fetchall()
    assert made[0][0] == con.sql("SELECT count(v) FROM docs").fetchall()[0][0]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith(field))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux peak RSS reset")
@pytest.mark.parametrize(("how", "most"), [("python", 2.3), ("sql", 2.9)])
def test_a_build_from_duckdbs_stream_holds_little_beyond_the_index(
    tiny_source: Path, how: str, most: float
) -> None:
    # a column of a batch DuckDB hands over (Arrow C stream) keeps the whole batch alive:
    # keys (and, in SQL, row hashes) kept as they came held every batch's vectors until the
    # end: 2.9x / 3.4x the float32 matrix at the peak here (1.85x / 2.5x now), 1 GiB beyond
    # the graph for an index built from SQL over 1M 256-d rows
    con = duckdb.connect()
    embed_sql.register(con, model=str(tiny_source))
    n, dim = 400_000, 128
    con.execute(
        f"CREATE TABLE t AS SELECT range AS id, list_transform(range({dim}), "
        f"lambda x: random()::FLOAT)::FLOAT[{dim}] AS v FROM range({n})"
    )
    reader = con.sql("SELECT id, v FROM t").to_arrow_reader(8192) if how == "python" else None
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from here
    before = _status_mib("VmRSS")
    if reader is not None:
        assert len(VectorIndex.from_batches(reader, rows=n, exact=True)) == n
    else:
        assert con.sql("SELECT embed_create_index('ix', 't', exact := true)").fetchall() == [(n,)]
    grown = _status_mib("VmHWM") - before
    matrix = n * dim * 4 / 2**20  # the float32 copy the exact index keeps: 195 MiB
    assert grown < most * matrix
