"""Evaluation of an index: recall of its approximate search against exact search."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors.index import VectorIndex
from embed_sql.vectors.inputs import as_matrix
from embed_sql.vectors.join import check_k

__all__ = ["recall"]


def recall(
    index: VectorIndex,
    queries: pa.Array | np.ndarray | None = None,
    *,
    k: int = 10,
    sample: int = 1000,
    seed: int = 0,
) -> float:
    """Recall@k of the index's approximate search against exact search on a sample.

    Parameters
    ----------
    queries
        Query vectors; default a random sample of the indexed vectors themselves.
    sample
        How many queries to use at most.

    Examples
    --------
    >>> import numpy as np
    >>> from embed_sql.vectors import VectorIndex, recall
    >>> x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    >>> recall(VectorIndex.build(x, range(500)), k=5) > 0.9
    True
    """
    k = check_k(k)
    rng = np.random.default_rng(seed)
    if queries is None:
        live = index.labels()
        pick = rng.choice(live, size=min(sample, len(live)), replace=False)
        q = index.vectors(np.sort(pick))
    else:
        q, valid = as_matrix(queries, index.dim)
        q = q[valid]
        if len(q) > sample:
            q = q[np.sort(rng.choice(len(q), size=sample, replace=False))]
    if not len(q) or not len(index):
        msg = "recall needs at least one query and one indexed vector"
        raise InvalidParameterError(msg)
    approx = index.search(q, k, exact=False).labels
    truth = index.search(q, k, exact=True).labels
    found = sum(len(set(a[a >= 0]) & set(t[t >= 0])) for a, t in zip(approx, truth, strict=True))
    return found / max(int((truth >= 0).sum()), 1)
