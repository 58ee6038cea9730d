"""The HNSW graph: a small adapter over ``usearch.index.Index``.

It speaks the names users of vss, hnswlib and FAISS know (``M``, ``ef_construction``,
``ef_search``; usearch calls them connectivity, expansion_add, expansion_search), the
project's metrics and distances (:mod:`embed_sql.vectors.metrics`), and row labels only: user
keys, filters and exact rescoring live in :class:`~embed_sql.vectors.index.VectorIndex`.

usearch is loaded only through :func:`embed_sql._native.usearch_index`, which loads
onnxruntime first (the other order crashes the process).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embed_sql._native import usearch_index
from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors.inputs import F32_MAX
from embed_sql.vectors.metrics import Metric, from_usearch, usearch_metric

if TYPE_CHECKING:
    from usearch.index import Index

__all__ = ["HNSW_DEFAULTS", "HNSW_PRESETS", "HNSWGraph", "hnsw_params", "params_from_header"]

# Presets, chosen by benchmarks/hnsw_sweep.py on 35k BBC sentence embeddings of the default
# model and 100k clustered 384-d vectors (f16 graph, f32 rescoring): "default" is the
# fastest setting reaching recall@10 >= 0.98 on real text (0.984; 0.999 clustered), "fast"
# trades recall for time (0.957 / 0.992 at about 0.65x the time), "accurate" reaches 0.99+
# on both at about 1.5x the default's time.
HNSW_PRESETS = {
    "default": {"M": 16, "ef_construction": 64, "ef_search": 48},
    "fast": {"M": 16, "ef_construction": 40, "ef_search": 32},
    "accurate": {"M": 24, "ef_construction": 96, "ef_search": 48},
}
HNSW_DEFAULTS = HNSW_PRESETS["default"]
# the names users of vss, hnswlib and FAISS know → usearch's own
_USEARCH_NAMES = {
    "M": "connectivity",
    "ef_construction": "expansion_add",
    "ef_search": "expansion_search",
}
# how far a graph distance may lie from the exact one, relative to the distances' scale
_GRAPH_ERROR = {"f32": 1e-5, "f16": 2e-3, "i8": 5e-2}
_RANGE_START = 32  # matches asked for first by a range search; x4 per round after

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (query row, label, distance)
# exact distances of (queries, query rows, labels), for rescoring a range
Rescore = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def hnsw_params(
    M: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
    *,
    preset: str = "default",
) -> dict[str, int]:
    """Check the HNSW parameters and fill in the ``preset``'s for those left None.

    Examples
    --------
    >>> hnsw_params(ef_search=64)
    {'M': 16, 'ef_construction': 64, 'ef_search': 64}
    >>> hnsw_params(preset="fast")
    {'M': 16, 'ef_construction': 40, 'ef_search': 32}
    """
    if preset not in HNSW_PRESETS:
        msg = f"preset={preset!r} is not known; use one of {sorted(HNSW_PRESETS)}"
        raise InvalidParameterError(msg)
    defaults = HNSW_PRESETS[preset]
    given = {"M": M, "ef_construction": ef_construction, "ef_search": ef_search}
    for name, value in given.items():
        low = 2 if name == "M" else 1  # usearch: a graph of degree 1 degenerates into ropes
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 4096
        ):
            msg = (
                f"{name}={value!r} must be an integer from {low} to 4096 (or None for the default)"
            )
            raise InvalidParameterError(msg)
    return {k: defaults[k] if v is None else v for k, v in given.items()}


def params_from_header(params: dict[str, object]) -> dict[str, int]:
    """HNSW parameters of a saved header (files before 0.2 used usearch's names)."""
    theirs = {v: k for k, v in _USEARCH_NAMES.items()}
    return {theirs.get(k, k): int(v) for k, v in params.items() if v is not None}  # type: ignore[call-overload]


class HNSWGraph:
    """An approximate nearest-neighbour graph over row labels (``uint64`` in usearch).

    Parameters
    ----------
    dim, metric
        Vector length and metric; ``l2`` searches as ``l2sq`` and distances come back in
        the project's definitions.
    dtype
        Storage in the graph: ``"f16"``, ``"f32"`` or ``"i8"``.
    M, ef_construction, ef_search
        Graph degree, build-time and search-time candidate list lengths.

    Examples
    --------
    >>> import numpy as np
    >>> g = HNSWGraph(3, Metric.L2, "f32", M=16, ef_construction=40, ef_search=32)
    >>> g.add(np.arange(3), np.eye(3, dtype=np.float32))
    >>> labels, dist, hit = g.search(np.array([[1, 0, 0]], np.float32), 1)
    >>> labels.tolist(), dist.tolist(), hit.tolist()
    ([[0]], [[0.0]], [[True]])
    """

    __slots__ = ("_index", "dim", "dtype", "metric")

    def __init__(
        self, dim: int, metric: Metric, dtype: str, *, M: int, ef_construction: int, ef_search: int
    ) -> None:
        self.dim = dim
        self.metric = metric
        self.dtype = dtype
        names = {"M": M, "ef_construction": ef_construction, "ef_search": ef_search}
        kwargs = {_USEARCH_NAMES[k]: v for k, v in names.items()}
        self._index: Index = usearch_index()(
            ndim=dim, metric=usearch_metric(metric), dtype=dtype, **kwargs
        )

    @property
    def ef_search(self) -> int:
        """Candidate list length of a search: the main recall/speed knob (settable)."""
        return int(self._index.expansion_search)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        # usearch defines this setter under the name of its expansion_add property
        self._index.expansion_search = value  # type: ignore[misc]

    # -- contents ----------------------------------------------------------------------------
    def add(self, labels: np.ndarray, mat: np.ndarray, *, threads: int = 0) -> None:
        """Insert the rows of ``mat`` under ``labels``."""
        self._index.add(np.asarray(labels, dtype=np.uint64), mat, threads=threads)

    def remove(self, labels: np.ndarray) -> None:
        """Remove the given labels from the graph."""
        self._index.remove(np.asarray(labels, dtype=np.uint64))

    def get(self, labels: np.ndarray) -> np.ndarray:
        """Return the graph's vectors for ``labels``, as float32 ``(len(labels), dim)``."""
        got = self._index.get(np.asarray(labels, dtype=np.uint64), dtype="f32")
        return np.asarray(got, dtype=np.float32).reshape(len(labels), self.dim)

    # -- search ------------------------------------------------------------------------------
    def search(
        self, q: np.ndarray, count: int, *, threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up to ``count`` matches per query: (labels, distances, hit mask), each ``(n, count)``.

        Positions where the hit mask is False hold no match.
        """
        m = self._index.search(np.atleast_2d(q), count, threads=threads)
        labs = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
        counts = np.asarray(getattr(m, "counts", [len(m)])).reshape(len(q))
        hit = np.arange(labs.shape[1])[None, :] < counts[:, None]
        # past a query's count usearch leaves NaN or garbage (a sparse graph finds fewer)
        raw = np.asarray(m.distances, dtype=np.float32).reshape(len(q), -1)
        d = from_usearch(self.metric, np.where(hit, raw, np.float32(np.inf)))
        return labs, d, hit

    def range_pairs(
        self,
        q: np.ndarray,
        rows: np.ndarray,
        threshold: float,
        n: int,
        *,
        threads: int = 0,
        margin: float = 0.0,
        rescore: Rescore | None = None,
    ) -> Pairs:
        """Every (query row, label, distance) within ``threshold`` that the graph finds.

        Each round asks the still unfinished queries for 4x more matches, until a query gets
        some beyond the threshold or all ``n`` live rows. With ``rescore``, graph distances
        only pre-select (within ``threshold + margin``) and exact ones decide.
        """
        count = min(n, _RANGE_START)
        pending = rows
        out: list[Pairs] = []
        while len(pending):
            labs, d, hit = self.search(q[pending], count, threads=threads)
            within = hit & (d <= min(threshold + margin, F32_MAX))
            full = within.sum(axis=1) == count
            done = ~full if count < n else np.ones(len(pending), dtype=bool)
            qi, ci = np.nonzero(within & done[:, None])
            lab, dist = labs[qi, ci], d[qi, ci]
            if rescore is not None:
                dist = rescore(q, pending[qi], lab)
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

    def error_margin(self, threshold: float, norm: float) -> float:
        """How far a graph distance near ``threshold`` may lie from the exact one.

        ``norm`` is the largest row norm of the indexed vectors.
        """
        scale = {Metric.COS: 1.0, Metric.L2: norm}.get(self.metric, norm * norm)
        return _GRAPH_ERROR[self.dtype] * (abs(threshold) + scale)

    # -- bytes -------------------------------------------------------------------------------
    def to_bytes(self) -> bytearray:
        """Serialise the graph with usearch (the ``vectors`` section of an index file)."""
        return self._index.save()  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        """Bytes the graph holds in memory (vectors, links, spare capacity), as usearch counts."""
        return int(self._index.memory_usage)

    def size(self) -> int:
        """Length in bytes of :meth:`to_bytes` (and of :meth:`save_to`'s file)."""
        return int(self._index.serialized_length)

    def save_to(self, path: Path) -> None:
        """Serialise the graph into the file at ``path`` (usearch streams it; no copy)."""
        self._index.save(path)

    def load(self, buffer: memoryview) -> None:
        """Replace this graph by a copy of a serialised one (read in place, not copied first)."""
        self._index.load(buffer)

    def view(self, buffer: memoryview) -> None:
        """Replace this graph by a read-only view of a serialised one (the buffer stays used).

        The viewed graph takes its dtype and metric from the buffer; its search setting is
        this graph's (usearch's restore would use its own default), so a viewed index
        searches exactly as a loaded one.
        """
        ef_search = self.ef_search
        self._index = usearch_index().restore(buffer, view=True)  # type: ignore[attr-defined]
        self.ef_search = ef_search
