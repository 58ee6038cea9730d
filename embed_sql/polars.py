"""``import embed_sql.polars`` registers the ``embed`` namespace on Polars expressions."""

from __future__ import annotations

from embed_sql.udfs.polars import EmbedExpr, vector_dtype, vectors_to_numpy

__all__ = ["EmbedExpr", "vector_dtype", "vectors_to_numpy"]
