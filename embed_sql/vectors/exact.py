"""Exact search: an index's float32 rows and the blocked-BLAS k-NN and range search over them.

Queries go in blocks of 1,024 and rows in blocks of 32,768, so memory stays bounded on any
size. Candidates are first ranked by a cheap score, one matrix product that orders them as
the distance does (:func:`scores`); exact distances
(:func:`~embed_sql.vectors.metrics.pair_distances`, equal to DuckDB's array functions) are
then computed for the chosen pairs only. Ties are broken by the key rank the caller passes,
so results are deterministic.

The same store rescores a reduced-precision HNSW graph: :meth:`ExactStore.rescore` gives the
graph's matches their exact distances.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from embed_sql.vectors.inputs import F32_MAX
from embed_sql.vectors.metrics import Metric, candidate_distances, distances, pair_distances

__all__ = ["ExactStore", "slack", "top_k"]

QUERY_BLOCK = 1024
ROW_BLOCK = 32768
PAIR_BLOCK = 16384

Rows = Callable[[np.ndarray], np.ndarray]  # row labels → (len(labels), dim) float32 vectors
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (query row, label, distance)


class ExactStore:
    """The float32 vectors of an index by row label, with the caches exact search needs.

    Parameters
    ----------
    dim, metric
        Vector length and metric of the index.
    fetch
        Where rows come from when the store keeps no matrix of its own (an HNSW graph
        without rescoring); None keeps the matrix here.

    Examples
    --------
    >>> import numpy as np
    >>> store = ExactStore(2, Metric.L2)
    >>> store.append(np.array([[0, 0], [3, 4]], np.float32), source=None)
    >>> rank = np.array([0, 1, np.iinfo(np.int64).max])
    >>> labels, dist = store.knn(np.array([[3, 3]], np.float32), 1, np.arange(2), rank)
    >>> labels.tolist(), dist.tolist()
    ([[1]], [[1.0]])
    """

    def __init__(self, dim: int, metric: Metric, *, fetch: Rows | None = None) -> None:
        self.dim = dim
        self.metric = metric
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self._room: np.ndarray | None = None  # owned rows with spare capacity; matrix its prefix
        self._fetch = fetch
        self._unit: np.ndarray | None = None  # cos: the unit rows, made on first search
        self._norms: np.ndarray | None = None  # float64 row norms, for rescoring under cos
        self._norm_scale: float | None = None  # the largest row norm (of a sample)

    @property
    def kept(self) -> bool:
        """Whether the float32 matrix is held here (else rows are fetched)."""
        return self._fetch is None

    def append(self, mat: np.ndarray, *, source: object) -> None:
        """Append rows under the next labels; ``source`` is the caller's own array, if any.

        Rows go into spare capacity that grows by half each time it runs out, so appending
        in batches copies each row O(1) times (not once per later batch); :meth:`reserve`
        sizes it once when the final count is known.
        """
        if self.kept and len(mat):
            n = len(self.matrix)
            if not n and self._room is None:
                # never keep a view of the caller's array: a later change would leak in
                mine = isinstance(source, np.ndarray) and np.shares_memory(mat, source)
                self.matrix = mat.copy() if mine else mat
            else:
                room = self._room
                if room is None or n + len(mat) > len(room):
                    room = self._grow(max(n + len(mat), n + n // 2))
                room[n : n + len(mat)] = mat
                self.matrix = room[: n + len(mat)]
        self._drop_caches()

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in all, so appends up to there copy nothing more."""
        if self.kept and (self._room is None or rows > len(self._room)):
            self._grow(rows)

    def _grow(self, rows: int) -> np.ndarray:
        n = len(self.matrix)
        room = np.empty((max(rows, n), self.dim), dtype=np.float32)
        room[:n] = self.matrix
        self._room, self.matrix = room, room[:n]
        return room

    def replace(self, matrix: np.ndarray) -> None:
        """Hold ``matrix`` (e.g. a read-only view of a file) and drop every cache."""
        self.matrix = matrix
        self._room = None
        self._drop_caches()

    def _drop_caches(self) -> None:
        self._unit = self._norms = self._norm_scale = None

    @property
    def nbytes(self) -> int:
        """Bytes of float32 rows held here (spare capacity included; 0 when fetched)."""
        if not self.kept:
            return 0
        held = self._room if self._room is not None else self.matrix
        return int(held.nbytes)

    def rows(self, labels: np.ndarray) -> np.ndarray:
        """Float32 vectors of the given row labels."""
        fetch = self._fetch
        if fetch is None:
            return self.matrix[labels]
        if not len(labels):
            return np.zeros((0, self.dim), dtype=np.float32)
        return fetch(labels)

    # -- k nearest ---------------------------------------------------------------------------
    def knn(
        self, q: np.ndarray, k: int, candidates: np.ndarray, rank: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` nearest ``candidates`` (row labels) per query, by (distance, rank).

        ``rank`` maps a label to its key's rank and ends with a sentinel for label -1.
        """
        whole = self.kept and len(candidates) == len(self.matrix)
        queries = unit_rows(q) if self.metric is Metric.COS else q
        out_l = np.empty((len(q), k), dtype=np.int64)
        out_d = np.full((len(q), k), np.inf, dtype=np.float32)
        for qs in range(0, len(q), QUERY_BLOCK):
            block = queries[qs : qs + QUERY_BLOCK]
            best_l = np.full((len(block), 0), -1, dtype=np.int64)
            best_s = np.full((len(block), 0), np.inf, dtype=np.float32)
            for rs in range(0, len(candidates), ROW_BLOCK):
                labs = candidates[rs : rs + ROW_BLOCK]
                mat, aux = self._scoring_block(labs, rs, whole=whole)
                cand_l, cand_s = top_k(scores(self.metric, block, mat, aux), labs, rank, k)
                best_l, best_s = top_k(
                    np.hstack([best_s, cand_s]), np.hstack([best_l, cand_l]), rank, k
                )
            out_l[qs : qs + len(block)] = best_l
            qi, ci = np.nonzero(best_l >= 0)
            if len(qi):  # exact values for the chosen pairs only
                vecs = self.rows(best_l[qi, ci])
                out_d[qs + qi, ci] = pair_distances(self.metric, q[qs + qi], vecs)
        return out_l, out_d

    def _scoring_block(
        self, labels: np.ndarray, start: int, *, whole: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows prepared for :func:`scores`: unit rows for cos, squared norms for l2."""
        if whole and self.metric is Metric.COS:
            if self._unit is None:
                self._unit = unit_rows(self.matrix)
            return self._unit[start : start + ROW_BLOCK], None
        mat = self.matrix[start : start + ROW_BLOCK] if whole else self.rows(labels)
        if self.metric is Metric.COS:
            return unit_rows(mat), None
        if self.metric in (Metric.L2, Metric.L2SQ):
            return mat, np.einsum("ij,ij->i", mat, mat)
        return mat, None

    def rescore(
        self, q: np.ndarray, labels: np.ndarray, rank: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact distances for each query's candidate ``labels``, re-ordered by (distance, key).

        One batched float32 product per block of queries (the gather of the candidate rows is
        most of the cost), blocks spread over the cores; cosine uses row norms computed once
        in float64.
        """
        d = np.empty(labels.shape, dtype=np.float32)
        all_norms = self._row_norms() if self.metric is Metric.COS else None

        def block(s: int) -> None:
            lab = labels[s : s + QUERY_BLOCK]
            safe = np.where(lab >= 0, lab, 0)
            norms = all_norms[safe] if all_norms is not None else None
            got = candidate_distances(self.metric, q[s : s + QUERY_BLOCK], self.matrix[safe], norms)
            got[lab < 0] = np.inf
            d[s : s + len(lab)] = got

        in_blocks(block, len(q), QUERY_BLOCK)
        return top_k(d, labels, rank, k)

    def _row_norms(self) -> np.ndarray:
        if self._norms is None:
            self._norms = np.sqrt(np.einsum("ij,ij->i", self.matrix, self.matrix, dtype=np.float64))
        return self._norms

    def pair_distances(self, q: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Exact distances between ``q[rows[i]]`` and stored row ``labels[i]``, in blocks."""
        out = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), PAIR_BLOCK):
            r, lab = rows[s : s + PAIR_BLOCK], labels[s : s + PAIR_BLOCK]
            out[s : s + len(r)] = pair_distances(self.metric, q[r], self.matrix[lab])
        return out

    def norm_scale(self) -> float:
        """Return the largest row norm (at least 1) of a sample of about 1,000 rows; cached."""
        if self._norm_scale is None:
            sample = self.matrix[:: max(1, len(self.matrix) // 1000)]
            self._norm_scale = float(
                np.sqrt(np.einsum("ij,ij->i", sample, sample)).max(initial=1.0)
            )
        return self._norm_scale

    # -- range -------------------------------------------------------------------------------
    def range_pairs(
        self, q: np.ndarray, rows: np.ndarray, threshold: float, candidates: np.ndarray
    ) -> list[Pairs]:
        """Every (query row, label, distance) with distance <= ``threshold``, in blocks.

        Matrix-product distances pre-select with a margin for rounding (:func:`slack`); the
        exact distances of those pairs decide.
        """
        parts: list[Pairs] = []
        for qs in range(0, len(rows), QUERY_BLOCK):
            qrows = rows[qs : qs + QUERY_BLOCK]
            for rs in range(0, len(candidates), ROW_BLOCK):
                labs = candidates[rs : rs + ROW_BLOCK]
                vecs = self.rows(labs)
                d = distances(self.metric, q[qrows], vecs)
                qi, ri = np.nonzero(d <= min(threshold + slack(self.metric, threshold), F32_MAX))
                exact_d = pair_distances(self.metric, q[qrows[qi]], vecs[ri])
                keep = exact_d <= threshold
                parts.append((qrows[qi[keep]], labs[ri[keep]], exact_d[keep]))
        return parts


def slack(metric: Metric, threshold: float) -> float:
    """Margin for BLAS rounding when pre-filtering a range by the matrix-product distances."""
    if metric is Metric.L2:
        return 1e-2 + 1e-3 * abs(threshold)
    return 1e-4 + 1e-4 * abs(threshold)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def scores(metric: Metric, q: np.ndarray, x: np.ndarray, aux: np.ndarray | None) -> np.ndarray:
    """Per query row, a score that orders candidates exactly as the distance does.

    cos: -(unit q . unit x); ip: -(q . x); l2, l2sq: |x|^2 - 2 q . x. One matrix product
    and at most two in-place passes.
    """
    s = q @ x.T
    if metric in (Metric.L2, Metric.L2SQ):
        s *= -2.0
        s += aux[None, :]  # type: ignore[index]
    else:
        np.negative(s, out=s)
    return s


def top_k(
    d: np.ndarray, labels: np.ndarray, rank: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` smallest distances ordered by (distance, key rank); -1 pads.

    ``labels`` is one row of labels for every row of ``d`` or one per row; ``rank`` maps a
    label to its key's rank and ends with a sentinel for label -1.
    """
    b, m = d.shape
    lab2 = np.broadcast_to(labels, (b, m)) if labels.ndim == 1 else labels
    kk = min(k, m)
    if kk < m:
        # position kk holds the (kk+1)-th smallest and everything before it is <= it, so a
        # tie straddles the cut exactly when it equals the largest of the first kk
        part = np.argpartition(d, kk, axis=1)
        nxt = np.take_along_axis(d, part[:, kk : kk + 1], 1)[:, 0]
        part = part[:, :kk]
        kth = np.take_along_axis(d, part, 1).max(axis=1)
        ties = np.flatnonzero((nxt == kth) & np.isfinite(kth))
    else:
        part = np.broadcast_to(np.arange(m), (b, m))
        ties = np.zeros(0, dtype=np.int64)
    sel_d = np.take_along_axis(d, part, 1).astype(np.float32)
    sel_l = np.take_along_axis(lab2, part, 1).copy()
    for i in ties:  # equal distances straddle the cut: decide by key over the whole row
        order = np.lexsort((rank[lab2[i]], d[i]))[:kk]
        sel_d[i], sel_l[i] = d[i, order], lab2[i, order]
    order = np.lexsort((rank[sel_l], sel_d), axis=1)
    sel_d = np.take_along_axis(sel_d, order, 1)
    sel_l = np.take_along_axis(sel_l, order, 1)
    sel_l[~np.isfinite(sel_d)] = -1
    if kk < k:
        pad = k - kk
        sel_d = np.hstack([sel_d, np.full((b, pad), np.inf, dtype=np.float32)])
        sel_l = np.hstack([sel_l, np.full((b, pad), -1, dtype=np.int64)])
    return sel_l, sel_d


def in_blocks(work: Callable[[int], None], n: int, block: int) -> None:
    """Run ``work(start)`` for each block of ``n`` rows, on every core when there are several.

    numpy's gathers and products release the GIL, so blocks run in parallel threads; each
    block writes its own slice of the output. One block runs inline.
    """
    starts = range(0, n, block)
    if len(starts) < 2 or (os.cpu_count() or 1) < 2:
        for s in starts:
            work(s)
        return
    pool = _pool()
    for future in [pool.submit(work, s) for s in starts]:
        future.result()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count(), thread_name_prefix="embed_sql-exact")
