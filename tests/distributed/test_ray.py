"""embed_sql on Ray Data (one local session): the local path's vectors and joins, Parquet in
and out, errors that name their rows, and a killed worker's batch done again exactly once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from embed_sql.distributed import ray as er
from embed_sql.distributed.batches import EmbedBatch
from embed_sql.exceptions import EmbedSQLError, InputTypeError
from embed_sql.models.encoder import shared_encoder
from tests.corpus import bbc_articles

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray's own

ARTICLES = bbc_articles()[::10]  # 223 real titles
N = len(ARTICLES)
TITLES = pa.table(
    {
        "id": pa.array(range(N), pa.int64()),
        "topic": [t for t, _, _ in ARTICLES],
        "title": [None if i % 17 == 3 else title for i, (_, title, _) in enumerate(ARTICLES)],
    }
)


def blocks(ray: Any, table: pa.Table, rows: int = 40) -> Any:
    return ray.data.from_arrow([table.slice(i, rows) for i in range(0, table.num_rows, rows)])


def by_id(table: pa.Table) -> pa.Table:
    return table.sort_by("id")


def test_vectors_are_the_local_paths_bit_for_bit(ray_session: Any) -> None:
    out = by_id(er.to_arrow(er.embed_dataset(blocks(ray_session, TITLES), "title", batch_size=32)))
    assert out.column("id").to_pylist() == list(range(N))
    local = shared_encoder().encode(TITLES.column("title"))
    assert out.column("embedding").combine_chunks().equals(local.combine_chunks())
    assert out.schema.field("embedding").metadata == shared_encoder().field().metadata
    assert out.column("embedding").null_count == TITLES.column("title").null_count


def test_parquet_in_embed_parquet_out_then_duckdb_and_polars(
    ray_session: Any, tmp_path: Path
) -> None:
    pq.write_table(TITLES, tmp_path / "in.parquet", row_group_size=50)
    ds = ray_session.data.read_parquet(str(tmp_path / "in.parquet"))
    er.embed_dataset(ds, "title", key="id").write_parquet(str(tmp_path / "out"))
    back = by_id(pq.read_table(tmp_path / "out"))
    assert back.num_rows == N
    assert back.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    con = duckdb.connect()
    n = con.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/out/*.parquet') "
        "WHERE embedding::FLOAT[384] IS NOT NULL"
    ).fetchall()[0][0]
    assert n == N - TITLES.column("title").null_count
    frame = pl.from_arrow(back)
    assert frame.schema["embedding"] == pl.Array(pl.Float32, 384)  # type: ignore[union-attr]


def test_knn_join_equals_the_local_join(ray_session: Any) -> None:
    from embed_sql.vectors import VectorIndex, knn_join

    vectors = TITLES.append_column("embedding", shared_encoder().encode(TITLES.column("title")))
    docs = vectors.filter(pc.is_valid(vectors.column("title")))
    index = VectorIndex.build(docs.column("embedding"), docs.column("id"), exact=True)
    want = knn_join(vectors, index, 3, vec="embedding")
    keys = [("left_key", "ascending"), ("rank", "ascending")]
    before = set(Path(tempfile.gettempdir()).glob("embed_sql-ray-*"))
    for side in (index, docs, ray_session.data.from_arrow(docs)):
        # the index is shipped through the object store: each actor maps its node's copy
        got = er.to_arrow(er.knn_join(blocks(ray_session, vectors), side, 3, exact=True))
        assert got.sort_by(keys).equals(want.sort_by(keys))
    assert set(Path(tempfile.gettempdir()).glob("embed_sql-ray-*")) == before  # none left


def test_drift_check_samples_on_the_cluster(ray_session: Any) -> None:
    vectors = TITLES.append_column("embedding", shared_encoder().encode(TITLES.column("title")))
    vectors = vectors.filter(pc.is_valid(vectors.column("title")))
    topic = vectors.column("topic")
    sport = ray_session.data.from_arrow(vectors.filter(pc.equal(topic, "sports")))
    business = ray_session.data.from_arrow(vectors.filter(pc.equal(topic, "business")))
    report = er.drift_check(sport, business, max_rows=40)
    assert report.verdict == "drift"
    assert report.tests[0].n_reference <= 40


def test_a_failing_batch_names_its_rows_and_keeps_its_type(ray_session: Any) -> None:
    bad = pa.table({"id": pa.array(range(500, 510), pa.int64()), "title": pa.array(range(10))})
    ds = ray_session.data.from_arrow(bad)  # numbers where text belongs
    with pytest.raises(EmbedSQLError, match=r"id 500\.\.509") as caught:
        er.embed_dataset(ds, "title", key="id", batch_size=None).materialize()
    assert isinstance(caught.value, InputTypeError)


class DiesOnce(EmbedBatch):
    """Kill its own worker process the first time it meets row 100 (a crash, not an error)."""

    def __init__(self, mark: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mark = mark

    def __call__(self, batch: pa.Table) -> pa.Table:
        if 100 in batch.column("id").to_pylist() and not os.path.exists(self.mark):
            Path(self.mark).touch()
            os._exit(1)
        return super().__call__(batch)


def test_a_killed_worker_is_replaced_and_every_row_comes_once(
    ray_session: Any, tmp_path: Path
) -> None:
    mark = tmp_path / "died"
    ds = er._map(
        blocks(ray_session, TITLES),
        DiesOnce,
        fn_constructor_kwargs={"mark": str(mark), "column": "title", "key": "id"},
        batch_size=20,
        compute=ray_session.data.ActorPoolStrategy(size=1),
        num_cpus=1,
    )
    out = by_id(er.to_arrow(ds))
    assert mark.exists()  # the worker did die
    assert out.column("id").to_pylist() == list(range(N))  # every row, once
    local = shared_encoder().encode(TITLES.column("title"))
    assert out.column("embedding").combine_chunks().equals(local.combine_chunks())


def test_model_files_shipped_to_a_worker_with_an_empty_cache(
    ray_session: Any, tmp_path: Path
) -> None:
    files = er._model_files(shared_encoder())
    assert files is not None
    assert any(name.endswith(".onnx") for name in files[1])
    worker_cache = tmp_path / "worker-cache"
    os.environ["EMBED_SQL_CACHE"] = str(worker_cache)  # the batch runs here: its own cache
    try:
        batch = EmbedBatch("title", model="all-MiniLM-L6-v2", files=files)
        out = batch(TITLES.slice(0, 30))
    finally:
        del os.environ["EMBED_SQL_CACHE"]
    assert (worker_cache / files[0]).is_dir()
    assert sorted(p.name for p in (worker_cache / files[0]).iterdir()) == sorted(files[1])
    local = shared_encoder().encode(TITLES.column("title").slice(0, 30))
    assert out.column("embedding").combine_chunks().equals(local.combine_chunks())


def test_pools_leave_a_cpu_for_reads(ray_session: Any) -> None:
    pool = er._pool(1, None)
    assert pool.max_size == 1  # 2 CPUs: one actor, one CPU left (ray#44687)
    with pytest.raises(EmbedSQLError, match="concurrency=0"):
        er._pool(1, 0)
    assert np.isfinite(1.0)
