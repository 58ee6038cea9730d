"""Training-free novelty scores: how far a vector lies from a reference set.

The score of a vector is its distance to the ``k``-th nearest reference vector, found through
the vector operator (:class:`~embed_sql.vectors.VectorIndex`, exact or HNSW). The threshold is
calibrated on the reference itself: each reference vector is scored against the others
(leave-one-out) and the ``quantile`` (default 0.99) of those scores is the cut, so about 1 %
of rows like the reference are flagged. The conformal p-value of a score is the share of
reference scores at least as large (small p = unusual).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=(500, 8)).astype(np.float32)
>>> scorer = OutlierScorer(ref, k=5, metric="l2")
>>> far = np.full((1, 8), 6.0, np.float32)
>>> bool(scorer.is_outlier(far)[0]), bool(scorer.is_outlier(ref[:1] * 0.5)[0])
(True, False)
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.vectors.arrow import vector_input
from embed_sql.vectors.index import VectorIndex
from embed_sql.vectors.inputs import as_matrix, check_k
from embed_sql.vectors.metrics import Metric

__all__ = ["OutlierScorer", "kth_distance", "outlier_scores", "reference_index"]

_EXACT_UP_TO = 50_000  # reference rows searched by brute force (BLAS) by default
_CALIBRATION_ROWS = 20_000


def reference_index(
    reference: object, vec: str = "v", metric: str | Metric = "cos", exact: bool | None = None
) -> VectorIndex:
    """Return ``reference`` if it is an index, else an index over its non-NULL vectors."""
    if isinstance(reference, VectorIndex):
        return reference
    vectors, _ = vector_input(reference, vec, "reference")
    mat, valid = as_matrix(vectors, None)
    mat = mat[valid]
    use_exact = len(mat) <= _EXACT_UP_TO if exact is None else exact
    return VectorIndex.build(mat, np.arange(len(mat)), metric=metric, exact=use_exact)


def kth_distance(index: VectorIndex, vectors: object, k: int) -> np.ndarray:
    """Return each vector's distance to its ``k``-th nearest row of ``index`` (float32).

    NaN for NULL rows and when the index holds fewer than ``k`` rows.
    """
    q, valid = as_matrix(vectors, index.dim)
    out = np.full(len(q), np.nan, dtype=np.float32)
    if valid.any() and len(index) >= k:
        out[valid] = index.search(q[valid], k).distances[:, k - 1]
    return out


class OutlierScorer:
    """Scores vectors by their distance to the ``k``-th nearest reference vector.

    Parameters
    ----------
    reference
        A :class:`~embed_sql.vectors.VectorIndex`, or vectors (Arrow table with ``vec``,
        Arrow array, Polars or pandas frame, numpy matrix) to index here. NULL vectors are
        skipped.
    k
        Which neighbour's distance is the score; larger ``k`` is steadier, smaller ``k``
        finds tighter anomalies.
    quantile
        The threshold is this quantile of the reference's own leave-one-out scores.
    metric, exact
        For an index built here: the distance (default cosine) and brute force (default:
        exact up to 50,000 reference rows, HNSW beyond).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.eye(4, dtype=np.float32).repeat(10, axis=0)
    >>> OutlierScorer(ref, k=3).score(np.array([[1, 0, 0, 0]], np.float32)).tolist()
    [0.0]
    """

    def __init__(
        self,
        reference: object,
        *,
        k: int = 5,
        quantile: float = 0.99,
        vec: str = "v",
        metric: str | Metric = "cos",
        exact: bool | None = None,
        seed: int = 0,
    ) -> None:
        k = check_k(k)
        if not 0.0 < float(quantile) < 1.0:
            msg = f"quantile={quantile!r} must lie strictly between 0 and 1 (e.g. 0.99)"
            raise InvalidParameterError(msg)
        self.index = reference_index(reference, vec, metric, exact)
        n = len(self.index)
        if n < k + 1:
            msg = (
                f"the reference has {n} vectors but k={k} needs at least {k + 1} "
                "(each reference vector is scored against the others); lower k or add rows"
            )
            raise InvalidParameterError(msg)
        self.k, self.quantile = int(k), float(quantile)
        self.reference_scores = self._calibrate(np.random.default_rng(seed))
        self.threshold = float(np.quantile(self.reference_scores, self.quantile))

    def __repr__(self) -> str:
        return (
            f"OutlierScorer(k={self.k}, quantile={self.quantile}, threshold={self.threshold:.4f}"
            f", reference={len(self.index):,} rows, metric={self.index.metric.value!r})"
        )

    def _calibrate(self, rng: np.random.Generator) -> np.ndarray:
        labels = self.index.labels()
        if len(labels) > _CALIBRATION_ROWS:
            labels = np.sort(rng.choice(labels, _CALIBRATION_ROWS, replace=False))
        res = self.index.search(self.index.vectors(labels), self.k + 1)
        others = res.labels != labels[:, None]  # leave the row itself out
        others &= res.labels >= 0
        # k-th distance among the others: the row itself, when found, sits in front of them
        dist = np.where(others, res.distances, np.inf)
        return np.sort(np.sort(dist, axis=1)[:, self.k - 1]).astype(np.float32)

    def score(self, vectors: object) -> np.ndarray:
        """Distance to the ``k``-th nearest reference vector, float32; NaN for NULL rows."""
        return kth_distance(self.index, vectors, self.k)

    def p_value(self, vectors: object) -> np.ndarray:
        """Conformal p-value: share of reference scores at least as large; NaN for NULL."""
        return self._p_of(self.score(vectors))

    def _p_of(self, scores: np.ndarray) -> np.ndarray:
        ref = self.reference_scores
        above = len(ref) - np.searchsorted(ref, scores, side="left")
        return np.where(np.isnan(scores), np.nan, (1 + above) / (1 + len(ref)))

    def is_outlier(self, vectors: object) -> np.ndarray:
        """Flag rows whose score exceeds the calibrated threshold (False for NULL rows)."""
        return np.nan_to_num(self.score(vectors), nan=-np.inf) > self.threshold

    def table(self, vectors: object) -> pa.Table:
        """``outlier_score`` (float32), ``outlier_p`` and ``is_outlier``; NULL for NULL rows."""
        s = self.score(vectors)
        null = np.isnan(s)
        return pa.table(
            {
                "outlier_score": pa.array(s, pa.float32(), mask=null),
                "outlier_p": pa.array(self._p_of(s), pa.float64(), mask=null),
                "is_outlier": pa.array(s > self.threshold, pa.bool_(), mask=null),
            }
        )


def outlier_scores(
    reference: object,
    current: pa.Table,
    *,
    vec: str = "v",
    k: int = 5,
    quantile: float = 0.99,
    metric: str | Metric = "cos",
) -> pa.Table:
    """Return ``current`` with ``outlier_score``, ``outlier_p`` and ``is_outlier`` appended.

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from embed_sql.vectors import from_numpy
    >>> ref = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    >>> cur = pa.table({"v": from_numpy(np.vstack([ref[:1], 50 * np.ones((1, 4))]))})
    >>> outlier_scores(ref, cur, k=3, metric="l2").column("is_outlier").to_pylist()
    [False, True]
    """
    if vec not in current.column_names:
        msg = f"current has no column {vec!r}; its columns are {current.column_names}; use vec="
        raise ColumnNotFoundError(msg)
    scorer = OutlierScorer(reference, k=k, quantile=quantile, vec=vec, metric=metric)
    scores = scorer.table(current.column(vec))
    for name in scores.column_names:
        current = current.append_column(name, scores.column(name))
    return current
