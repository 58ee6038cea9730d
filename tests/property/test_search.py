"""Text search, outlier scores and index names in every host, on arbitrary input.

``embed_search`` (SQL) = ``.embed.search`` (Polars) = ``pipelines.search.search`` (Python)
for any unicode query (empty and NULL included), vector or hybrid, ``k`` at and past its
limits; outlier scores are NULL for NULL and refuse NaN/Inf in every host; an index name is
either a plain identifier or refused with an EmbedSQLError; vectors of another dimension
are refused by name in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import embed_sql
import embed_sql.polars
from embed_sql.exceptions import EmbedSQLError
from embed_sql.models.encoder import shared_encoder
from embed_sql.pipelines import outliers
from embed_sql.pipelines.search import search
from embed_sql.udfs.duckdb.macros import sql_literal
from embed_sql.vectors import VectorIndex, from_numpy
from tests.property.helpers import TEXT, error_name, outcome, prop
from tests.property.test_ops import _round_all, _same
from tests.property.test_vectors import tables

TITLES = ["food", "burrito restaurant", "bank rates", "rain storm", "", "food market", "é ü"]
DOCS = ["a", None, "a", None, "b", None, "b"]  # passages' documents; NULL: one of its own


class Docs:
    """One small embedded table in SQL (indexed as 'six'), Polars and Arrow."""

    def __init__(self, model: str) -> None:
        self.model = model
        vectors = shared_encoder(model).encode(TITLES)
        self.arrow = pa.table(
            {"id": list(range(10, 10 + len(TITLES))), "title": TITLES, "doc": DOCS, "v": vectors}
        )
        self.frame: pl.DataFrame = pl.from_arrow(self.arrow)  # type: ignore[assignment]
        self.dim = shared_encoder(model).dim
        self.con = duckdb.connect()
        embed_sql.register(self.con, model=model)
        self.con.register("docs_src", self.arrow)
        self.con.execute(
            f"CREATE TABLE docs AS SELECT id, title, doc, v::FLOAT[{self.dim}] AS v FROM docs_src"
        ).fetchall()
        self.con.execute("SELECT embed_create_index('six', 'docs', exact := true)").fetchall()
        self.index = VectorIndex.build(vectors, self.arrow.column("id"), exact=True)


@pytest.fixture(scope="module")
def docs(tiny_model: str, session_cache: Path) -> Iterator[Docs]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBED_SQL_CACHE", str(session_cache))
    mp.setenv("HF_HUB_OFFLINE", "1")
    made = Docs(tiny_model)
    yield made
    made.con.close()
    mp.undo()


@prop(40)
@given(
    query=st.one_of(st.none(), st.just(""), TEXT),
    k=st.integers(-1, 10),
    hybrid=st.booleans(),
    per_document=st.booleans(),
)
def test_search_is_the_same_in_sql_polars_and_python(
    docs: Docs, query: str | None, k: int, hybrid: bool, per_document: bool
) -> None:
    cols = ["key", "distance", "rank", "score", "bm25"]
    text = "title" if hybrid else None
    document = "doc" if per_document else None
    python = outcome(
        lambda: _round_all(
            list(
                zip(
                    *(
                        search(
                            docs.arrow,
                            query,  # type: ignore[arg-type]
                            k=k,
                            hybrid=hybrid,
                            text=text,
                            document=document,
                            model=docs.model,
                        )
                        .column(c)
                        .to_pylist()
                        for c in cols
                    ),
                    strict=True,
                )
            )
        )
    )
    if query is None:  # Python takes no None query; SQL and Polars must refuse it
        python = "InvalidParameterError"
    literal = "NULL" if query is None else sql_literal(query)
    options = f"k := {k}" + (", hybrid := true, text := 'title'" if hybrid else "")
    options += ", document := 'doc'" if per_document else ""
    sql = outcome(
        lambda: _round_all(
            docs.con.sql(
                f"SELECT {', '.join(cols)} FROM embed_search('six', {literal}, {options})"
            ).fetchall()
        )
    )
    polars = outcome(
        lambda: _round_all(
            docs.frame.embed.search(
                query,  # type: ignore[arg-type]
                k=k,
                hybrid=hybrid,
                text=text,
                document=document,
                model=docs.model,
            )
            .select("id", *cols[1:])
            .rows()
        )
    )
    if isinstance(python, list):
        groups = 2 + DOCS.count(None) if per_document else len(TITLES)  # NULL: its own
        assert len(python) == min(k, groups)
        assert [r[2] for r in python] == list(range(1, len(python) + 1))
    _same(sql, python)
    _same(polars, python)


@prop(40)
@given(queries=tables(dim=4), k=st.integers(-1, 9))
def test_outlier_scores_are_null_for_null_and_refuse_nan_in_every_host(
    docs: Docs, queries: pa.Table, k: int
) -> None:
    ref = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    index = VectorIndex.build(from_numpy(ref), pa.array(range(6)), exact=True)
    con = docs.con
    con.register("oref_src", pa.table({"id": range(6), "v": from_numpy(ref)}))
    con.execute(
        "CREATE OR REPLACE TABLE oref AS SELECT id, v::FLOAT[4] AS v FROM oref_src"
    ).fetchall()
    con.execute("SELECT embed_create_index('oix', 'oref', exact := true)").fetchall()
    con.register("oq", queries.append_column("pos", pa.array(range(queries.num_rows))))
    sql = outcome(
        lambda: [
            r[0]
            for r in con.sql(
                f"SELECT embed_outlier_score(v, 'oix', {k}) FROM oq ORDER BY pos"
            ).fetchall()
        ]
    )
    frame = pl.from_arrow(queries)
    polars = outcome(
        lambda: frame.select(pl.col("v").embed.outlier_score(index, k=k)).to_series().to_list()
    )
    # kth_distance (the engine under both) answers NaN past the index's size and does not
    # check k itself; the hosts refuse both
    python = outcome(
        lambda: (
            [
                None if np.isnan(x) else float(x)
                for x in outliers.kth_distance(index, queries.column("v"), k)
            ]
            if 1 <= k <= len(index)
            else "InvalidParameterError"
        )
    )
    nulls = queries.column("v").is_null().to_pylist()
    live = [r for r in queries.column("v").to_pylist() if r is not None]
    finite = bool(np.isfinite(np.array(live, dtype=np.float64)).all()) if live else True
    for got in (sql, polars, python):
        if isinstance(got, list) and (got or got is not sql):
            assert len(got) == queries.num_rows
            assert [x is None for x in got] == nulls, "NULL in, NULL out (and only then)"
            assert finite, "a NaN/Inf vector was scored instead of refused"
            assert 1 <= k <= len(index)
    rows = {
        host: _round_all([(x,) for x in got]) if isinstance(got, list) else got
        for host, got in (("sql", sql), ("polars", polars), ("python", python))
    }
    _same(rows["polars"], rows["python"])
    _same(rows["sql"], rows["python"], rows_in=queries.num_rows)


@prop(40)
@given(name=st.text(max_size=12))
def test_index_names_are_identifiers_or_refused(docs: Docs, name: str) -> None:
    con = docs.con
    got = outcome(
        lambda: con.sql(
            f"SELECT embed_create_index({sql_literal(name)}, 'docs', exact := true)"
        ).fetchall()
    )
    plain = (
        name.isascii()
        and (name[:1].isalpha() or name[:1] == "_")
        and name.replace("_", "").isalnum()
    )
    if plain:
        assert got == [(len(TITLES),)]
        assert con.sql(f"SELECT embed_drop_index({sql_literal(name)})").fetchall() == [(True,)]
    else:
        assert got == "InvalidParameterError"
    try:
        embed_sql.create_index(con, name, "docs", exact=True)
    except EmbedSQLError:
        assert not plain
    except Exception as exc:  # a refusal must be an EmbedSQLError
        pytest.fail(f"not an EmbedSQLError: {error_name(exc)} {type(exc).__name__}: {exc}")
    else:
        assert plain
        embed_sql.udfs.duckdb.drop_index(con, name)


@prop(25)
@given(dim=st.integers(1, 40), k=st.integers(1, 5))
def test_vectors_of_another_dimension_are_refused_in_sql(docs: Docs, dim: int, k: int) -> None:
    con = docs.con
    con.execute(
        f"CREATE OR REPLACE TABLE other_dim AS SELECT 1 AS id, "
        f"list_transform(range({dim}), lambda x: 1.0)::FLOAT[{dim}] AS v"
    ).fetchall()
    for query in (
        f"FROM embed_knn_join('other_dim', 'six', k := {k})",
        "FROM embed_range_join('other_dim', 'six', 0.5)",
        f"SELECT embed_knn(v, 'six', {k}) FROM other_dim",
        f"SELECT embed_outlier_score(v, 'six', {k}) FROM other_dim",
    ):
        got = outcome(lambda q=query: con.sql(q).fetchall())
        if dim == docs.dim:
            assert isinstance(got, list)
        else:
            assert got == "DimensionMismatchError", query
