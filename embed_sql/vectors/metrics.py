"""Distance metrics: names and aliases in one place, and exact distances with BLAS.

Distances match DuckDB's array functions on the same vectors:

=========  ==========================  ==================================
metric     distance                    DuckDB
=========  ==========================  ==================================
``cos``    1 - cos(a, b)               ``array_cosine_distance``
``ip``     -a·b                        ``array_negative_inner_product``
``l2``     ‖a - b‖                     ``array_distance``
``l2sq``   ‖a - b‖²                    ``array_distance`` squared
=========  ==========================  ==================================

One difference, on purpose: under ``cos`` a zero vector is at distance 1 from everything
(similarity 0), where DuckDB answers NaN; NaN cannot be ordered, so it would make top-k
results arbitrary.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from embed_sql.exceptions import DimensionMismatchError, InvalidParameterError

__all__ = [
    "Metric",
    "candidate_distances",
    "distances",
    "from_usearch",
    "pair_distances",
    "parse_metric",
    "usearch_metric",
]


_COS_EPS = np.float32(2e-7)


class Metric(str, Enum):
    """A distance metric; smaller is closer for every one of them."""

    COS = "cos"
    IP = "ip"
    L2 = "l2"
    L2SQ = "l2sq"


_ALIASES: dict[str, Metric] = {
    "cos": Metric.COS,
    "cosine": Metric.COS,
    "angular": Metric.COS,
    "ip": Metric.IP,
    "dot": Metric.IP,
    "inner_product": Metric.IP,
    "negative_inner_product": Metric.IP,
    "l2": Metric.L2,
    "euclidean": Metric.L2,
    "l2sq": Metric.L2SQ,
    "sqeuclidean": Metric.L2SQ,
    "squared_euclidean": Metric.L2SQ,
}


def parse_metric(metric: str | Metric) -> Metric:
    """Normalise a metric name or alias (case-insensitive).

    Examples
    --------
    >>> parse_metric("Cosine")
    <Metric.COS: 'cos'>
    """
    if isinstance(metric, Metric):
        return metric
    found = _ALIASES.get(str(metric).strip().lower().replace("-", "_"))
    if found is None:
        allowed = ", ".join(f"{m.value!r}" for m in Metric)
        msg = (
            f"unknown metric {metric!r}; use one of {allowed} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
        raise InvalidParameterError(msg)
    return found


def usearch_metric(metric: Metric) -> str:
    """Return the usearch metric that orders like ``metric`` (``l2`` searches as ``l2sq``)."""
    return {Metric.COS: "cos", Metric.IP: "ip", Metric.L2: "l2sq", Metric.L2SQ: "l2sq"}[metric]


def from_usearch(metric: Metric, d: np.ndarray) -> np.ndarray:
    """Convert usearch distances into this project's (DuckDB's) definitions."""
    d = np.asarray(d, dtype=np.float32)
    if metric is Metric.IP:
        return d - np.float32(1.0)  # usearch: 1 - a·b
    if metric is Metric.L2:
        return np.sqrt(np.maximum(d, 0.0))
    if metric is Metric.L2SQ:
        return np.maximum(d, 0.0)
    return _snap(d.copy())


def _snap(d: np.ndarray) -> np.ndarray:
    """Cosine distances below float32 resolution are rounding noise: report them as 0."""
    d = np.asarray(d, dtype=np.float32)
    d[np.abs(d) < _COS_EPS] = 0.0
    return d


def _norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))


def distances(metric: Metric, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Exact ``(len(queries), len(vectors))`` distance matrix, via one BLAS matrix product.

    Examples
    --------
    >>> import numpy as np
    >>> distances(Metric.L2, np.array([[0, 0]], np.float32), np.array([[3, 4]], np.float32))
    array([[5.]], dtype=float32)
    """
    if queries.shape[1] != vectors.shape[1]:
        msg = (
            f"query vectors have {queries.shape[1]} dimensions but the indexed vectors have "
            f"{vectors.shape[1]}; embed both with the same model"
        )
        raise DimensionMismatchError(msg)
    dots = queries @ vectors.T
    if metric is Metric.IP:
        return -dots
    if metric is Metric.COS:
        qn, vn = _norms(queries), _norms(vectors)
        denom = np.outer(qn, vn)
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(denom > 0, dots / denom, 0.0)
        return _snap(1.0 - np.clip(sim, -1.0, 1.0))
    sq = (
        np.einsum("ij,ij->i", queries, queries)[:, None]
        + np.einsum("ij,ij->i", vectors, vectors)[None, :]
        - 2.0 * dots
    )
    sq = np.maximum(sq, 0.0).astype(np.float32)
    return np.sqrt(sq) if metric is Metric.L2 else sq


def pair_distances(metric: Metric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between matching rows of ``a`` and ``b``, computed directly (no expansion).

    The last axis holds the vector; the others broadcast, so ``a[:, None, :]`` against
    ``b`` of shape ``(n, k, dim)`` gives each query's distances to its ``k`` candidates.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric is Metric.IP:
        return (-np.einsum("...j,...j->...", a64, b64)).astype(np.float32)
    if metric is Metric.COS:
        na, nb = np.linalg.norm(a64, axis=-1), np.linalg.norm(b64, axis=-1)
        dots = np.einsum("...j,...j->...", a64, b64)
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where((na > 0) & (nb > 0), dots / (na * nb), 0.0)
        return _snap(1.0 - np.clip(sim, -1.0, 1.0))
    diff = a64 - b64
    sq = np.einsum("...j,...j->...", diff, diff)
    return (np.sqrt(sq) if metric is Metric.L2 else sq).astype(np.float32)


def candidate_distances(
    metric: Metric, queries: np.ndarray, candidates: np.ndarray, norms: np.ndarray | None = None
) -> np.ndarray:
    """Distances from each query ``(b, dim)`` to its own candidates ``(b, k, dim)``: ``(b, k)``.

    Float32 products (DuckDB's own precision; within ~1e-6 of :func:`pair_distances`), for
    rescoring many candidates fast. ``norms`` are the candidates' norms, precomputed, for
    ``cos``. ``candidates`` may be overwritten (pass a gathered copy).
    """
    if metric in (Metric.L2, Metric.L2SQ):
        candidates -= queries[:, None, :]
        sq = np.einsum("bkd,bkd->bk", candidates, candidates)
        return (np.sqrt(sq) if metric is Metric.L2 else sq).astype(np.float32, copy=False)
    dots = np.einsum("bd,bkd->bk", queries, candidates)
    if metric is Metric.IP:
        return (-dots).astype(np.float32, copy=False)
    if norms is None:
        norms = np.sqrt(np.einsum("bkd,bkd->bk", candidates, candidates, dtype=np.float64))
    qn = np.sqrt(np.einsum("bd,bd->b", queries, queries, dtype=np.float64))
    denom = qn[:, None] * norms
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(denom > 0, dots / denom, 0.0)
    return _snap(1.0 - np.clip(sim, -1.0, 1.0))
