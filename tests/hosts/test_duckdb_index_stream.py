"""embed_create_index reads its table in batches into the index, never the whole column."""

from __future__ import annotations

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
