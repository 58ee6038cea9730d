"""A content-hash embedding cache on disk: the same text and model give a stored vector.

An ETL job re-run over a mostly unchanged table embeds only the new texts. Entries live in
one SQLite file (stdlib, WAL journal: many readers alongside one writer, across threads and
processes, and it survives restarts). The key is a BLAKE2b hash of the encoder's content key
(weights, tokenizer, recipe, variant) and the text, so vectors of different models never
mix. Vectors are stored as float32, bit for bit what the encoder gave, at about 1.1x their
raw bytes. The file is bounded on its real size: past ``max_bytes`` of pages in use, the
least recently used entries are evicted down to 90 % of it.

A hit writes nothing: the time of each hit is kept in memory and written in one batch at
most every ``_FLUSH_SECONDS``, before an eviction, on :meth:`EmbeddingCache.close`, and when
the interpreter exits normally without ``close()``. An eviction in another process may not
see this process's latest hits yet, and a killed process loses its last 30 s of them: an
entry may then be evicted a little earlier than strict LRU would, never answered with a
wrong vector.

>>> from embed_sql import TextEncoder
>>> from embed_sql.models.cache import EmbeddingCache
>>> cache = EmbeddingCache("/tmp/embeddings.sqlite")
>>> vectors = cache.encode(TextEncoder(), ["a burrito", "tacos"])   # computed and stored
>>> vectors = cache.encode(TextEncoder(), ["a burrito"])            # looked up
>>> cache.close()                                                   # writes the recency
"""

from __future__ import annotations

import atexit
import hashlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError, ModelLoadError
from embed_sql.vectors import provenance
from embed_sql.vectors.arrow import from_numpy, to_numpy

if TYPE_CHECKING:
    from embed_sql.models.encoder import TextEncoder

__all__ = ["EmbeddingCache"]

# The layout, version 2. A vector is written once into a rowid table, inline on its page (a
# WITHOUT ROWID row of 1.5 KiB spilled to an overflow page: 3x the raw bytes in version 1);
# the small `entries` rows hold the key, the vector's id and the time of last use, so writing
# recency rewrites small pages only. 32 KiB pages waste under 10 % beside 384 to 1,024 floats
# (4 KiB pages: 35 % at 384). Incremental auto-vacuum lets the file shrink after eviction.
_VERSION = 2
_PAGE_SIZE = 32_768
_SCHEMA = (
    "CREATE TABLE entries (key BLOB PRIMARY KEY, id INTEGER NOT NULL, used REAL NOT NULL)"
    " WITHOUT ROWID",
    "CREATE INDEX entries_used ON entries(used)",
    "CREATE TABLE vectors (id INTEGER PRIMARY KEY, vec BLOB NOT NULL)",
    f"PRAGMA user_version = {_VERSION}",
)
_WAL_BYTES = 8 * 2**20  # the write-ahead log's usual bound (SQLite's default: 1,000 pages)
_MIN_BYTES = 2**20  # the file's own pages take ~200 KiB
_EVICT_TO = 0.9  # past max_bytes, evict down to this share of it
_LOOKUP_CHUNK = 500  # SQLite's host-parameter limit is 999 on old builds
_FLUSH_SECONDS = 30.0  # the recency of hits is written at most this often...
_FLUSH_KEYS = 100_000  # ...or once this many distinct keys wait in memory


_OPEN: weakref.WeakSet[EmbeddingCache] = weakref.WeakSet()  # caches to flush at exit


@atexit.register
def _flush_at_exit() -> None:
    """Write the recency of hits of every cache still open when the interpreter exits."""
    for cache in list(_OPEN):
        with suppress(Exception):  # nothing to report to at exit; it is a cache
            cache.flush()


class EmbeddingCache:
    """Disk-backed map from (model, text) to vector.

    Parameters
    ----------
    path
        The SQLite file; created with its directory if missing.
    max_bytes
        Upper bound on the file's size (default 2 GiB, at least 1 MiB), measured on its pages
        in use after every write; past it the least recently used entries are evicted down
        to 90 % of it, and free pages past the bound are given back to the disk. The
        write-ahead log beside it (``-wal``, usually under 8 MiB) is not counted.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 2 * 2**30) -> None:
        if not isinstance(max_bytes, int) or max_bytes < _MIN_BYTES:
            msg = f"max_bytes={max_bytes!r} must be an integer number of bytes, at least 1 MiB"
            raise InvalidParameterError(msg)
        self.path = Path(path).expanduser()
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._write_lock = threading.Lock()  # one write transaction at a time per object
        self._touch_lock = threading.Lock()  # guards the hits not written yet
        self._touched: dict[bytes, float] = {}
        self._flushed = time.monotonic()
        _OPEN.add(self)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._prepare()
        except sqlite3.Error as exc:
            self._close_connections()
            msg = f"cannot open the embedding cache {self.path}: {exc}"
            raise ModelLoadError(msg) from exc
        except ModelLoadError:
            self._close_connections()
            raise

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r}, max_bytes={self.max_bytes})"

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # one connection per thread; close() may close it from another thread
            db = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # the log beside the file: checkpointed and cut back at 8 MiB (256 pages)
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_BYTES // _PAGE_SIZE}")
            db.execute(f"PRAGMA journal_size_limit={_WAL_BYTES}")
            self._local.db = db
            with self._write_lock:
                self._connections.append(db)
        return db

    def _prepare(self) -> None:
        """Create the tables in a new file; refuse a file in another layout, untouched."""
        with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as db:
            db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # these two change a new file only
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("BEGIN IMMEDIATE")  # another process may be creating it too
            try:
                (version,) = db.execute("PRAGMA user_version").fetchone()
                query = "SELECT name FROM sqlite_master WHERE type = 'table'"
                tables = sorted(name for (name,) in db.execute(query))
                if version == 0 and not tables:
                    for statement in _SCHEMA:
                        db.execute(statement)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if version == _VERSION or (version == 0 and not tables):
            return
        fix = "delete the file (it holds only vectors, made again on demand) or use another path"
        if version == 0 and "embeddings" in tables:
            msg = f"the embedding cache {self.path} was written by an older embed_sql; {fix}"
        elif version > _VERSION:
            msg = f"the embedding cache {self.path} was written by a newer embed_sql; upgrade"
        else:
            msg = f"{self.path} is not an embed_sql embedding cache (tables {tables}); {fix}"
        raise ModelLoadError(msg)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """Run one write transaction that also writes the recency of hits kept in memory."""
        db = self._connect()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            with self._touch_lock:
                touched, self._touched = self._touched, {}
            try:
                if touched:
                    db.executemany(
                        "UPDATE entries SET used = max(used, ?) WHERE key = ?",
                        [(t, k) for k, t in touched.items()],
                    )
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                with self._touch_lock:  # not written: keep them for the next write
                    self._touched = touched | self._touched
                raise
            self._flushed = time.monotonic()

    def flush(self) -> None:
        """Write the time of recent hits to the file (also done every 30 s, and on close)."""
        if self._touched:
            with self._writing():
                pass

    def close(self) -> None:
        """Flush the recency of hits and close the file; the cache reopens if used again."""
        self.flush()
        self._close_connections()

    def _close_connections(self) -> None:
        with self._write_lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for db in connections:
            db.close()

    @staticmethod
    def _keys(model_key: str, texts: list[str]) -> list[bytes]:
        prefix = model_key.encode() + b"\0"
        return [
            hashlib.blake2b(prefix + t.encode("utf-8", "replace"), digest_size=20).digest()
            for t in texts
        ]

    def encode(self, encoder: TextEncoder, texts: object) -> pa.Array:
        """Return ``encoder.encode(texts)``, computing only the texts not cached yet."""
        from embed_sql.models.encoder import as_text_array

        column = as_text_array(texts)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(valid)
        strings = column.filter(pa.array(valid)).to_pylist() if len(rows) else []
        out = np.zeros((len(column), encoder.dim), dtype=np.float32)
        keys = self._keys(encoder.key, strings)
        found = self._lookup(keys, encoder.dim)
        missing = [i for i, k in enumerate(keys) if k not in found]
        for i, k in enumerate(keys):
            if k in found:
                out[rows[i]] = found[k]
        if missing:
            fresh = to_numpy(encoder.encode([strings[i] for i in missing]))
            out[rows[missing]] = fresh
            self._store([keys[i] for i in missing], fresh)
        provenance.record(encoder.key, encoder.name, out[rows])
        return from_numpy(out, valid=valid if len(rows) < len(column) else None)

    @staticmethod
    def _select(db: sqlite3.Connection, query: str, keys: list[bytes]) -> Iterator[tuple]:
        """Run ``query`` (ending in ``key IN``) over ``keys`` a chunk at a time."""
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            yield from db.execute(f"{query} ({','.join('?' * len(chunk))})", chunk)

    def _lookup(self, keys: list[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        query = "SELECT e.key, v.vec FROM entries e JOIN vectors v ON v.id = e.id WHERE e.key IN"
        for key, blob in self._select(self._connect(), query, keys):
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.shape == (dim,):
                found[key] = vec
        if found:
            now = time.time()
            with self._touch_lock:
                self._touched.update(dict.fromkeys(found, now))
                due = len(self._touched) >= _FLUSH_KEYS
            if due or time.monotonic() - self._flushed >= _FLUSH_SECONDS:
                self.flush()
        return found

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        new = dict(zip(keys, vectors, strict=True))
        with self._writing() as db:  # another thread or process may have stored some already
            for (key,) in self._select(db, "SELECT key FROM entries WHERE key IN", keys):
                new.pop(key, None)
            (last,) = db.execute("SELECT coalesce(max(id), 0) FROM vectors").fetchone()
            ids = range(last + 1, last + 1 + len(new))
            db.executemany(
                "INSERT INTO vectors VALUES (?, ?)",
                zip(ids, (v.tobytes() for v in new.values()), strict=True),
            )
            now = time.time()
            db.executemany(
                "INSERT INTO entries VALUES (?, ?, ?)",
                [(k, i, now) for k, i in zip(new, ids, strict=True)],
            )
            excess = self._evict(db)
        if excess > 0:
            self._shrink(excess)

    def _evict(self, db: sqlite3.Connection) -> int:
        """Keep the pages in use under ``max_bytes``; return how many pages are past it."""

        def pragma(name: str) -> int:
            return int(db.execute(f"PRAGMA {name}").fetchone()[0])

        page = pragma("page_size")
        used = (pragma("page_count") - pragma("freelist_count")) * page
        target = int(self.max_bytes * _EVICT_TO) if used > self.max_bytes else used
        while used > target:  # a page frees only once all its rows go: check, and repeat
            (count,) = db.execute("SELECT count(*) FROM entries").fetchone()
            if not count:
                break
            query = "SELECT key, id FROM entries ORDER BY used LIMIT ?"
            old = db.execute(query, (max(1, count * (used - target) // used),)).fetchall()
            db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k, _ in old])
            db.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for _, i in old])
            used = (pragma("page_count") - pragma("freelist_count")) * page
        return pragma("page_count") - self.max_bytes // page

    def _shrink(self, pages: int | None = None) -> None:
        """Give free pages back to the disk (all of them by default), after a write."""
        # executescript, as execute() would run one step of the pragma: one page
        self._connect().executescript(f"PRAGMA incremental_vacuum{f'({pages})' if pages else ''};")

    def __len__(self) -> int:
        (count,) = self._connect().execute("SELECT count(*) FROM entries").fetchone()
        return int(count)

    def clear(self) -> None:
        """Remove every entry."""
        with self._writing() as db:
            db.execute("DELETE FROM entries")
            db.execute("DELETE FROM vectors")
        self._shrink()
