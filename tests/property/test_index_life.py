"""An index's life in SQL: built, its table changed at random, refused as stale, refreshed.

After any sequence of INSERT, DELETE and UPDATE (NULL and zero vectors included) an index
refuses to answer until refreshed, and once refreshed answers exactly as an index built
afresh on the table; a saved index reloaded under another name (from a path with spaces,
quotes and unicode) answers as the original.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from embed_sql.udfs.duckdb.macros import sql_literal
from tests.property.helpers import FINITE, outcome, prop, usable_norms

VEC = st.one_of(st.none(), st.just([0.0, 0.0, 0.0]), st.lists(FINITE, min_size=3, max_size=3))
ROWS = st.dictionaries(st.integers(0, 30), VEC, max_size=8)
CHANGE = st.one_of(
    st.tuples(st.just("insert"), st.integers(31, 60), VEC),
    st.tuples(st.just("delete"), st.integers(0, 60), st.none()),
    st.tuples(st.just("update"), st.integers(0, 60), VEC),
)


def _vec(v: list[float] | None) -> str:
    return "NULL" if v is None else f"{[float(x) for x in v]}::FLOAT[3]"


def _answers(con: duckdb.DuckDBPyConnection, index: str) -> object:
    return outcome(
        lambda: (
            con.sql(
                f"SELECT left_key, right_key, round(distance, 4), rank "
                f"FROM embed_knn_join('life', '{index}', k := 3) ORDER BY ALL"
            ).fetchall(),
            con.sql(f"SELECT id, embed_knn(v, '{index}', 2) FROM life ORDER BY id").fetchall(),
        )
    )


@prop(40)
@given(rows=ROWS, changes=st.lists(CHANGE, max_size=5), exact=st.booleans())
def test_a_changed_table_is_refused_until_refreshed_then_answers_as_a_rebuild(
    con: duckdb.DuckDBPyConnection, rows: dict, changes: list, exact: bool
) -> None:
    con.execute("CREATE OR REPLACE TABLE life (id BIGINT, v FLOAT[3])").fetchall()
    for key, v in rows.items():
        con.execute(f"INSERT INTO life VALUES ({key}, {_vec(v)})").fetchall()
    built = outcome(
        lambda: con.sql(
            f"SELECT embed_create_index('life_ix', 'life', exact := {exact})"
        ).fetchall()
    )
    live = [v for v in rows.values() if v is not None]
    if not usable_norms(np.array(live, dtype=np.float64).reshape(len(live), 3)):
        assert built == "InvalidParameterError"  # a vector float32 distances cannot use
        return
    assert built == [(len(live),)]
    before = con.sql("SELECT count(*), sum(hash(id, v)) FROM life").fetchall()
    for op, key, v in changes:
        if op == "insert":
            con.execute(
                f"INSERT INTO life SELECT {key}, {_vec(v)} WHERE {key} NOT IN (SELECT id FROM life)"
            ).fetchall()
        elif op == "delete":
            con.execute(f"DELETE FROM life WHERE id = {key}").fetchall()
        else:
            con.execute(f"UPDATE life SET v = {_vec(v)} WHERE id = {key}").fetchall()
    changed = con.sql("SELECT count(*), sum(hash(id, v)) FROM life").fetchall() != before
    if changed:
        assert _answers(con, "life_ix") == "InvalidParameterError"  # stale: refused
    refreshed = outcome(lambda: con.sql("SELECT embed_refresh_index('life_ix')").fetchall())
    if not isinstance(refreshed, list):  # only a new vector float32 distances cannot use
        assert refreshed == "InvalidParameterError"
        new = [v for op, _, v in changes if op != "delete" and v is not None]
        assert not usable_norms(np.array(new, dtype=np.float64).reshape(len(new), 3))
        return
    con.execute(f"SELECT embed_create_index('life_fresh', 'life', exact := {exact})").fetchall()
    if exact:
        assert _answers(con, "life_ix") == _answers(con, "life_fresh")
    else:  # a graph refreshed in place may differ from a new one only where ties meet
        got, want = _answers(con, "life_ix"), _answers(con, "life_fresh")
        assert isinstance(got, tuple)
        assert isinstance(want, tuple)
        assert len(got[0]) == len(want[0])


ODD_PATH = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="/\\\x00"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in {".", ".."})


@prop(25)
@given(rows=ROWS, stem=ODD_PATH)
def test_a_saved_index_reloaded_from_an_odd_path_answers_as_the_original(
    con: duckdb.DuckDBPyConnection, rows: dict, stem: str
) -> None:
    con.execute("CREATE OR REPLACE TABLE life (id BIGINT, v FLOAT[3])").fetchall()
    for key, v in rows.items():
        con.execute(f"INSERT INTO life VALUES ({key}, {_vec(v)})").fetchall()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / f"{stem} 'q\" é.index")
        saved = outcome(
            lambda: con.sql(
                f"SELECT embed_create_index('life_saved', 'life', path := {sql_literal(path)})"
            ).fetchall()
        )
        assert isinstance(saved, list), saved
        loaded = outcome(
            lambda: con.sql(
                f"SELECT embed_load_index('life_loaded', {sql_literal(path)})"
            ).fetchall()
        )
        assert loaded == saved
        assert _answers(con, "life_loaded") == _answers(con, "life_saved")
