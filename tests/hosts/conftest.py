"""One suite over every host: each Host embeds a text column the way its users would."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.unit.conftest import (  # noqa: F401 - fixtures shared with the unit tests
    _offline_private_cache,
    fresh_cache,
    registered,
    session_cache,
    tiny_encoder,
)


class Host:
    """Embed a list of texts through one host and return the vector column as Arrow."""

    name = "host"

    def embed(self, texts: list[str | None], model: str) -> pa.Array:
        raise NotImplementedError


class DuckDBHost(Host):
    name = "duckdb"

    def embed(self, texts: list[str | None], model: str) -> pa.Array:
        import duckdb

        import embed_sql

        con = duckdb.connect()
        embed_sql.register(con, model=model)
        src = pa.table(
            {"i": pa.array(range(len(texts)), pa.int64()), "s": pa.array(texts, pa.string())}
        )
        con.register("src", src)
        out = con.sql("SELECT embed(s) AS v FROM src ORDER BY i").to_arrow_table()
        con.close()
        return out.column("v").combine_chunks()


class PolarsHost(Host):
    name = "polars"

    def embed(self, texts: list[str | None], model: str) -> pa.Array:
        import polars as pl

        import embed_sql.polars  # noqa: F401 - registers the namespace

        df = pl.DataFrame({"s": pl.Series(texts, dtype=pl.String)})
        return df.select(v=pl.col("s").embed.text(model)).to_arrow().column("v").combine_chunks()


class PolarsStreamingHost(Host):
    name = "polars-streaming"

    def embed(self, texts: list[str | None], model: str) -> pa.Array:
        import polars as pl

        import embed_sql.polars  # noqa: F401

        lf = pl.LazyFrame({"s": pl.Series(texts, dtype=pl.String)})
        df = lf.with_columns(v=pl.col("s").embed.text(model)).collect(engine="streaming")
        return df.to_arrow().column("v").combine_chunks()


HOSTS = [DuckDBHost(), PolarsHost(), PolarsStreamingHost()]


@pytest.fixture(params=HOSTS, ids=lambda h: h.name)
def host(request: pytest.FixtureRequest) -> Host:
    return request.param


@pytest.fixture
def tiny_model(tiny_source: Path) -> str:
    return str(tiny_source)
