"""Properties of the text functions in every host: embed, clean, chunks.

Arbitrary unicode with NULLs and empty strings anywhere, empty and one-row columns: rows in
= rows out, NULL <-> NULL, and SQL (``embed``, ``embed_clean``, ``embed_chunks``) = Polars
(``.embed.text``, ``.embed.clean``, ``.embed.chunk``) = Python (``TextEncoder.encode``,
``preprocess.clean``, ``preprocess.chunk``), bit for bit.
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
from embed_sql import TextEncoder
from embed_sql.exceptions import EmbedSQLError
from embed_sql.models.encoder import shared_encoder
from embed_sql.pipelines import preprocess
from embed_sql.udfs.duckdb.macros import quote_ident, sql_literal
from tests.property.helpers import ODD_NAME, TEXTS, outcome, prop


def _table(con: duckdb.DuckDBPyConnection, texts: list[str | None], name: str = "t") -> str:
    """Make ``texts`` a table ``name`` (id, s) in ``con``; return its quoted name."""
    src = pa.table(
        {"id": pa.array(range(len(texts)), pa.int64()), "s": pa.array(texts, pa.string())}
    )
    con.register("texts_src", src)
    quoted = quote_ident(name)
    con.execute(f"CREATE OR REPLACE TABLE {quoted} AS FROM texts_src").fetchall()
    con.unregister("texts_src")
    return quoted


def _bytes(arr: pa.Array | pa.ChunkedArray) -> list[bytes | None]:
    return [None if v is None else np.asarray(v, np.float32).tobytes() for v in arr.to_pylist()]


@prop(40)
@given(texts=TEXTS)
def test_embed_is_the_same_in_sql_polars_and_python_null_for_null(
    con: duckdb.DuckDBPyConnection, tiny_model: str, texts: list[str | None]
) -> None:
    quoted = _table(con, texts)
    sql = con.sql(f"SELECT embed(s) AS e FROM {quoted} ORDER BY id").to_arrow_table()["e"]
    frame = pl.DataFrame({"s": pl.Series(texts, dtype=pl.String)})
    polars = frame.select(pl.col("s").embed.text(tiny_model)).to_series().to_arrow()
    lazy = (
        frame.lazy()
        .select(pl.col("s").embed.text(tiny_model))
        .collect(engine="streaming")
        .to_series()
        .to_arrow()
    )
    python = shared_encoder(tiny_model).encode(texts)
    want = _bytes(python)
    assert len(want) == len(texts)
    assert [w is None for w in want] == [t is None for t in texts]
    assert _bytes(sql) == want
    assert _bytes(polars) == want
    assert _bytes(lazy) == want
    assert all(np.isfinite(np.frombuffer(w, np.float32)).all() for w in want if w is not None)


@prop(25)
@given(texts=TEXTS)
def test_encoder_alone_gives_one_vector_per_text(tiny_encoder: TextEncoder, texts: list) -> None:
    out = tiny_encoder.encode(texts)
    assert len(out) == len(texts)
    assert [v is None for v in out.to_pylist()] == [t is None for t in texts]


@prop(40)
@given(
    texts=TEXTS,
    repair=st.booleans(),
    strip_html=st.booleans(),
    lowercase=st.booleans(),
)
def test_clean_is_the_same_in_sql_polars_and_python(
    con: duckdb.DuckDBPyConnection,
    texts: list[str | None],
    repair: bool,
    strip_html: bool,
    lowercase: bool,
) -> None:
    quoted = _table(con, texts)
    opts = f"repair := {repair}, strip_html := {strip_html}, lowercase := {lowercase}"
    sql = [
        r[0] for r in con.sql(f"SELECT embed_clean(s, {opts}) FROM {quoted} ORDER BY id").fetchall()
    ]
    frame = pl.DataFrame({"s": pl.Series(texts, dtype=pl.String)})
    options = {"repair": repair, "strip_html": strip_html, "lowercase": lowercase}
    polars = frame.select(pl.col("s").embed.clean(**options)).to_series().to_list()
    python = preprocess.clean(texts, **options).to_pylist()
    assert len(python) == len(texts)
    assert [p is None for p in python] == [t is None for t in texts]
    assert sql == python
    assert polars == python


@prop(30)
@given(
    texts=TEXTS,
    max_tokens=st.integers(-1, 12),
    overlap=st.integers(-1, 12),
    name=ODD_NAME,
)
def test_chunks_are_the_same_in_sql_polars_and_python_or_refused(
    con: duckdb.DuckDBPyConnection,
    tiny_model: str,
    texts: list[str | None],
    max_tokens: int,
    overlap: int,
    name: str,
) -> None:
    cols = ["key", "chunk", "text", "char_start", "char_end", "tokens"]
    quoted = _table(con, texts, name)
    frame = pl.DataFrame({"id": range(len(texts)), "s": pl.Series(texts, dtype=pl.String)})
    outcomes = {
        "python": outcome(
            lambda: [
                tuple(r[c] for c in cols)
                for r in preprocess.chunk(
                    texts,
                    list(range(len(texts))),
                    max_tokens=max_tokens,
                    overlap=overlap,
                    model=tiny_model,
                ).to_pylist()
            ]
        ),
        "sql": outcome(
            lambda: con.sql(
                f"SELECT {', '.join(cols)} FROM embed_chunks({sql_literal(quoted)}, 's', "
                f"max_tokens := {max_tokens}, overlap := {overlap}) ORDER BY key, chunk"
            ).fetchall()
        ),
        "polars": outcome(
            lambda: [
                tuple(r[c] for c in cols)
                for r in frame.embed.chunk(
                    "s", max_tokens=max_tokens, overlap=overlap, model=tiny_model
                ).to_dicts()
            ]
        ),
    }
    if not texts and outcomes["sql"] == [] and isinstance(outcomes["python"], str):
        pass  # an empty table is never validated in SQL: test_chunks_on_an_empty_table_...
    else:
        assert outcomes["sql"] == outcomes["python"]
    assert outcomes["polars"] == outcomes["python"]
    if isinstance(outcomes["python"], list):
        keys = {r[0] for r in outcomes["python"]}
        assert keys <= {i for i, t in enumerate(texts) if t is not None}  # NULL docs: none


@prop(25)
@given(values=st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=5))
def test_a_non_text_column_is_refused_by_type_in_polars(tiny_model: str, values: list) -> None:
    frame = pl.DataFrame({"n": pl.Series(values, dtype=pl.Int64)})
    with pytest.raises(EmbedSQLError, match="cast"):
        frame.select(pl.col("n").embed.text(tiny_model))


def test_chunks_on_an_empty_table_refuse_bad_options_as_python_does(
    con: duckdb.DuckDBPyConnection,
) -> None:
    quoted = _table(con, [], "empty_docs")
    with pytest.raises(duckdb.Error, match="InvalidParameterError"):
        con.sql(f"FROM embed_chunks({sql_literal(quoted)}, 's', max_tokens := 0)").fetchall()


LONG = st.text(st.characters(exclude_categories=["Cs"]), min_size=500, max_size=3000)


@prop(15)
@given(texts=st.lists(st.one_of(st.none(), LONG, st.just("")), min_size=1, max_size=4))
def test_long_texts_embed_to_finite_vectors_the_same_in_sql_and_python(
    con: duckdb.DuckDBPyConnection, tiny_model: str, texts: list[str | None]
) -> None:
    quoted = _table(con, texts)
    sql = con.sql(f"SELECT embed(s) AS e FROM {quoted} ORDER BY id").to_arrow_table()["e"]
    want = shared_encoder(tiny_model).encode(texts)
    assert _bytes(sql) == _bytes(want)
    for v in want.to_pylist():
        assert v is None or np.isfinite(v).all()
