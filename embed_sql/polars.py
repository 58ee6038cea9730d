"""``import embed_sql.polars`` registers the ``embed`` namespace on expressions and frames."""

from __future__ import annotations

from embed_sql.udfs.polars import (
    EmbedExpr,
    EmbedFrame,
    EmbedLazyFrame,
    vector_dtype,
    vectors_to_numpy,
)

__all__ = ["EmbedExpr", "EmbedFrame", "EmbedLazyFrame", "vector_dtype", "vectors_to_numpy"]
