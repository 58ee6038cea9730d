"""Dedup and clustering over a vector column: connected components and k-means.

- :func:`dedup`: rows within ``threshold`` of each other (transitively) form one group; the
  first row of a group (insertion order) is its representative and the only one kept.
- :func:`cluster` with ``threshold=``: the same connected components, as cluster labels.
- :func:`cluster` with ``k=``: k-means (k-means++ seeding, Lloyd iterations with BLAS;
  cosine runs on unit vectors), seeded, so the same input gives the same labels.

Both return the input keys with their labels, plus :class:`Clusters` sizes and centroids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from embed_sql._progress import progress_bar
from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors.arrow import vector_dim
from embed_sql.vectors.inputs import as_keys, as_matrix, refuse_duplicates
from embed_sql.vectors.join import _column, check_k, self_range_join
from embed_sql.vectors.metrics import Metric, distances, parse_metric

__all__ = [
    "CLUSTER_COLUMNS",
    "DEDUP_COLUMNS",
    "Clusters",
    "cluster",
    "connected_components",
    "dedup",
]

# result columns, the same in SQL (embed_dedup, embed_cluster), Python and Polars
DEDUP_COLUMNS = ("key", "group_id", "representative", "keep")
CLUSTER_COLUMNS = ("key", "cluster")

_KMEANS_BLOCK = 65536


@dataclass(frozen=True)
class Clusters:
    """Per-row cluster labels (``table``), and per cluster its size and centroid."""

    table: pa.Table
    sizes: np.ndarray
    centroids: np.ndarray


def connected_components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Label ``n`` nodes by component for edges ``a[i]-b[i]``: the smallest node id in each.

    Examples
    --------
    >>> import numpy as np
    >>> connected_components(5, np.array([0, 3]), np.array([1, 4])).tolist()
    [0, 0, 2, 3, 3]
    """
    labels = np.arange(n, dtype=np.int64)
    if not len(a):
        return labels
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    while True:  # hook each edge's larger root under its smaller, then compress paths
        ra, rb = labels[a], labels[b]
        new = labels.copy()
        np.minimum.at(new, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, labels):
            return labels
        labels = new


def _unique_keys(table: pa.Table, key: str) -> None:
    """Refuse repeated keys, also on rows with a NULL vector: each row's answer is keyed."""
    keys = as_keys(_column(table, key, "key"), table.num_rows)
    refuse_duplicates(pa.array([], keys.type), keys)


def _components_table(
    table: pa.Table, vec: str, key: str, threshold: float, metric: Metric, *, exact: bool
) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray, np.ndarray]:
    """Keys, validity, component label per live row, and the live row labels."""
    if not np.isfinite(threshold) or threshold < 0:
        msg = f"threshold={threshold!r} must be a finite, non-negative distance"
        raise InvalidParameterError(msg)
    _unique_keys(table, key)
    _, index, a, b = self_range_join(table, threshold, vec=vec, key=key, metric=metric, exact=exact)
    comp = connected_components(len(index), a, b)
    valid = np.asarray(_column(table, vec, "vector").is_valid(), dtype=bool)
    return _column(table, key, "key"), valid, comp, index.vectors()


def dedup(
    table: pa.Table,
    threshold: float,
    *,
    vec: str = "v",
    key: str = "id",
    metric: str | Metric = "cos",
    exact: bool = True,
) -> pa.Table:
    """Mark near-duplicates: rows within ``threshold`` of each other share a group.

    Returns
    -------
    pyarrow.Table
        ``key``, ``group_id`` (int64, the group's first row position), ``representative``
        (the key of that first row), ``keep`` (True for the representative only): the
        :data:`DEDUP_COLUMNS`, as in SQL and Polars. Rows with a NULL
        vector are their own group and kept.

    Examples
    --------
    >>> import pyarrow as pa, numpy as np
    >>> from embed_sql.vectors import from_numpy, dedup
    >>> t = pa.table({"id": ["a", "b", "c"], "v": from_numpy([[1, 0], [1, 0.01], [0, 1]])})
    >>> dedup(t, 0.01).column("keep").to_pylist()
    [True, False, True]
    """
    metric = parse_metric(metric)
    keys, valid, comp, _ = _components_table(table, vec, key, threshold, metric, exact=exact)
    positions = np.arange(len(valid), dtype=np.int64)
    live_pos = positions[valid]
    group = positions.copy()
    group[valid] = live_pos[comp]  # component root (a live label) → its row position
    keep = group == positions
    return pa.table(
        {
            "key": keys,
            "group_id": pa.array(group, pa.int64()),
            "representative": keys.take(pa.array(group)),
            "keep": pa.array(keep),
        }
    )


def cluster(
    table: pa.Table,
    *,
    k: int | None = None,
    threshold: float | None = None,
    vec: str = "v",
    key: str = "id",
    metric: str | Metric = "cos",
    seed: int = 0,
    max_iterations: int = 300,
) -> Clusters:
    """Cluster rows by k-means (``k=``) or by distance threshold (``threshold=``).

    Returns
    -------
    Clusters
        ``table`` has ``key`` and ``cluster`` (:data:`CLUSTER_COLUMNS`; int64, 0-based,
        by first appearance; NULL for
        a NULL vector); ``sizes[c]`` and ``centroids[c]`` per cluster.
    """
    if (k is None) == (threshold is None):
        msg = "give exactly one of k= (k-means) or threshold= (connected components)"
        raise InvalidParameterError(msg)
    metric = parse_metric(metric)
    vectors = _column(table, vec, "vector")
    valid = np.asarray(vectors.is_valid(), dtype=bool)
    if threshold is not None:
        _, valid, comp, mat = _components_table(table, vec, key, threshold, metric, exact=True)
        raw = comp
    else:
        k = check_k(k)
        _unique_keys(table, key)
        mat = as_matrix(vectors, None)[0][valid]
        if len(mat) < k:
            msg = (
                f"k={k} clusters need at least {k} non-NULL vectors; the table has {len(mat)}: "
                f"give k <= {len(mat)}, or a threshold= instead"
            )
            raise InvalidParameterError(msg)
        raw = _kmeans(mat, k, metric, seed, max_iterations)
    # renumber 0.. by first appearance, so labels do not depend on internal ids
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    labels = order[inverse]
    n_clusters = len(first)
    sizes = np.bincount(labels, minlength=n_clusters)
    centroids = np.zeros((n_clusters, vector_dim(vectors.type)), dtype=np.float32)
    if len(mat):
        np.add.at(centroids, labels, mat)
    centroids /= np.maximum(sizes, 1)[:, None]
    full = np.full(len(valid), -1, dtype=np.int64)
    full[valid] = labels
    column = pa.array(full, pa.int64(), mask=~valid)
    return Clusters(
        pa.table({"key": _column(table, key, "key"), "cluster": column}), sizes, centroids
    )


def _nearest(data: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to the nearest centroid, in row blocks."""
    labels = np.empty(len(data), dtype=np.int64)
    dist = np.empty(len(data), dtype=np.float32)
    for start in range(0, len(data), _KMEANS_BLOCK):
        d = distances(Metric.L2SQ, data[start : start + _KMEANS_BLOCK], centroids)
        labels[start : start + len(d)] = d.argmin(axis=1)
        dist[start : start + len(d)] = d.min(axis=1)
    return labels, dist


def _kmeans(
    mat: np.ndarray, k: int, metric: Metric, seed: int, max_iterations: int, restarts: int = 4
) -> np.ndarray:
    """Best of ``restarts`` k-means runs (lowest inertia); cosine runs on unit vectors."""
    data = np.ascontiguousarray(mat, dtype=np.float32)
    if metric is Metric.COS:
        data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    best: tuple[float, np.ndarray] | None = None
    with progress_bar(restarts, desc="k-means", unit="runs", size=len(data)) as bar:
        for attempt in np.random.SeedSequence(seed).spawn(restarts):
            rng = np.random.default_rng(attempt)
            labels, inertia = _lloyd(data, k, metric, rng, max_iterations)
            if best is None or inertia < best[0] - 1e-9 * abs(best[0]):
                best = (inertia, labels)
            bar.update(1)
    return best[1]  # type: ignore[index]


def _lloyd(
    data: np.ndarray, k: int, metric: Metric, rng: np.random.Generator, max_iterations: int
) -> tuple[np.ndarray, float]:
    """One run of Lloyd's algorithm from a k-means++ seeding; returns labels and inertia."""
    centroids = np.empty((k, data.shape[1]), dtype=np.float32)
    centroids[0] = data[rng.integers(len(data))]
    closest = distances(Metric.L2SQ, data, centroids[:1]).ravel()
    for c in range(1, k):  # k-means++: far points are likelier seeds
        total = float(closest.sum())
        pick = rng.choice(len(data), p=closest / total) if total > 0 else rng.integers(len(data))
        centroids[c] = data[pick]
        closest = np.minimum(closest, distances(Metric.L2SQ, data, centroids[c : c + 1]).ravel())
    labels = np.full(len(data), -1, dtype=np.int64)
    dist = np.zeros(len(data), dtype=np.float32)
    for _ in range(max_iterations):
        new, dist = _nearest(data, centroids)
        if np.array_equal(new, labels):
            break
        labels = new
        sizes = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, data)
        empty = np.flatnonzero(sizes == 0)
        centroids = (sums / np.maximum(sizes, 1)[:, None]).astype(np.float32)
        if len(empty):  # re-seed empty clusters at the worst-served points
            centroids[empty] = data[np.argsort(-dist, kind="stable")[: len(empty)]]
        if metric is Metric.COS:
            centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    return labels, float(dist.sum(dtype=np.float64))
