"""SQL answers that used to be silently wrong: each test failed before the fix (tiny model)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

import embed_sql
from embed_sql.models.encoder import TextEncoder
from tests.hosts.test_duckdb_ops import con, rows  # noqa: F401 - the shared fixture

pytestmark = pytest.mark.usefixtures("con")


def test_a_stale_index_refuses_and_a_refresh_applies_only_the_difference(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    con.execute("SELECT embed_create_index('docs_index', 'docs_v')").fetchall()
    con.execute("DELETE FROM docs_v WHERE id = 10").fetchall()
    con.execute("UPDATE docs_v SET v = embed('a burrito') WHERE id = 13").fetchall()
    con.execute("INSERT INTO docs_v VALUES (99, 'tacos', embed('tacos'))").fetchall()
    for sql in (
        "FROM embed_search('docs_index', 'food', k := 3)",
        "FROM embed_knn_join('docs_v', 'docs_index', k := 2)",
        "FROM embed_range_join('docs_v', 'docs_index', 0.5)",
        "SELECT embed_knn(v, 'docs_index', 2) FROM docs_v",
        "SELECT embed_outlier_score(v, 'docs_index', 2) FROM docs_v",
    ):
        with pytest.raises(duckdb.Error, match=r"'docs_index' is stale.*embed_refresh_index"):
            rows(con, sql)
    # two rows gone (deleted, and the updated one's old vector), two added
    assert rows(con, "SELECT embed_refresh_index('docs_index')") == [({"removed": 2, "added": 2},)]
    fresh = rows(con, "FROM embed_knn_join('docs_v', 'docs_index', k := 1)")
    assert sorted(r[0] for r in fresh) == [11, 12, 13, 14, 99]
    assert all(left == right and dist < 1e-6 for left, right, dist, _ in fresh)
    assert rows(con, "SELECT embed_refresh_index('docs_index')") == [({"removed": 0, "added": 0},)]
    # the refreshed index equals one built from scratch
    con.execute("SELECT embed_create_index('rebuilt', 'docs_v', exact := true)").fetchall()
    con.execute("SELECT embed_create_index('docs_index', 'docs_v', exact := true)").fetchall()
    con.execute("UPDATE docs_v SET v = embed('rain') WHERE id = 11").fetchall()
    con.execute("SELECT embed_refresh_index('docs_index')").fetchall()
    con.execute("SELECT embed_create_index('rebuilt', 'docs_v', exact := true)").fetchall()
    a = rows(con, "FROM embed_knn_join('docs_v', 'docs_index', k := 3)")
    b = rows(con, "FROM embed_knn_join('docs_v', 'rebuilt', k := 3)")
    assert [r[:2] for r in a] == [r[:2] for r in b]


def test_index_names_differing_only_in_case_are_one_index(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    con.execute("SELECT embed_create_index('IX', 'docs_v', key := 'id')").fetchall()
    con.execute(
        "SELECT embed_create_index('ix', 'docs_v', key := 'title')"
    ).fetchall()  # replaces it
    assert rows(con, "SELECT key FROM embed_search('IX', 'food', k := 1)") == [("food",)]
    assert rows(con, "SELECT embed_drop_index('Ix')") == [(True,)]
    with pytest.raises(duckdb.Error, match="no vector index named 'ix'"):
        rows(con, "FROM embed_search('ix', 'food')")


def test_table_names_resolve_as_the_callers_sql_does(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    con.execute("ATTACH ':memory:' AS other").fetchall()
    # in `other`, three copies of one row: all duplicates of each other
    con.execute(
        "CREATE TABLE other.docs_v AS SELECT id, title, embed('same') AS v FROM docs"
    ).fetchall()
    con.execute("USE other").fetchall()
    assert [r[3] for r in rows(con, "FROM embed_dedup('docs_v', 1e-6)")] == [True] + [False] * 4
    con.execute("USE memory").fetchall()
    assert all(r[3] for r in rows(con, "FROM embed_dedup('docs_v', 1e-6)"))
    con.execute("SET search_path = 'other.main'").fetchall()
    assert rows(
        con, "SELECT count(DISTINCT cluster) FROM embed_cluster('docs_v', threshold := 1e-6)"
    ) == [(1,)]
    con.execute("RESET search_path").fetchall()
    # a TEMP table shadowing the main one cannot be read by embed_sql's own connection: refused
    con.execute("CREATE TEMP TABLE docs_v AS SELECT * FROM other.docs_v").fetchall()
    for sql in (
        "FROM embed_dedup('docs_v', 1e-6)",
        "FROM embed_cluster('docs_v', k := 2)",
        "SELECT embed_create_index('t', 'docs_v')",
        "FROM embed_drift('docs_v', 'docs_v')",
    ):
        with pytest.raises(duckdb.Error, match=r"'docs_v': it names a TEMP table"):
            rows(con, sql)
    # 'main.docs_v' is the TEMP table too (temp.main is searched first); a full name is not
    with pytest.raises(duckdb.Error, match="TEMP"):
        rows(con, "FROM embed_dedup('main.docs_v', 1e-6)")
    assert all(r[3] for r in rows(con, "FROM embed_dedup('memory.main.docs_v', 1e-6)"))


def test_uncommitted_changes_are_refused_not_missed(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    con.execute("BEGIN").fetchall()
    con.execute("INSERT INTO docs_v VALUES (50, 'food', embed('food'))").fetchall()
    with pytest.raises(duckdb.Error, match=r"differs between your transaction.*COMMIT first"):
        rows(con, "FROM embed_dedup('docs_v', 1e-6)")
    con.execute("ROLLBACK").fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "FROM embed_dedup('docs_v', NULL)",
        "FROM embed_dedup('docs_v', 0.1, metric := NULL)",
        "FROM embed_cluster('docs_v', k := 2, seed := NULL)",
        "FROM embed_knn_join('docs_v', 'docs_index', k := NULL)",
        "FROM embed_range_join('docs_v', 'docs_index', NULL)",
        "FROM embed_search('docs_index', NULL)",
        "FROM embed_chunks('docs', 'title', max_tokens := NULL)",
        "FROM embed_drift('docs_v', 'docs_v', seed := NULL)",
    ],
)
def test_null_arguments_are_refused_not_answered_with_no_rows(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
    sql: str,
) -> None:
    con.execute("SELECT embed_create_index('docs_index', 'docs_v')").fetchall()
    with pytest.raises(duckdb.Error, match="is NULL"):
        rows(con, sql)


def test_nan_and_inf_query_vectors_are_refused(con: duckdb.DuckDBPyConnection) -> None:  # noqa: F811
    con.execute("SELECT embed_create_index('docs_index', 'docs_v')").fetchall()
    con.execute(
        "CREATE TABLE q AS SELECT 1 AS id, list_transform(range(32), lambda i: "
        "CASE WHEN i = 0 THEN 'nan'::FLOAT ELSE 0.1::FLOAT END)::FLOAT[32] AS v"
    )
    with pytest.raises(duckdb.Error, match=r"1 query vector.*NaN or Inf"):
        rows(con, "FROM embed_knn_join('q', 'docs_index')")


def test_every_macro_works_from_a_cursor(con: duckdb.DuckDBPyConnection) -> None:  # noqa: F811
    cur = con.cursor()
    cur.execute("SELECT embed_create_index('docs_index', 'docs_v')").fetchall()
    assert len(rows(cur, "FROM embed_knn_join('docs_v', 'docs_index', k := 2)")) == 10
    assert len(rows(cur, "FROM embed_search('docs_index', 'food', k := 2)")) == 2
    assert len(rows(cur, "FROM embed_dedup('docs_v', 1e-6)")) == 5
    assert len(rows(cur, "FROM embed_chunks('docs', 'title', max_tokens := 16, overlap := 2)")) == 5
    embed_sql.register(cur)  # registering a cursor is allowed, and keeps the database's model
    assert rows(cur, "SELECT len(embed('x'))") == [(32,)]


def test_functions_read_through_the_first_registered_connection_not_a_closing_cursor(
    con: duckdb.DuckDBPyConnection,  # noqa: F811
) -> None:
    # dbt-duckdb registers its database's connection, then each model's cursor, and closes
    # a model's cursor when the model ends, while another model may still be reading
    from embed_sql.udfs.duckdb.state import state_of

    models = [con.cursor() for _ in range(8)]
    for cur in models:
        embed_sql.register(cur)
    state = state_of(con)
    reading = [state.cursor() for _ in range(8)]  # what functions read through
    for cur in models:
        cur.close()  # a cursor closes the cursors made from it
    for cur in reading:
        assert cur.execute("SELECT count(*) FROM docs_v").fetchall() == [(5,)]
        cur.close()
    assert len(rows(con, "SELECT embed_create_index('docs_index', 'docs_v')")) == 1


def test_a_file_database_gives_every_cursor_and_connection_the_macros(
    tiny_source: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "file.duckdb")
    first = duckdb.connect(db)
    try:
        embed_sql.register(first, model=str(tiny_source))
        first.execute(
            "CREATE TABLE t AS SELECT range AS id, embed('d' || range) AS v FROM range(6)"
        )
        first.execute("SELECT embed_create_index('ix', 't')").fetchall()
        other = duckdb.connect(db)  # the same database instance, as a pool would open it
        for handle in (first.cursor(), first.cursor(), other, other.cursor()):  # none registered
            assert len(rows(handle, "FROM embed_knn_join('t', 'ix', k := 2)")) == 12
            assert len(rows(handle, "FROM embed_dedup('t', 1e-6)")) == 6
        other.close()
    finally:
        first.close()
    # the macros are stored in the file: a later session that registers finds them again,
    # and a read-only one keeps TEMP macros on the handles that register
    ro = duckdb.connect(db, read_only=True)
    try:
        embed_sql.register(ro, model=str(tiny_source))
        assert len(rows(ro, "FROM embed_dedup('t', 1e-6)")) == 6
    finally:
        ro.close()


def test_macros_connection_keeps_them_temp(tiny_source: Path, tmp_path: Path) -> None:
    own = duckdb.connect(str(tmp_path / "temp_only.duckdb"))
    try:
        embed_sql.register(own, model=str(tiny_source), macros="connection")
        own.execute("CREATE TABLE t AS SELECT range AS id, embed('d' || range) AS v FROM range(3)")
        assert len(rows(own, "FROM embed_dedup('t', 1e-6)")) == 3
        cur = own.cursor()
        with pytest.raises(duckdb.Error):  # not in main: a cursor must register itself
            rows(cur, "FROM embed_dedup('t', 1e-6)")
        embed_sql.register(cur, macros="connection")
        assert len(rows(cur, "FROM embed_dedup('t', 1e-6)")) == 3
        with pytest.raises(embed_sql.EmbedSQLError, match=r"macros='everywhere' is not allowed"):
            embed_sql.register(own, macros="everywhere")
    finally:
        own.close()


def test_register_changes_no_setting(tiny_source: Path) -> None:
    fresh = duckdb.connect()
    before = rows(fresh, "SELECT name, value FROM duckdb_settings() ORDER BY name")
    embed_sql.register(fresh, model=str(tiny_source))
    assert rows(fresh, "SELECT name, value FROM duckdb_settings() ORDER BY name") == before


def test_closing_the_registering_connection_keeps_the_others_working(
    tiny_source: Path, tmp_path: Path
) -> None:
    # used to kill the process (DuckDB dropped its reference to our Python functions)
    script = textwrap.dedent(
        f"""
        import duckdb, embed_sql
        db = {str(tmp_path / "x.duckdb")!r}
        first, survivor = duckdb.connect(db), duckdb.connect(db)
        embed_sql.register(first, model={str(tiny_source)!r})
        embed_sql.register(survivor)
        first.execute(
            "CREATE TABLE t AS SELECT range AS id, embed('d' || range) AS v FROM range(4)"
        ).fetchall()
        first.execute("SELECT embed_create_index('ix', 't')").fetchall()
        first.close()
        import gc; gc.collect()
        print(len(survivor.sql("FROM embed_knn_join('t', 'ix', k := 2)").fetchall()))
        print(len(survivor.sql("FROM embed_dedup('t', 0.0)").fetchall()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["8", "4"]


def test_encode_refuses_a_mapping(tiny_encoder: TextEncoder) -> None:
    with pytest.raises(embed_sql.InputTypeError, match="dict"):
        tiny_encoder.encode({"a": 1})  # type: ignore[arg-type]


def test_columns_of_two_variants_of_one_model_are_not_joined(tiny_source: Path) -> None:
    # fp32 and int8 vectors of one model: a DuckDB or Polars column cannot say which it holds,
    # so embed_sql remembers the vectors it made and refuses to mix them
    import polars as pl

    import embed_sql.polars
    from embed_sql.pipelines import drift

    db = duckdb.connect()
    embed_sql.register(db, model=str(tiny_source), models={"q8": f"{tiny_source}:int8"})
    words = [f"document number {i} about {t}" for i in range(40) for t in ("food", "rain")]
    db.execute("CREATE TABLE w AS SELECT range AS id, ? [range + 1] AS t FROM range(80)", [words])
    db.execute("CREATE TABLE a AS SELECT id, embed(t) AS v FROM w").fetchall()
    db.execute("CREATE TABLE b AS SELECT id, embed_q8(t) AS v FROM w").fetchall()
    db.execute("SELECT embed_create_index('a_index', 'a')").fetchall()
    assert len(rows(db, "FROM embed_knn_join('a', 'a_index', k := 2)")) == 160
    with pytest.raises(duckdb.Error, match=r"different models .*:int8"):
        rows(db, "FROM embed_knn_join('b', 'a_index', k := 2)")
    with pytest.raises(duckdb.Error, match="different models"):
        rows(db, "FROM embed_drift('a', 'b')")
    a, b = (pl.from_arrow(db.sql(f"FROM {t}").to_arrow_table()) for t in "ab")
    with pytest.raises(embed_sql.DimensionMismatchError, match="different models"):
        a.embed.knn_join(b, k=2)  # type: ignore[union-attr]
    with pytest.raises(embed_sql.DimensionMismatchError, match="different models"):
        drift.check(a, b)
    db.execute("CREATE TABLE mixed AS FROM a UNION ALL SELECT id + 1000, v FROM b").fetchall()
    with pytest.raises(duckdb.Error, match="mixes vectors of 2 models"):
        rows(db, "SELECT embed_create_index('m', 'mixed')")
