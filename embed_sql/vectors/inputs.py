"""Checking what callers hand the vector index: ``k``, vector matrices, keys.

One place for the checks every host and operation shares, so each refusal reads the same
(an :class:`~embed_sql.exceptions.EmbedSQLError` naming what was given and the fix).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.vectors.arrow import fixed_vectors, to_numpy, vector_dim
from embed_sql.vectors.metrics import Metric

__all__ = [
    "F32_MAX",
    "as_keys",
    "as_matrix",
    "batch_columns",
    "cast_keys",
    "check_k",
    "check_norms",
    "check_threshold",
    "refuse_duplicates",
]

# distances are float32: a threshold past the largest one means "every finite distance"
F32_MAX = float(np.finfo(np.float32).max)


def check_k(k: object, *, most: int | None = None) -> int:
    """Return ``k`` as an int if it is a positive integer (at most ``most``), else refuse."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        msg = f"k={k!r} must be a positive integer (the number of neighbours per row)"
        raise InvalidParameterError(msg)
    if most is not None and k > most:
        msg = f"k={k!r} must be no larger than the {most} rows searched"
        raise InvalidParameterError(msg)
    return int(k)


def check_threshold(threshold: object) -> float:
    """Return a range threshold as a float, capped at float32's largest; refuse NaN/Inf."""
    try:
        value = float(threshold)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        msg = f"threshold={threshold!r} must be a number (a distance)"
        raise InvalidParameterError(msg) from exc
    if not np.isfinite(value):
        msg = f"threshold={threshold!r} must be a finite distance"
        raise InvalidParameterError(msg)
    return min(value, F32_MAX)


def cast_keys(keys: object, key_type: pa.DataType) -> pa.Array:
    """Return lookup ``keys`` as an Arrow array of an index's key type, or a clear error."""
    try:
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        wanted = keys if isinstance(keys, pa.Array) else pa.array(list(keys))  # type: ignore[call-overload]
        return wanted.cast(key_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        shown = repr(keys) if len(repr(keys)) <= 80 else repr(keys)[:77] + "..."
        msg = f"cannot look up keys {shown} in an index whose keys are {key_type}; pass {key_type}"
        raise InputTypeError(msg) from exc


def as_keys(keys: object, n: int) -> pa.Array:
    """Return ``n`` keys as an Arrow integer or string array, refusing NULLs and others."""
    arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    if not isinstance(arr, pa.Array):
        arr = pa.array(list(arr) if not isinstance(arr, np.ndarray) else arr)  # type: ignore[arg-type]
    if pa.types.is_null(arr.type) and len(arr) == n == 0:  # empty: no key type to keep
        return pa.array([], pa.int64())
    if not (
        pa.types.is_integer(arr.type)
        or pa.types.is_string(arr.type)
        or pa.types.is_large_string(arr.type)
    ):
        msg = f"keys must be integers or strings, got {arr.type}; cast the key column first"
        raise InputTypeError(msg)
    if len(arr) != n:
        msg = f"{len(arr)} keys for {n} vectors; give exactly one key per vector"
        raise DimensionMismatchError(msg)
    if arr.null_count:
        msg = (
            f"keys contain {arr.null_count} NULL(s); every indexed vector needs a key: filter "
            "those rows out or fill their keys (e.g. coalesce) first"
        )
        raise InputTypeError(msg)
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    return arr


def batch_columns(batch: pa.RecordBatch | pa.Table, vec: str, key: str) -> tuple[pa.Array, object]:
    """Return one batch's vectors (as ``fixed_size_list<float32>[d]``) and its key column."""
    names = batch.schema.names
    for name, what, hint in ((vec, "vector", "vec="), (key, "key", "key=")):
        if name not in names:
            msg = (
                f"{what} column {name!r} is not in the batches; their columns are {names}; "
                f"name the right one with {hint}"
            )
            raise ColumnNotFoundError(msg)
    return fixed_vectors(batch.column(vec), vec, "the batches"), batch.column(key)


def as_matrix(
    vectors: object, dim: int | None, *, metric: Metric | None = None, first_row: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return (float32 matrix, validity mask) for Arrow/numpy vectors.

    A NULL vector (Arrow), or a row of numpy NaNs (as :func:`to_numpy` writes a NULL), is
    not valid; a NaN or infinite value among numbers is refused, naming the row (numbered
    from ``first_row``: the row of ``vectors[0]`` in a stream of batches). With ``metric``,
    vectors whose distances float32 cannot hold are refused too (see :func:`check_norms`).
    """
    if isinstance(vectors, pa.ChunkedArray | pa.Array):
        got = vector_dim(vectors.type)
        valid = np.asarray(vectors.is_valid(), dtype=bool)
        mat = to_numpy(vectors, null_value=0.0)
    else:
        try:
            with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
                mat = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            msg = (
                f"vectors must be a numeric (rows, dim) matrix or an Arrow vector column; got "
                f"{type(vectors).__name__} ({str(exc)[:80]}); pass numbers of one length a row"
            )
            raise InputTypeError(msg) from exc
        if mat.ndim == 1 and dim is not None and mat.shape[0] == dim:
            mat = mat[None, :]
        if mat.ndim != 2:
            msg = f"expected a 2-d (rows, dim) matrix of vectors, got shape {mat.shape}"
            raise DimensionMismatchError(msg)
        got = mat.shape[1]
        valid = ~np.isnan(mat).all(axis=1) if got else np.ones(len(mat), dtype=bool)
    if dim is not None and got != dim:
        msg = f"vectors have {got} dimensions but the index has {dim}; use the same model"
        raise DimensionMismatchError(msg)
    _refuse_non_finite(mat, valid, first_row)
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    if metric is not None:
        check_norms(mat, valid, metric, first_row=first_row)
    return mat, valid


def _squares(mat: np.ndarray) -> np.ndarray:
    """Each row's squared norm in float32 (inf on overflow, NaN for a NaN or inf value)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.einsum("ij,ij->i", mat, mat)


def _refuse_non_finite(mat: np.ndarray, valid: np.ndarray, first_row: int) -> None:
    """Refuse NaN or infinite values in valid rows; one pass (a row's square sum)."""
    suspect = np.flatnonzero(~np.isfinite(_squares(mat)) & valid)  # also rows that overflow
    if len(suspect):
        bad = suspect[~np.isfinite(mat[suspect]).all(axis=1)]
        if len(bad):
            msg = (
                f"{len(bad)} vectors contain NaN, infinite or out-of-float32-range values (the "
                f"first, row "
                f"{first_row + int(bad[0])}); drop or fix those rows first (a NULL vector is "
                "a NULL, or in numpy a row of NaN only)"
            )
            raise InputTypeError(msg)


def check_norms(mat: np.ndarray, valid: np.ndarray, metric: Metric, *, first_row: int = 0) -> None:
    """Refuse vectors whose squared norm float32 cannot hold.

    ``first_row`` is the row number of ``mat[0]`` in what the user gave (a stream of
    batches), for the message.

    Distances are float32 products, as DuckDB's own: a norm above ~1.8e19 makes them
    infinite (wrong distances, dropped rows), and under ``cos`` a non-zero norm below ~1e-19
    makes the vector's products vanish (it would match nothing). Real embeddings are nowhere
    near either; the fix is to rescale (cosine distances do not change with scale).
    """
    sq = _squares(mat)
    bad = ~np.isfinite(sq)
    if metric is Metric.COS:
        small = sq < np.finfo(np.float32).tiny  # zero, or vanishing: told apart below
        if small.any():
            bad[small] = np.any(mat[small] != 0, axis=1)
    bad &= valid
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        row = first_row + at
        norm = float(np.linalg.norm(mat[at].astype(np.float64)))
        msg = (
            f"{int(bad.sum())} vectors have a norm float32 distances cannot use (the first, "
            f"row {row}: norm {norm:.3g}, metric {metric.value}; allowed: norms up to 1.8e19, "
            "and from 1e-19 under cos, or zero); rescale them, e.g. divide each by its norm "
            "(cosine distances do not change)"
        )
        raise InvalidParameterError(msg)


def refuse_duplicates(existing: pa.Array, new: pa.Array) -> None:
    """Refuse ``new`` keys that repeat each other or one of the ``existing`` keys."""
    both = pa.concat_arrays([existing.cast(new.type), new]) if len(existing) else new
    found, dup = first_duplicate(both)
    if found:
        msg = (
            f"duplicate key {dup!r}: keys must be unique; pass allow_duplicates=True to "
            "index several vectors under one key"
        )
        raise InvalidParameterError(msg)


def first_duplicate(keys: pa.Array) -> tuple[bool, object]:
    """Return (True, a value that occurs twice) or (False, None), by sorting the keys.

    Not a hash table: Arrow's ``count_distinct`` over 10M int64 keys took 1.7 GiB and its
    pool kept it (the end of a 10M-row index build jumped by that much); sorting takes about
    twice the keys (87 MiB for those, released at once).
    """
    if len(keys) < 2:
        return False, None
    if pa.types.is_integer(keys.type) and not keys.null_count:
        ordered = np.sort(keys.to_numpy())
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        return (True, ordered[same[0]].item()) if len(same) else (False, None)
    ordered = keys.take(pc.array_sort_indices(keys))
    same = pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))
    hit = pc.index(same, True).as_py()
    return (True, ordered[hit].as_py()) if hit >= 0 else (False, None)
