"""The vector operator from SQL: named indexes, embed_knn(), table macros (tiny model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import embed_sql
from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.pipelines import drift, outliers
from embed_sql.udfs.duckdb import create_index, drop_index, load_index
from embed_sql.vectors import VectorIndex, from_numpy
from tests.unit.test_index import clustered

TITLES = ["food", "burrito restaurant", "bank rates", "inflation market price", "rain storm"]


@pytest.fixture
def con(tiny_source: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    embed_sql.register(connection, model=str(tiny_source))
    connection.execute("CREATE TABLE docs (id BIGINT, title VARCHAR)").fetchall()
    connection.executemany("INSERT INTO docs VALUES (?, ?)", list(enumerate(TITLES, 10)))
    connection.execute("CREATE TABLE docs_v AS SELECT id, title, embed(title) AS v FROM docs")
    connection.execute("SELECT 1").fetchall()
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall()


def test_knn_scalar_returns_rank_key_distance_in_the_key_type(
    con: duckdb.DuckDBPyConnection,
) -> None:
    create_index(con, "docs", "docs_v", exact=True)
    (typ,) = rows(con, "SELECT typeof(embed_knn(v, 'docs', 2)) FROM docs_v LIMIT 1")[0]
    assert typ.replace('"', "") == "STRUCT(rank INTEGER, key BIGINT, distance FLOAT)[]"
    out = rows(con, "SELECT id, embed_knn(v, 'docs', 3) FROM docs_v ORDER BY id")
    for doc_id, matches in out:
        assert [m["rank"] for m in matches] == [1, 2, 3]
        assert matches[0]["key"] == doc_id
        assert matches[0]["distance"] == pytest.approx(0.0, abs=1e-6)
        dists = [m["distance"] for m in matches]
        assert dists == sorted(dists)


def test_knn_join_matches_the_python_engine(con: duckdb.DuckDBPyConnection) -> None:
    create_index(con, "docs", "docs_v", exact=True)
    sql_rows = rows(con, "FROM embed_knn_join('docs_v', 'docs', k := 2)")
    data = con.sql("SELECT id, v FROM docs_v ORDER BY id").to_arrow_table()
    py = embed_sql.vectors.knn_join(data, data, 2, exact=True)
    expected = list(zip(*(py.column(i).to_pylist() for i in range(4)), strict=True))
    assert [(a, b, r) for a, b, _, r in sql_rows] == [(a, b, r) for a, b, _, r in expected]
    np.testing.assert_allclose(
        [d for _, _, d, _ in sql_rows], [d for _, _, d, _ in expected], atol=1e-6
    )


def test_k_larger_than_the_index_and_empty_queries(con: duckdb.DuckDBPyConnection) -> None:
    create_index(con, "docs", "docs_v")
    assert len(rows(con, "FROM embed_knn_join('docs_v', 'docs', k := 50)")) == 25
    con.execute("CREATE TABLE empty_q AS SELECT * FROM docs_v LIMIT 0").fetchall()
    assert rows(con, "FROM embed_knn_join('empty_q', 'docs', k := 3)") == []


def test_string_keys_and_custom_column_names(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        'CREATE TABLE named AS SELECT title AS "doc name", v AS "my vec" FROM docs_v'
    ).fetchall()
    create_index(con, "by_title", "named", vec="my vec", key="doc name", exact=True)
    out = rows(
        con, "FROM embed_knn_join('named', 'by_title', k := 1, vec := 'my vec', key := 'doc name')"
    )
    assert out == [(t, t, pytest.approx(0.0, abs=1e-6), 1) for t in sorted(TITLES)]


def test_range_join_semantic_search_dedup_and_cluster(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("INSERT INTO docs_v SELECT id + 100, title, v FROM docs_v WHERE id = 10")
    con.execute("SELECT 1").fetchall()
    create_index(con, "docs", "docs_v", exact=True)
    pairs = rows(con, "FROM embed_range_join('docs_v', 'docs', 1e-6)")
    assert (10, 110, pytest.approx(0.0, abs=1e-6)) in pairs
    hits = rows(con, "FROM embed_search('docs', 'food', k := 2)")
    assert [h[0] for h in hits] == [10, 110]
    groups = rows(con, "FROM embed_dedup('docs_v', 1e-6)")
    assert groups[-1] == (110, 0, 10, False)
    assert sum(1 for g in groups if g[3]) == 5
    clusters = rows(con, "FROM embed_cluster('docs_v', k := 2)")
    assert {c for _, c in clusters} == {0, 1}
    assert dict(clusters)[10] == dict(clusters)[110]
    by_threshold = rows(con, "FROM embed_cluster('docs_v', threshold := 1e-6)")
    assert len({c for _, c in by_threshold}) == 5


def test_saved_index_reopens_memory_mapped(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "docs.index"
    create_index(con, "docs", "docs_v", path=path)
    before = rows(con, "FROM embed_search('docs', 'food', k := 3)")
    drop_index(con, "docs")
    with pytest.raises(duckdb.Error, match="docs"):
        rows(con, "FROM embed_search('docs', 'food', k := 3)")
    load_index(con, "docs", path)
    assert rows(con, "FROM embed_search('docs', 'food', k := 3)") == before


def test_unknown_index_and_wrong_dimension_are_clear_errors(
    con: duckdb.DuckDBPyConnection,
) -> None:
    create_index(con, "docs_index", "docs_v")
    # caught at bind time, naming the indexes there are
    with pytest.raises(duckdb.Error, match=r"no vector index named 'nope' .*known: docs_index"):
        rows(con, "SELECT embed_knn(v, 'nope', 3) FROM docs_v")
    with pytest.raises(duckdb.Error, match=r"no vector index named 'nope'"):
        rows(con, "SELECT embed_sql_knn(v, 'nope', 3, NULL, NULL, NULL, NULL, NULL) FROM docs_v")
    create_index(con, "docs", "docs_v")
    with pytest.raises(duckdb.Error, match=r"3 dimensions but the index has 32"):
        rows(con, "SELECT embed_knn([1, 2, 3]::FLOAT[3], 'docs', 3)")
    for bad in ("", "docs.index", "1st", "docs index", None):
        with pytest.raises(InvalidParameterError, match=r"letters, digits and underscores"):
            create_index(con, bad, "docs_v")  # type: ignore[arg-type]


def test_indexes_from_sql_alone(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = str(tmp_path / "docs.index")
    made = rows(con, f"SELECT embed_create_index('docs_index', 'docs_v', path := '{path}')")
    assert made == [(5,)]
    first = rows(con, "FROM embed_knn_join('docs_v', 'docs_index', k := 2)")
    assert [r[:2] for r in first[:2]] == [(10, 10), (10, first[1][1])]
    assert rows(con, "SELECT embed_drop_index('docs_index')") == [(True,)]
    assert rows(con, "SELECT embed_drop_index('docs_index')") == [(False,)]
    with pytest.raises(duckdb.Error, match="no vector index named 'docs_index'"):
        rows(con, "FROM embed_knn_join('docs_v', 'docs_index', k := 2)")
    assert rows(con, f"SELECT embed_load_index('docs_index', '{path}')") == [(5,)]
    assert rows(con, "FROM embed_knn_join('docs_v', 'docs_index', k := 2)") == first
    exact = rows(
        con,
        "SELECT embed_create_index('by_title', 'docs_v', vec := 'v', key := 'title', "
        "metric := 'l2', exact := true)",
    )
    assert exact == [(5,)]
    hits = rows(con, "FROM embed_search('by_title', 'food', k := 1)")
    assert hits[0][0] == "food"
    fast = rows(
        con, "SELECT embed_create_index('fast', 'docs_v', preset := 'fast', ef_search := 20)"
    )
    assert fast == [(5,)]
    f32 = tmp_path / "f32.index"
    sql = (
        "SELECT embed_create_index('f32', 'docs_v', dtype := 'f32', rescore := false, "
        f"path := '{f32}')"
    )
    assert rows(con, sql) == [(5,)]
    saved = VectorIndex.view(f32)
    assert (saved.dtype, saved.rescore) == ("f32", False)
    with pytest.raises(duckdb.Error, match=r"preset='quick' is not known; use one of"):
        rows(con, "SELECT embed_create_index('q', 'docs_v', preset := 'quick')")
    with pytest.raises(duckdb.Error, match=r"index name 'a.b' is not allowed"):
        rows(con, "SELECT embed_create_index('a.b', 'docs_v')")
    with pytest.raises(duckdb.Error, match=r"column 'title' of 'docs_v' is VARCHAR, not a"):
        rows(con, "SELECT embed_create_index('t', 'docs_v', vec := 'title')")
    with pytest.raises(duckdb.Error, match=r"vector column 'w' is not in table 'docs_v'; its"):
        rows(con, "SELECT embed_create_index('t', 'docs_v', vec := 'w')")
    with pytest.raises(ColumnNotFoundError, match=r"key column 'no' is not in table 'docs_v'"):
        create_index(con, "t", "docs_v", key="no")
    with pytest.raises(duckdb.Error, match=r"exact is NULL"):
        rows(con, "SELECT embed_create_index('t', 'docs_v', exact := NULL)")
    with pytest.raises(duckdb.Error, match=r"the index name is NULL"):
        rows(con, "SELECT embed_create_index(NULL, 'docs_v')")


def test_a_second_connection_to_one_database_shares_the_registration(
    tiny_source: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "one.duckdb")
    first, second = duckdb.connect(db), duckdb.connect(db)  # one database instance
    try:
        embed_sql.register(first, model=str(tiny_source))
        embed_sql.register(second)  # cheap: the database's functions, model and indexes
        assert rows(second, "SELECT len(embed('shared'))") == [(32,)]
        first.execute(
            "CREATE TABLE t AS SELECT range AS id, embed('d' || range) AS v FROM range(4)"
        )
        first.execute("SELECT embed_create_index('t_index', 't')")
        assert len(rows(second, "FROM embed_knn_join('t', 't_index', k := 2)")) == 8
        embed_sql.register(first, model=str(tiny_source))  # the same connection again: fine
    finally:
        first.close()
        second.close()


def test_indexes_on_a_read_only_database(tiny_source: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "shared.duckdb")
    writer = duckdb.connect(db)
    writer.execute(
        "CREATE TABLE t AS SELECT range AS id, [range, 1]::FLOAT[2] AS v FROM range(5)"
    ).fetchall()
    writer.close()
    reader = duckdb.connect(db, read_only=True)  # key tables live in an attached memory db
    try:
        embed_sql.register(reader, model=str(tiny_source))
        create_index(reader, "ro", "t", exact=True, metric="l2")
        assert rows(reader, "SELECT right_key FROM embed_knn_join('t', 'ro', k := 2) LIMIT 2") == [
            (0,),
            (1,),
        ]
    finally:
        reader.close()


def test_names_are_quoted_never_spliced(con: duckdb.DuckDBPyConnection) -> None:
    evil = 'docs_v"; DROP TABLE docs; --'
    with pytest.raises(duckdb.Error):
        create_index(con, "x", evil)
    assert rows(con, "SELECT count(*) FROM docs") == [(5,)]


def test_python_index_and_sql_index_agree_on_hnsw_results(
    con: duckdb.DuckDBPyConnection,
) -> None:
    x = clustered(2000, dim=16)
    con.register("pts_src", pa.table({"id": np.arange(2000), "v": from_numpy(x)}))
    con.execute("CREATE TABLE pts AS SELECT id, v::FLOAT[16] AS v FROM pts_src").fetchall()
    create_index(con, "pts", "pts", metric="l2", exact=True)
    sql = rows(con, "SELECT id, embed_knn(v, 'pts', 5) FROM pts WHERE id < 20 ORDER BY id")
    res = VectorIndex.build(x, np.arange(2000), metric="l2", exact=True).search(x[:20], 5)
    assert [[m["key"] for m in ms] for _, ms in sql] == res.labels.tolist()


def test_embed_clean_and_embed_chunks_in_sql(
    con: duckdb.DuckDBPyConnection, tiny_source: Path
) -> None:
    body = " ".join(["food rain bank cup"] * 30)
    con.execute(
        "CREATE TABLE pages AS SELECT * FROM (VALUES (1, '<p>Hello&amp;<b>world</b></p>'),"
        " (2, NULL), (3, ?)) t(id, body)",
        [body],
    ).fetchall()
    assert rows(con, "SELECT id, embed_clean(body) FROM pages ORDER BY id")[:2] == [
        (1, "Hello&world"),
        (2, None),
    ]
    fixed = "SELECT embed_clean('<p>naÃ¯ve</p><p>CafÃ©</p>', repair := true, lowercase := true)"
    assert rows(con, fixed) == [("naïve café",)]
    with pytest.raises(duckdb.Error, match="repair is NULL"):
        rows(con, "SELECT embed_clean('x', repair := NULL)")
    chunks = rows(
        con,
        "FROM embed_chunks('pages', 'body', max_tokens := 12, overlap := 2) ORDER BY key, chunk",
    )
    assert {c[0] for c in chunks} == {1, 3}
    long = [c for c in chunks if c[0] == 3]
    assert [c[1] for c in long] == list(range(len(long)))
    assert max(c[5] for c in long) <= 12
    assert long[-1][4] == len(body)
    from embed_sql.pipelines import chunk

    py = chunk([body], max_tokens=12, overlap=2, model=str(tiny_source))
    assert [c[2] for c in long] == py.column("text").to_pylist()


def _vector_table(con: duckdb.DuckDBPyConnection, name: str, x: np.ndarray) -> None:
    data = pa.table({"id": np.arange(len(x)), "v": from_numpy(x)})  # noqa: F841 - read by SQL
    con.execute(f"CREATE TABLE {name} AS SELECT id, v::FLOAT[{x.shape[1]}] AS v FROM data")


def test_embed_drift_gives_one_row_per_test_and_the_verdict(
    con: duckdb.DuckDBPyConnection,
) -> None:
    x = clustered(900, dim=16)
    _vector_table(con, "ref", x[:300])
    _vector_table(con, "same", x[300:600])
    _vector_table(con, "moved", x[600:] + 0.8)
    moved = rows(con, "SELECT test, drift FROM embed_drift('ref', 'moved', 'v')")
    assert [t for t, _ in moved] == [*drift.TESTS, "overall"]
    assert moved[-1] == ("overall", True)
    same = rows(con, "FROM embed_drift('ref', 'same', seed := 1)")
    assert same[-1][0] == "overall"
    assert same[-1][-1] == "no drift"
    report = drift.check(x[:300], x[300:600], seed=1)
    assert [r[1] for r in same[:-1]] == pytest.approx([t.statistic for t in report.tests])
    assert [r[3] for r in same[:-1]] == pytest.approx([t.p_adjusted for t in report.tests])
    # alpha is the verdict's false-alarm rate, as in Python
    strict = rows(con, "SELECT drift, p_adjusted FROM embed_drift('ref', 'same', alpha := 0.9)")
    assert strict[-1] == (drift.check(x[:300], x[300:600], alpha=0.9).drift, report.p_value)


def test_embed_drift_embeds_a_text_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE notes AS SELECT 'note number ' || i AS body FROM range(60) r(i)")
    out = rows(con, "SELECT test, drift FROM embed_drift('notes', 'notes', vec := 'body')")
    assert out[-1] == ("overall", False)


def test_embed_drift_errors_name_the_problem(con: duckdb.DuckDBPyConnection) -> None:
    _vector_table(con, "ref", clustered(40, dim=16))
    with pytest.raises(duckdb.InvalidInputException, match="type BIGINT; a drift check needs"):
        rows(con, "FROM embed_drift('ref', 'ref', vec := 'id')")
    con.execute("CREATE TABLE empty AS SELECT * FROM ref LIMIT 0")
    with pytest.raises(duckdb.InvalidInputException, match="current sample has no"):
        rows(con, "FROM embed_drift('ref', 'empty')")
    with pytest.raises(duckdb.InvalidInputException, match="Table with name nope does not exist"):
        rows(con, "FROM embed_drift('ref', 'nope')")
    with pytest.raises(duckdb.InvalidInputException, match=r"min_votes=2 is no longer.*alpha"):
        rows(con, "FROM embed_drift('ref', 'ref', min_votes := 2)")
    with pytest.raises(duckdb.InvalidInputException, match=r"alpha=1\.5: .*between 0 and 1"):
        rows(con, "FROM embed_drift('ref', 'ref', alpha := 1.5)")


def test_outlier_score_and_flag_from_sql(con: duckdb.DuckDBPyConnection) -> None:
    x = clustered(1000, dim=16)
    _vector_table(con, "ref", x[:900])
    _vector_table(con, "cur", np.vstack([x[900:], x[900:910] + 10]))
    create_index(con, "ref_index", "ref", exact=True, metric="l2")
    got = rows(
        con,
        "SELECT embed_outlier_score(v, 'ref_index'), embed_outlier_score(v, 'ref_index', k := 1),"
        " embed_is_outlier(v, 'ref_index') FROM cur ORDER BY id",
    )
    scorer = outliers.OutlierScorer(x[:900], k=5, metric="l2")
    cur = np.vstack([x[900:], x[900:910] + 10])
    np.testing.assert_allclose([r[0] for r in got], scorer.score(cur), rtol=1e-5)
    np.testing.assert_allclose([r[1] for r in got], kth_distance_1(x[:900], cur), rtol=1e-5)
    assert [r[2] for r in got] == scorer.is_outlier(cur).tolist()
    assert all(r[2] for r in got[100:])
    (t,) = rows(con, "SELECT embed_outlier_threshold('ref_index', quantile := 0.99)")[0]
    assert t == pytest.approx(scorer.threshold, rel=1e-5)
    assert rows(con, "SELECT embed_outlier_score(NULL::FLOAT[16], 'ref_index')") == [(None,)]
    with pytest.raises(duckdb.InvalidInputException, match="k=0 must be a positive"):
        rows(con, "SELECT embed_outlier_score(v, 'ref_index', k := 0) FROM cur")
    with pytest.raises(duckdb.InvalidInputException, match="no vector index named 'other'"):
        rows(con, "SELECT embed_outlier_score(v, 'other') FROM cur")


def kth_distance_1(ref: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(((q[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(axis=1)


def test_knn_join_filters_by_an_allowed_key_table_before_the_top_k(
    con: duckdb.DuckDBPyConnection,
) -> None:
    x = clustered(2000, dim=16)
    _vector_table(con, "many", x)
    con.execute("CREATE VIEW evens AS SELECT id AS doc FROM many WHERE id % 50 = 0")
    create_index(con, "many_index", "many")
    got = rows(
        con,
        "FROM embed_knn_join('many', 'many_index', k := 5, allowed := 'evens', "
        "allowed_key := 'doc')"
        " WHERE left_key < 20",
    )
    table = pa.table({"id": np.arange(2000), "v": from_numpy(x)})
    want = embed_sql.vectors.knn_join(
        table.slice(0, 20), table, 5, where=np.arange(2000) % 50 == 0, exact=True
    )
    assert [(a, b, r) for a, b, _, r in got] == list(
        zip(*(want.column(c).to_pylist() for c in ("left_key", "right_key", "rank")), strict=True)
    )
    assert all(b % 50 == 0 for _, b, _, _ in got)
    unfiltered = rows(con, "SELECT count(*) FROM embed_knn_join('many', 'many_index', k := 5)")
    assert unfiltered == [(10_000,)]
    con.execute("CREATE VIEW names AS SELECT 'x' || id AS doc FROM many")
    with pytest.raises(duckdb.InvalidInputException, match="index whose keys are int64"):
        rows(
            con,
            "FROM embed_knn_join('many', 'many_index', allowed := 'names', allowed_key := 'doc')",
        )


def test_double_vectors_are_searched_like_float_ones(con: duckdb.DuckDBPyConnection) -> None:
    create_index(con, "docs", "docs_v", exact=True)
    as_float = rows(con, "SELECT id, embed_knn(v, 'docs', 2) FROM docs_v ORDER BY id")
    as_double = rows(con, "SELECT id, embed_knn(v::DOUBLE[], 'docs', 2) FROM docs_v ORDER BY id")
    assert [[m["key"] for m in ms] for _, ms in as_double] == [
        [m["key"] for m in ms] for _, ms in as_float
    ]
    con.execute("CREATE TABLE docs_d AS SELECT id, v::DOUBLE[] AS v FROM docs_v").fetchall()
    assert len(rows(con, "FROM embed_knn_join('docs_d', 'docs', k := 2)")) == 2 * len(TITLES)
    with pytest.raises(duckdb.Error, match="VARCHAR"):
        rows(con, "SELECT embed_knn(title, 'docs', 2) FROM docs_v")
