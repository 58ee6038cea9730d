"""Ray Data adapters: embed a column, k-NN join, drift check, on a Ray cluster.

Ray Data is the engine (Arrow batches in and out, actor pools that load a model once per
worker, an object store that keeps one copy of a shared object per node); these functions
only configure it. The per-batch work is :mod:`embed_sql.distributed.batches`, the very
code of the local path, so vectors are bit-identical to ``TextEncoder.encode``.

Defaults that work on small machines:

- actor pools never take every CPU: Ray Data hangs silently when an actor pool holds all
  CPUs and a read task needs one (ray-project/ray#44687, still so in 2.60), so a pool
  grows to at most ``CPUs - cpus_per_actor`` actors (at least one);
- each actor's onnxruntime gets ``cpus_per_actor`` threads (by default an encoder takes
  every core of the node, which oversubscribes it once several actors run);
- the model is resolved (exported if need be) once, on the driver; its cache entry is
  shipped to the workers through the object store when the cluster has several nodes
  (``ship_model``), so no worker exports it again;
- a batch that kills its worker is retried (3 times) on another; an error raised by the
  batch itself reaches the driver with its embed_sql type (``except EmbedSQLError``
  works) and names the batch's rows.

Results stay Ray Datasets: ``ds.write_parquet(path)``, ``to_arrow(ds)`` (a ``pa.Table``,
which DuckDB and Polars read without a copy), ``ds.iter_batches(batch_format="pyarrow")``
for bounded memory.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from embed_sql.distributed.batches import EmbedBatch, KnnBatch
from embed_sql.exceptions import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    import ray.data

    from embed_sql.pipelines.drift import DriftReport
    from embed_sql.vectors.index import VectorIndex

__all__ = ["drift_check", "embed_dataset", "knn_join", "to_arrow"]

RETRIES = 3  # a batch whose worker dies is retried this often; then the job fails


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        msg = "the Ray adapters need Ray Data; install the extra: pip install 'embed-sql[ray]'"
        raise MissingDependencyError(msg) from exc
    if not ray.is_initialized():
        ray.init()  # a local cluster, as Ray Data itself would start
    return ray


def _positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        none = " (or None)" if allow_none else ""
        msg = f"{name}={value!r}: give a positive integer{none}"
        raise InvalidParameterError(msg)


def _pool(cpus_per_actor: float, concurrency: int | None) -> Any:
    """Return an actor pool that never holds every CPU of the cluster (ray#44687)."""
    ray = _ray()
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            msg = f"concurrency={concurrency!r}: give the most actors to run, an int >= 1"
            raise InvalidParameterError(msg)
        return ray.data.ActorPoolStrategy(min_size=1, max_size=concurrency)
    total = float(ray.cluster_resources().get("CPU", 1))
    most = max(1, int((total - cpus_per_actor) // cpus_per_actor))
    return ray.data.ActorPoolStrategy(min_size=1, max_size=most)


def _map(ds: ray.data.Dataset, fn: type, **kwargs: Any) -> ray.data.Dataset:
    """``map_batches`` with a finite ``max_task_retries`` for the actors.

    Ray 2.60 takes that actor option only through ``ray_remote_args``, which it calls
    deprecated: that one warning is silenced here. The job's DataContext raises the
    original exception of a failed batch (its embed_sql type), not Ray's wrapper.
    """
    from ray.util.annotations import RayDeprecationWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RayDeprecationWarning, message=".*remote_args")
        out = ds.map_batches(fn, batch_format="pyarrow", max_task_retries=RETRIES, **kwargs)
    out.context.raise_original_map_exception = True
    return out


def _model_files(encoder: Any) -> tuple[str, dict[str, bytes]] | None:
    """Return the driver's cache entry of an ONNX model: (path under the cache, files)."""
    from embed_sql.config import get_settings

    resolved = getattr(encoder, "resolved", None)
    if resolved is None:  # static and word-vector models: their files must be on each node
        return None
    folder = Path(resolved.onnx_path).parent
    try:
        rel = folder.relative_to(get_settings().cache_dir)
    except ValueError:  # a model outside the cache (a local folder): not shipped
        return None
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    return rel.as_posix(), files


def embed_dataset(
    ds: ray.data.Dataset,
    column: str,
    model: str | None = None,
    *,
    output_column: str = "embedding",
    batch_size: int | None = 256,
    concurrency: int | None = None,
    cpus_per_actor: int = 1,
    key: str | None = None,
    ship_model: bool | None = None,
) -> ray.data.Dataset:
    """Append a vector column to a Ray Dataset: ``column`` embedded with ``model``.

    Parameters
    ----------
    ds
        Any Ray Dataset (``ray.data.read_parquet(...)``, ``from_arrow``, ...).
    column, output_column
        The text column, and the name of the ``FLOAT[d]`` column appended.
    model
        A registered model name (default all-MiniLM-L6-v2); resolved once on the driver.
    batch_size
        Rows per call of the encoder (None: a whole block).
    concurrency
        The most actors (default: what leaves one actor's CPUs free, at least one).
    cpus_per_actor
        CPUs each actor reserves, and its onnxruntime threads.
    key
        A key column, named in errors (the key range of the failing batch).
    ship_model
        Put the model files in the object store for the workers (default: when the
        cluster has more than one node; on one node the workers share the cache).

    Returns
    -------
    ray.data.Dataset
        Lazy: rows in any order (sort by a key if order matters). NULL texts give NULL.
    """
    from embed_sql.models.encoder import shared_encoder

    ray = _ray()
    _positive("batch_size", batch_size, allow_none=True)
    _positive("cpus_per_actor", cpus_per_actor)
    if column not in ds.columns():
        msg = f"column {column!r} is not in the dataset; its columns are {ds.columns()}"
        raise InvalidParameterError(msg)
    encoder = shared_encoder(model)  # resolved (exported if needed) here, once
    if ship_model is None:
        ship_model = len([n for n in ray.nodes() if n.get("Alive")]) > 1
    files = _model_files(encoder) if ship_model else None
    args = {
        "column": column,
        "output": output_column,
        "model": encoder.resolved.ref if hasattr(encoder, "resolved") else encoder.name,
        "threads": cpus_per_actor,
        "key": key,
        "files": ray.put(files) if files is not None else None,
    }
    return _map(
        ds,
        EmbedBatch,
        fn_constructor_kwargs=args,
        batch_size=batch_size,
        compute=_pool(cpus_per_actor, concurrency),
        num_cpus=cpus_per_actor,
        zero_copy_batch=True,
    )


def knn_join(
    queries: ray.data.Dataset,
    docs: VectorIndex | pa.Table | ray.data.Dataset | str | os.PathLike[str],
    k: int = 10,
    *,
    vec: str = "embedding",
    key: str = "id",
    right_vec: str | None = None,
    right_key: str | None = None,
    batch_size: int = 1024,
    concurrency: int | None = None,
    cpus_per_actor: int = 1,
    allow_models: Collection[str] | None = None,
    **index_options: Any,
) -> ray.data.Dataset:
    """For each row of ``queries``, its ``k`` nearest rows of ``docs``, on the cluster.

    The document side is indexed once (on the driver), saved to a file and shipped through
    the object store (one copy per node); each actor memory-maps it, so actors on a node
    share its pages. The query side's blocks are searched in actors, in parallel.

    Parameters
    ----------
    docs
        A :class:`VectorIndex`, a saved index file, or an Arrow table / Ray Dataset with
        ``right_key`` and ``right_vec`` columns (collected to the driver to build the index:
        the document side must fit one machine; the query side need not).
    index_options
        For building the index (``exact=``, ``metric=``, ``M=``, ...), as
        :meth:`VectorIndex.build`.

    Returns
    -------
    ray.data.Dataset
        ``left_key``, ``right_key``, ``distance``, ``rank``, as the local
        :func:`embed_sql.vectors.knn_join` (rows in any order).
    """
    from embed_sql.vectors.index import VectorIndex
    from embed_sql.vectors.join import check_k

    ray = _ray()
    k = check_k(k)
    _positive("batch_size", batch_size)
    _positive("cpus_per_actor", cpus_per_actor)
    rvec = vec if right_vec is None else right_vec
    rkey = key if right_key is None else right_key
    if isinstance(docs, str | os.PathLike):
        path = Path(docs)
        VectorIndex.view(path)  # a missing or damaged file is refused here, not per actor
        data = path.read_bytes()
    else:
        if not isinstance(docs, VectorIndex):
            if isinstance(docs, pa.Table):
                table = docs
            else:  # a Ray Dataset: its two columns collected to the driver
                table = to_arrow(docs.select_columns([rkey, rvec]))
            from embed_sql.vectors.arrow import fixed_vectors

            docs = VectorIndex.build(
                fixed_vectors(table.column(rvec), rvec, "the documents"),
                table.column(rkey),
                **index_options,
            )
        # saved only to be shipped: the actors write the bytes to a file of their node's
        # (one per node, content-named, removed a day after its last use), so nothing is
        # left in the driver's temporary folder
        with tempfile.TemporaryDirectory(prefix="embed_sql-ray-") as folder:
            path = docs.save(Path(folder) / "docs.index")
            data = path.read_bytes()
    args = {
        "path": str(path),
        "k": k,
        "vec": vec,
        "key": key,
        "threads": cpus_per_actor,
        "data": ray.put(data),
        "allow_models": list(allow_models) if allow_models is not None else None,
    }
    return _map(
        queries.select_columns([key, vec]),
        _ShippedKnnBatch,
        fn_constructor_kwargs=args,
        batch_size=batch_size,
        compute=_pool(cpus_per_actor, concurrency),
        num_cpus=cpus_per_actor,
    )


class _ShippedKnnBatch(KnnBatch):
    """:class:`KnnBatch` with the index file's bytes in Ray's object store (a reference).

    Ray resolves only top-level references of a task's arguments, and ``map_batches`` nests
    the constructor's: this fetches the bytes (once per node in the object store).
    """

    def __init__(self, *, path: str, data: Any = None, **kwargs: Any) -> None:
        super().__init__(path=path, data=None if data is None else _ray().get(data), **kwargs)


def drift_check(
    reference: ray.data.Dataset,
    current: ray.data.Dataset,
    vec: str = "embedding",
    *,
    max_rows: int = 5_000,
    seed: int = 0,
    **options: Any,
) -> DriftReport:
    """Sample both datasets on the cluster, then run the local drift check on the samples.

    At most about ``max_rows`` rows of the vector column come to the driver from each side
    (a uniform sample drawn on the cluster; the check's own tests subsample to 5,000 rows
    anyway). ``options`` go to :class:`~embed_sql.pipelines.drift.DriftCheck`.
    """
    from embed_sql.pipelines.drift import DriftCheck
    from embed_sql.vectors.join import check_k

    check_k(max_rows)
    sides = []
    for name, ds in (("reference", reference), ("current", current)):
        if vec not in ds.columns():
            msg = (
                f"vector column {vec!r} is not in the {name} dataset; its columns are "
                f"{ds.columns()}"
            )
            raise InvalidParameterError(msg)
        rows = ds.count()
        picked = ds.select_columns([vec])
        if rows > max_rows:
            picked = picked.random_sample(min(1.0, 1.1 * max_rows / rows), seed=seed)
        sides.append(to_arrow(picked).slice(0, max_rows))
    return DriftCheck(sides[0], vec=vec, seed=seed, **options).check(sides[1])


def to_arrow(ds: ray.data.Dataset) -> pa.Table:
    """Collect a (small) Dataset as one Arrow table, vector types and metadata kept."""
    ray = _ray()
    tables = [t for t in ray.get(ds.to_arrow_refs()) if t.num_rows or t.num_columns]
    if not tables:
        schema = ds.schema()
        assert schema is not None
        pairs = zip(schema.names, schema.types, strict=True)
        return pa.table({name: pa.array([], typ) for name, typ in pairs})
    return pa.concat_tables(tables)
