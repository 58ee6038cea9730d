"""Hybrid and per-document search from SQL, Python and Polars (tiny model); its refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.pipelines.search import search

PASSAGES = [
    (1, "a", "WorldCom boss Ebbers goes on trial for fraud"),
    (2, "a", "The jury heard from the former finance chief"),
    (3, "b", "Shares fell 3.5% on Tuesday as markets slid"),
    (4, "c", "A burrito restaurant opens in town"),
    (5, "c", "The best burrito in town, say critics"),
    (6, "d", "Rain and storms are forecast for tonight"),
]


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    connection.execute("CREATE TABLE p (id BIGINT, doc VARCHAR, body VARCHAR)").fetchall()
    connection.executemany("INSERT INTO p VALUES (?, ?, ?)", PASSAGES)
    connection.execute("CREATE TABLE pv AS SELECT *, embed(body) AS v FROM p").fetchall()
    connection.execute("SELECT embed_create_index('pix', 'pv', exact := true)").fetchall()
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall()


def test_sql_hybrid_search_finds_the_rare_name_first(con: duckdb.DuckDBPyConnection) -> None:
    hits = rows(
        con,
        "SELECT key, bm25 FROM embed_search('pix', 'Ebbers', k := 3, hybrid := true, "
        "text := 'body')",
    )
    assert hits[0][0] == 1
    assert hits[0][1] > 0
    assert all(b is None for _, b in hits[1:])  # no other passage has the word
    alone = rows(
        con,
        "SELECT key FROM embed_search('pix', 'burrito', hybrid := true, "
        "text := 'body', weight := 0)",
    )
    assert sorted(k for (k,) in alone) == [4, 5]  # BM25 alone: only rows with the word


def test_sql_search_per_document_returns_each_documents_best_passage(
    con: duckdb.DuckDBPyConnection, tiny_source: Path
) -> None:
    table = con.sql("SELECT id, doc, body, v FROM pv").to_arrow_table()
    docs = {i: d for i, d, _ in PASSAGES}
    for hybrid in (False, True):
        sql = rows(
            con,
            f"SELECT key FROM embed_search('pix', 'burrito critics', k := 3, "
            f"document := 'doc', hybrid := {hybrid}, text := 'body')",
        )
        py = search(
            table,
            "burrito critics",
            k=3,
            text="body",
            hybrid=hybrid,
            document="doc",
            model=str(tiny_source),
        )
        assert [k for (k,) in sql] == py.column("key").to_pylist()
        assert py.column("document").to_pylist() == [docs[k] for (k,) in sql]
        assert len({docs[k] for (k,) in sql}) == 3  # three documents, one passage each


def test_hybrid_search_reads_the_text_as_it_is_now(con: duckdb.DuckDBPyConnection) -> None:
    q = "SELECT key FROM embed_search('pix', 'zebra', hybrid := true, text := 'body', weight := 0)"
    assert rows(con, q) == []
    con.execute("UPDATE pv SET body = 'a zebra crossing' WHERE id = 6").fetchall()
    assert rows(con, q) == [(6,)]  # the vectors did not change; the BM25 read did
    con.execute("BEGIN").fetchall()
    con.execute("UPDATE pv SET body = 'no stripes' WHERE id = 6").fetchall()
    with pytest.raises(duckdb.Error, match="COMMIT first"):
        rows(con, q)
    con.execute("ROLLBACK").fetchall()


def test_hybrid_search_refusals_say_what_to_do(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(duckdb.Error, match=r"2 VARCHAR columns .* text := '\.\.\.'"):
        rows(con, "FROM embed_search('pix', 'x', hybrid := true)")  # doc and body: which?
    with pytest.raises(duckdb.Error, match="text column 'nope' is not in table"):
        rows(con, "FROM embed_search('pix', 'x', hybrid := true, text := 'nope')")
    with pytest.raises(duckdb.Error, match="document column 'nope' is not in table"):
        rows(con, "FROM embed_search('pix', 'x', document := 'nope')")
    with pytest.raises(duckdb.Error, match="is BIGINT, not VARCHAR"):
        rows(con, "FROM embed_search('pix', 'x', hybrid := true, text := 'id')")
    with pytest.raises(duckdb.Error, match=r"weight=2\.0: give the vector side's share"):
        rows(con, "FROM embed_search('pix', 'x', hybrid := true, text := 'body', weight := 2)")
    con.execute("CREATE TABLE one AS SELECT id, body, v FROM pv").fetchall()
    con.execute("SELECT embed_create_index('one', 'one', exact := true)").fetchall()
    assert rows(con, "SELECT key FROM embed_search('one', 'Ebbers', k := 1, hybrid := true)") == [
        (1,)
    ]  # one text column: no need to name it


def test_python_and_polars_refusals(tiny_source: Path) -> None:
    from embed_sql.models.encoder import shared_encoder

    texts = [b for _, _, b in PASSAGES]
    table = pa.table(
        {
            "id": [i for i, _, _ in PASSAGES],
            "body": texts,
            "v": shared_encoder(str(tiny_source)).encode(texts),
        }
    )
    with pytest.raises(InvalidParameterError, match="name the text column"):
        search(table, "x", hybrid=True, model=str(tiny_source))
    with pytest.raises(ColumnNotFoundError, match=r"\['doc'\] not in the table"):
        search(table, "x", document="doc", model=str(tiny_source))
    with pytest.raises(InvalidParameterError, match="from 0"):
        pl.from_arrow(table).embed.search("x", weight=-1)  # type: ignore[union-attr]
    with pytest.raises(ColumnNotFoundError, match="text column 'nope' not in the frame"):
        pl.from_arrow(table).lazy().embed.search("x", text="nope", hybrid=True)  # type: ignore[union-attr]


def test_whole_number_arguments_are_checked_by_name(con: duckdb.DuckDBPyConnection) -> None:
    for sql in (
        "FROM embed_search('pix', 'x', k := 2.5)",
        "FROM embed_knn_join('pv', 'pix', k := 2.5)",
        "SELECT embed_knn(v, 'pix', 2.5) FROM pv",
        "FROM embed_cluster('pv', k := 1.5)",
        "FROM embed_recommend('pv', 'pix', user_key := 'doc', item_key := 'id', k := 0.5)",
    ):
        with pytest.raises(duckdb.Error, match=r"k := [0-9.]+: give a whole number"):
            con.sql(sql).fetchall()
    with pytest.raises(duckdb.Error, match=r"max_tokens := 3000000000: give a whole number"):
        con.sql("FROM embed_chunks('p', 'body', max_tokens := 3e9)").fetchall()
    assert len(rows(con, "FROM embed_search('pix', 'x', k := 2.0)")) == 2  # 2.0 is whole
    with pytest.raises(duckdb.Error, match=r"k=None|k is NULL"):
        con.sql("FROM embed_search('pix', 'x', k := NULL)").fetchall()
