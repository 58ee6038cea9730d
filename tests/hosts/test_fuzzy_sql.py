"""embed_fuzzy_join from SQL: keys in their own types, the caller's snapshot, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import embed_sql


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    connection.execute(
        "CREATE TABLE people AS SELECT * FROM (VALUES (1, 'Jon Smith'), (2, NULL), "
        "(3, 'Mary Jones')) t(id, name)"
    ).fetchall()
    connection.execute(
        "CREATE TABLE reg AS SELECT * FROM (VALUES (DATE '2020-01-07', 'John Smith'), "
        "(DATE '2020-01-08', 'Marie Jones')) t(day, full_name)"
    ).fetchall()
    yield connection
    connection.close()


def test_keys_come_back_in_their_own_types(con: duckdb.DuckDBPyConnection) -> None:
    rel = con.sql(
        "FROM embed_fuzzy_join('people', 'reg', 'name', 'full_name', k := 1, right_key := 'day')"
    )
    assert [str(t) for t in rel.types][:2] == ["INTEGER", "DATE"]
    assert [(a, str(b)) for a, b, *_ in rel.fetchall()] == [(1, "2020-01-07"), (3, "2020-01-08")]


def test_uncommitted_changes_and_bad_columns_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    q = "FROM embed_fuzzy_join('people', 'reg', 'name', 'full_name', right_key := 'day')"
    con.execute("BEGIN").fetchall()
    con.execute("INSERT INTO people VALUES (4, 'Jane Doe')").fetchall()
    with pytest.raises(duckdb.Error, match="COMMIT first"):
        con.sql(q).fetchall()
    con.execute("ROLLBACK").fetchall()
    with pytest.raises(duckdb.Error, match="text column 'nope' is not in table 'reg'"):
        con.sql(q.replace("'full_name'", "'nope'")).fetchall()
    with pytest.raises(duckdb.Error, match="'day' of 'reg' is DATE, not VARCHAR"):
        con.sql(q.replace("'full_name'", "'day'")).fetchall()
    with pytest.raises(duckdb.Error, match="scorer='nope' is not one of"):
        con.sql(q.replace(")", ", scorer := 'nope')")).fetchall()
