"""Building UDF results: Arrow lists and structs, one per input row (no duckdb import)."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import pyarrow as pa

__all__ = ["CTX", "VEC", "Arrays", "lists", "repeat", "struct"]

Arrays: TypeAlias = "pa.ChunkedArray | pa.Array"
VEC = pa.list_(pa.float32())  # a vector argument: FLOAT[d] is cast to FLOAT[] on the way in
CTX = pa.list_(pa.string())  # the caller's context, from embed_sql_ctx()


def lists(counts: np.ndarray, children: pa.StructArray, list_type: pa.DataType) -> pa.Array:
    """Cut ``children`` into one list per row, ``counts[i]`` items for row ``i``."""
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), children).cast(list_type)


def repeat(template: Arrays, one: pa.Array) -> pa.Array:
    """One result per input row (DuckDB calls with as many rows as it has)."""
    return one.take(pa.array(np.zeros(len(template), dtype=np.int64)))


def struct(arrays: dict[str, pa.Array]) -> pa.StructArray:
    """Return a struct array of the named child arrays."""
    return pa.StructArray.from_arrays(list(arrays.values()), names=list(arrays))
