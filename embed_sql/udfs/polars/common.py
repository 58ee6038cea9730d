"""What the Polars frame operations share: Arrow conversion, key types, deferred runs."""

from __future__ import annotations

import os
from collections.abc import Callable

import polars as pl
import pyarrow as pa

from embed_sql.exceptions import ColumnNotFoundError
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors.arrow import fixed_vectors

__all__ = ["LazyBase", "ModelRef"]

ModelRef = str | ModelSpec | os.PathLike[str]
_ROW = "__embed_sql_row"  # a row-position column no frame has


def _arrow(
    df: pl.DataFrame, columns: list[str], what: str = "frame", *, vec: str | None = None
) -> pa.Table:
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        msg = (
            f"column(s) {missing} not in the {what}; its columns are {df.columns}; name the "
            "right ones with vec= / key="
        )
        raise ColumnNotFoundError(msg)
    table = df.select(list(dict.fromkeys(columns))).to_arrow()
    if vec is None:
        return table
    # List(Float32 | Float64) columns (from ibis, jupysql) pass when every vector has one length
    i = table.column_names.index(vec)
    vectors = fixed_vectors(table.column(i), vec, f"the {what}")
    return table.set_column(i, table.field(i).with_type(vectors.type), pa.chunked_array([vectors]))


def _frame(table: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(table)  # type: ignore[return-value]


def _sides(vec: str, key: str, right_vec: str | None, right_key: str | None) -> tuple[str, str]:
    return (vec if right_vec is None else right_vec), (key if right_key is None else right_key)


class LazyBase:
    """A LazyFrame operation's plumbing: run later, with a declared schema."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _defer(
        self, schema: dict[str, pl.DataType], run: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.LazyFrame:
        return self._lf.map_batches(
            run,
            schema=pl.Schema(schema),
            predicate_pushdown=False,
            projection_pushdown=False,
            streamable=False,
        )

    def _key_type(self, lf: pl.LazyFrame, key: str, what: str) -> pl.DataType:
        schema = lf.collect_schema()
        if key not in schema:
            msg = f"key column {key!r} not in the {what}; its columns are {list(schema)}; use key="
            raise ColumnNotFoundError(msg)
        return schema[key]
