"""Vector columns as Arrow ``fixed_size_list<float32>[dim]`` and back to numpy, offset-safe.

A sliced ``FixedSizeListArray``'s ``.values`` ignores the slice offset; every conversion
here goes through the offset explicitly, and copies only when nulls force it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import ColumnNotFoundError, DimensionMismatchError, InputTypeError

__all__ = [
    "MODEL_KEY",
    "column_model",
    "from_numpy",
    "model_key",
    "single_model",
    "to_numpy",
    "vector_dim",
    "vector_input",
]

MODEL_KEY = b"embed_sql.model_key"


def model_key(field: pa.Field) -> str | None:
    """Return the content key of the model that made a vector field, if its metadata has it."""
    value = (field.metadata or {}).get(MODEL_KEY)
    return value.decode() if value else None


def column_model(
    values: pa.Array | pa.ChunkedArray | np.ndarray,
    field: pa.Field | None = None,
    what: str = "vector column",
) -> str | None:
    """Return the key of the model that made a vector column, or None when unknown.

    The field's metadata says it when present; else the vectors are looked up among those
    this process embedded (:mod:`embed_sql.vectors.provenance`). A column mixing two models
    is refused.
    """
    from embed_sql.vectors import provenance

    key = model_key(field) if field is not None else None
    if key:
        return key
    mat = values if isinstance(values, np.ndarray) else to_numpy(values)
    return single_model(provenance.identify(mat) if mat.ndim == 2 else set(), what)


def single_model(found: set[str], what: str = "vector column") -> str | None:
    """Return the one model key among ``found`` (None if empty); refuse several models."""
    from embed_sql.vectors import provenance

    names = sorted({provenance.model_name(k) for k in found})
    if len(names) > 1:
        msg = (
            f"{what} mixes vectors of {len(found)} models ({', '.join(names)}); distances "
            "between them mean nothing. Re-embed the column with one model."
        )
        raise DimensionMismatchError(msg)
    return min(found) if found else None


def fixed_vectors(
    vectors: pa.ChunkedArray | pa.Array, column: str = "v", where: str = "the input"
) -> pa.Array:
    """Return a vector column as ``fixed_size_list<float32>[d]``.

    Variable-length lists of floats (as ibis or jupysql hand them over, Float32 or Float64)
    are accepted when every non-NULL vector has one length; a ragged column is refused with
    the cast to use.

    Examples
    --------
    >>> fixed_vectors(pa.array([[1.0, 2.0], None])).type
    FixedSizeListType(fixed_size_list<item: float>[2])
    """
    if isinstance(vectors, pa.ChunkedArray):
        vectors = vectors.combine_chunks()
    if pa.types.is_fixed_size_list(vectors.type):
        return vectors.cast(pa.list_(pa.float32(), vectors.type.list_size))
    if not (
        pa.types.is_list(vectors.type) or pa.types.is_large_list(vectors.type)
    ) or not pa.types.is_floating(vectors.type.value_type):
        msg = (
            f"column {column!r} of {where} has type {vectors.type}, not vectors; embed it "
            "first (embed(text) in SQL, pl.col(...).embed.text() in Polars)"
        )
        raise InputTypeError(msg)
    lengths = pc.unique(pc.list_value_length(vectors).drop_null()).to_pylist()
    if len(lengths) > 1:
        msg = (
            f"column {column!r} of {where} mixes vector lengths {sorted(lengths)[:5]}; every "
            "vector of a column must have one length (one model). Fix the data, then cast to "
            f"a fixed size: CAST({column} AS FLOAT[d]) in SQL, "
            f"pl.col({column!r}).cast(pl.Array(pl.Float32, d)) in Polars"
        )
        raise DimensionMismatchError(msg)
    return vectors.cast(pa.list_(pa.float32(), lengths[0] if lengths else 1))


def vector_dim(dtype: pa.DataType) -> int:
    """Return ``dim`` of a ``fixed_size_list<float>[dim]`` type, or raise a clear error."""
    if not pa.types.is_fixed_size_list(dtype) or not pa.types.is_floating(dtype.value_type):
        msg = (
            f"expected a vector column of type fixed_size_list<float32>[dim], got {dtype}; "
            "produce one with embed(...) or cast with CAST(col AS FLOAT[dim])"
        )
        raise InputTypeError(msg)
    return int(dtype.list_size)


def to_numpy(arr: pa.Array | pa.ChunkedArray, *, null_value: float = np.nan) -> np.ndarray:
    """Return an ``(n, dim)`` float32 matrix for a vector column; NULL rows hold ``null_value``.

    Zero-copy for a float32 array without nulls (any slice offset); a copy otherwise.

    Examples
    --------
    >>> import pyarrow as pa
    >>> a = pa.array([[1, 2], [3, 4], [5, 6]], pa.list_(pa.float32(), 2))
    >>> to_numpy(a.slice(1)).tolist()
    [[3.0, 4.0], [5.0, 6.0]]
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    dim = vector_dim(arr.type)
    n = len(arr)
    values = arr.values.slice(arr.offset * dim, n * dim)
    if values.null_count:  # allowed only under NULL rows (DuckDB writes them so)
        inner = ~values.is_valid().to_numpy(zero_copy_only=False).reshape(n, dim)
        row_ok = arr.is_valid().to_numpy(zero_copy_only=False)
        if (inner.any(axis=1) & row_ok).any():
            msg = "vector column has NULL elements inside non-NULL vectors; fill or drop them first"
            raise InputTypeError(msg)
        values = values.fill_null(0.0)
    mat = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    mat = mat.reshape(n, dim)
    if arr.null_count:
        mat = mat.copy()
        mat[~arr.is_valid().to_numpy(zero_copy_only=False)] = null_value
    return mat


def from_numpy(mat: np.ndarray, *, valid: np.ndarray | None = None) -> pa.FixedSizeListArray:
    """Wrap an ``(n, dim)`` matrix as a vector column (zero-copy for C-contiguous float32).

    ``valid`` is an optional boolean mask; rows where it is False become NULL.
    """
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    if mat.ndim != 2:
        msg = f"expected a 2-d (rows, dim) matrix, got shape {mat.shape}"
        raise DimensionMismatchError(msg)
    mask = None
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (mat.shape[0],):
            msg = f"valid mask has shape {valid.shape}, expected ({mat.shape[0]},)"
            raise DimensionMismatchError(msg)
        mask = pa.array(~valid)
    values = pa.array(mat.reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(values, mat.shape[1], mask=mask)


def vector_input(
    data: object, column: str = "v", what: str = "input"
) -> tuple[pa.Array | pa.ChunkedArray | np.ndarray, str | None]:
    """Return the vectors of ``data`` and the key of the model that made them (or None).

    ``data`` is an Arrow table (``column`` picks the vectors), an Arrow vector array, a numpy
    ``(rows, dim)`` matrix, a Polars Series, or anything ``pa.table()`` reads (Polars and
    pandas frames, Arrow streams); a Polars LazyFrame is collected. ``what`` names the
    argument in errors.
    """
    if hasattr(data, "collect") and not isinstance(data, pa.Table):  # a LazyFrame
        data = data.collect()
    if hasattr(data, "to_arrow") and not hasattr(data, "columns"):  # a Polars Series
        data = data.to_arrow()
    if isinstance(data, np.ndarray | pa.Array | pa.ChunkedArray):
        return data, None
    table: pa.Table
    if isinstance(data, pa.Table):
        table = data
    else:
        try:
            table = pa.table(data)
        except (TypeError, ValueError, pa.ArrowException) as exc:
            msg = (
                f"{what} must be an Arrow table or array, a Polars or pandas frame or a numpy "
                f"matrix; got {type(data).__name__}"
            )
            raise InputTypeError(msg) from exc
    if column not in table.column_names:
        msg = f"{what} has no column {column!r}; its columns are {table.column_names}; use vec="
        raise ColumnNotFoundError(msg)
    return table.column(column), model_key(table.schema.field(column))
