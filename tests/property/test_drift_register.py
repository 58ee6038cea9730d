"""Drift checks on arbitrary samples, and register() on arbitrary aliases.

A drift check over any two samples (empty, one row, NULL, zero and repeated vectors, NaN
entries, mismatched dimensions) gives the same verdict rows in SQL (``embed_drift``) and
Python (``drift.check``), or refuses with an EmbedSQLError in both; ``register`` takes an
alias that names a SQL function and refuses any other with an EmbedSQLError.
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

import embed_sql
from embed_sql.pipelines import drift
from tests.property.helpers import outcome, prop
from tests.property.test_ops import _round_all, _same
from tests.property.test_vectors import tables


@prop(30)
@given(ref=tables(dim=3, keys="unique"), cur=tables(keys="unique"), seed=st.integers(0, 5))
def test_drift_is_the_same_in_sql_and_python_or_refused_in_both(
    con: duckdb.DuckDBPyConnection, ref: pa.Table, cur: pa.Table, seed: int
) -> None:
    cols = ["test", "statistic", "p_value", "p_adjusted", "drift", "detail"]
    python = outcome(
        lambda: _round_all(
            list(
                zip(
                    *(
                        drift.check(ref, cur, seed=seed).to_arrow().column(c).to_pylist()
                        for c in cols
                    ),
                    strict=True,
                )
            )
        )
    )
    for name, table in (("drift_ref", ref), ("drift_cur", cur)):
        con.register("drift_src", table)
        con.execute(f"CREATE OR REPLACE TABLE {name} AS FROM drift_src").fetchall()
        con.unregister("drift_src")
    sql = outcome(
        lambda: _round_all(
            con.sql(
                f"SELECT {', '.join(cols)} "
                f"FROM embed_drift('drift_ref', 'drift_cur', seed := {seed})"
            ).fetchall()
        )
    )
    _same(sql, python)


RESERVED = ("classify", "knn", "sql_knn", "search", "sql_anything", "outlier_score", "drift")


@prop(40)
@given(alias=st.one_of(st.text(max_size=10), st.sampled_from(RESERVED)))
def test_register_takes_sql_identifier_aliases_and_refuses_others(
    con: duckdb.DuckDBPyConnection, tiny_model: str, alias: str
) -> None:
    got = outcome(lambda: embed_sql.register(con, model=tiny_model, models={alias: tiny_model}))
    if isinstance(got, str):  # not an identifier, or the name of one of embed_sql's own
        assert (
            not re.fullmatch(r"[a-z_][a-z0-9_]*", alias)
            or alias in RESERVED
            or alias.startswith("sql_")
        )
        return
    assert alias not in RESERVED, f"alias {alias!r} took the name of an embed_sql macro"
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", alias), f"alias {alias!r} was accepted"
    out = con.sql(f"SELECT embed_{alias}('food') = embed('food')").fetchall()
    assert out == [(True,)]
