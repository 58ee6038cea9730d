"""Polars host: the only package that imports polars; importing it registers ``embed``.

:mod:`.expr` holds the column expressions (``pl.col("t").embed.text()``), :mod:`.frame` the
frame operations (LazyFrame does the work; the DataFrame form calls it and collects),
:mod:`.apps` the applications' frame methods, :mod:`.common` what they share.
"""

from __future__ import annotations

from embed_sql.udfs.polars.expr import EmbedExpr, vector_dtype, vectors_to_numpy
from embed_sql.udfs.polars.frame import EmbedFrame, EmbedLazyFrame

__all__ = ["EmbedExpr", "EmbedFrame", "EmbedLazyFrame", "vector_dtype", "vectors_to_numpy"]
