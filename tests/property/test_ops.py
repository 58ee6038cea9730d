"""The vector operator in every host: SQL = Polars = Python, answers and refusals alike.

Arbitrary small tables (empty, one row, NULL vectors, NaN/Inf entries, zero and repeated
vectors, duplicate and NULL keys, integer or string keys) under odd table and column names
(quotes, dots, spaces, unicode); ``k`` and thresholds at and past their limits. Each host
either gives Python's rows or refuses with the same EmbedSQLError subclass (in SQL: a
DuckDB error naming it).
"""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import embed_sql.polars  # noqa: F401 - registers the .embed namespaces
from embed_sql.udfs.duckdb.macros import quote_ident, sql_literal
from embed_sql.vectors import VectorIndex, cluster, dedup, from_numpy, knn_join, range_join
from tests.property.helpers import ODD_NAME, error_name, outcome, prop
from tests.property.test_vectors import tables

METRIC = st.sampled_from(["cos", "ip", "l2", "l2sq"])
THRESHOLD = st.one_of(
    st.floats(-0.5, 2.5, allow_nan=False), st.sampled_from([0.0, float("nan"), 1e300])
)


@st.composite
def named(draw: st.DrawFn, **kw: object) -> tuple[pa.Table, str, str, str]:
    """A table from :func:`tables` under an odd table name, key column and vector column."""
    table = draw(tables(**kw))  # type: ignore[arg-type]
    name = draw(ODD_NAME)
    key = draw(ODD_NAME)
    vec = draw(ODD_NAME.filter(lambda v: v.lower() != key.lower()))
    return table.rename_columns([key, vec]), name, key, vec


def _literal(x: float) -> str:
    return f"'{x!r}'::DOUBLE" if not np.isfinite(x) else repr(float(x))


def _in_sql(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str) -> str:
    """Create ``table`` under ``name``; return the name quoted as a SQL string literal."""
    con.register("ops_src", table)
    con.execute(f"CREATE OR REPLACE TABLE {quote_ident(name)} AS FROM ops_src").fetchall()
    con.unregister("ops_src")
    return sql_literal(quote_ident(name))


def _rows(table: pa.Table | pl.DataFrame, columns: list[str]) -> list[tuple]:
    arrow = table.to_arrow() if isinstance(table, pl.DataFrame) else table
    cols = [arrow.column(c).to_pylist() for c in columns]
    return [
        tuple(round(x, 4) if isinstance(x, float) else x for x in row)
        for row in zip(*cols, strict=True)
    ]


def _same(got: object, want: object, *, ordered: bool = True, rows_in: int = -1) -> None:
    if rows_in == 0 and got == [] and isinstance(want, str):
        return  # SQL checks options per call: no row, no check (test_no_rows_...)
    if isinstance(want, str) or isinstance(got, str):
        # both refuse (the subclass may differ when an input has two faults and the hosts
        # check them in another order)
        assert isinstance(got, str), f"answered {got!r} where Python refused: {want}"
        assert isinstance(want, str), f"refused ({got}) where Python answered {want!r}"
        return
    assert isinstance(got, list)
    assert isinstance(want, list)
    if ordered:
        assert got == want
    else:
        assert sorted(got, key=repr) == sorted(want, key=repr)


@prop(40)
@given(data=named(dim=3), threshold=THRESHOLD, metric=METRIC)
def test_dedup_is_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    data: tuple[pa.Table, str, str, str],
    threshold: float,
    metric: str,
) -> None:
    table, name, key, vec = data
    cols = ["key", "group_id", "representative", "keep"]
    python = outcome(lambda: _rows(dedup(table, threshold, vec=vec, key=key, metric=metric), cols))
    tbl = _in_sql(con, table, name)
    sql = outcome(
        lambda: con.sql(
            f"SELECT {', '.join(cols)} FROM embed_dedup({tbl}, {_literal(threshold)}, "
            f"vec := {sql_literal(vec)}, key := {sql_literal(key)}, metric := '{metric}')"
        ).fetchall()
    )
    frame = pl.from_arrow(table)
    polars = outcome(
        lambda: _rows(
            frame.embed.dedup(threshold=threshold, vec=vec, key=key, metric=metric).rename(
                {key: "key"}
            ),
            cols,
        )
    )
    if isinstance(python, list):
        assert len(python) == table.num_rows
    _same(polars, python)
    _same(sql, python, rows_in=table.num_rows)


@prop(40)
@given(
    data=named(dim=3),
    k=st.one_of(st.none(), st.integers(-1, 9)),
    threshold=st.one_of(st.none(), THRESHOLD),
    metric=METRIC,
    seed=st.integers(0, 2**31 - 1),
)
def test_cluster_is_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    data: tuple[pa.Table, str, str, str],
    k: int | None,
    threshold: float | None,
    metric: str,
    seed: int,
) -> None:
    table, name, key, vec = data
    python = outcome(
        lambda: _rows(
            cluster(
                table, k=k, threshold=threshold, vec=vec, key=key, metric=metric, seed=seed
            ).table,
            ["key", "cluster"],
        )
    )
    tbl = _in_sql(con, table, name)
    args = [f"seed := {seed}", f"metric := '{metric}'"]
    args += [f"vec := {sql_literal(vec)}", f"key := {sql_literal(key)}"]
    if k is not None:
        args.append(f"k := {k}")
    if threshold is not None:
        args.append(f"threshold := {_literal(threshold)}")
    sql = outcome(lambda: con.sql(f"FROM embed_cluster({tbl}, {', '.join(args)})").fetchall())
    frame = pl.from_arrow(table)
    polars = outcome(
        lambda: _rows(
            frame.embed.cluster(
                k=k, threshold=threshold, vec=vec, key=key, metric=metric, seed=seed
            ),
            [key, "cluster"],
        )
    )
    if isinstance(python, list):
        assert len(python) == table.num_rows
        labels = table.column(vec).is_null().to_pylist()
        assert [c is None for _, c in python] == labels  # NULL vector <-> NULL cluster
    _same(polars, python)
    _same(sql, python, rows_in=table.num_rows)


@prop(25)
@given(
    left=named(dim=2),
    right=named(dim=2),
    k=st.integers(-1, 9),
    threshold=THRESHOLD,
    metric=METRIC,
)
def test_joins_and_knn_are_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    left: tuple[pa.Table, str, str, str],
    right: tuple[pa.Table, str, str, str],
    k: int,
    threshold: float,
    metric: str,
) -> None:
    ltab, lname, lkey, lvec = left
    rtab, rname, rkey, rvec = right
    if lname.lower() == rname.lower():
        rname += "_r"
    knn_cols = ["left_key", "right_key", "distance", "rank"]
    range_cols = ["left_key", "right_key", "distance"]
    sides = {"vec": lvec, "key": lkey, "right_vec": rvec, "right_key": rkey, "metric": metric}
    py_knn = outcome(lambda: _rows(knn_join(ltab, rtab, k, exact=True, **sides), knn_cols))
    py_range = outcome(
        lambda: _rows(range_join(ltab, rtab, threshold, exact=True, **sides), range_cols)
    )
    # SQL: an exact index over the right table, the left table joined against it
    ltbl, rtbl = _in_sql(con, ltab, lname), _in_sql(con, rtab, rname)
    built = outcome(
        lambda: con.sql(
            f"SELECT embed_create_index('prop_ix', {rtbl}, vec := {sql_literal(rvec)}, "
            f"key := {sql_literal(rkey)}, metric := '{metric}', exact := true)"
        ).fetchall()
    )
    lside = f"vec := {sql_literal(lvec)}, key := {sql_literal(lkey)}"
    if isinstance(built, str):  # the index is refused: so is every join against it
        assert built == error_name_of_build(rtab, rkey, rvec)
        return
    assert built == [(len([v for v in rtab.column(rvec).to_pylist() if v is not None]),)]
    sql_knn = outcome(
        lambda: con.sql(f"FROM embed_knn_join({ltbl}, 'prop_ix', k := {k}, {lside})").fetchall()
    )
    sql_range = outcome(
        lambda: con.sql(
            f"FROM embed_range_join({ltbl}, 'prop_ix', {_literal(threshold)}, {lside})"
        ).fetchall()
    )
    lf, rf = pl.from_arrow(ltab), pl.from_arrow(rtab)
    pl_knn = outcome(lambda: _rows(lf.embed.knn_join(rf, k=k, exact=True, **sides), knn_cols))
    pl_range = outcome(
        lambda: _rows(lf.embed.range_join(rf, threshold=threshold, exact=True, **sides), range_cols)
    )
    # SQL orders by left key (Python and Polars by left row): compare as multisets
    n = ltab.num_rows
    _same(_round_all(sql_knn), py_knn, ordered=False, rows_in=n)
    _same(_round_all(sql_range), py_range, ordered=False, rows_in=n)
    _same(pl_knn, py_knn)
    _same(pl_range, py_range)


def _round_all(rows: object) -> object:
    return [_round(r) for r in rows] if isinstance(rows, list) else rows


def _round(row: tuple) -> tuple:
    return tuple(round(x, 4) if isinstance(x, float) else x for x in row)


def error_name_of_build(table: pa.Table, key: str, vec: str) -> str | None:
    """The refusal Python gives when indexing ``table`` (None if it builds)."""
    try:
        VectorIndex.build(table.column(vec), table.column(key), exact=True)
    except Exception as exc:  # the name of any EmbedSQLError, None for anything else
        return error_name(exc)
    return None


@prop(40)
@given(data=named(dim=2, keys="unique"), queries=tables(dim=2), k=st.integers(-1, 6))
def test_knn_per_row_is_null_for_null_and_the_same_in_sql_and_polars(
    con: duckdb.DuckDBPyConnection,
    data: tuple[pa.Table, str, str, str],
    queries: pa.Table,
    k: int,
) -> None:
    table, name, key, vec = data
    tbl = _in_sql(con, table, name)
    built = outcome(
        lambda: con.sql(
            f"SELECT embed_create_index('prop_knn', {tbl}, vec := {sql_literal(vec)}, "
            f"key := {sql_literal(key)}, exact := true)"
        ).fetchall()
    )
    index = outcome(lambda: VectorIndex.build(table.column(vec), table.column(key), exact=True))
    if isinstance(built, str) or isinstance(index, str):
        assert built == index
        return
    con.register("prop_q", queries.append_column("pos", pa.array(range(queries.num_rows))))
    sql = outcome(
        lambda: [
            r[0]
            for r in con.sql(
                f"SELECT embed_knn(v, 'prop_knn', {k}) FROM prop_q ORDER BY pos"
            ).fetchall()
        ]
    )
    con.unregister("prop_q")
    frame = pl.from_arrow(queries)
    polars = outcome(lambda: frame.select(pl.col("v").embed.knn(index, k=k)).to_series().to_list())
    if isinstance(sql, list):
        assert len(sql) == queries.num_rows
        nulls = queries.column("v").is_null().to_pylist()
        assert [m is None for m in sql] == nulls  # NULL vector <-> NULL matches
        sql = [None if m is None else [_round(tuple(x.values())) for x in m] for m in sql]
    if isinstance(polars, list):
        polars = [None if m is None else [_round(tuple(x.values())) for x in m] for m in polars]
    _same(sql, polars, rows_in=queries.num_rows)


@pytest.mark.parametrize(
    "query",
    [
        "FROM embed_knn_join('no_rows', 'no_rows_ix', k := 0)",
        "FROM embed_range_join('no_rows', 'no_rows_ix', 'nan'::DOUBLE)",
        "SELECT embed_knn(v, 'no_rows_ix', 0) FROM no_rows",
        "FROM embed_knn_join('no_rows', 'no_rows_ix', k := 2.5)",
        "FROM embed_range_join('no_rows', 'no_rows_ix', NULL)",
    ],
)
def test_no_rows_still_refuse_bad_options_in_sql(
    con: duckdb.DuckDBPyConnection, query: str
) -> None:
    con.execute("CREATE OR REPLACE TABLE no_rows (id BIGINT, v FLOAT[2])").fetchall()
    con.execute("INSERT INTO no_rows VALUES (1, [1, 0])").fetchall()
    con.execute("SELECT embed_create_index('no_rows_ix', 'no_rows')").fetchall()
    con.execute("CREATE OR REPLACE TABLE no_rows (id BIGINT, v FLOAT[2])").fetchall()
    con.execute("SELECT embed_refresh_index('no_rows_ix')").fetchall()
    with pytest.raises(duckdb.Error, match="InvalidParameterError"):
        con.sql(query).fetchall()


@pytest.mark.parametrize(
    "query",
    ["FROM embed_dedup('no_keys', 0.1)", "FROM embed_cluster('no_keys', threshold := 0.1)"],
)
@pytest.mark.parametrize("rows", ["(NULL, [1, 0])", "(1, [1, 0]) LIMIT 0"])
def test_dedup_and_cluster_check_a_table_without_keys(
    con: duckdb.DuckDBPyConnection, query: str, rows: str
) -> None:
    # once an inner join with no key to match let DuckDB skip the UDF: a table whose keys
    # were all NULL gave 0 rows (1 row in), and bad options on an empty table no refusal
    con.execute(
        "CREATE OR REPLACE TABLE no_keys AS SELECT id::BIGINT AS id, v::FLOAT[2] AS v "
        f"FROM (VALUES {rows}) AS t(id, v)"
    ).fetchall()
    if "NULL" in rows:
        with pytest.raises(duckdb.Error, match="InputTypeError: key column 'id'"):
            con.sql(query).fetchall()
        return
    assert con.sql(query).fetchall() == []
    with pytest.raises(duckdb.Error, match="InvalidParameterError"):
        con.sql(query.replace("0.1", "-1.0")).fetchall()


@prop(30)
@given(
    left=tables(dim=2, odd=False),
    right=tables(dim=2, odd=False, keys="unique"),
    allowed=st.lists(st.one_of(st.none(), st.integers(-1, 9)), max_size=8),
    k=st.integers(1, 6),
)
def test_knn_join_filtered_before_the_top_k_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    left: pa.Table,
    right: pa.Table,
    allowed: list[int | None],
    k: int,
) -> None:
    if pa.types.is_string(right.schema.field("id").type):
        right = right.set_column(0, "id", pa.array(range(right.num_rows), pa.int64()))
    keys = right.column("id").to_pylist()
    wanted = {a for a in allowed if a is not None}
    mask = np.array(
        [
            key in wanted
            for key, v in zip(keys, right.column("v").to_pylist(), strict=True)
            if v is not None
        ],
        dtype=bool,
    )
    cols = ["left_key", "right_key", "distance", "rank"]
    python = outcome(lambda: _rows(knn_join(left, right, k, exact=True, where=mask), cols))
    _in_sql(con, left, "flt_left")
    _in_sql(con, right, "flt_right")
    _in_sql(con, pa.table({"id": pa.array(allowed, pa.int64())}), "flt_allowed")
    built = outcome(
        lambda: con.execute(
            "SELECT embed_create_index('flt_ix', 'flt_right', exact := true)"
        ).fetchall()
    )
    if isinstance(built, str):  # refused only as Python refuses it (e.g. a vanishing norm)
        assert built == python
        return
    sql = outcome(
        lambda: con.sql(
            f"FROM embed_knn_join('flt_left', 'flt_ix', k := {k}, allowed := 'flt_allowed')"
        ).fetchall()
    )
    lf, rf = pl.from_arrow(left), pl.from_arrow(right)
    polars = outcome(
        lambda: _rows(
            lf.embed.knn_join(rf, k=k, exact=True, where=pl.col("id").is_in(sorted(wanted))),
            cols,
        )
    )
    if isinstance(python, list):
        live_left = sum(v is not None for v in left.column("v").to_pylist())
        assert len(python) == live_left * min(k, int(mask.sum()))
        assert all(r[1] in wanted for r in python)
    _same(polars, python)
    _same(_round_all(sql), python, ordered=False, rows_in=left.num_rows)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_nan_or_inf_query_is_the_same_refusal_in_every_host(
    con: duckdb.DuckDBPyConnection, bad: float
) -> None:
    docs = pa.table({"id": [1, 2], "v": from_numpy(np.eye(2, dtype=np.float32))})
    queries = pa.table({"id": [7], "v": from_numpy(np.array([[bad, 1.0]], np.float32))})
    _in_sql(con, docs, "nan_docs")
    _in_sql(con, queries, "nan_q")
    con.execute("SELECT embed_create_index('nan_ix', 'nan_docs', exact := true)").fetchall()
    index = VectorIndex.build(docs.column("v"), docs.column("id"), exact=True)
    frame = pl.from_arrow(queries)
    refusals = {
        "python": outcome(lambda: knn_join(queries, docs, 1)),
        "python index": outcome(lambda: index.search(queries.column("v"), 1)),
        "sql knn_join": outcome(
            lambda: con.sql("FROM embed_knn_join('nan_q', 'nan_ix')").fetchall()
        ),
        "sql knn": outcome(lambda: con.sql("SELECT embed_knn(v, 'nan_ix') FROM nan_q").fetchall()),
        "polars knn_join": outcome(lambda: frame.embed.knn_join(pl.from_arrow(docs), k=1)),
        "polars knn": outcome(lambda: frame.select(pl.col("v").embed.knn(index, k=1))),
        "polars outlier": outcome(
            lambda: frame.select(pl.col("v").embed.outlier_score(index, k=1))
        ),
    }
    assert set(refusals.values()) == {"InputTypeError"}, refusals
