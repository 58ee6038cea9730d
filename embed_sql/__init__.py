"""embed_sql: vector embeddings inside DuckDB SQL and Polars pipelines.

>>> import embed_sql
>>> enc = embed_sql.TextEncoder()          # all-MiniLM-L6-v2, 384-d, offline
>>> enc.encode(["a burrito", "tacos"]).type
FixedSizeListType(fixed_size_list<item: float>[384])

This module imports no host library (DuckDB, Polars, Ray); those load on first use.
"""

from __future__ import annotations

from embed_sql import models, vectors
from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    EmbedSQLError,
    EmbedSQLWarning,
    ExportError,
    FileWriteError,
    IndexFileError,
    InputTypeError,
    InvalidParameterError,
    MissingDependencyError,
    ModelLoadError,
    ModelNotFoundError,
    OperationInterrupted,
)
from embed_sql.models import DEFAULT_MODEL, ImageEncoder, ModelSpec, TextEncoder, resolve

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # host adapters load on first use, so importing embed_sql never imports a host library
    if name in (
        "register",
        "create_index",
        "load_index",
        "refresh_index",
        "drop_index",
        "interrupt",
    ):
        from embed_sql.udfs import duckdb as _duckdb_udfs

        return getattr(_duckdb_udfs, name)
    if name == "EmbeddingCache":
        from embed_sql.models.cache import EmbeddingCache

        return EmbeddingCache
    msg = f"module 'embed_sql' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "DEFAULT_MODEL",
    "ColumnNotFoundError",
    "DimensionMismatchError",
    "EmbedSQLError",
    "EmbedSQLWarning",
    "EmbeddingCache",
    "ExportError",
    "FileWriteError",
    "ImageEncoder",
    "IndexFileError",
    "InputTypeError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSpec",
    "OperationInterrupted",
    "TextEncoder",
    "__version__",
    "create_index",
    "drop_index",
    "interrupt",
    "load_index",
    "models",
    "refresh_index",
    "register",
    "resolve",
    "vectors",
]
