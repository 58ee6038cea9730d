"""Concurrency: many threads on one registered database, and Polars' own thread pool.

Several Python threads, each on its own cursor of one registered connection, run embed(),
the table macros and the index functions at the same moment; each must get exactly the
single-threaded answer. The same for Polars: an expression over a frame big enough for
the streaming engine to split, and several frames collected at once with ``pl.collect_all``.
A thread that does not finish in time fails the test (a hang), rather than blocking it.
"""

from __future__ import annotations

import threading
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

WORDS = "food market bank rates rain storm burrito town sunny price the a of in best".split()
THREADS = 4
TIMEOUT = 300  # seconds a thread may take before the test calls it a hang


def _texts(n: int, seed: int) -> list[str | None]:
    rng = np.random.default_rng(seed)
    out: list[str | None] = []
    for i in range(n):
        if i % 17 == 5:
            out.append(None)
        else:
            out.append(" ".join(rng.choice(WORDS, size=int(rng.integers(0, 8)))))
    return out


@pytest.fixture(scope="module")
def con(tiny_model: str, session_cache: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBED_SQL_CACHE", str(session_cache))
    mp.setenv("HF_HUB_OFFLINE", "1")
    connection = duckdb.connect()
    embed_sql.register(connection, model=tiny_model)
    docs = pa.table({"id": pa.array(range(300), pa.int64()), "title": _texts(300, 1)})
    connection.register("docs_src", docs)
    connection.execute(
        "CREATE TABLE docs AS SELECT id, title, embed(title) AS v FROM docs_src "
        "WHERE title IS NOT NULL"
    ).fetchall()
    connection.execute("CREATE TABLE queries AS SELECT id, v FROM docs WHERE id % 3 = 0").fetchall()
    connection.execute("SELECT embed_create_index('tix', 'docs', exact := true)").fetchall()
    connection.execute("SELECT embed_create_index('hix', 'docs')").fetchall()
    yield connection
    connection.close()
    mp.undo()


QUERIES: dict[str, str] = {
    "embed": "SELECT id, embed(title) FROM docs ORDER BY id",
    "knn_join": "FROM embed_knn_join('queries', 'tix', k := 5)",
    "knn_join_hnsw": "FROM embed_knn_join('queries', 'hix', k := 5)",
    "range_join": "FROM embed_range_join('queries', 'tix', 0.05)",
    "dedup": "FROM embed_dedup('docs', 0.02)",
    "cluster": "FROM embed_cluster('docs', k := 4, seed := 1)",
    "cluster_threshold": "FROM embed_cluster('docs', threshold := 0.05)",
    "search": "FROM embed_search('tix', 'burrito market', k := 7)",
    "knn": "SELECT id, embed_knn(v, 'tix', 3) FROM queries ORDER BY id",
}


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    """Run ``jobs`` in threads started together; their results, or the first exception."""
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def work(i: int) -> None:
        try:
            start.wait()
            results[i] = jobs[i]()
        except BaseException as exc:  # handed to the test thread, re-raised there
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_cursors_in_threads_get_the_single_threaded_answers(
    con: duckdb.DuckDBPyConnection,
) -> None:
    want = {name: con.sql(q).fetchall() for name, q in QUERIES.items()}
    assert all(want.values())

    def job(offset: int) -> Callable[[], dict[str, list]]:
        names = list(QUERIES)
        order = names[offset:] + names[:offset]  # every thread in another order

        def run() -> dict[str, list]:
            cur = con.cursor()
            try:
                return {name: cur.sql(QUERIES[name]).fetchall() for name in order}
            finally:
                cur.close()

        return run

    for got in _run_all([job(i) for i in range(THREADS)]):
        assert got == want


def test_indexes_created_in_threads_answer_as_one_built_alone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    want = con.sql("SELECT id, embed_knn(v, 'tix', 4) FROM queries ORDER BY id").fetchall()

    def job(i: int) -> Callable[[], tuple[list, list]]:
        def run() -> tuple[list, list]:
            cur = con.cursor()
            try:
                built = cur.sql(
                    f"SELECT embed_create_index('thread_ix_{i}', 'docs', exact := true)"
                ).fetchall()
                found = cur.sql(
                    f"SELECT id, embed_knn(v, 'thread_ix_{i}', 4) FROM queries ORDER BY id"
                ).fetchall()
                cur.sql(f"SELECT embed_drop_index('thread_ix_{i}')").fetchall()
                return built, found
            finally:
                cur.close()

        return run

    n = con.sql("SELECT count(*) FROM docs").fetchall()[0][0]
    for built, found in _run_all([job(i) for i in range(THREADS)]):
        assert built == [(n,)]
        assert found == want


@pytest.mark.parametrize("engine", ["streaming", "in-memory"])
def test_polars_expression_over_many_batches_equals_the_encoder(
    tiny_model: str, engine: str
) -> None:
    texts = _texts(6000, 2)
    # twelve chunks: Polars hands the expression many batches, on several threads
    pieces = [
        pl.LazyFrame({"s": pl.Series(texts[i : i + 500], dtype=pl.String)})
        for i in range(0, 6000, 500)
    ]
    lf = pl.concat(pieces, rechunk=False)
    got = lf.select(pl.col("s").embed.text(tiny_model)).collect(engine=engine)  # type: ignore[arg-type]
    want = shared_encoder(tiny_model).encode(texts)
    assert got.height == len(texts)
    assert got.to_series().to_arrow().cast(want.type).to_pylist() == want.to_pylist()


def test_frames_collected_together_equal_each_collected_alone(tiny_model: str) -> None:
    frames = [
        pl.LazyFrame({"id": range(400), "s": pl.Series(_texts(400, seed), dtype=pl.String)})
        .filter(pl.col("s").is_not_null())
        .with_columns(v=pl.col("s").embed.text(tiny_model))
        for seed in range(3, 3 + THREADS)
    ]
    plans = [
        frames[0],
        frames[1].embed.knn_join(frames[2], k=3, exact=True),
        frames[2].embed.dedup(threshold=0.02),
        frames[3].embed.cluster(k=3, seed=1),
        frames[0].embed.range_join(frames[3], threshold=0.05, exact=True),
    ]
    alone = [plan.collect() for plan in plans]
    together = pl.collect_all(plans)
    for a, b in zip(alone, together, strict=True):
        assert a.equals(b)
    # and from threads, each collecting a few at once
    runs = _run_all([lambda: pl.collect_all(plans) for _ in range(THREADS)])
    for run in runs:
        for a, b in zip(alone, run, strict=True):  # type: ignore[call-overload]
            assert a.equals(b)


def test_register_from_cursors_in_threads_while_others_query(
    con: duckdb.DuckDBPyConnection, tiny_model: str
) -> None:
    want = con.sql(QUERIES["knn_join"]).fetchall()
    embedded = con.sql(QUERIES["embed"]).fetchall()

    def job(i: int) -> Callable[[], tuple[list, list]]:
        def run() -> tuple[list, list]:
            cur = con.cursor()
            try:
                if i % 2:  # half register their cursor (cheap once the database is)
                    embed_sql.register(cur, model=tiny_model)
                return cur.sql(QUERIES["knn_join"]).fetchall(), cur.sql(QUERIES["embed"]).fetchall()
            finally:
                cur.close()

        return run

    for got_join, got_embed in _run_all([job(i) for i in range(THREADS)]):
        assert got_join == want
        assert got_embed == embedded
