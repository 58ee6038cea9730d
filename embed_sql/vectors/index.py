"""VectorIndex: k-NN and range search over a vector column, keyed by the user's own keys.

Two modes behind one interface:

- HNSW (default): a graph (:mod:`~embed_sql.vectors.hnsw`, over usearch) holding the
  vectors in ``f16`` (default), ``f32`` or ``i8``. A reduced-precision graph keeps the
  float32 vectors beside it (``rescore=True``, the default) and computes every returned
  distance from them, so results carry exact distances, equal to DuckDB's array functions;
  the half-size graph makes build and search about 1.25x faster than an f32 graph, for 1.5x
  its memory. ``rescore=False`` drops the float32 copy (half the memory of f32, distances to
  ~1e-4).
- exact: the float32 matrix, searched by blocked BLAS matrix products
  (:mod:`~embed_sql.vectors.exact`; far faster than a brute-force scan, and exact to float
  rounding).

Keys are the user's own (any integer or string Arrow type); the engines see only row labels.
Ties are broken by key, so results are deterministic. Files
(:mod:`~embed_sql.vectors.index_file`) are written atomically as a small header (model,
metric, dim, dtype, row count, and a SHA-256 per section) followed by the keys (Arrow IPC)
and the vectors; :meth:`load` and :meth:`view` verify them and check every header field and
section size before building anything, so a truncated, corrupt or crafted file raises
:class:`IndexFileError` at open, never later at a search.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql._progress import Bar, progress_bar
from embed_sql.exceptions import DimensionMismatchError, InputTypeError, InvalidParameterError
from embed_sql.vectors.arrow import column_model, vector_dim
from embed_sql.vectors.exact import ExactStore, Pairs, top_k
from embed_sql.vectors.hnsw import HNSW_DEFAULTS, HNSW_PRESETS, HNSWGraph, hnsw_params
from embed_sql.vectors.index_checks import DTYPES
from embed_sql.vectors.index_file import IndexFileError
from embed_sql.vectors.index_persist import open_index, save_index
from embed_sql.vectors.inputs import (
    as_keys,
    as_matrix,
    batch_columns,
    cast_keys,
    check_k,
    check_norms,
    check_threshold,
    refuse_duplicates,
)
from embed_sql.vectors.metrics import Metric, parse_metric
from embed_sql.vectors.provenance import model_name

__all__ = [
    "DTYPES",
    "HNSW_DEFAULTS",
    "HNSW_PRESETS",
    "IndexFileError",
    "SearchResult",
    "VectorIndex",
    "as_matrix",
    "check_k",
]

_ADD_ROWS = 65_536  # vectors added to the graph at a time (a progress step)


@dataclass(frozen=True)
class SearchResult:
    """Top-k matches per query: ``labels``/``distances`` of shape ``(n, k)``, ``counts[n]``.

    Positions past ``counts[i]`` hold label -1 and distance +inf.
    """

    labels: np.ndarray
    distances: np.ndarray
    counts: np.ndarray


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
        connectivity, expansion_add, expansion_search); None takes the ``preset``'s.
        ``ef_search`` is the main recall/speed knob; :func:`~embed_sql.vectors.recall`
        measures it.
    preset
        ``"default"`` (M 16, ef_construction 64, ef_search 48: recall@10 0.98 on sentence
        embeddings), ``"fast"`` (16 / 40 / 32: about 0.65x the time, recall 0.96) or
        ``"accurate"`` (24 / 96 / 48: 0.99+ at about 1.5x); see :data:`HNSW_PRESETS`.
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
        preset: str = "default",
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
        self._params = hnsw_params(M, ef_construction, ef_search, preset=preset)
        self._keys: pa.Array | None = None  # label → user key
        self._alive = np.zeros(0, dtype=bool)  # label → still present
        self._rank: np.ndarray | None = None  # label → key rank, then a sentinel for -1
        self._hnsw = None if self.exact else HNSWGraph(dim, self.metric, dtype, **self._params)
        # the float32 vectors (exact, or rescoring a graph), else read back from the graph
        graph = self._hnsw
        fetch = graph.get if graph is not None and not self.rescore else None
        self._store = ExactStore(dim, self.metric, fetch=fetch)
        self._buffer: object = None  # a mapped file this index reads from, kept alive

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
        preset: str = "default",
        **hnsw: int,
    ) -> VectorIndex:
        """Build an index from a vector column and a key column; NULL vectors are skipped.

        ``preset`` and ``hnsw`` (``M``, ``ef_construction``, ``ef_search``) as for the
        constructor.

        Raises
        ------
        InvalidParameterError
            For duplicate keys unless ``allow_duplicates=True``.
        """
        if isinstance(vectors, pa.Array | pa.ChunkedArray):
            dim = vector_dim(vectors.type)
        else:
            dim = as_matrix(vectors, None)[0].shape[1]
        index = cls(
            dim,
            metric=metric,
            dtype=dtype,
            exact=exact,
            rescore=rescore,
            model=model,
            model_key=model_key,
            preset=preset,
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
        given, valid = as_matrix(vectors, self.dim)
        key_arr = as_keys(keys, len(given))
        mat = given
        if not valid.all():  # NULL vectors are skipped (no copy when there are none)
            mat, key_arr = mat[valid], key_arr.filter(pa.array(valid))
        if self._keys is not None and len(self._keys) and key_arr.type != self._keys.type:
            msg = f"keys of type {key_arr.type} cannot join an index keyed by {self._keys.type}"
            raise InputTypeError(msg)
        if not allow_duplicates:
            self._refuse_duplicates(key_arr)
        check_norms(given, valid, self.metric)  # after the keys, in the order SQL checks
        with progress_bar(len(mat) if self._hnsw is not None else 0, desc="indexing") as bar:
            self._append(mat, len(self._alive), source=vectors, threads=threads, bar=bar)
        self._keys = key_arr if self._keys is None else pa.concat_arrays([self._keys, key_arr])
        self._alive = np.concatenate([self._alive, np.ones(len(mat), dtype=bool)])
        self._rank = None
        return len(mat)

    def _append(
        self, mat: np.ndarray, start: int, *, source: object, threads: int, bar: Bar
    ) -> None:
        """Put checked rows into the graph and the store under labels ``start, start+1, ...``.

        The caller records their keys and liveness.
        """
        if self._hnsw is not None and len(mat):
            for s in range(0, len(mat), _ADD_ROWS):  # in slices, for the bar
                part = mat[s : s + _ADD_ROWS]
                labels = np.arange(start + s, start + s + len(part))
                self._hnsw.add(labels, part, threads=threads)
                bar.update(len(part))
        self._store.append(mat, source=source)

    @classmethod
    def from_batches(
        cls,
        batches: Iterable[pa.RecordBatch | pa.Table],
        *,
        vec: str = "v",
        key: str = "id",
        rows: int | None = None,
        metric: str | Metric = "cos",
        dtype: str = "f16",
        exact: bool = False,
        rescore: bool | None = None,
        allow_duplicates: bool = False,
        threads: int = 0,
        model: str | None = None,
        model_key: str | None = None,
        preset: str = "default",
        **hnsw: int,
    ) -> VectorIndex:
        """Build an index from a stream of record batches, holding one batch at a time.

        For columns too large to hold beside their index: a Parquet file read by
        ``embed_sql.pipelines.files.parquet_batches(path, ["id", "v"])`` (not pyarrow's
        ``iter_batches``, which keeps what it read until the file ends), a DuckDB
        relation's ``to_arrow_reader()``, any ``pa.RecordBatchReader``. Memory is the
        index plus one batch (:meth:`build` needs the whole column as well).

        Parameters
        ----------
        batches
            Record batches (or tables) with the ``vec`` and ``key`` columns; vectors as
            ``fixed_size_list<float>[d]`` or as lists of floats of one length (as DuckDB
            and Polars write them to Parquet).
        rows
            The row count if known (e.g. ``metadata.num_rows`` of a Parquet file): the
            float32 copy kept for rescoring or exact search is then allocated once.
        model, model_key
            The model that made the vectors; by default the vector field's metadata (files
            of ``embed-sql embed``), else the first batch looked up among the vectors this
            process embedded.
        metric, dtype, exact, rescore, allow_duplicates, threads, preset, hnsw
            As for :meth:`build`. Duplicate keys are refused within each batch as it
            arrives, and across batches once every key is in.

        Examples
        --------
        >>> import pyarrow as pa, numpy as np
        >>> from embed_sql.vectors import from_numpy
        >>> t = pa.table({"id": [1, 2, 3], "v": from_numpy(np.eye(3))})
        >>> VectorIndex.from_batches(t.to_batches(max_chunksize=2), exact=True)
        VectorIndex(3 x 3, metric=cos, exact)
        """
        options: dict[str, Any] = {"metric": metric, "dtype": dtype, "exact": exact}
        options |= {"rescore": rescore, "preset": preset, **hnsw}
        index: VectorIndex | None = None
        seen: pa.DataType | None = None  # the vector type of the batches, if any came
        parts: list[pa.Array] = []
        count = read = 0  # rows indexed, rows read (NULL vectors too)
        with progress_bar(rows or 0, desc="indexing") as bar:
            for batch in batches:
                vectors, keys = batch_columns(batch, vec, key)
                if index is None:
                    seen = batch.schema.field(vec).type
                    if not vectors.is_valid().true_count:
                        read += len(vectors)
                        continue  # nothing to index, and a list column tells no dimension yet
                    if model_key is None:
                        model_key = column_model(vectors, batch.schema.field(vec))
                        model = model or (model_name(model_key) if model_key else None)
                    dim = vector_dim(vectors.type)
                    index = cls(dim, model=model, model_key=model_key, **options)
                    index._store.reserve(rows or 0)
                given, valid = as_matrix(vectors, index.dim, first_row=read)
                key_arr = as_keys(keys, len(given))
                mat = given
                if not valid.all():
                    mat, key_arr = given[valid], key_arr.filter(pa.array(valid))
                if parts and key_arr.type != parts[0].type:
                    msg = f"batch keys of type {key_arr.type} follow keys of type {parts[0].type}"
                    raise InputTypeError(msg)
                if not allow_duplicates:
                    refuse_duplicates(key_arr[:0], key_arr)
                check_norms(given, valid, index.metric, first_row=read)
                read += len(given)
                index._append(mat, count, source=None, threads=threads, bar=bar)
                # a copy: a column of an imported batch (DuckDB's Arrow stream) keeps the
                # whole batch alive, vectors included, for as long as it lives
                parts.append(pa.concat_arrays([key_arr]))
                count += len(mat)
        if index is None:  # no vector at all: an empty index, if the type tells the dimension
            dim = _empty_dim(seen, batches, vec)
            return cls(dim, model=model, model_key=model_key, **options)
        index._keys = pa.concat_arrays(parts)
        if not allow_duplicates and len(parts) > 1:
            refuse_duplicates(index._keys[:0], index._keys)
        index._alive = np.ones(count, dtype=bool)
        return index

    def _refuse_duplicates(self, new: pa.Array) -> None:
        refuse_duplicates(self.keys(), new)

    def mask_for(self, keys: object) -> np.ndarray:
        """Boolean mask over row labels: True where the row's key is among ``keys``.

        Pass it as ``allowed=`` to :meth:`search` to filter by key before the top-k.
        """
        if self._keys is None:
            return np.zeros(0, dtype=bool)
        wanted = cast_keys(keys, self._keys.type)
        return np.asarray(pc.is_in(self._keys, value_set=wanted), dtype=bool)

    def remove(self, keys: object) -> int:
        """Remove every vector stored under these keys; returns how many were removed."""
        if self._keys is None or not len(self._keys):
            return 0
        hit = self.mask_for(keys)
        labels = np.flatnonzero(hit & self._alive)
        if self._hnsw is not None and len(labels):
            self._hnsw.remove(labels)
        self._alive[labels] = False
        self._rank = None
        return len(labels)

    # -- inspection -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def nbytes(self) -> int:
        """Bytes the index holds: the graph (as usearch counts it), float32 vectors, keys."""
        graph = self._hnsw.nbytes if self._hnsw is not None else 0
        keys = self._keys.nbytes if self._keys is not None else 0
        return graph + self._store.nbytes + keys + self._alive.nbytes

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
        """Label → rank of its key, then a sentinel (the largest int64) for label -1."""
        if self._rank is None:
            keys = self._keys if self._keys is not None else pa.array([], pa.int64())
            rank = np.asarray(pc.rank(keys, sort_keys="ascending", tiebreaker="first"))
            self._rank = np.append(rank, np.iinfo(np.int64).max)
        return self._rank

    def vectors(self, labels: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors for labels (default: every live row), for exact work and k-means."""
        if labels is None:
            labels = np.flatnonzero(self._alive)
        return self._store.rows(np.asarray(labels, dtype=np.int64))

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
        k = check_k(k)
        q, valid = as_matrix(queries, self.dim, metric=self.metric)
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
        qv = q if len(rows) == len(q) else q[rows]
        if use_exact or self._hnsw is None or selective:
            got_l, got_d = self._store.knn(qv, k_eff, np.flatnonzero(alive), self._key_rank())
        else:
            got_l, got_d = self._approx(self._hnsw, qv, k_eff, alive, threads)
        if len(rows) == len(q):
            return SearchResult(got_l, got_d, (got_l >= 0).sum(axis=1))
        labels[rows], dists[rows] = got_l, got_d
        return SearchResult(labels, dists, (labels >= 0).sum(axis=1))

    def _approx(
        self, graph: HNSWGraph, q: np.ndarray, k: int, alive: np.ndarray, threads: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search the graph; rescore, and finish exactly any query a filter left short."""
        filtered = not alive[self._alive].all() if len(self) else False
        frac = max(alive.sum() / max(len(self), 1), 1e-6)
        count = min(len(self), int(np.ceil(k / frac * 1.5)) + k if filtered else k)
        labs, d, hit = graph.search(q, count, threads=threads)
        if filtered:
            safe = np.where(hit, labs, 0)
            hit &= alive[safe]
        d = np.where(hit, d, np.inf).astype(np.float32)
        labs = np.where(hit, labs, -1)
        rank = self._key_rank()
        out_l, out_d = top_k(d, labs, rank, k)
        if self.rescore:
            out_l, out_d = self._store.rescore(q, out_l, rank, k)
        short = np.flatnonzero((out_l >= 0).sum(axis=1) < k)
        if len(short):  # the filter removed too many: finish those queries exactly
            ex_l, ex_d = self._store.knn(q[short], k, np.flatnonzero(alive), rank)
            out_l[short], out_d[short] = ex_l, ex_d
        return out_l, out_d

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
        threshold = check_threshold(threshold)
        q, valid = as_matrix(queries, self.dim, metric=self.metric)
        rows = np.flatnonzero(valid)
        n = len(self)
        parts: list[Pairs] = []
        use_exact = self.exact if exact is None else exact
        if n and len(rows):
            if use_exact or self._hnsw is None:
                candidates = np.flatnonzero(self._alive)
                parts += self._store.range_pairs(q, rows, threshold, candidates)
            elif not self.rescore:
                parts.append(self._hnsw.range_pairs(q, rows, threshold, n, threads=threads))
            else:  # graph distances only pre-select (with a margin); exact ones decide
                margin = self._hnsw.error_margin(threshold, self._store.norm_scale())
                exact_d = self._store.pair_distances
                found = self._hnsw.range_pairs(
                    q, rows, threshold, n, threads=threads, margin=margin, rescore=exact_d
                )
                parts.append(found)
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0, dtype=np.float32)
        qr = np.concatenate([p[0] for p in parts]).astype(np.int64)
        lab = np.concatenate([p[1] for p in parts]).astype(np.int64)
        dist = np.concatenate([p[2] for p in parts]).astype(np.float32)
        order = np.lexsort((self._key_rank()[lab], dist, qr))
        return qr[order], lab[order], dist[order]

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index to ``path`` atomically (temporary file, then rename), streamed."""
        return save_index(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Read an index saved with :meth:`save` into memory (verified)."""
        return cls._open(Path(path), view=False)

    @classmethod
    def view(cls, path: str | os.PathLike[str], *, verify: bool = True) -> VectorIndex:
        """Memory-map an index saved with :meth:`save` (read-only).

        Every header field, size and graph link is checked at open, whatever ``verify``.
        ``verify=False`` skips the checksums and NaN scans of the vectors, so opening reads
        only the keys, the alive bitmap and the graph's links, and the vectors are paged in
        by searches: for large files you trust (a damaged vector gives wrong distances, never
        a crash).
        """
        return cls._open(Path(path), view=True, verify=verify)

    @classmethod
    def _open(cls, path: Path, *, view: bool, verify: bool = True) -> VectorIndex:
        return open_index(cls, path, view=view, verify=verify)


def _empty_dim(seen: pa.DataType | None, batches: object, vec: str) -> int:
    """Return the dimension of a stream that had no vector, from its type when fixed."""
    schema = getattr(batches, "schema", None)
    if seen is None and isinstance(schema, pa.Schema) and vec in schema.names:
        seen = schema.field(vec).type
    if seen is not None and pa.types.is_fixed_size_list(seen):
        return int(seen.list_size)
    msg = (
        f"the batches hold no vector in column {vec!r} (none came, or all were NULL) and their "
        f"type ({seen}) does not tell the dimension; create VectorIndex(dim, ...) and add() "
        "later, or pass fixed_size_list<float>[dim] vectors"
    )
    raise InvalidParameterError(msg)


def _mask(allowed: np.ndarray, n: int) -> np.ndarray:
    mask = np.asarray(allowed, dtype=bool)
    if mask.shape != (n,):
        msg = f"allowed mask has shape {mask.shape}; expected one flag per row label ({n},)"
        raise DimensionMismatchError(msg)
    return mask
