"""The DuckDB connection inside the objects clients hand out, found without importing them.

Data engineers reach DuckDB through clients: dbt-duckdb gives Python models a cursor wrapper,
SQLAlchemy (with duckdb-engine) a pooled connection around a wrapper, ibis a backend.
:func:`unwrap` follows each to the ``duckdb.DuckDBPyConnection`` inside, by the client's own
attributes, so ``embed_sql.register`` and the index functions take what the client gave.
:func:`listen_on_engine` registers every connection a SQLAlchemy engine's pool opens.

Where a client documents a way to reach the connection it is used (SQLAlchemy's
``dbapi_connection``, ibis's ``con``); duckdb-engine documents none, so its wrapper's one
private attribute is read, as duckdb-engine's own tests do.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

__all__ = ["ACCEPTED", "describe", "is_engine", "listen_on_engine", "unwrap"]

ACCEPTED = (
    "a DuckDB connection or cursor (duckdb.connect(...)), a SQLAlchemy engine, connection or "
    "pooled connection of duckdb-engine, a dbt-duckdb cursor wrapper, or an ibis DuckDB backend"
)

# engine -> its listener, so a second register(engine) replaces the first instead of adding
_LISTENERS: weakref.WeakKeyDictionary[Any, Callable[..., None]] = weakref.WeakKeyDictionary()


def _kind(obj: object) -> tuple[str, str]:
    cls = type(obj)
    return cls.__module__ or "", cls.__name__


def describe(obj: object) -> str:
    """Name ``obj``'s type for an error message (with its module unless a builtin)."""
    module, name = _kind(obj)
    return name if module == "builtins" else f"{module}.{name}"


def unwrap(obj: object, duckdb_connection: type) -> duckdb.DuckDBPyConnection | None:
    """Return the DuckDB connection inside ``obj``, or None if it holds none we know.

    ``duckdb_connection`` is ``duckdb.DuckDBPyConnection`` (passed in: this module imports
    no client and no host).
    """
    for _ in range(6):  # wrappers nest: SQLAlchemy Connection -> pool proxy -> duckdb-engine
        if isinstance(obj, duckdb_connection):
            return obj  # type: ignore[return-value]
        module, name = _kind(obj)
        if module.startswith("sqlalchemy") and name == "Connection":
            obj = obj.connection  # type: ignore[attr-defined]  # the pool's proxy
        elif module.startswith("sqlalchemy") and hasattr(obj, "dbapi_connection"):
            obj = obj.dbapi_connection
        elif module.startswith("duckdb_engine") and name == "ConnectionWrapper":
            obj = getattr(obj, "_ConnectionWrapper__c", None)  # no public attribute exists
        elif module.startswith("dbt.adapters.duckdb") and hasattr(obj, "_cursor"):
            obj = obj._cursor
        elif module.startswith("ibis.backends.duckdb") and hasattr(obj, "con"):
            obj = obj.con
        else:
            return None
    return None


def is_engine(obj: object) -> bool:
    """Return whether ``obj`` is a SQLAlchemy ``Engine``."""
    module, name = _kind(obj)
    return module.startswith("sqlalchemy") and name == "Engine"


def listen_on_engine(engine: Any, on_connect: Callable[[object], object]) -> None:
    """Call ``on_connect(dbapi_connection)`` for every connection ``engine``'s pool opens.

    A second call for the same engine replaces the first listener.
    """
    from sqlalchemy import event

    old = _LISTENERS.pop(engine, None)
    if old is not None and event.contains(engine, "connect", old):
        event.remove(engine, "connect", old)

    def listener(dbapi_connection: object, _record: object) -> None:
        on_connect(dbapi_connection)

    event.listen(engine, "connect", listener)
    _LISTENERS[engine] = listener
