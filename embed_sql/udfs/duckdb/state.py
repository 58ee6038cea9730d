"""What embed_sql keeps per DuckDB database: functions, encoders, named indexes.

DuckDB keeps Python functions per *database instance* (every connection and cursor to it
sees them), but holds the Python objects only as long as the connection that created them
is open: a function called after that connection closed used to crash the process. So the
state of one database lives here, holds every function object for as long as the process
runs, and is found from any connection to that database through a one-row table in the
in-memory catalog ``embed_sql`` attached beside it (attached catalogs are shared too).

The functions read tables through a connection of their own (a UDF must not query the
connection that runs it): a cursor of any registered connection that is still open.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from embed_sql._cancel import Scope, running
from embed_sql.exceptions import InvalidParameterError, MissingDependencyError
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import TextEncoder
from embed_sql.udfs.duckdb.macros import STATE_CATALOG, quote_ident

if TYPE_CHECKING:
    import duckdb

    from embed_sql.models.image import ImageEncoder
    from embed_sql.udfs.duckdb.indexes import NamedIndex

__all__ = ["DatabaseState", "duckdb_module", "state_of"]


def duckdb_module() -> ModuleType:
    """Import duckdb, or say which extra installs it."""
    try:
        import duckdb
    except ImportError as exc:
        msg = "the DuckDB functions need duckdb; install the extra: pip install 'embed-sql[duckdb]'"
        raise MissingDependencyError(msg) from exc
    return duckdb


@dataclass(eq=False)
class DatabaseState:
    """embed_sql's functions and indexes on one DuckDB database instance."""

    token: int
    encoders: dict[str, TextEncoder] = field(default_factory=dict)  # SQL name → encoder
    image_encoders: dict[str, ImageEncoder] = field(default_factory=dict)  # macro → encoder
    prompted: dict[str, tuple[str, int]] = field(default_factory=dict)  # prompt fn → base, dim
    cache: EmbeddingCache | None = None
    indexes: dict[str, NamedIndex] = field(default_factory=dict)  # lower-case name → index
    functions: dict[str, object] = field(default_factory=dict)  # kept alive for DuckDB
    creators: dict[str, weakref.ref] = field(default_factory=dict)  # function → connection
    stored_macros: set[str] = field(default_factory=set)  # databases whose main has them
    lock: threading.RLock = field(default_factory=threading.RLock)
    running: set[Scope] = field(default_factory=set)  # calls embed_sql.interrupt() may stop
    running_lock: threading.Lock = field(default_factory=threading.Lock)
    # registration order: the first still open is read through (see :meth:`cursor`)
    _connections: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)

    @property
    def default(self) -> TextEncoder:
        """The encoder behind ``embed()``."""
        return self.encoders["embed"]

    def stoppable(self, name: str, fn: Callable[..., object]) -> Callable[..., object]:
        """Wrap the UDF ``fn`` so :meth:`interrupt` stops its calls at their next model batch."""

        @functools.wraps(fn)  # DuckDB counts the parameters through the signature
        def call(*args: object) -> object:
            scope = Scope(f"{name}()")
            with self.running_lock:
                self.running.add(scope)
            try:
                with running(scope):
                    return fn(*args)
            finally:
                with self.running_lock:
                    self.running.discard(scope)

        return call

    def interrupt(self) -> int:
        """Stop every call of this database's functions now running; return how many."""
        with self.running_lock:
            for scope in self.running:
                scope.cancel()
            return len(self.running)

    def add_connection(self, con: duckdb.DuckDBPyConnection) -> None:
        """Remember ``con`` as one the functions may read through."""
        with self.lock:
            self._connections.setdefault(con, None)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return a new cursor to this database, from the first registered connection open.

        The first, not any: a cursor closes with the connection it came from, and the first
        registered is the longest-lived (dbt-duckdb registers its database's connection,
        then a cursor per model that it closes when the model ends, maybe while another
        model's ``embed_create_index`` still reads through a cursor of it).
        """
        duckdb = duckdb_module()
        with self.lock:
            candidates = list(self._connections)
        for con in candidates:
            try:
                return con.cursor()
            except duckdb.ConnectionException:
                with self.lock:
                    self._connections.pop(con, None)
        msg = (
            "every connection that registered embed_sql on this database has been closed; "
            "call embed_sql.register(con) on an open connection to it"
        )
        raise InvalidParameterError(msg)

    def index(self, name: str) -> NamedIndex:
        """Return the named index, or say which exist and how to make one."""
        found = self.indexes.get(name.lower()) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(sorted(self.indexes)) or "none yet"
            msg = (
                f"no vector index named {name!r} on this database (known: {known}); create "
                "one with SELECT embed_create_index('name', 'table', vec := 'v', key := 'id')"
            )
            raise InvalidParameterError(msg)
        return found


_STATES: dict[int, DatabaseState] = {}  # token → state, for the life of the process
_NEXT = itertools.count(1)
_LOCK = threading.Lock()


def state_of(con: duckdb.DuckDBPyConnection, *, create: bool = False) -> DatabaseState | None:
    """Return the state of ``con``'s database (made and attached when ``create``)."""
    cur = con.cursor()
    try:
        with _LOCK:
            attached = cur.execute(
                "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?",
                [STATE_CATALOG],
            ).fetchall()[0][0]
            if attached:
                token = cur.execute(
                    f"SELECT max(token) FROM {quote_ident(STATE_CATALOG, 'main', 'instance')}"
                ).fetchall()[0][0]
                if token in _STATES:
                    return _STATES[token]
            if not create:
                return None
            token = next(_NEXT)
            # READ_WRITE: also beside a read-only database file
            cur.execute(
                f"ATTACH IF NOT EXISTS ':memory:' AS {quote_ident(STATE_CATALOG)} (READ_WRITE)"
            )
            table = quote_ident(STATE_CATALOG, "main", "instance")
            cur.execute(f"CREATE OR REPLACE TABLE {table} (token BIGINT)")
            cur.execute(f"INSERT INTO {table} VALUES (?)", [token])
            _STATES[token] = DatabaseState(token)
            return _STATES[token]
    finally:
        cur.close()
