"""Reading the user's tables for the SQL operators, exactly as the caller's SQL would.

A UDF reads through a connection of its own, which has its own ``USE`` and ``search_path``
and cannot see the caller's TEMP tables. The macros therefore pass the caller's context
(``embed_sql_ctx()``): the reading cursor takes the same database, schema and search path,
and a name that the caller would resolve to a TEMP table is refused by name. The caller's
fingerprint of the table (``embed_sql_fp``) is compared with the one of this read, so an
uncommitted change in the caller's transaction is refused rather than silently missed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.udfs.duckdb.macros import (
    fingerprint_of,
    quote_ident,
    row_hash_sql,
    split_name,
    sql_literal,
)
from embed_sql.vectors.arrow import fixed_vectors

if TYPE_CHECKING:
    import duckdb

    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = [
    "Context",
    "Source",
    "check_fingerprint",
    "check_keys",
    "constant",
    "fixed_vectors",
    "read_source",
    "reader",
    "stream_source",
    "vector_matrix",
]


@dataclass(frozen=True)
class Context:
    """The caller's name resolution: database, schema, search path, TEMP names."""

    database: str
    schema: str
    search_path: str
    temp_names: frozenset[str]

    @classmethod
    def from_sql(cls, value: object) -> Context | None:
        """Parse ``embed_sql_ctx()``'s list (None when not given)."""
        if value is None:
            return None
        db, schema, path, temps = (str(v) if v is not None else "" for v in value)  # type: ignore[attr-defined]
        return cls(db, schema, path, frozenset(t for t in temps.split("\x1f") if t))

    def check_not_temp(self, table: str, operation: str) -> None:
        """Refuse a name that the caller's SQL would resolve to a TEMP table or view."""
        parts = [p.lower() for p in split_name(table)]
        shadowed = parts[-1] in self.temp_names and (
            len(parts) == 1 or (len(parts) == 2 and parts[0] == "main")  # temp.main comes first
        )
        if shadowed or (len(parts) > 1 and parts[0] == "temp"):
            msg = (
                f"{operation} cannot read {table!r}: it names a TEMP table or view, which only "
                "the connection that made it can see, and embed_sql reads through its own "
                "connection. Create it as a regular table (CREATE TABLE ... AS ...) instead."
            )
            raise InvalidParameterError(msg)


@contextmanager
def reader(state: DatabaseState, context: Context | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a cursor of our own that resolves names as the caller's connection does."""
    cur = state.cursor()
    try:
        if context is not None:
            cur.execute(f"USE {quote_ident(context.database, context.schema)}")
            if context.search_path:
                literal = context.search_path.replace("'", "''")
                cur.execute(f"SET search_path = '{literal}'")
        yield cur
    finally:
        cur.close()


def constant(values: pa.ChunkedArray | pa.Array, what: str, *, allow_null: bool = False) -> Any:
    """Return the one value a UDF argument has in every row; NULL refused unless allowed.

    Typed ``Any``: the function's declared DuckDB argument type fixes the Python type.
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_nested(arr.type):  # the caller's context: a short list, same in every row
        distinct = list({repr(v): v for v in arr.to_pylist()}.values())
    else:
        distinct = pc.unique(arr).to_pylist()
    if len(distinct) != 1:
        msg = f"{what} must be the same for every row of a call, got {distinct[:5]}"
        raise InvalidParameterError(msg)
    value = distinct[0]
    if value is None and not allow_null:
        msg = f"{what} is NULL; give a value (a NULL argument would otherwise give no rows)"
        raise InvalidParameterError(msg)
    return value


def check_columns(
    cur: duckdb.DuckDBPyConnection, table: str, wanted: dict[str, str]
) -> dict[str, str]:
    """Refuse a missing column, or a vector column that is not a list; return the types."""
    rel = cur.sql(f"SELECT * FROM query_table({sql_literal(table)}) LIMIT 0")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    for name, role in wanted.items():
        if name not in types:
            hint = "vec := '...'" if role == "vector" else f"{role} := '...'"
            msg = (
                f"{role} column {name!r} is not in table {table!r}; its columns are "
                f"{list(types)}; name the right one with {hint}"
            )
            raise ColumnNotFoundError(msg)
        if role == "vector" and not types[name].endswith("]"):
            msg = (
                f"column {name!r} of {table!r} is {types[name]}, not a vector (FLOAT[d]); "
                f"embed it first, e.g. CREATE TABLE ... AS SELECT *, embed({name}) AS v"
            )
            raise InputTypeError(msg)
        if role == "key" and types[name] not in _KEY_TYPES:
            msg = (
                f"key column {name!r} of {table!r} is {types[name]}; keys must be an integer "
                "or string column (cast it, e.g. in a view)"
            )
            raise InputTypeError(msg)
    return types


_KEY_TYPES = frozenset(
    "TINYINT SMALLINT INTEGER BIGINT UTINYINT USMALLINT UINTEGER UBIGINT VARCHAR".split()
)


@dataclass(frozen=True)
class Source:
    """One read of a table: keys, vectors, and the fingerprint of exactly that read."""

    table: str  # fully qualified, quoted
    keys: pa.Array
    vectors: pa.Array
    hashes: pa.Array  # DuckDB's hash(key, vector) per row: the fingerprint's terms, and what
    # a refresh compares to find the rows that changed
    fingerprint: str


def read_source(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    vec: str,
    key: str,
    *,
    operation: str,
    context: Context | None = None,
    expected: str | None = None,
    transaction: bool = True,
) -> Source:
    """Read ``key``, ``vec`` and each row's hash of ``table`` in table order, in one scan.

    ``expected`` is the caller's fingerprint of the same table: a different one means the
    caller sees other rows (uncommitted changes), and the read is refused. Reading on the
    caller's own connection (``transaction=False``) needs neither: it sees what they see.
    """
    read = stream_source(
        cur,
        table,
        vec,
        key,
        operation=operation,
        context=context,
        expected=expected,
        transaction=transaction,
    )
    with read as (qualified, batches):
        data = pa.Table.from_batches(list(batches), schema=batches.schema)
    hashes = data.column("h").combine_chunks().cast(pa.uint64())
    fingerprint = check_fingerprint(hashes, expected, table, operation)
    keys = data.column("id").combine_chunks()
    check_keys(keys, key, table)
    vectors = fixed_vectors(data.column("v"), vec, table)
    return Source(qualified, keys, vectors, hashes, fingerprint)


@contextmanager
def stream_source(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    vec: str,
    key: str,
    *,
    operation: str,
    context: Context | None = None,
    expected: str | None = None,
    transaction: bool = True,
    batch_rows: int = 65_536,
) -> Iterator[tuple[str, pa.RecordBatchReader]]:
    """Yield the table's qualified name and a reader of its ``(id, v, h)`` rows in batches.

    The scan of :func:`read_source`, one batch in memory at a time; the transaction stays
    open until the block ends. The caller checks what :func:`read_source` checks on the
    whole read: :func:`check_keys` per batch, then :func:`check_fingerprint` with every
    hash and ``expected`` (given here only to tell a table the caller has not committed).
    """
    if context is not None:
        context.check_not_temp(table, operation)
    try:
        check_columns(cur, table, {vec: "vector", key: "key"})
    except Exception as exc:
        if expected is None or "does not exist" not in str(exc):
            raise
        msg = (  # the caller's SQL found it (it computed the fingerprint): not committed yet
            f"{operation}: table {table!r} is in your transaction but not committed, so "
            "embed_sql cannot read it yet; COMMIT first (SQLAlchemy: conn.commit())"
        )
        raise InvalidParameterError(msg) from exc
    src = f"query_table({sql_literal(table)})"
    if transaction:
        cur.execute("BEGIN TRANSACTION")
    batches = None
    try:
        qualified = _qualified(cur, table)
        rel = cur.sql(
            f"SELECT {quote_ident(key)} AS id, {quote_ident(vec)} AS v, "
            f"{row_hash_sql(key, vec)} AS h FROM {src}"
        )
        batches = rel.to_arrow_reader(batch_rows)
        yield qualified, batches
    finally:
        if batches is not None:  # a read left half-way (an error) holds the connection
            batches.close()
        if transaction:
            cur.execute("COMMIT")


def check_fingerprint(hashes: pa.Array, expected: str | None, table: str, operation: str) -> str:
    """Return the fingerprint of a read's hashes; refuse it if the caller's differs."""
    fingerprint = fingerprint_of(hashes.to_numpy(zero_copy_only=False))
    if expected is not None and expected != fingerprint:
        msg = (
            f"{operation}: table {table!r} differs between your transaction and committed "
            f"data ({_rows(expected)} rows in yours, {_rows(fingerprint)} committed); COMMIT "
            "first, so embed_sql reads the rows you see"
        )
        raise InvalidParameterError(msg)
    return fingerprint


def check_keys(keys: pa.Array | pa.ChunkedArray, key: str, table: str) -> None:
    """Refuse NULL keys: keys identify rows."""
    if keys.null_count:
        msg = (
            f"key column {key!r} of {table!r} has {keys.null_count} NULL keys; keys identify "
            "rows: filter them out or fill them (e.g. coalesce) first"
        )
        raise InputTypeError(msg)  # the class Python's index gives a NULL key


def _rows(fingerprint: str) -> str:
    return fingerprint.split(":", 1)[0]


def _qualified(cur: duckdb.DuckDBPyConnection, table: str) -> str:
    """Return the fully qualified name ``table`` resolves to on ``cur`` (as given if unsure)."""
    parts = split_name(table)
    name = parts[-1]
    found = cur.execute(
        "SELECT database_name, schema_name FROM duckdb_tables() "
        "WHERE lower(table_name) = lower($1) AND NOT temporary "
        "UNION ALL SELECT database_name, schema_name FROM duckdb_views() "
        "WHERE lower(view_name) = lower($1) AND NOT internal AND NOT temporary",
        [name],
    ).fetchall()
    where = {(d.lower(), s.lower()): (d, s) for d, s in found}
    db, schema, path = cur.execute(
        "SELECT current_database(), current_schema(), current_setting('search_path')"
    ).fetchall()[0]
    if len(parts) >= 3:
        order = [(parts[0], parts[1])]
    elif len(parts) == 2:  # schema.table in the current database, or catalog.table
        order = [(db, parts[0]), (parts[0], "main")]
    else:
        order = [(db, schema)]
        for entry in (e.strip() for e in path.split(",") if e.strip()):
            bits = split_name(entry)
            order.append((bits[0], bits[1]) if len(bits) > 1 else (db, bits[0]))
    for d, s in order:
        if (d.lower(), s.lower()) in where:
            return quote_ident(*where[d.lower(), s.lower()], name)
    return table  # a replacement scan or something else DuckDB finds: keep the name


def vector_matrix(vectors: pa.ChunkedArray | pa.Array, dim: int, what: str) -> np.ndarray:
    """Return the non-NULL rows of a query vector column as float32, refusing NaN/Inf."""
    arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    lengths = np.asarray(pc.list_value_length(arr).fill_null(dim))
    if len(lengths) and (lengths != dim).any():
        bad = int(lengths[lengths != dim][0])
        msg = (
            f"{what} vector has {bad} dimensions but the index has {dim}; embed the query "
            "with the index's model"
        )
        raise DimensionMismatchError(msg)
    if arr.null_count:
        arr = arr.filter(arr.is_valid())
    flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
    mat = flat.astype(np.float32, copy=False).reshape(-1, dim)
    if not np.isfinite(flat).all():  # one pass; count the bad rows only when there are some
        finite = np.isfinite(mat).all(axis=1)
        msg = (
            f"{int((~finite).sum())} {what} vector(s) contain NaN or Inf; a distance to them "
            "means nothing. Filter them out (e.g. WHERE NOT list_has_any(v::FLOAT[], "
            "['nan'::FLOAT, 'inf'::FLOAT, '-inf'::FLOAT])) or fix the data"
        )
        raise InputTypeError(msg)  # the class the engine gives NaN/Inf vectors
    return mat
