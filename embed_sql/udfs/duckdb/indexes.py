"""Named vector indexes of a DuckDB database: build, load, refresh, drop.

An index remembers the table it answers for (its fully qualified name, key and vector
columns) and the table's fingerprint when it was built. Every query compares that with the
fingerprint DuckDB computes for the table as it is now (one scan, in the caller's snapshot:
about 0.5 s per million 384-d rows), and a stale index refuses to answer, naming
``embed_refresh_index``. A refresh reads only the rows whose key is new or whose vector's
hash changed, removes the rows that are gone or changed, and adds the new versions.

Keys live twice: in the :class:`~embed_sql.vectors.VectorIndex` (for Python callers and
saved files) and in a key table ``embed_sql.main.keys_<name>(label, key, h)`` that the SQL
macros join to return keys in their own type (``h`` is the hash of the row's vector).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.udfs.duckdb.macros import (
    STATE_CATALOG,
    check_index_name,
    fingerprint_sql,
    keys_table,
    quote_ident,
    row_hash_sql,
)
from embed_sql.udfs.duckdb.read import (
    Context,
    check_columns,
    check_fingerprint,
    check_keys,
    constant,
    fixed_vectors,
    reader,
    stream_source,
)
from embed_sql.vectors import provenance
from embed_sql.vectors.arrow import single_model, to_numpy
from embed_sql.vectors.index import VectorIndex
from embed_sql.vectors.join import check_models

if TYPE_CHECKING:
    import duckdb

    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["DETACHED", "NamedIndex", "attach", "build", "drop", "load", "refresh"]

DETACHED = quote_ident(STATE_CATALOG, "main", "detached")  # source of an index with no table


@dataclass
class NamedIndex:
    """A :class:`VectorIndex` under a name, with the table it answers for."""

    name: str
    index: VectorIndex
    source: str | None = None  # fully qualified table; None: answers for no table
    key: str = "id"
    vec: str = "v"
    fingerprint: str | None = None
    # embed_search's reads beyond the vectors (BM25, documents), by (text, document) column
    searched: dict[tuple[str | None, str | None], Any] = field(default_factory=dict)

    def check_fresh(self, fingerprint: object) -> None:
        """Refuse to answer when the table no longer matches the index."""
        if self.source is None or fingerprint is None or fingerprint == self.fingerprint:
            return
        then, now = (str(f).split(":", 1)[0] for f in (self.fingerprint, fingerprint))
        msg = (
            f"vector index {self.name!r} is stale: table {self.source} changed since the index "
            f"was built or refreshed ({then} rows then, {now} now, or rows updated); run "
            f"SELECT embed_refresh_index('{self.name}') (embed_sql.refresh_index in Python)"
        )
        raise InvalidParameterError(msg)

    def save_meta(self) -> None:
        """Record the source in the index, so a saved file can be reattached to its table."""
        self.index.meta.update(
            source=self.source or "", key=self.key, vec=self.vec, fingerprint=self.fingerprint or ""
        )


def fresh_index(state: DatabaseState, names: object, fingerprints: object) -> NamedIndex:
    """Return the named index a UDF names; refuse it if its table changed since the build.

    ``names`` and ``fingerprints`` are the UDF's constant arguments (the index name, and
    the fingerprint DuckDB computed of the index's table in the caller's snapshot).
    """
    named = state.index(str(constant(names, "the index name")))
    named.check_fresh(constant(fingerprints, "the fingerprint", allow_null=True))
    return named


def index_name(name: object) -> str:
    """Validate an index name; return it in lower case (names ignore case, as in SQL)."""
    try:
        return check_index_name(name)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None


def build(
    state: DatabaseState,
    cur: duckdb.DuckDBPyConnection,
    name: str,
    table: str,
    *,
    vec: str,
    key: str,
    context: Context | None = None,
    expected: str | None = None,
    model: str | None = None,
    path: str | os.PathLike[str] | None = None,
    transaction: bool = True,
    **options: Any,
) -> NamedIndex:
    """Read ``table`` through ``cur``, build the index, save it if asked, attach it.

    The table is read in batches, each added to the index as it comes (memory: the index
    and one batch, not the whole column besides).
    """
    name = index_name(name)
    what = f"column {vec!r} of {table!r}"
    hashes: list[pa.Array] = []  # per row: the fingerprint's terms (and the key table's h)
    indexed: list[pa.Array] = []  # per row: whether its vector went into the index
    found: set[str] = set()  # the models that made the column, as far as this process knows
    read = stream_source(
        cur,
        table,
        vec,
        key,
        operation="embed_create_index",
        context=context,
        expected=expected,
        transaction=transaction,
    )
    with read as (qualified, reader):

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                check_keys(batch.column("id"), key, table)
                vectors = fixed_vectors(batch.column("v"), vec, table)
                made = single_model(provenance.identify(to_numpy(vectors)), what)
                found.update([made] if made else [])
                # copied: a column of DuckDB's batch keeps the whole batch alive
                hashes.append(pa.concat_arrays([batch.column("h").cast(pa.uint64())]))
                indexed.append(pa.array(np.asarray(vectors.is_valid(), dtype=bool)))
                yield pa.record_batch([batch.column("id"), vectors], names=["id", "v"])

        stream = batches()
        first = next(stream, None)
        if first is None:  # an empty table: the index of its (typed) empty column
            empty = reader.schema.empty_table()
            vectors = fixed_vectors(empty.column("v"), vec, table)
            index = VectorIndex.build(vectors, empty.column("id"), **options)
        else:
            index = VectorIndex.from_batches(itertools.chain([first], stream), **options)
    h = pa.concat_arrays(hashes) if hashes else pa.array([], pa.uint64())
    fingerprint = check_fingerprint(h, expected, table, "embed_create_index")
    if indexed:
        h = h.filter(pa.concat_arrays(indexed))
    column_key = single_model(found, what)
    made_by: str | None
    made_key: str | None
    if model:
        encoder = shared_encoder(model)
        made_by, made_key = encoder.name, encoder.key
        check_models(column_key, made_key, f"column {vec!r} and model {model!r}")
    else:  # the model that made the column, if this process made it; else embed()'s
        made_key = column_key
        default = state.encoders.get("embed")
        if made_key is not None:
            made_by = provenance.model_name(made_key)
        else:
            made_by, made_key = (default.name, default.key) if default else (None, None)
    index.model, index.model_key = made_by, made_key
    named = NamedIndex(name, index, qualified, key, vec, fingerprint)
    named.save_meta()
    if path is not None:
        index.save(path)
    attach(state, named, h)
    return named


def attach(state: DatabaseState, named: NamedIndex, hashes: pa.Array | None = None) -> None:
    """Register ``named`` on the database and (re)write its key table."""
    labels = named.index.labels().astype(np.int64)
    keys = named.index.key_of(labels)
    h = hashes if hashes is not None else pa.nulls(len(labels), pa.uint64())
    table = pa.table({"label": labels, "key": keys, "h": h.cast(pa.uint64())})
    cur = state.cursor()
    try:
        cur.register("__embed_sql_new_keys", table)
        cur.execute(
            f"CREATE OR REPLACE TABLE {keys_table(named.name)} AS "
            "SELECT * FROM __embed_sql_new_keys"
        )
        cur.unregister("__embed_sql_new_keys")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {DETACHED} (x INTEGER)")
    finally:
        cur.close()
    with state.lock:
        state.indexes[named.name] = named


def load(
    state: DatabaseState,
    name: str,
    path: str | os.PathLike[str],
    *,
    context: Context | None = None,
    mmap: bool = True,
    verify: bool = True,
) -> NamedIndex:
    """Open a saved index under ``name``; reattach it to its table if that table is here.

    ``verify=False`` (memory-mapped only) skips the checksums and scans of the vectors: a
    large index opens without reading them; every structural check still runs.
    """
    name = index_name(name)
    if path is None:
        msg = "the index path is NULL; give the file written by embed_create_index(path := ...)"
        raise InvalidParameterError(msg)
    if not verify and not mmap:
        msg = "verify=False needs mmap=True: a load() reads every byte anyway, and checks them"
        raise InvalidParameterError(msg)
    index = VectorIndex.view(path, verify=verify) if mmap else VectorIndex.load(path)
    meta = index.meta
    named = NamedIndex(name, index)
    source = meta.get("source")
    if source:
        with reader(state, context) as cur:
            try:
                check_columns(cur, source, {meta["vec"]: "vector", meta["key"]: "key"})
            except Exception:
                source = None
    if source:
        named.source, named.key, named.vec = source, meta["key"], meta["vec"]
        named.fingerprint = meta.get("fingerprint") or None
    attach(state, named)
    return named


def refresh(state: DatabaseState, name: str, expected: str | None = None) -> tuple[int, int]:
    """Bring an index up to date with its table; return (rows removed, rows added)."""
    named = state.index(name)
    if named.source is None:
        msg = (
            f"vector index {named.name!r} answers for no table (it was loaded alone); "
            "nothing to refresh"
        )
        raise InvalidParameterError(msg)
    src, key, vec = named.source, quote_ident(named.key), quote_ident(named.vec)
    keys = keys_table(named.name)
    # every row with its hash(key, vector), as the index's key table holds them: a row whose
    # key and hash are both in the key table is unchanged
    rows = (
        f"(SELECT {key} AS id, {vec} AS v, {row_hash_sql(named.key, named.vec)} AS h "
        f"FROM {src}) AS t"
    )
    same = "t.id = k.key AND k.h IS NOT NULL AND k.h = t.h"
    with state.lock, reader(state, None) as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            (fingerprint,) = cur.execute(fingerprint_sql(src, named.key, named.vec)).fetchall()[0]
            gone = cur.sql(
                f"SELECT k.key FROM {keys} AS k ANTI JOIN {rows} ON {same}"
            ).to_arrow_table()
            new = cur.sql(
                f"SELECT t.id, t.v, t.h FROM {rows} ANTI JOIN {keys} AS k ON {same} "
                "WHERE t.v IS NOT NULL ORDER BY 1"
            ).to_arrow_table()
        finally:
            cur.execute("COMMIT")
    if expected is not None and expected != fingerprint:
        msg = (
            f"embed_refresh_index: table {src} differs between your transaction and committed "
            "data; COMMIT first, so the index answers for the rows you see"
        )
        raise InvalidParameterError(msg)
    index = named.index
    removed = index.remove(gone.column("key").combine_chunks()) if gone.num_rows else 0
    start = index.label_count
    added = 0
    if new.num_rows:
        vectors = fixed_vectors(new.column("v"), named.vec, src)
        added = index.add(new.column("id").combine_chunks(), vectors)
    named.fingerprint = fingerprint
    named.save_meta()
    rows = pa.table(
        {
            "label": np.arange(start, start + added, dtype=np.int64),
            "key": new.column("id").combine_chunks().cast(index.keys().type),
            "h": new.column("h").combine_chunks().cast(pa.uint64()),
        }
    )
    cur = state.cursor()
    try:
        cur.register("__embed_sql_gone", gone)
        cur.register("__embed_sql_added", rows)
        cur.execute(f"DELETE FROM {keys} WHERE key IN (SELECT key FROM __embed_sql_gone)")
        cur.execute(f"INSERT INTO {keys} SELECT * FROM __embed_sql_added")
    finally:
        cur.close()
    return removed, added


def drop(state: DatabaseState, name: str) -> bool:
    """Forget a named index and its key table; return whether it existed."""
    name = index_name(name)
    with state.lock:
        found = state.indexes.pop(name, None) is not None
    cur = state.cursor()
    try:
        cur.execute(f"DROP TABLE IF EXISTS {keys_table(name)}")
    finally:
        cur.close()
    return found
