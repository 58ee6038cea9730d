"""One contract over the hosts: every operator through Python, SQL and Polars gives the same rows.

Each operator has one implementation per host, returning plain rows; the test compares
each host's rows with Python's (the host-neutral Arrow functions). A host that does not
offer an operator yet is listed in ``NOT_IN`` with the reason, and its case is skipped by
name, so a gap is visible rather than silent. A second test keeps the parameter names of
the SQL macros, the Polars namespace and the Python functions in step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql.models.encoder import shared_encoder
from embed_sql.pipelines import drift, outliers, preprocess
from embed_sql.pipelines.fuzzy import fuzzy_join
from embed_sql.pipelines.search import search
from embed_sql.vectors import VectorIndex, cluster, dedup, knn_join, range_join

TITLES = [
    "food",
    "burrito restaurant",
    "best burrito in town",
    "bank rates",
    "inflation market price",
    "rain storm",
    "storm warning tonight",
    "food market",
    "the bank raised rates",
    "sunny weather",
    "a long document about food and markets and rain and banks and many other things",
    "",
]
HOSTS = ("python", "sql", "polars")
NOT_IN: dict[tuple[str, str], str] = {}


class Data:
    """The same small table in every host, embedded with the tiny model."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.encoder = shared_encoder(model)
        self.ids = list(range(100, 100 + len(TITLES)))
        vectors = self.encoder.encode(TITLES)
        self.arrow = pa.table({"id": self.ids, "title": TITLES, "v": vectors})
        self.frame: pl.DataFrame = pl.from_arrow(self.arrow)  # type: ignore[assignment]
        self.con = duckdb.connect()
        embed_sql.register(self.con, model=model)
        self.con.register("docs_src", self.arrow)
        self.con.execute(
            f"CREATE TABLE docs AS SELECT id, title, v::FLOAT[{self.encoder.dim}] AS v "
            "FROM docs_src"
        ).fetchall()
        self.con.execute(
            "SELECT embed_create_index('ix', 'docs', exact := true, metric := 'cos')"
        ).fetchall()
        self.index = VectorIndex.build(vectors, pa.array(self.ids), exact=True)

    def sql(self, query: str) -> list[tuple]:
        return self.con.sql(query).fetchall()


@pytest.fixture(scope="module")
def data(tiny_source: Path) -> Iterator[Data]:
    made = Data(str(tiny_source))
    yield made
    made.con.close()


def _round(rows: list[tuple]) -> list[tuple]:
    """Distances to 5 decimals (hosts agree to float32 rounding), everything else exact."""
    return [tuple(round(x, 5) if isinstance(x, float) else x for x in r) for r in rows]


def _rows(df: pl.DataFrame | pa.Table, columns: list[str]) -> list[tuple]:
    table = df.to_arrow() if isinstance(df, pl.DataFrame) else df
    return _round(list(zip(*(table.column(c).to_pylist() for c in columns), strict=True)))


# -- one implementation per operator and host --------------------------------------------


def embed_rows(d: Data, host: str) -> list[tuple]:
    if host == "python":
        out = d.encoder.encode(TITLES)
    elif host == "sql":
        out = d.con.sql("SELECT embed(title) AS e FROM docs ORDER BY id").to_arrow_table()["e"]
    else:
        out = d.frame.select(pl.col("title").embed.text(d.model)).to_arrow().column(0)
    flat = pa.chunked_array([out]).combine_chunks() if isinstance(out, pa.Array) else out
    return [tuple(np.asarray(v, np.float32).tobytes() for v in flat.to_pylist())]


def knn_rows(d: Data, host: str) -> list[tuple]:
    if host == "python":
        res = d.index.search(d.encoder.encode(TITLES), 3)
        keys = [[d.index.key_of(np.array([lab]))[0].as_py() for lab in row] for row in res.labels]
        return _round(
            [
                (i, k, float(dist))
                for i, ks, ds in zip(d.ids, keys, res.distances, strict=True)
                for k, dist in zip(ks, ds, strict=True)
            ]
        )
    if host == "sql":
        rows = d.sql("SELECT id, embed_knn(v, 'ix', 3) FROM docs ORDER BY id")
    else:
        found = d.frame.select("id", pl.col("v").embed.knn(d.index, k=3).alias("m"))
        rows = found.rows()
    return _round([(i, m["key"], m["distance"]) for i, ms in rows for m in ms])


def knn_join_rows(d: Data, host: str) -> list[tuple]:
    cols = ["left_key", "right_key", "distance", "rank"]
    if host == "python":
        return _rows(knn_join(d.arrow, d.arrow, 3, exact=True), cols)
    if host == "sql":
        return _round(
            d.sql(
                "SELECT left_key, right_key, distance, rank "
                "FROM embed_knn_join('docs', 'ix', k := 3)"
            )
        )
    return _rows(d.frame.embed.knn_join(d.frame, k=3, exact=True), cols)


def range_join_rows(d: Data, host: str) -> list[tuple]:
    cols = ["left_key", "right_key", "distance"]
    if host == "python":
        return _rows(range_join(d.arrow, d.arrow, 0.3, exact=True), cols)
    if host == "sql":
        return _round(
            d.sql("SELECT left_key, right_key, distance FROM embed_range_join('docs', 'ix', 0.3)")
        )
    return _rows(d.frame.embed.range_join(d.frame, threshold=0.3, exact=True), cols)


def search_rows(d: Data, host: str) -> list[tuple]:
    if host == "python":
        res = d.index.search(d.encoder.encode(["burrito"]), 4)
        keys = d.index.key_of(res.labels[0]).to_pylist()
        return _round(
            list(zip(keys, [float(x) for x in res.distances[0]], range(1, 5), strict=True))
        )
    if host == "sql":
        return _round(
            d.sql("SELECT key, distance, rank FROM embed_search('ix', 'burrito', k := 4)")
        )
    hits = d.frame.embed.search("burrito", k=4, model=d.model)
    return _rows(hits, ["id", "distance", "rank"])


def hybrid_search_rows(d: Data, host: str) -> list[tuple]:
    cols = ["rank", "score", "distance", "bm25"]
    if host == "python":
        found = search(d.arrow, "burrito market", k=5, text="title", hybrid=True, model=d.model)
        return _rows(found, ["key", *cols])
    if host == "sql":
        return _round(
            d.sql(
                "SELECT key, rank, score, distance, bm25 FROM embed_search('ix', "
                "'burrito market', k := 5, hybrid := true, text := 'title')"
            )
        )
    hits = d.frame.embed.search("burrito market", k=5, hybrid=True, text="title", model=d.model)
    return _rows(hits, ["id", *cols])


def fuzzy_join_rows(d: Data, host: str) -> list[tuple]:
    cols = ["left_key", "right_key", "char_score", "semantic_score", "score", "rank"]
    typos = pa.table({"id": [1, 2, 3], "title": ["burito resturant", None, "bank rate"]})
    if host == "python":
        found = fuzzy_join(typos, d.arrow, 3, text="title", semantic=0.3, model=d.model)
        return _rows(found, cols)
    if host == "sql":
        d.con.register("typos_src", typos)
        d.con.execute("CREATE OR REPLACE TABLE typos AS FROM typos_src").fetchall()
        return _round(
            d.sql(
                "FROM embed_fuzzy_join('typos', 'docs', 'title', 'title', k := 3, semantic := 0.3)"
            )
        )
    frame: pl.DataFrame = pl.from_arrow(typos)  # type: ignore[assignment]
    found_pl = frame.embed.fuzzy_join(d.frame, text="title", k=3, semantic=0.3, model=d.model)
    return _rows(found_pl, cols)


def dedup_rows(d: Data, host: str) -> list[tuple]:
    cols = ["key", "group_id", "representative", "keep"]
    if host == "python":
        return _rows(dedup(d.arrow, 0.2), cols)
    if host == "sql":
        return d.sql("SELECT key, group_id, representative, keep FROM embed_dedup('docs', 0.2)")
    return _rows(d.frame.embed.dedup(threshold=0.2).rename({"id": "key"}), cols)


def cluster_rows(d: Data, host: str) -> list[tuple]:
    if host == "python":
        return _rows(cluster(d.arrow, k=3, seed=1).table, ["key", "cluster"])
    if host == "sql":
        return d.sql("SELECT key, cluster FROM embed_cluster('docs', k := 3, seed := 1)")
    return _rows(d.frame.embed.cluster(k=3, seed=1), ["id", "cluster"])


def chunk_rows(d: Data, host: str) -> list[tuple]:
    cols = ["key", "chunk", "text", "char_start", "char_end", "tokens"]
    if host == "python":
        out = preprocess.chunk(TITLES, d.ids, max_tokens=8, overlap=2, model=d.model)
        return _rows(out, cols)
    if host == "sql":
        return d.sql(
            "SELECT key, chunk, text, char_start, char_end, tokens FROM "
            "embed_chunks('docs', 'title', max_tokens := 8, overlap := 2) ORDER BY key, chunk"
        )
    return _rows(d.frame.embed.chunk("title", max_tokens=8, overlap=2, model=d.model), cols)


def drift_rows(d: Data, host: str) -> list[tuple]:
    # too few rows for the tests to run: the contract is the same verdict row everywhere
    cols = ["test", "statistic", "p_value", "p_adjusted", "drift", "detail"]
    if host == "python":
        return _rows(drift.check(d.arrow, d.arrow).to_arrow(), cols)
    if host == "sql":
        return _round(
            d.sql(
                "SELECT test, statistic, p_value, p_adjusted, drift, detail "
                "FROM embed_drift('docs', 'docs')"
            )
        )
    return _rows(drift.check(d.frame, d.frame.lazy()).to_arrow(), cols)


def outlier_rows(d: Data, host: str) -> list[tuple]:
    if host == "python":
        out = outliers.kth_distance(d.index, d.encoder.encode(TITLES), 2)
        return _round([(float(x),) for x in out])
    if host == "sql":
        return _round(d.sql("SELECT embed_outlier_score(v, 'ix', 2) FROM docs ORDER BY id"))
    scored = d.frame.select(pl.col("v").embed.outlier_score(d.index, k=2))
    return _round([(x,) for x in scored.to_series().to_list()])


OPERATORS: dict[str, Callable[[Data, str], list[tuple]]] = {
    "embed": embed_rows,
    "knn": knn_rows,
    "knn_join": knn_join_rows,
    "range_join": range_join_rows,
    "search": search_rows,
    "hybrid_search": hybrid_search_rows,
    "fuzzy_join": fuzzy_join_rows,
    "dedup": dedup_rows,
    "cluster": cluster_rows,
    "chunks": chunk_rows,
    "drift": drift_rows,
    "outlier_score": outlier_rows,
}


@pytest.mark.parametrize("host", HOSTS[1:])
@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_host_gives_pythons_rows(data: Data, operator: str, host: str) -> None:
    if (operator, host) in NOT_IN:
        pytest.skip(f"not in {host}: {NOT_IN[operator, host]}")
    want = OPERATORS[operator](data, "python")
    got = OPERATORS[operator](data, host)
    assert len(want) > 0
    assert got == want


# -- the parameter names, in step ---------------------------------------------------------

# the names each operator shares in every host that has it (host-only extras are allowed)
SHARED = {
    "knn_join": {"k", "vec", "key"},
    "range_join": {"threshold", "vec", "key"},
    "search": {"k", "hybrid", "text", "weight", "document"},
    "fuzzy_join": {
        "k",
        "text",
        "key",
        "right_text",
        "right_key",
        "scorer",
        "semantic",
        "threshold",
    },
    "dedup": {"threshold", "vec", "key", "metric"},
    "cluster": {"k", "threshold", "vec", "key", "metric", "seed"},
    "chunks": {"max_tokens", "overlap"},  # Python chunks arrays: keys are values, not a column
    "outlier_score": {"k"},
}
RETIRED = {
    "on",
    "column",
    "left_on",
    "right_on",
    "connectivity",
    "expansion_add",
    "expansion_search",
}


def _sql_params(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    rows = con.sql(
        "SELECT parameters FROM duckdb_functions() WHERE function_name = ?", params=[name]
    ).fetchall()
    assert rows, f"no SQL function {name}"
    return {p.lower() for p in rows[0][0]}


def _py_params(fn: Callable[..., object]) -> set[str]:
    return set(inspect.signature(fn).parameters) - {"self"}


def test_parameter_names_are_the_same_in_sql_polars_and_python(data: Data) -> None:
    lazy = embed_sql.polars.EmbedLazyFrame
    hosts: dict[str, dict[str, set[str]]] = {
        "sql": {
            op: _sql_params(data.con, f"embed_{name}")
            for op, name in {
                "knn_join": "knn_join",
                "range_join": "range_join",
                "search": "search",
                "fuzzy_join": "fuzzy_join",
                "dedup": "dedup",
                "cluster": "cluster",
                "chunks": "chunks",
                "outlier_score": "outlier_score",
            }.items()
        },
        "polars": {
            "knn_join": _py_params(lazy.knn_join),
            "range_join": _py_params(lazy.range_join),
            "search": _py_params(lazy.search),
            "fuzzy_join": _py_params(lazy.fuzzy_join),
            "dedup": _py_params(lazy.dedup),
            "cluster": _py_params(lazy.cluster),
            "chunks": _py_params(lazy.chunk),
            "outlier_score": _py_params(embed_sql.polars.EmbedExpr.outlier_score),
        },
        "python": {
            "knn_join": _py_params(knn_join),
            "range_join": _py_params(range_join),
            "search": _py_params(search),
            "fuzzy_join": _py_params(fuzzy_join),
            "dedup": _py_params(dedup),
            "cluster": _py_params(cluster),
            "chunks": _py_params(preprocess.chunk),
            "outlier_score": _py_params(outliers.OutlierScorer.__init__),
        },
    }
    for op, shared in SHARED.items():
        for host, ops in hosts.items():
            missing = shared - ops[op]
            assert not missing, f"{host} {op} lacks {sorted(missing)}"
            assert not ops[op] & RETIRED, f"{host} {op} still uses {sorted(ops[op] & RETIRED)}"
    eager, lazy_ns = embed_sql.polars.EmbedFrame, embed_sql.polars.EmbedLazyFrame
    for name in ("knn_join", "range_join", "fuzzy_join", "dedup", "cluster", "search", "chunk"):
        assert (
            inspect.signature(getattr(eager, name)).parameters.keys()
            == inspect.signature(getattr(lazy_ns, name)).parameters.keys()
        ), f"eager and lazy {name} differ"


def test_index_options_are_the_same_in_sql_and_python(data: Data) -> None:
    sql = _sql_params(data.con, "embed_create_index") - {"idx", "tbl"}
    python = {p.lower() for p in _py_params(embed_sql.create_index)} - {"con", "name", "table"}
    assert python - {"model"} == sql  # the SQL index takes the database's embed model
