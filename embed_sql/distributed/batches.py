"""Engine-neutral per-batch work for cluster engines (Arrow in, Arrow out; no engine import).

An engine creates each class once per worker (loading the model or mapping the index
once) and calls it per batch. Errors keep their embed_sql type and name the batch's rows,
so the driver can catch them and the user can find the rows.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from embed_sql._io import (
    clean_leftovers,
    clean_stale_dirs,
    publish_dir,
    temp_dir,
    write_bytes_atomic,
)
from embed_sql.exceptions import EmbedSQLError

if TYPE_CHECKING:
    from embed_sql.vectors.index import VectorIndex

__all__ = ["EmbedBatch", "KnnBatch", "describe_rows", "materialize_files", "shipped_file"]


def describe_rows(batch: pa.Table, key: str | None) -> str:
    """Name a batch's rows for an error: its key range, else its first row."""
    if not batch.num_rows:
        return "an empty batch"
    if key and key in batch.column_names:
        lo_hi = pc.min_max(batch.column(key))
        return f"{key} {lo_hi['min'].as_py()!r}..{lo_hi['max'].as_py()!r}"
    return f"first row {batch.slice(0, 1).to_pylist()[0]!r:.200}"


def _named(exc: EmbedSQLError, batch: pa.Table, key: str | None) -> EmbedSQLError:
    """Return an error of the same type whose message ends with the batch's rows."""
    where = f" [in a batch of {batch.num_rows} rows: {describe_rows(batch, key)}]"
    try:
        return type(exc)(f"{exc}{where}")
    except TypeError:  # an error type with another constructor: keep it, extend its message
        exc.args = (f"{exc}{where}",)
        return exc


def materialize_files(files: dict[str, bytes], root: Path) -> Path:
    """Write ``{relative path: bytes}`` under ``root`` once, atomically; return ``root``.

    Used to put shipped model files into a worker's cache: a folder that exists already
    (another worker on the node wrote it) is reused, never half-written. The files are
    written in a temporary folder beside ``root`` and published by a rename; a worker killed
    while writing leaves that folder, which the next one removes (see :mod:`embed_sql._io`).
    """
    if root.is_dir():
        return root
    prefix = f".tmp-{root.name}-"
    clean_stale_dirs(root.parent, prefix)
    with temp_dir(root.parent, prefix) as tmp:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            publish_dir(tmp, root)
        except OSError:
            if not root.is_dir():  # not a race lost to another worker: a real failure
                raise
    return root


def _user() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else "user"


SHIPPED_DAYS = 1.0  # a shipped index file untouched this long is removed from its node


def shipped_file(data: bytes, folder: Path | None = None) -> Path:
    """Return a local file holding ``data`` (an index shipped to this node), written once.

    Content-named in ``folder`` (default ``<tmp>/embed_sql-shipped-<uid>``), so the
    workers of a node share one copy; touched when used. Files untouched for
    :data:`SHIPPED_DAYS` (earlier joins' indexes) are removed by the node's next join, as
    are the temporary files of killed writers.
    """
    folder = folder or Path(tempfile.gettempdir()) / f"embed_sql-shipped-{_user()}"
    local = folder / f"{hashlib.sha256(data).hexdigest()[:24]}.index"
    cutoff = time.time() - SHIPPED_DAYS * 86_400
    for old in folder.glob("*.index"):
        with suppress(OSError):
            if old != local and old.stat().st_mtime < cutoff:
                old.unlink()  # a worker that still maps it keeps its pages (POSIX)
    clean_leftovers(folder)
    try:
        os.utime(local)  # in use: kept by the next join's clean-up
    except FileNotFoundError:
        write_bytes_atomic(local, data)
    return local


def _view_shipped(data: bytes) -> VectorIndex:
    """Map the node's copy of a shipped index (written again if removed meanwhile)."""
    from embed_sql.vectors.index import VectorIndex

    local = shipped_file(data)
    try:
        return VectorIndex.view(local)
    except EmbedSQLError:
        if local.exists():
            raise
        return VectorIndex.view(shipped_file(data))  # an old-file clean-up raced us


class EmbedBatch:
    """Embed ``column`` of each batch into ``output`` with one encoder per worker.

    Parameters
    ----------
    column, output
        The text column, and the vector column appended (``FLOAT[d]`` with the model's
        field metadata, as locally).
    model
        A model reference; resolved on the worker from its cache (``files`` first puts the
        driver's cache entry there, so a worker never exports the model itself).
    threads
        onnxruntime threads: the CPUs the engine gave this worker (default 1).
    key
        A key column named in errors (the batch's key range).
    files
        ``(relative path under the cache, {file: bytes})`` of the model's cache entry.
    """

    def __init__(
        self,
        column: str,
        output: str = "embedding",
        model: str | None = None,
        threads: int = 1,
        key: str | None = None,
        files: tuple[str, dict[str, bytes]] | None = None,
    ) -> None:
        from embed_sql.config import get_settings
        from embed_sql.models.encoder import TextEncoder

        if files is not None:
            materialize_files(files[1], get_settings().cache_dir / files[0])
        self.column, self.output, self.key = column, output, key
        self.encoder = TextEncoder(
            model if model is not None else "all-MiniLM-L6-v2", threads=threads
        )
        self.field = self.encoder.field(output)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Return the batch with the vector column appended (NULL text: NULL vector)."""
        if self.column not in batch.column_names:
            from embed_sql.exceptions import ColumnNotFoundError

            msg = (
                f"column {self.column!r} is not in the dataset; its columns are "
                f"{batch.column_names}; name the text column"
            )
            raise ColumnNotFoundError(msg)
        try:
            vectors = self.encoder.encode(batch.column(self.column))
        except EmbedSQLError as exc:
            raise _named(exc, batch, self.key) from exc
        if isinstance(vectors, pa.ChunkedArray):
            vectors = vectors.combine_chunks()
        return batch.append_column(self.field, vectors)


class KnnBatch:
    """Join each batch to a saved vector index: its ``k`` nearest rows per row.

    The index file is memory-mapped (:meth:`VectorIndex.view`), so workers on one node
    share its pages. ``data`` (the file's bytes, shipped through the engine's object store)
    is written once per node to a content-named file (:func:`shipped_file`) and mapped from
    there; ``path`` is then only named in messages.
    """

    def __init__(
        self,
        path: str,
        k: int,
        vec: str = "embedding",
        key: str = "id",
        threads: int = 1,
        data: bytes | None = None,
        allow_models: list[str] | None = None,
    ) -> None:
        from embed_sql.vectors.index import VectorIndex

        if data is None:
            self.index = VectorIndex.view(path)
        else:  # the shipped bytes, never a file at ``path`` that may be another version
            self.index = _view_shipped(data)
        self.k, self.vec, self.key, self.threads = k, vec, key, threads
        self.allow_models = allow_models

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Return ``left_key``, ``right_key``, ``distance``, ``rank`` for the batch's rows."""
        from embed_sql.vectors.join import knn_join

        try:
            return knn_join(
                batch,
                self.index,
                self.k,
                vec=self.vec,
                key=self.key,
                threads=self.threads,
                allow_models=self.allow_models,
            )
        except EmbedSQLError as exc:
            raise _named(exc, batch, self.key) from exc
