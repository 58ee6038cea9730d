"""Encoders as DuckDB functions: ``embed(text)`` → ``FLOAT[dim]``.

The only module that imports duckdb. Functions are vectorised Arrow UDFs (DuckDB hands
over up to 2,048 rows per call and drops NULL rows before the call, so NULL gives NULL).
The result is a DuckDB ARRAY, so ``array_cosine_similarity``, ``array_distance``,
``array_inner_product`` and the vss extension work on it directly.

>>> import duckdb, embed_sql
>>> con = duckdb.connect()
>>> embed_sql.register(con)
>>> con.sql("SELECT array_cosine_similarity(embed('burrito'), embed('taco')) > 0.5").fetchall()
[(True,)]
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError, MissingDependencyError
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import TextEncoder, shared_encoder
from embed_sql.models.registry import DEFAULT_MODEL, ModelSpec

if TYPE_CHECKING:
    import duckdb

__all__ = ["Registration", "register"]

ModelRef = str | ModelSpec | os.PathLike[str]
_ALIAS = re.compile(r"^[a-z_][a-z0-9_]*$")


def _duckdb() -> object:
    try:
        import duckdb
    except ImportError as exc:
        msg = "the DuckDB functions need duckdb; install the extra: pip install 'embed-sql[duckdb]'"
        raise MissingDependencyError(msg) from exc
    return duckdb


@dataclass(frozen=True)
class Registration:
    """What :func:`register` added to a connection: SQL function name → encoder."""

    functions: dict[str, TextEncoder] = field(default_factory=dict)
    cache: EmbeddingCache | None = None

    def __repr__(self) -> str:
        names = ", ".join(f"{n}() → FLOAT[{e.dim}] ({e.name})" for n, e in self.functions.items())
        return f"Registration({names})"


def _check_connection(con: object) -> None:
    duckdb = _duckdb()
    if not isinstance(con, duckdb.DuckDBPyConnection):  # type: ignore[attr-defined]
        msg = (
            f"register() needs a DuckDB connection, got {type(con).__name__}; "
            "pass duckdb.connect(...) or a cursor of one"
        )
        raise InvalidParameterError(msg)
    try:
        con.execute("SELECT 1").fetchall()  # type: ignore[attr-defined]
    except duckdb.ConnectionException as exc:  # type: ignore[attr-defined]
        msg = f"the DuckDB connection is closed ({exc}); open a new one with duckdb.connect()"
        raise InvalidParameterError(msg) from exc


def _make_udf(encoder: TextEncoder, cache: EmbeddingCache | None) -> object:
    def udf(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
        if cache is not None:
            return cache.encode(encoder, texts)
        out = encoder.encode(texts)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    return udf


def _create(con: duckdb.DuckDBPyConnection, name: str, encoder: TextEncoder, cache: object) -> None:
    duckdb = _duckdb()
    from duckdb.sqltypes import FLOAT, VARCHAR

    with contextlib.suppress(duckdb.InvalidInputException):  # type: ignore[attr-defined]
        con.remove_function(name)  # idempotent: replace what an earlier register() made
    con.create_function(
        name,
        _make_udf(encoder, cache),  # type: ignore[arg-type]
        [VARCHAR],
        duckdb.array_type(FLOAT, encoder.dim),  # type: ignore[attr-defined]
        type="arrow",
        side_effects=False,
    )


def register(
    con: duckdb.DuckDBPyConnection,
    model: ModelRef | None = None,
    models: Mapping[str, ModelRef] | None = None,
    *,
    cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> Registration:
    """Add ``embed(text)`` (and ``embed_<alias>(text)`` per extra model) to a connection.

    Parameters
    ----------
    con
        A DuckDB connection. Registering again replaces the functions (safe to repeat).
    model
        The model behind ``embed``: a name, alias (``"all-MiniLM-L6-v2:int8"``), spec or
        local path; default all-MiniLM-L6-v2.
    models
        Extra models as ``{"alias": model}``; each becomes ``embed_<alias>(text)``. Aliases
        are lower-case SQL identifiers.
    cache
        An :class:`EmbeddingCache` or a path for one: texts already embedded with the same
        model are looked up instead of recomputed.
    progress
        Show DuckDB's progress bar for long statements; default only when stderr is a
        terminal.

    Returns
    -------
    Registration
        The function names and their encoders.

    Raises
    ------
    ModelNotFoundError, InvalidParameterError
        At registration, for an unknown model, a bad alias or a closed connection.

    Examples
    --------
    >>> import duckdb, embed_sql
    >>> con = duckdb.connect()
    >>> embed_sql.register(con, models={"q8": "all-MiniLM-L6-v2:int8"})
    Registration(embed() → FLOAT[384] (...), embed_q8() → FLOAT[384] (...:int8))
    >>> con.sql("SELECT typeof(embed('x'))").fetchall()
    [('FLOAT[384]',)]
    """
    _check_connection(con)
    wanted: dict[str, ModelRef] = {"embed": model if model is not None else DEFAULT_MODEL}
    for alias, ref in (models or {}).items():
        if not isinstance(alias, str) or not _ALIAS.match(alias):
            msg = (
                f"model alias {alias!r} is not allowed; use a lower-case SQL identifier "
                "such as 'multi' or 'q8' (it becomes embed_<alias>)"
            )
            raise InvalidParameterError(msg)
        wanted[f"embed_{alias}"] = ref
    encoders = {name: shared_encoder(ref) for name, ref in wanted.items()}  # validates all
    store = cache if isinstance(cache, EmbeddingCache) or cache is None else EmbeddingCache(cache)
    for name, encoder in encoders.items():
        _create(con, name, encoder, store)
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        con.execute("SET enable_progress_bar = true").fetchall()
    return Registration(encoders, store)
