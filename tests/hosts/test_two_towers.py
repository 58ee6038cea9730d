"""Two towers: vectors of two different models meet only when they are allowed to."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import TextEncoder
from embed_sql.exceptions import DimensionMismatchError, InvalidParameterError
from embed_sql.vectors.join import knn_join, range_join
from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def towers(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    # two fresh 32-d models: their first vectors are all recorded, so a column of theirs
    # is always recognised (after 4,096 vectors a model's are sampled, see provenance)
    root = tmp_path_factory.mktemp("towers")
    query = build_tiny_model(root / "query-tower", seed=2)
    return str(query), str(build_tiny_model(root / "doc-tower", seed=1))


def test_different_models_are_refused_unless_allowed(towers: tuple[str, str]) -> None:
    query_model, doc_model = towers
    queries = pa.table({"id": [1, 2], "v": TextEncoder(query_model).encode(["tacos", "rates"])})
    docs = pa.table({"id": [7, 8, 9], "v": TextEncoder(doc_model).encode(["a", "b", "c"])})
    with pytest.raises(DimensionMismatchError, match=r"different models.*allow_models=\{"):
        knn_join(queries, docs, 2)
    names = {TextEncoder(query_model).name, TextEncoder(doc_model).name}
    assert knn_join(queries, docs, 2, allow_models=names).num_rows == 4
    assert range_join(queries, docs, 2.0, allow_models=names).num_rows == 6
    only_one = {TextEncoder(query_model).name}
    with pytest.raises(DimensionMismatchError):
        knn_join(queries, docs, 2, allow_models=only_one)  # both must be named
    with pytest.raises(InvalidParameterError, match=r"must be a set of model names"):
        knn_join(queries, docs, 2, allow_models="both")  # type: ignore[arg-type]
    lazy = pl.from_arrow(queries).embed.knn_join(pl.from_arrow(docs), k=1, allow_models=names)  # type: ignore[union-attr]
    assert lazy.height == 2


def test_sql_joins_two_towers_when_allowed(towers: tuple[str, str]) -> None:
    query_model, doc_model = towers
    con = duckdb.connect()
    try:
        embed_sql.register(con, model=doc_model, models={"q": query_model})
        con.sql(
            "CREATE TABLE docs AS SELECT range AS id, embed('doc ' || range) AS v FROM range(5)"
        )
        con.sql(
            "CREATE TABLE qs AS SELECT range AS id, embed_q('query ' || range) AS v FROM range(3)"
        )
        con.execute("SELECT embed_create_index('docs_index', 'docs')").fetchall()
        with pytest.raises(duckdb.Error, match=r"different models"):
            con.sql("FROM embed_knn_join('qs', 'docs_index', k := 2)").fetchall()
        names = [TextEncoder(query_model).name, TextEncoder(doc_model).name]
        got = con.sql(
            f"FROM embed_knn_join('qs', 'docs_index', k := 2, allow_models := {names})"
        ).fetchall()
        assert len(got) == 6
        pairs = con.sql(
            f"FROM embed_range_join('qs', 'docs_index', 2.0, allow_models := {names})"
        ).fetchall()
        assert len(pairs) == 15
    finally:
        con.close()
