"""The applications in every host on arbitrary text: fuzzy joins and zero-shot labels.

Unicode with NULLs and empty strings anywhere, duplicate and NULL keys, ``k`` and
thresholds past their limits, odd labels: SQL (``embed_fuzzy_join``, ``embed_classify``) =
Polars (``.embed.fuzzy_join``, ``.embed.classify``) = Python, NULL for NULL, and every
refusal an EmbedSQLError.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import embed_sql.polars  # noqa: F401 - registers the .embed namespaces
from embed_sql.pipelines.classify import classify
from embed_sql.pipelines.fuzzy import fuzzy_join
from embed_sql.udfs.duckdb.macros import sql_literal
from tests.property.helpers import TEXT, TEXTS, outcome, prop
from tests.property.test_ops import _round_all, _same

KEYS = st.one_of(st.none(), st.integers(0, 4))


@st.composite
def keyed_texts(draw: st.DrawFn) -> pa.Table:
    """``id``, ``t``: unicode with NULLs and empties; keys unique, or with repeats and NULLs."""
    texts = draw(TEXTS)
    ids: list[int | None] = list(range(len(texts)))
    if texts and draw(st.booleans()):
        ids = draw(st.lists(KEYS, min_size=len(texts), max_size=len(texts)))
    return pa.table({"id": pa.array(ids, pa.int64()), "t": pa.array(texts, pa.string())})


def _in_sql(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str) -> None:
    con.register("apps_src", table)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS FROM apps_src").fetchall()
    con.unregister("apps_src")


@prop(40)
@given(
    left=keyed_texts(),
    right=keyed_texts(),
    k=st.integers(-1, 6),
    semantic=st.sampled_from([0.0, 0.3, 1.0, -0.5, 1.5, float("nan")]),
    threshold=st.one_of(st.none(), st.floats(-10, 110, allow_nan=False)),
)
def test_fuzzy_join_is_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    tiny_model: str,
    left: pa.Table,
    right: pa.Table,
    k: int,
    semantic: float,
    threshold: float | None,
) -> None:
    cols = ["left_key", "right_key", "char_score", "semantic_score", "score", "rank"]
    opts = {"k": k, "semantic": semantic, "threshold": threshold}
    python = outcome(
        lambda: _round_all(
            list(
                zip(
                    *(
                        fuzzy_join(left, right, text="t", model=tiny_model, **opts)  # type: ignore[arg-type]
                        .column(c)
                        .to_pylist()
                        for c in cols
                    ),
                    strict=True,
                )
            )
        )
    )
    _in_sql(con, left, "fz_left")
    _in_sql(con, right, "fz_right")
    sem = f"'{semantic!r}'::DOUBLE" if math.isnan(semantic) else repr(semantic)
    thr = "" if threshold is None else f", threshold := {threshold!r}"
    sql = outcome(
        lambda: _round_all(
            con.sql(
                f"FROM embed_fuzzy_join('fz_left', 'fz_right', 't', 't', k := {k}, "
                f"semantic := {sem}{thr})"
            ).fetchall()
        )
    )
    lf, rf = pl.from_arrow(left), pl.from_arrow(right)
    polars = outcome(
        lambda: _round_all(
            lf.embed.fuzzy_join(rf, text="t", model=tiny_model, **opts)  # type: ignore[union-attr, arg-type]
            .select(cols)
            .rows()
        )
    )
    if isinstance(python, list):
        live = sum(t is not None for t in left.column("t").to_pylist())
        assert len({(r[0], r[5]) for r in python}) == len(python)
        assert len(python) <= live * k
    _same(polars, python)
    _same(sql, python, ordered=False, rows_in=min(left.num_rows, right.num_rows))


LABELS = st.lists(st.one_of(st.just(""), TEXT), max_size=4)


@prop(40)
@given(texts=TEXTS, labels=LABELS, scores=st.booleans())
def test_classify_is_the_same_in_sql_polars_and_python_null_for_null(
    con: duckdb.DuckDBPyConnection,
    tiny_model: str,
    texts: list[str | None],
    labels: list[str],
    scores: bool,
) -> None:
    python = outcome(lambda: classify(texts, labels, model=tiny_model, scores=scores).to_pylist())
    _in_sql(con, pa.table({"pos": range(len(texts)), "t": pa.array(texts, pa.string())}), "cl")
    label_list = "[" + ", ".join(sql_literal(x) for x in labels) + "]::VARCHAR[]"
    sql = outcome(
        lambda: [
            r[0]
            for r in con.sql(
                f"SELECT embed_classify(t, {label_list}) FROM cl ORDER BY pos"
            ).fetchall()
        ]
    )
    frame = pl.DataFrame({"t": pl.Series(texts, dtype=pl.String)})
    polars = outcome(
        lambda: (
            frame.select(pl.col("t").embed.classify(labels, model=tiny_model, scores=scores))
            .to_series()
            .to_list()
        )
    )
    if isinstance(python, list):
        assert len(python) == len(texts)
        assert [r is None for r in python] == [t is None for t in texts]
        assert all(r["label"] in labels for r in python if r is not None)
    if scores:
        sql = "skip"  # SQL's embed_classify has no scores option
    else:
        _same(sql, python, rows_in=len(texts))
    _same(polars, python)


def test_fuzzy_join_checks_tables_whose_keys_are_all_null(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # once an inner join on the keys let DuckDB skip the UDF: no refusal, 0 rows
    _in_sql(con, pa.table({"id": pa.array([0], pa.int64()), "t": ["burrito"]}), "fz_one")
    _in_sql(con, pa.table({"id": pa.array([None], pa.int64()), "t": ["burito"]}), "fz_nokey")
    with pytest.raises(duckdb.Error, match="InvalidParameterError"):
        con.sql("FROM embed_fuzzy_join('fz_one', 'fz_nokey', 't', 't')").fetchall()
    with pytest.raises(duckdb.Error, match="InvalidParameterError"):
        con.sql("FROM embed_fuzzy_join('fz_one', 'fz_one', 't', 't', k := 0)").fetchall()


@st.composite
def interactions(draw: st.DrawFn) -> pa.Table:
    """(user_id, item_id) pairs: NULL users and items, items not in the catalog, repeats."""
    n = draw(st.integers(0, 10))
    users = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n))
    items = draw(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=n, max_size=n))
    return pa.table(
        {"user_id": pa.array(users, pa.int64()), "item_id": pa.array(items, pa.int64())}
    )


@prop(40)
@given(
    inter=interactions(),
    k=st.integers(-1, 8),
    diversity=st.sampled_from([0.0, 0.5, 0.99, 1.0, -0.1, float("nan")]),
)
def test_recommend_is_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection, inter: pa.Table, k: int, diversity: float
) -> None:
    from embed_sql.pipelines.recommend import recommend
    from embed_sql.vectors import from_numpy

    vectors = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    items = pa.table({"id": pa.array(range(6), pa.int64()), "v": from_numpy(vectors)})
    if not con.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rec_items'"
    ).fetchall()[0][0]:
        _in_sql(con, items, "rec_items")
        con.execute("SELECT embed_create_index('rec_ix', 'rec_items', exact := true)").fetchall()
    cols = ["user_key", "item_key", "score", "rank"]
    python = outcome(
        lambda: _round_all(
            list(
                zip(
                    *(
                        recommend(inter, items, k=k, diversity=diversity).column(c).to_pylist()
                        for c in cols
                    ),
                    strict=True,
                )
            )
        )
    )
    _in_sql(con, inter, "rec_inter")
    div = f"'{diversity!r}'::DOUBLE" if math.isnan(diversity) else repr(diversity)
    sql = outcome(
        lambda: _round_all(
            con.sql(
                f"FROM embed_recommend('rec_inter', 'rec_ix', k := {k}, diversity := {div})"
            ).fetchall()
        )
    )
    polars = outcome(
        lambda: _round_all(
            pl.from_arrow(inter)
            .embed.recommend(pl.from_arrow(items), k=k, diversity=diversity)  # type: ignore[union-attr]
            .select(cols)
            .rows()
        )
    )
    if isinstance(python, list):
        users = {u for u in inter.column("user_id").to_pylist()}
        assert None not in users, "a NULL user was recommended to"
        assert {r[0] for r in python} <= users
        assert all(1 <= r[3] <= k for r in python)
    _same(polars, python)
    _same(sql, python, rows_in=inter.num_rows)
