"""VectorIndex: k-NN and range search over a vector column, keyed by the user's own keys.

Two modes behind one interface:

- HNSW (default): a ``usearch.Index`` whose graph holds the vectors in ``f16`` (default),
  ``f32`` or ``i8``. A reduced-precision graph keeps the float32 vectors beside it
  (``rescore=True``, the default) and computes every returned distance from them, so
  results carry exact distances, equal to DuckDB's array functions; the half-size graph
  makes build and search about 1.25x faster than an f32 graph, for 1.5x its memory.
  ``rescore=False`` drops the float32 copy (half the memory of f32, distances to ~1e-4).
- exact: the float32 matrix, searched by blocked BLAS matrix products (far faster than a
  brute-force scan, and exact to float rounding).

Keys are the user's own (any integer or string Arrow type); usearch sees only row labels.
Ties are broken by key, so results are deterministic. Files are written atomically (a
temporary file, then rename) as a small header (model, metric, dim, dtype, row count, and a
SHA-256 per section) followed by the keys (Arrow IPC) and the vectors; :meth:`load` and
:meth:`view` verify them, so a truncated or corrupt file raises :class:`IndexFileError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import mmap
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql._native import usearch_index
from embed_sql.exceptions import (
    DimensionMismatchError,
    EmbedSQLError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.vectors.arrow import to_numpy, vector_dim
from embed_sql.vectors.metrics import (
    Metric,
    candidate_distances,
    distances,
    from_usearch,
    pair_distances,
    parse_metric,
    usearch_metric,
)

__all__ = ["DTYPES", "HNSW_DEFAULTS", "IndexFileError", "SearchResult", "VectorIndex", "as_matrix"]

DTYPES = ("f32", "f16", "i8")
# HNSW defaults, tuned on 100k clustered 384-d vectors and 40k sentence embeddings of the
# default model (benchmarks/join.py): recall@10 0.99 / 0.97 at a third of the time of
# usearch's own defaults (16, 128, 64). Raise ef_search for more recall.
HNSW_DEFAULTS = {"M": 16, "ef_construction": 40, "ef_search": 32}
# the names users of vss, hnswlib and FAISS know → usearch's own
_USEARCH_NAMES = {
    "M": "connectivity",
    "ef_construction": "expansion_add",
    "ef_search": "expansion_search",
}
_MAGIC = b"EMBEDSQL-INDEX\x00\x01"
_FORMAT = 1
_QUERY_BLOCK = 1024
_ROW_BLOCK = 32768
_PAIR_BLOCK = 16384


class IndexFileError(EmbedSQLError, ValueError):
    """Exception raised when an index file is truncated, corrupt or of another format."""


@dataclass(frozen=True)
class SearchResult:
    """Top-k matches per query: ``labels``/``distances`` of shape ``(n, k)``, ``counts[n]``.

    Positions past ``counts[i]`` hold label -1 and distance +inf.
    """

    labels: np.ndarray
    distances: np.ndarray
    counts: np.ndarray


def _cast_keys(keys: object, key_type: pa.DataType) -> pa.Array:
    """Return lookup ``keys`` as an Arrow array of an index's key type, or a clear error."""
    try:
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        wanted = keys if isinstance(keys, pa.Array) else pa.array(list(keys))  # type: ignore[call-overload]
        return wanted.cast(key_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        shown = repr(keys) if len(repr(keys)) <= 80 else repr(keys)[:77] + "..."
        msg = f"cannot look up keys {shown} in an index whose keys are {key_type}; pass {key_type}"
        raise InputTypeError(msg) from exc


def _as_keys(keys: object, n: int) -> pa.Array:
    arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if not isinstance(arr, pa.Array):
        arr = pa.array(list(arr) if not isinstance(arr, np.ndarray) else arr)  # type: ignore[arg-type]
    if pa.types.is_null(arr.type) and len(arr) == n == 0:  # empty: no key type to keep
        return pa.array([], pa.int64())
    if not (
        pa.types.is_integer(arr.type)
        or pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
    ):
        msg = f"keys must be integers or strings, got {arr.type}; cast the key column first"
        raise InputTypeError(msg)
    if len(arr) != n:
        msg = f"{len(arr)} keys for {n} vectors; give exactly one key per vector"
        raise DimensionMismatchError(msg)
    if arr.null_count:
        msg = f"keys contain {arr.null_count} NULL(s); every indexed vector needs a key"
        raise InputTypeError(msg)
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def as_matrix(vectors: object, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (float32 matrix, validity mask) for Arrow/numpy vectors."""
    if isinstance(vectors, pa.ChunkedArray | pa.Array):
        got = vector_dim(vectors.type)
        valid = np.asarray(vectors.is_valid(), dtype=bool)
        mat = to_numpy(vectors, null_value=0.0)
    else:
        mat = np.asarray(vectors, dtype=np.float32)
        if mat.ndim == 1 and dim is not None and mat.shape[0] == dim:
            mat = mat[None, :]
        if mat.ndim != 2:
            msg = f"expected a 2-d (rows, dim) matrix of vectors, got shape {mat.shape}"
            raise DimensionMismatchError(msg)
        got = mat.shape[1]
        valid = np.isfinite(mat).all(axis=1)
    if dim is not None and got != dim:
        msg = f"vectors have {got} dimensions but the index has {dim}; use the same model"
        raise DimensionMismatchError(msg)
    if not np.isfinite(mat[valid]).all():
        msg = "vectors contain NaN or infinite values; drop or fix those rows first"
        raise InputTypeError(msg)
    return np.ascontiguousarray(mat, dtype=np.float32), valid


class VectorIndex:
    """A searchable set of vectors with user keys.

    Parameters
    ----------
    dim
        Vector length.
    metric
        ``"cos"``, ``"ip"``, ``"l2"`` or ``"l2sq"`` (aliases accepted).
    dtype
        Storage in the HNSW graph: ``"f16"`` (default), ``"f32"`` or ``"i8"``. Exact mode
        keeps float32 only.
    rescore
        Keep the float32 vectors beside an ``f16``/``i8`` graph and compute the returned
        distances (and range-join membership) from them exactly. Default: True unless the
        graph is ``f32``. False halves memory; distances are then the graph's approximation.
    exact
        Brute-force (BLAS) search instead of HNSW.
    M, ef_construction, ef_search
        HNSW parameters (the names vss, hnswlib and FAISS use; usearch calls them
        connectivity, expansion_add, expansion_search); None takes :data:`HNSW_DEFAULTS`
        (16, 40, 32). ``ef_search``
        is the main recall/speed knob; :func:`~embed_sql.vectors.recall` measures it.
    model, model_key
        The model that made the vectors, recorded in saved files and checked by joins.

    Examples
    --------
    >>> import numpy as np
    >>> from embed_sql.vectors import VectorIndex
    >>> idx = VectorIndex.build(np.eye(3, dtype=np.float32), ["a", "b", "c"], exact=True)
    >>> idx.search(np.array([[1, 0.1, 0]], np.float32), 1).labels.tolist()
    [[0]]
    """

    def __init__(
        self,
        dim: int,
        *,
        metric: str | Metric = "cos",
        dtype: str = "f16",
        exact: bool = False,
        rescore: bool | None = None,
        M: int | None = None,
        ef_construction: int | None = None,
        ef_search: int | None = None,
        model: str | None = None,
        model_key: str | None = None,
    ) -> None:
        if not isinstance(dim, int) or dim <= 0:
            msg = f"dim={dim!r} must be a positive integer"
            raise InvalidParameterError(msg)
        if dtype not in DTYPES:
            msg = f"dtype={dtype!r} is not supported; use one of {DTYPES}"
            raise InvalidParameterError(msg)
        self.dim = dim
        self.metric = parse_metric(metric)
        self.dtype = dtype
        self.exact = bool(exact)
        self.rescore = (dtype != "f32") if rescore is None else bool(rescore)
        self.model = model
        self.model_key = model_key
        self.meta: dict[str, str] = {}  # saved with the index: what a host needs to reattach it
        given = {
            "M": M,
            "ef_construction": ef_construction,
            "ef_search": ef_search,
        }
        for name, value in given.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 4096
            ):
                msg = (
                    f"{name}={value!r} must be an integer from 1 to 4096 (or None for the default)"
                )
                raise InvalidParameterError(msg)
        self._params = {k: HNSW_DEFAULTS[k] if v is None else v for k, v in given.items()}
        self._keys: pa.Array | None = None  # label → user key
        self._alive = np.zeros(0, dtype=bool)  # label → still present
        self._matrix = np.zeros((0, dim), dtype=np.float32)  # exact or rescore
        self._hnsw = None if self.exact else self._new_hnsw()
        self._rank: np.ndarray | None = None
        self._unit: np.ndarray | None = None  # exact cos: the unit rows, made on first search
        self._mmap: mmap.mmap | None = None
        self._norm_scale: float | None = None  # for _graph_error, made on first range search
        self._norms: np.ndarray | None = None  # row norms for rescoring under cos

    def _new_hnsw(self) -> object:
        kwargs = {_USEARCH_NAMES[k]: v for k, v in self._params.items() if v is not None}
        return usearch_index()(
            ndim=self.dim, metric=usearch_metric(self.metric), dtype=self.dtype, **kwargs
        )

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        vectors: pa.Array | pa.ChunkedArray | np.ndarray,
        keys: object,
        *,
        metric: str | Metric = "cos",
        dtype: str = "f16",
        exact: bool = False,
        rescore: bool | None = None,
        allow_duplicates: bool = False,
        threads: int = 0,
        model: str | None = None,
        model_key: str | None = None,
        **hnsw: int,
    ) -> VectorIndex:
        """Build an index from a vector column and a key column; NULL vectors are skipped.

        Raises
        ------
        InvalidParameterError
            For duplicate keys unless ``allow_duplicates=True``.
        """
        mat, _ = as_matrix(vectors, None)
        index = cls(
            mat.shape[1],
            metric=metric,
            dtype=dtype,
            exact=exact,
            rescore=rescore,
            model=model,
            model_key=model_key,
            **hnsw,
        )
        index.add(keys, vectors, allow_duplicates=allow_duplicates, threads=threads)
        return index

    def add(
        self,
        keys: object,
        vectors: pa.Array | pa.ChunkedArray | np.ndarray,
        *,
        allow_duplicates: bool = False,
        threads: int = 0,
    ) -> int:
        """Add vectors under their keys; NULL vectors are skipped. Returns the count added."""
        mat, valid = as_matrix(vectors, self.dim)
        key_arr = _as_keys(keys, len(mat))
        if not valid.all():  # NULL vectors are skipped (no copy when there are none)
            mat, key_arr = mat[valid], key_arr.filter(pa.array(valid))
        if self._keys is not None and len(self._keys) and key_arr.type != self._keys.type:
            msg = f"keys of type {key_arr.type} cannot join an index keyed by {self._keys.type}"
            raise InputTypeError(msg)
        if not allow_duplicates:
            self._refuse_duplicates(key_arr)
        start = len(self._alive)
        labels = np.arange(start, start + len(mat), dtype=np.uint64)
        if self._hnsw is not None and len(mat):
            self._hnsw.add(labels, mat, threads=threads)  # type: ignore[attr-defined]
        if self._keeps_matrix and len(mat):
            if start:
                self._matrix = np.concatenate([self._matrix, mat])
            else:  # never keep a view of the caller's array: a later change would leak in
                mine = isinstance(vectors, np.ndarray) and np.shares_memory(mat, vectors)
                self._matrix = mat.copy() if mine else mat
        self._keys = key_arr if self._keys is None else pa.concat_arrays([self._keys, key_arr])
        self._alive = np.concatenate([self._alive, np.ones(len(mat), dtype=bool)])
        self._rank = None
        self._unit = None
        self._norm_scale = None
        return len(mat)

    def _refuse_duplicates(self, new: pa.Array) -> None:
        existing = self.keys()
        both = pa.concat_arrays([existing.cast(new.type), new]) if len(existing) else new
        if pc.count_distinct(both).as_py() != len(both):
            counts = pc.value_counts(both)
            dup = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
            msg = (
                f"duplicate key {dup!r}: keys must be unique; pass allow_duplicates=True to "
                "index several vectors under one key"
            )
            raise InvalidParameterError(msg)

    def mask_for(self, keys: object) -> np.ndarray:
        """Boolean mask over row labels: True where the row's key is among ``keys``.

        Pass it as ``allowed=`` to :meth:`search` to filter by key before the top-k.
        """
        if self._keys is None:
            return np.zeros(0, dtype=bool)
        wanted = _cast_keys(keys, self._keys.type)
        return np.asarray(pc.is_in(self._keys, value_set=wanted), dtype=bool)

    def remove(self, keys: object) -> int:
        """Remove every vector stored under these keys; returns how many were removed."""
        if self._keys is None or not len(self._keys):
            return 0
        hit = self.mask_for(keys)
        labels = np.flatnonzero(hit & self._alive)
        if self._hnsw is not None and len(labels):
            self._hnsw.remove(labels.astype(np.uint64))  # type: ignore[attr-defined]
        self._alive[labels] = False
        self._rank = None
        return len(labels)

    @property
    def _keeps_matrix(self) -> bool:
        """Whether the float32 vectors are held beside (or instead of) the graph."""
        return self._hnsw is None or self.rescore

    # -- inspection -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def label_count(self) -> int:
        """Labels handed out so far (live and removed); the next :meth:`add` starts here."""
        return len(self._alive)

    def __repr__(self) -> str:
        mode = "exact" if self.exact else f"hnsw/{self.dtype}"
        if not self.exact and self.rescore:
            mode += "+f32 rescore"
        return f"VectorIndex({len(self)} x {self.dim}, metric={self.metric.value}, {mode})"

    def labels(self) -> np.ndarray:
        """Return the row labels of the vectors present, in insertion order."""
        return np.flatnonzero(self._alive)

    def keys(self) -> pa.Array:
        """Return the keys of the vectors present, in insertion order."""
        if self._keys is None:
            return pa.array([], pa.int64())
        return self._keys.filter(pa.array(self._alive))

    def key_of(self, labels: np.ndarray) -> pa.Array:
        """Map row labels (as in :class:`SearchResult`) to user keys; -1 gives NULL."""
        if self._keys is None:
            return pa.nulls(len(labels), pa.int64())
        labels = np.asarray(labels, dtype=np.int64)
        mask = labels < 0
        taken = self._keys.take(pa.array(np.where(mask, 0, labels)))
        return pc.if_else(pa.array(mask), pa.scalar(None, taken.type), taken)

    def _key_rank(self) -> np.ndarray:
        if self._rank is None:
            keys = self._keys if self._keys is not None else pa.array([], pa.int64())
            self._rank = np.asarray(pc.rank(keys, sort_keys="ascending", tiebreaker="first"))
        return self._rank

    def vectors(self, labels: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors for labels (default: every live row), for exact work and k-means."""
        if labels is None:
            labels = np.flatnonzero(self._alive)
        labels = np.asarray(labels, dtype=np.int64)
        if self._keeps_matrix:
            return self._matrix[labels]
        if not len(labels):
            return np.zeros((0, self.dim), dtype=np.float32)
        got = self._hnsw.get(labels.astype(np.uint64), dtype=np.float32)  # type: ignore[attr-defined]
        return np.asarray(got, dtype=np.float32).reshape(len(labels), self.dim)

    # -- search ---------------------------------------------------------------------------
    def search(
        self,
        queries: pa.Array | pa.ChunkedArray | np.ndarray,
        k: int,
        *,
        exact: bool | None = None,
        allowed: np.ndarray | None = None,
        threads: int = 0,
    ) -> SearchResult:
        """Return the ``k`` nearest rows for each query, closest first, ties by key.

        Parameters
        ----------
        queries
            ``(n, dim)`` vectors (Arrow or numpy). NULL queries get no matches.
        k
            Matches per query; fewer when fewer rows exist (``k`` larger than the index is
            fine).
        exact
            Force brute-force search on an HNSW index (default: the index's mode).
        allowed
            Boolean mask over row labels: a filter applied *before* the top-k, so ``k``
            matches come back whenever ``k`` allowed rows exist.
        """
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k <= 0:
            msg = f"k={k!r} must be a positive integer"
            raise InvalidParameterError(msg)
        q, valid = as_matrix(queries, self.dim)
        alive = self._alive if allowed is None else self._alive & _mask(allowed, len(self._alive))
        n_rows = int(alive.sum())
        k_eff = min(int(k), n_rows)
        labels = np.full((len(q), max(k_eff, 0)), -1, dtype=np.int64)
        dists = np.full((len(q), max(k_eff, 0)), np.inf, dtype=np.float32)
        rows = np.flatnonzero(valid)
        if k_eff == 0 or not len(rows):
            return SearchResult(labels, dists, np.zeros(len(q), dtype=np.int64))
        use_exact = self.exact if exact is None else exact
        selective = allowed is not None and n_rows < max(4096, 0.1 * len(self))
        if use_exact or self._hnsw is None or selective:
            got_l, got_d = self._exact(q[rows], k_eff, np.flatnonzero(alive))
        else:
            got_l, got_d = self._approx(q[rows], k_eff, alive, threads)
        labels[rows], dists[rows] = got_l, got_d
        return SearchResult(labels, dists, (labels >= 0).sum(axis=1))

    def _exact(
        self, q: np.ndarray, k: int, candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search by blocked BLAS products.

        Candidates are ranked by a cheap score that orders them as the distance does; exact
        distances are computed for the chosen pairs only.
        """
        rank = np.append(self._key_rank(), np.iinfo(np.int64).max)
        whole = self._keeps_matrix and len(candidates) == len(self._matrix)
        queries = _unit_rows(q) if self.metric is Metric.COS else q
        out_l = np.empty((len(q), k), dtype=np.int64)
        out_d = np.full((len(q), k), np.inf, dtype=np.float32)
        for qs in range(0, len(q), _QUERY_BLOCK):
            block = queries[qs : qs + _QUERY_BLOCK]
            best_l = np.full((len(block), 0), -1, dtype=np.int64)
            best_s = np.full((len(block), 0), np.inf, dtype=np.float32)
            for rs in range(0, len(candidates), _ROW_BLOCK):
                labs = candidates[rs : rs + _ROW_BLOCK]
                mat, aux = self._scoring_block(labs, rs, whole=whole)
                s = _scores(self.metric, block, mat, aux)
                cand_l, cand_s = _select(s, labs, rank, k)
                best_l, best_s = _select(
                    np.hstack([best_s, cand_s]), np.hstack([best_l, cand_l]), rank, k
                )
            out_l[qs : qs + len(block)] = best_l
            qi, ci = np.nonzero(best_l >= 0)
            if len(qi):  # exact values for the chosen pairs only
                vecs = self.vectors(best_l[qi, ci])
                out_d[qs + qi, ci] = pair_distances(self.metric, q[qs + qi], vecs)
        return out_l, out_d

    def _scoring_block(
        self, labels: np.ndarray, start: int, *, whole: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows prepared for :func:`_scores`: unit rows for cos, squared norms for l2."""
        if whole and self.metric is Metric.COS:
            if self._unit is None:
                self._unit = _unit_rows(self._matrix)
            return self._unit[start : start + _ROW_BLOCK], None
        mat = self._matrix[start : start + _ROW_BLOCK] if whole else self.vectors(labels)
        if self.metric is Metric.COS:
            return _unit_rows(mat), None
        if self.metric in (Metric.L2, Metric.L2SQ):
            return mat, np.einsum("ij,ij->i", mat, mat)
        return mat, None

    def _approx(
        self, q: np.ndarray, k: int, alive: np.ndarray, threads: int
    ) -> tuple[np.ndarray, np.ndarray]:
        filtered = not alive[self._alive].all() if len(self) else False
        frac = max(alive.sum() / max(len(self), 1), 1e-6)
        count = min(len(self), int(np.ceil(k / frac * 1.5)) + k if filtered else k)
        labs, d, hit = self._hnsw_search(q, count, threads)
        if filtered:
            safe = np.where(hit, labs, 0)
            hit &= alive[safe]
        d = np.where(hit, d, np.inf).astype(np.float32)
        labs = np.where(hit, labs, -1)
        rank = np.append(self._key_rank(), np.iinfo(np.int64).max)
        out_l, out_d = _select(d, labs, rank, k)
        if self.rescore:
            out_l, out_d = self._rescored(q, out_l, rank, k)
        short = np.flatnonzero((out_l >= 0).sum(axis=1) < k)
        if len(short):  # the filter removed too many: finish those queries exactly
            ex_l, ex_d = self._exact(q[short], k, np.flatnonzero(alive))
            out_l[short], out_d[short] = ex_l, ex_d
        return out_l, out_d

    def _rescored(
        self, q: np.ndarray, labels: np.ndarray, rank: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact distances for the graph's matches, re-ordered by (distance, key).

        One batched float32 product per block of queries (the gather of the candidate rows is
        most of the cost); cosine uses row norms computed once in float64.
        """
        d = np.empty(labels.shape, dtype=np.float32)
        for s in range(0, len(q), _QUERY_BLOCK):
            lab = labels[s : s + _QUERY_BLOCK]
            safe = np.where(lab >= 0, lab, 0)
            norms = self._row_norms()[safe] if self.metric is Metric.COS else None
            got = candidate_distances(
                self.metric, q[s : s + _QUERY_BLOCK], self._matrix[safe], norms
            )
            got[lab < 0] = np.inf
            d[s : s + len(lab)] = got
        return _select(d, labels, rank, k)

    def _row_norms(self) -> np.ndarray:
        if self._norms is None or len(self._norms) != len(self._matrix):
            self._norms = np.sqrt(
                np.einsum("ij,ij->i", self._matrix, self._matrix, dtype=np.float64)
            )
        return self._norms

    def _pair_distances(self, q: np.ndarray, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Exact distances between ``q[rows[i]]`` and stored row ``labels[i]``, in blocks."""
        out = np.empty(len(rows), dtype=np.float32)
        for s in range(0, len(rows), _PAIR_BLOCK):
            r, lab = rows[s : s + _PAIR_BLOCK], labels[s : s + _PAIR_BLOCK]
            out[s : s + len(r)] = pair_distances(self.metric, q[r], self._matrix[lab])
        return out

    def _graph_error(self, threshold: float) -> float:
        """How far a reduced-precision graph distance may lie from the exact one."""
        if self._norm_scale is None:
            sample = self._matrix[:: max(1, len(self._matrix) // 1000)]
            norm = float(np.sqrt(np.einsum("ij,ij->i", sample, sample)).max(initial=1.0))
            self._norm_scale = {Metric.COS: 1.0, Metric.L2: norm}.get(self.metric, norm * norm)
        rel = {"f32": 1e-5, "f16": 2e-3, "i8": 5e-2}[self.dtype]
        return rel * (abs(threshold) + self._norm_scale)

    def _hnsw_search(
        self, q: np.ndarray, count: int, threads: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run a usearch search; return (labels, distances, hit mask), each ``(len(q), count)``."""
        m = self._hnsw.search(np.atleast_2d(q), count, threads=threads)  # type: ignore[attr-defined]
        labs = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
        d = from_usearch(self.metric, np.asarray(m.distances).reshape(len(q), -1))
        counts = np.asarray(getattr(m, "counts", [len(m)])).reshape(len(q))
        hit = np.arange(labs.shape[1])[None, :] < counts[:, None]
        return labs, d, hit

    def range_search(
        self,
        queries: pa.Array | pa.ChunkedArray | np.ndarray,
        threshold: float,
        *,
        exact: bool | None = None,
        threads: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All rows within ``threshold`` of each query: ``(query_row, label, distance)``.

        Sorted by query row, then distance, then key.
        """
        threshold = float(threshold)
        if not np.isfinite(threshold):
            msg = f"threshold={threshold!r} must be a finite distance"
            raise InvalidParameterError(msg)
        q, valid = as_matrix(queries, self.dim)
        rows = np.flatnonzero(valid)
        n = len(self)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        use_exact = self.exact if exact is None else exact
        if n and len(rows):
            if use_exact or self._hnsw is None:
                candidates = np.flatnonzero(self._alive)
                for qs in range(0, len(rows), _QUERY_BLOCK):
                    qrows = rows[qs : qs + _QUERY_BLOCK]
                    for rs in range(0, len(candidates), _ROW_BLOCK):
                        labs = candidates[rs : rs + _ROW_BLOCK]
                        vecs = self.vectors(labs)
                        d = distances(self.metric, q[qrows], vecs)
                        qi, ri = np.nonzero(d <= threshold + _slack(self.metric, threshold))
                        exact_d = pair_distances(self.metric, q[qrows[qi]], vecs[ri])
                        keep = exact_d <= threshold
                        parts.append((qrows[qi[keep]], labs[ri[keep]], exact_d[keep]))
            else:
                parts.append(self._approx_range(q, rows, threshold, threads))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0, dtype=np.float32)
        qr = np.concatenate([p[0] for p in parts]).astype(np.int64)
        lab = np.concatenate([p[1] for p in parts]).astype(np.int64)
        dist = np.concatenate([p[2] for p in parts]).astype(np.float32)
        order = np.lexsort((self._key_rank()[lab], dist, qr))
        return qr[order], lab[order], dist[order]

    def _approx_range(
        self, q: np.ndarray, rows: np.ndarray, threshold: float, threads: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self)
        count = min(n, 32)
        pending = rows
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # with rescoring, graph distances only pre-select; exact ones decide membership
        margin = self._graph_error(threshold) if self.rescore else 0.0
        while len(pending):
            labs, d, hit = self._hnsw_search(q[pending], count, threads)
            within = hit & (d <= threshold + margin)
            full = within.sum(axis=1) == count
            done = ~full if count < n else np.ones(len(pending), dtype=bool)
            qi, ci = np.nonzero(within & done[:, None])
            lab, dist = labs[qi, ci], d[qi, ci]
            if self.rescore:
                dist = self._pair_distances(q, pending[qi], lab)
                keep = dist <= threshold
                qi, lab, dist = qi[keep], lab[keep], dist[keep]
            out.append((pending[qi], lab, dist))
            pending = pending[~done]
            count = min(n, count * 4)
        return (
            np.concatenate([o[0] for o in out]),
            np.concatenate([o[1] for o in out]),
            np.concatenate([o[2] for o in out]),
        )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to ``path`` atomically (temporary file, then rename)."""
        path = Path(path)
        keys = self._keys if self._keys is not None else pa.array([], pa.int64())
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
            writer.write_batch(pa.record_batch([keys], names=["key"]))
        body = {
            "keys": sink.getvalue(),
            "alive": np.packbits(self._alive).tobytes(),
            "vectors": (
                bytes(self._hnsw.save())  # type: ignore[attr-defined]
                if self._hnsw is not None
                else self._matrix.tobytes()
            ),
        }
        if self._hnsw is not None and self.rescore:
            body["matrix"] = self._matrix.tobytes()
        header = {
            "format": _FORMAT,
            "model": self.model,
            "model_key": self.model_key,
            "metric": self.metric.value,
            "dim": self.dim,
            "dtype": self.dtype,
            "exact": self.exact,
            "rescore": self.rescore,
            "count": len(self),
            "labels": len(self._alive),
            "params": self._params,
            "meta": self.meta,
            "sections": [
                {"name": n, "length": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                for n, b in body.items()
            ],
        }
        head = json.dumps(header).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_MAGIC + struct.pack("<Q", len(head)) + head)
                for b in body.values():
                    fh.write(b)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Read an index saved with :meth:`save` into memory (verified)."""
        return cls._open(Path(path), view=False)

    @classmethod
    def view(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Memory-map an index saved with :meth:`save` (verified; read-only)."""
        return cls._open(Path(path), view=True)

    @classmethod
    def _open(cls, path: Path, *, view: bool) -> VectorIndex:
        try:
            fh = path.open("rb")
        except OSError as exc:
            msg = f"cannot open index file {path}: {exc}"
            raise IndexFileError(msg) from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size < len(_MAGIC) + 8:
                msg = f"{path} is not an embed_sql index (too short: {size} bytes)"
                raise IndexFileError(msg)
            buf: mmap.mmap | bytes = (
                mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if view else fh.read()
            )
        mv = memoryview(buf)
        if bytes(mv[: len(_MAGIC)]) != _MAGIC:
            msg = f"{path} is not an embed_sql index file (bad magic bytes)"
            raise IndexFileError(msg)
        (head_len,) = struct.unpack("<Q", mv[len(_MAGIC) : len(_MAGIC) + 8])
        start = len(_MAGIC) + 8
        try:
            header = json.loads(bytes(mv[start : start + head_len]))
            sections = {s["name"]: s for s in header["sections"]}
            if header.get("format") != _FORMAT:
                msg = f"{path}: index format {header.get('format')!r}, expected {_FORMAT}"
                raise IndexFileError(msg)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path}: the index header is corrupt ({exc})"
            raise IndexFileError(msg) from exc
        offset = start + head_len
        parts: dict[str, memoryview] = {}
        names = ["keys", "alive", "vectors"] + (["matrix"] if "matrix" in sections else [])
        for name in names:
            length = int(sections[name]["length"])
            part = mv[offset : offset + length]
            if len(part) != length:
                msg = f"{path} is truncated: section {name!r} needs {length} bytes"
                raise IndexFileError(msg)
            if hashlib.sha256(part).hexdigest() != sections[name]["sha256"]:
                msg = f"{path} is corrupt: checksum mismatch in section {name!r}"
                raise IndexFileError(msg)
            parts[name] = part
            offset += length
        index = cls(
            int(header["dim"]),
            metric=header["metric"],
            dtype=header["dtype"],
            exact=bool(header["exact"]),
            rescore=bool(header.get("rescore", False)),
            model=header.get("model"),
            model_key=header.get("model_key"),
            **_params_from_header(header.get("params", {})),
        )
        meta = header.get("meta") or {}
        index.meta = {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}
        n_labels = int(header["labels"])
        keys = pa.ipc.open_stream(pa.py_buffer(parts["keys"])).read_all().column("key")
        index._keys = keys.combine_chunks()
        alive = np.unpackbits(np.frombuffer(parts["alive"], dtype=np.uint8))[:n_labels]
        index._alive = alive.astype(bool)
        stored = parts["vectors"] if index.exact else parts.get("matrix")
        if index._keeps_matrix:
            if stored is None:
                msg = f"{path} is corrupt: the header asks for float32 rescoring but has none"
                raise IndexFileError(msg)
            mat = np.frombuffer(stored, dtype=np.float32).reshape(-1, index.dim)
            index._matrix = mat if view else mat.copy()
        if not index.exact and view:
            index._hnsw = usearch_index().restore(parts["vectors"], view=True)  # type: ignore[attr-defined]
        elif not index.exact:
            index._hnsw.load(bytes(parts["vectors"]))  # type: ignore[attr-defined]
        if isinstance(buf, mmap.mmap):
            index._mmap = buf  # keeps the mapping alive as long as the index
        return index


def _params_from_header(params: dict[str, object]) -> dict[str, int]:
    """HNSW parameters of a saved header (files before 0.2 used usearch's names)."""
    theirs = {v: k for k, v in _USEARCH_NAMES.items()}
    return {theirs.get(k, k): int(v) for k, v in params.items() if v is not None}  # type: ignore[call-overload]


def _slack(metric: Metric, threshold: float) -> float:
    """Margin for BLAS rounding when pre-filtering a range by the matrix-product distances."""
    if metric is Metric.L2:
        return 1e-2 + 1e-3 * abs(threshold)
    return 1e-4 + 1e-4 * abs(threshold)


def _mask(allowed: np.ndarray, n: int) -> np.ndarray:
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape != (n,):
        msg = f"allowed mask has shape {mask.shape}; expected one flag per row label ({n},)"
        raise DimensionMismatchError(msg)
    return mask


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _scores(metric: Metric, q: np.ndarray, x: np.ndarray, aux: np.ndarray | None) -> np.ndarray:
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


def _select(
    d: np.ndarray, labels: np.ndarray, rank: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` smallest distances ordered by (distance, key rank); -1 pads."""
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
