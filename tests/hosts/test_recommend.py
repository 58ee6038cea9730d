"""Recommendations: the same rows from Python, SQL and Polars; weights, recency, diversity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import TextEncoder
from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.pipelines.recommend import recommend, similar_items

TITLES = ["football match", "tennis final", "stock market", "bank rates", "cup final", "tax cut"]


@pytest.fixture
def items(tiny_source: Path) -> pa.Table:
    vectors = TextEncoder(str(tiny_source)).encode(TITLES)
    return pa.table({"id": np.arange(10, 10 + len(TITLES)), "v": vectors})


INTERACTIONS = pa.table({"user_id": ["a", "a", "b", "c"], "item_id": [10, 11, 12, 99]})


def test_same_rows_in_python_sql_and_polars(tiny_source: Path, items: pa.Table) -> None:
    want = recommend(INTERACTIONS, items, k=2).to_pylist()
    assert {r["user_key"] for r in want} == {"a", "b"}  # c's only item is unknown: skipped
    assert all(r["item_key"] not in (10, 11) for r in want if r["user_key"] == "a")
    con = duckdb.connect()
    try:
        embed_sql.register(con, model=str(tiny_source))
        con.sql("CREATE TABLE items AS SELECT * FROM items")
        con.sql("CREATE TABLE inter AS SELECT * FROM INTERACTIONS")
        con.execute("SELECT embed_create_index('items_index', 'items', exact := true)").fetchall()
        sql = con.sql("FROM embed_recommend('inter', 'items_index', k := 2)").fetchall()
    finally:
        con.close()
    polars = pl.from_arrow(INTERACTIONS).embed.recommend(pl.from_arrow(items), k=2)  # type: ignore[union-attr]
    for got in (sql, polars.rows()):
        assert [(u, i, r) for u, i, _, r in got] == [
            (w["user_key"], w["item_key"], w["rank"]) for w in want
        ]
        np.testing.assert_allclose([g[2] for g in got], [w["score"] for w in want], rtol=1e-5)


def test_weights_recency_diversity_and_seen_items(items: pa.Table) -> None:
    inter = pa.table(
        {
            "user_id": ["a", "a"],
            "item_id": [10, 12],
            "w": [1.0, 0.0],
            "t": pa.array([dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 1)]),
        }
    )
    only_first = recommend(inter, items, k=3, weight="w").column("item_key").to_pylist()
    as_if_one = recommend(inter.slice(0, 1), items, k=4).column("item_key").to_pylist()
    assert only_first == [i for i in as_if_one if i != 12][:3]  # weight 0: the item counts not
    recent = recommend(inter, items, k=3, time="t", half_life=dt.timedelta(days=1))
    newest_only = recommend(inter.slice(1, 1), items, k=4).column("item_key").to_pylist()
    assert recent.column("item_key").to_pylist() == [i for i in newest_only if i != 10][:3]
    kept = recommend(inter, items, k=6, exclude_seen=False).column("item_key").to_pylist()
    assert {10, 12} <= set(kept)
    diverse = recommend(inter, items, k=3, diversity=0.9)
    assert diverse.num_rows == 3
    assert similar_items(items, [10], k=2).column("item_key").to_pylist()[0] != 10


def test_bad_parameters_say_what_to_do(items: pa.Table) -> None:
    with pytest.raises(InvalidParameterError, match=r"diversity=1.5 must be in \[0, 1\)"):
        recommend(INTERACTIONS, items, diversity=1.5)
    with pytest.raises(InvalidParameterError, match=r"time= and half_life= together"):
        recommend(INTERACTIONS, items, half_life=60)
    with pytest.raises(ColumnNotFoundError, match=r"user_key column 'uid' is not in"):
        recommend(INTERACTIONS, items, user_key="uid")
    with pytest.raises(InvalidParameterError, match=r"half_life=-1 must be a positive"):
        recommend(
            INTERACTIONS.append_column("t", pa.array([1, 2, 3, 4])), items, time="t", half_life=-1
        )
