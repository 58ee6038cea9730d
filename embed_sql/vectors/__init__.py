"""Everything about vectors once they exist: Arrow layout, metrics, indexes, joins, clusters.

numpy, pyarrow and usearch only; no host library.
"""

from __future__ import annotations

from embed_sql.vectors.arrow import from_numpy, to_numpy
from embed_sql.vectors.cluster import Clusters, cluster, connected_components, dedup
from embed_sql.vectors.evaluate import recall
from embed_sql.vectors.index import IndexFileError, SearchResult, VectorIndex
from embed_sql.vectors.join import (
    knn_join,
    range_join,
    self_knn_join,
    self_range_join,
)
from embed_sql.vectors.metrics import Metric, parse_metric

__all__ = [
    "Clusters",
    "IndexFileError",
    "Metric",
    "SearchResult",
    "VectorIndex",
    "cluster",
    "connected_components",
    "dedup",
    "from_numpy",
    "knn_join",
    "parse_metric",
    "range_join",
    "recall",
    "self_knn_join",
    "self_range_join",
    "to_numpy",
]
