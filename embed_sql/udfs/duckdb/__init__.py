"""Encoders and the vector operator as DuckDB functions: the only package importing duckdb.

``embed(text)`` returns ``FLOAT[dim]``, so ``array_cosine_similarity``, ``array_distance``,
``array_inner_product`` and the vss extension work on it directly; every other function and
macro is ``embed_``-prefixed. Layout: :mod:`.state` (per-database state), :mod:`.read`
(reading tables as the caller's SQL resolves them), :mod:`.functions` (the UDFs, one spec
table), :mod:`.indexes` (named indexes), :mod:`.register`, :mod:`.macros` (SQL text).

>>> import duckdb, embed_sql
>>> con = duckdb.connect()
>>> embed_sql.register(con)
Registration(...)
>>> con.sql("SELECT array_cosine_similarity(embed('burrito'), embed('taco')) > 0.5").fetchall()
[(True,)]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.register import (
    Registration,
    connection_of,
    register,
    registered_state,
)
from embed_sql.udfs.duckdb.state import state_of

if TYPE_CHECKING:
    import duckdb

    from embed_sql.vectors.index import VectorIndex

__all__ = [
    "Registration",
    "create_index",
    "drop_index",
    "interrupt",
    "load_index",
    "refresh_index",
    "register",
]


def create_index(
    con: duckdb.DuckDBPyConnection,
    name: str,
    table: str,
    *,
    vec: str = "v",
    key: str = "id",
    metric: str = "cos",
    exact: bool = False,
    dtype: str = "f16",
    rescore: bool | None = None,
    model: str | None = None,
    path: str | os.PathLike[str] | None = None,
    M: int | None = None,
    ef_construction: int | None = None,
    ef_search: int | None = None,
    preset: str = "default",
) -> VectorIndex:
    """Build a named vector index over ``table`` for the SQL operators.

    The same as ``SELECT embed_create_index(name, table, ...)``, read on ``con`` itself (so
    its TEMP tables and uncommitted rows count).

    Parameters
    ----------
    name
        How SQL refers to it: ``embed_knn(v, 'name', k)``, ``FROM embed_knn_join('q', 'name')``.
        Names ignore case, as SQL identifiers do.
    table, vec, key
        The table, its vector column (``FLOAT[d]``) and its key column (integer or string).
    metric, exact, dtype, rescore, M, ef_construction, ef_search, preset
        As for :class:`~embed_sql.vectors.VectorIndex`: an f16 graph with exact float32
        distances, HNSW preset ``"default"`` (recall@10 0.98 on sentence embeddings;
        ``"fast"`` trades recall for time).
    model
        The model that made the vectors (default: the database's ``embed`` model), so
        ``embed_search`` can embed text queries the same way.
    path
        Also save the index there (atomically), to reopen with :func:`load_index`.

    Examples
    --------
    >>> embed_sql.create_index(con, "docs", "news", vec="v", key="id")   # doctest: +SKIP
    >>> con.sql("FROM embed_search('docs', 'food', k := 3)")             # doctest: +SKIP
    """
    con = connection_of(con)  # a client's wrapper: the connection inside
    state = registered_state(con)
    hnsw: dict[str, Any] = {"M": M, "ef_construction": ef_construction, "ef_search": ef_search}
    named = indexes.build(
        state,
        con,
        name,
        table,
        vec=vec,
        key=key,
        model=model,
        path=path,
        transaction=False,  # read on the caller's connection: it sees what they see
        metric=metric,
        exact=exact,
        dtype=dtype,
        rescore=rescore,
        preset=preset,
        **{k: v for k, v in hnsw.items() if v is not None},
    )
    return named.index


def load_index(
    con: duckdb.DuckDBPyConnection,
    name: str,
    path: str | os.PathLike[str],
    *,
    mmap: bool = True,
    verify: bool = True,
) -> VectorIndex:
    """Open a saved index (memory-mapped by default) under ``name``.

    When the table it was built from is in this database, the index answers for it again
    (and refuses if the table changed since: refresh it). ``verify=False`` skips the
    checksums of the vectors (every structural check still runs), as ``embed_load_index(...,
    verify := false)``.
    """
    state = registered_state(con)
    return indexes.load(state, name, path, mmap=mmap, verify=verify).index


def refresh_index(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, int]:
    """Bring a named index up to date with its table; return (rows removed, rows added)."""
    return indexes.refresh(registered_state(con), name)


def drop_index(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Forget a named index and its key table; return whether it existed."""
    return indexes.drop(registered_state(connection_of(con)), name)


def interrupt(con: duckdb.DuckDBPyConnection) -> int:
    """Stop the statement running on ``con`` within a model batch; return the calls stopped.

    ``con.interrupt()`` alone stops a statement only between the 2,048-row chunks DuckDB
    hands a Python function, and one chunk of long texts takes the default model about
    half a minute here. This also stops every embed_sql function running on ``con``'s
    database at its next model batch (tens of milliseconds): the statement fails with
    ``OperationInterrupted`` (or DuckDB's own interrupt error) and writes nothing. DuckDB
    does not say which statement a function call serves, so a statement of another cursor
    that is embedding on the same database at that moment stops too; run it again.
    Call it from another thread than the one waiting for the statement.
    """
    con = connection_of(con)
    state = state_of(con)
    con.interrupt()
    return 0 if state is None else state.interrupt()
