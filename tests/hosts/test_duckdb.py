"""What only the DuckDB host does: SQL statements, registration, cache, failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import embed_sql
from embed_sql import TextEncoder
from embed_sql.exceptions import InvalidParameterError, ModelNotFoundError
from embed_sql.models.cache import EmbeddingCache
from embed_sql.vectors import to_numpy
from tests.tiny_model import HIDDEN


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    rows = con.sql(sql).fetchall()
    assert len(rows) == 1
    return rows[0]


def _vectors(con: duckdb.DuckDBPyConnection, sql: str) -> np.ndarray:
    return to_numpy(con.sql(sql).to_arrow_table().column(0))


def test_result_is_a_duckdb_array_type(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT typeof(embed('food'))") == (f"FLOAT[{HIDDEN}]",)


def test_duckdb_array_functions_work_on_embed_columns(con: duckdb.DuckDBPyConnection) -> None:
    sim, dist, ip, self_sim = one(
        con,
        "SELECT array_cosine_similarity(embed('food'), embed('rain')),"
        " array_distance(embed('food'), embed('rain')),"
        " array_inner_product(embed('food'), embed('rain')),"
        " array_cosine_similarity(embed('food'), embed('food'))",
    )
    assert self_sim == pytest.approx(1.0, abs=1e-6)
    assert ip == pytest.approx(sim, abs=1e-5)  # unit vectors: inner product = cosine
    assert dist == pytest.approx(np.sqrt(2 - 2 * sim), abs=1e-4)


def test_registering_twice_is_safe_and_adds_aliases(
    con: duckdb.DuckDBPyConnection, tiny_source: Path
) -> None:
    reg = embed_sql.register(con, model=str(tiny_source), models={"q8": f"{tiny_source}:int8"})
    assert set(reg.functions) == {"embed", "embed_q8"}
    assert reg.functions["embed_q8"].resolved.variant == "int8"
    q8, fp = one(con, "SELECT embed_q8('food'), embed('food')")
    assert len(q8) == len(fp) == HIDDEN
    assert np.dot(q8, fp) > 0.9


@pytest.mark.parametrize("alias", ["Upper", "with space", "1st", "semi;colon", ""])
def test_alias_must_be_a_plain_identifier(
    con: duckdb.DuckDBPyConnection, tiny_source: Path, alias: str
) -> None:
    with pytest.raises(InvalidParameterError, match="lower-case SQL identifier"):
        embed_sql.register(con, models={alias: str(tiny_source)})


@pytest.mark.parametrize(
    ("alias", "kind"),
    [("classify", "macro"), ("knn_join", "macro"), ("sql_knn", "internal function")],
)
def test_alias_may_not_take_the_name_of_an_embed_sql_macro(
    con: duckdb.DuckDBPyConnection, tiny_source: Path, alias: str, kind: str
) -> None:
    # embed_classify(text) used to replace the zero-shot macro and break it
    with pytest.raises(InvalidParameterError, match=rf"embed_{alias}\(\), .* own {kind}"):
        embed_sql.register(con, models={alias: str(tiny_source)})


def test_unknown_extra_model_fails_at_registration(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ModelNotFoundError, match="nope"):
        embed_sql.register(con, models={"x": "nope"})


def test_closed_connection_and_non_connection_are_refused(tiny_source: Path) -> None:
    closed = duckdb.connect()
    closed.close()
    with pytest.raises(InvalidParameterError, match="closed"):
        embed_sql.register(closed, model=str(tiny_source))
    with pytest.raises(InvalidParameterError, match="needs a DuckDB connection, got str"):
        embed_sql.register("duckdb.db", model=str(tiny_source))  # type: ignore[arg-type]


def test_non_text_argument_fails_at_bind_time(con: duckdb.DuckDBPyConnection) -> None:
    # refused by DuckDB's binder (its wording is its own: only the type is asserted)
    with pytest.raises(duckdb.BinderException):
        con.sql("SELECT embed(42)").fetchall()
    with pytest.raises(duckdb.BinderException):
        con.sql("SELECT embed([1, 2])").fetchall()


def test_create_table_as_insert_and_read_parquet(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, tiny_encoder: TextEncoder
) -> None:
    texts = [f"food {i}" if i % 7 else None for i in range(5000)]
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": range(5000), "title": texts}), path)
    con.execute(
        f"CREATE TABLE t AS SELECT id, embed(title) AS v FROM read_parquet('{path}')"
    ).fetchall()
    con.execute(f"INSERT INTO t SELECT id + 5000, embed(title) FROM read_parquet('{path}')")
    con.execute("SELECT 1").fetchall()
    total, nulls = one(con, "SELECT count(*), count(*) FILTER (v IS NULL) FROM t")
    assert (total, nulls) == (10_000, 2 * sum(t is None for t in texts))
    got = _vectors(con, "SELECT v FROM t WHERE id IN (1, 5001) ORDER BY id")
    np.testing.assert_array_equal(got, tiny_encoder.encode_numpy(["food 1", "food 1"]))


def test_large_table_over_several_row_groups(
    con: duckdb.DuckDBPyConnection, tiny_encoder: TextEncoder
) -> None:
    # > 122,880 rows: DuckDB calls the UDF from several threads at once
    con.execute(
        "CREATE TABLE big AS SELECT i, 'food ' || (i % 97)::VARCHAR AS s FROM range(260000) r(i)"
    ).fetchall()
    con.execute("CREATE TABLE out AS SELECT i, embed(s) AS v FROM big").fetchall()
    assert one(con, "SELECT count(*), count(v) FROM out") == (260_000, 260_000)
    got = _vectors(con, "SELECT v FROM out WHERE i IN (5, 250005) ORDER BY i")
    expected = tiny_encoder.encode_numpy(["food 5", f"food {250005 % 97}"])
    np.testing.assert_array_equal(got, expected)


def test_failing_statement_writes_nothing(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, tiny_source: Path
) -> None:
    reg = embed_sql.register(con, model=str(tiny_source))
    encoder = reg.functions["embed"]
    con.execute("CREATE TABLE t (s VARCHAR, v FLOAT[32])").fetchall()
    con.execute("CREATE TABLE src AS SELECT 'food ' || i::VARCHAR AS s FROM range(10000) r(i)")
    con.execute("SELECT 1").fetchall()
    calls = {"n": 0}
    real = encoder.encode

    def flaky(texts: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            msg = "simulated failure in the third batch"
            raise RuntimeError(msg)
        return real(texts)  # type: ignore[arg-type]

    monkeypatch.setattr(encoder, "encode", flaky)
    with pytest.raises(duckdb.InvalidInputException, match="simulated failure"):
        con.execute("INSERT INTO t SELECT s, embed(s) FROM src").fetchall()
    assert one(con, "SELECT count(*) FROM t") == (0,)


def test_cache_serves_repeated_texts_without_recomputing(
    tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con = duckdb.connect()
    reg = embed_sql.register(con, model=str(tiny_source), cache=tmp_path / "emb.sqlite")
    assert isinstance(reg.cache, EmbeddingCache)
    con.execute("CREATE TABLE src AS SELECT 'food ' || i::VARCHAR AS s FROM range(3000) r(i)")
    con.execute("SELECT 1").fetchall()
    first = _vectors(con, "SELECT embed(s) FROM src ORDER BY s")
    assert len(reg.cache) == 3000

    encoder = reg.functions["embed"]
    seen: list[int] = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda t: (seen.append(len(t)), real(t))[1])
    con.execute("INSERT INTO src VALUES ('rain'), ('storm')").fetchall()
    second = _vectors(con, "SELECT embed(s) FROM src WHERE s LIKE 'food%' ORDER BY s")
    np.testing.assert_array_equal(first, second)
    assert seen == []  # every food text came from the cache
    con.sql("SELECT embed(s) FROM src").fetchall()
    assert sum(seen) == 2  # only the two new texts were embedded
    con.close()
