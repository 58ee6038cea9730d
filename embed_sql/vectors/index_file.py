r"""The index file format: magic bytes, a JSON header, then checksummed sections.

::

    EMBEDSQL-INDEX\x00\x01              16 bytes of magic (the last two: format 1)
    <u64 little-endian>                 length of the JSON header
    {"format": 1, ..., "sections": [{"name", "length", "sha256"}, ...]}
    section bytes, back to back, in the header's order

The header's other fields describe the index (model, metric, dim, ...); they belong to
:class:`~embed_sql.vectors.index.VectorIndex`, which also decides the sections (``keys`` as
Arrow IPC, ``alive``, ``vectors``, ``matrix``). Files are written atomically
(:func:`embed_sql._io.atomic_writer`), each section streamed from its own buffer; reading
checks the magic, the header and every section's length and SHA-256, so a truncated or
corrupt file raises :class:`IndexFileError` rather than giving wrong answers.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from embed_sql._io import atomic_writer
from embed_sql.exceptions import EmbedSQLError

__all__ = [
    "IndexFile",
    "IndexFileError",
    "Section",
    "keys_from_ipc",
    "keys_to_ipc",
    "read_index_file",
    "write_index_file",
]

_MAGIC = b"EMBEDSQL-INDEX\x00\x01"
_FORMAT = 1
_LENGTH = struct.Struct("<Q")

# the bytes of one section, written as they are (a numpy array must be C-contiguous)
Section: TypeAlias = "bytes | bytearray | memoryview | np.ndarray | pa.Buffer"


class IndexFileError(EmbedSQLError, ValueError):
    """Exception raised when an index file is truncated, corrupt or of another format."""


@dataclass(frozen=True)
class IndexFile:
    """A verified index file: its ``header`` and one read-only view per section.

    ``buffer`` holds the bytes (a memory map for a view) and must live as long as any
    section, or anything made from one, is in use.
    """

    header: dict[str, Any]  # parsed JSON
    sections: dict[str, memoryview]
    buffer: mmap.mmap | bytes


def write_index_file(
    path: str | os.PathLike[str], fields: Mapping[str, object], sections: Mapping[str, Section]
) -> Path:
    """Write ``fields`` and ``sections`` (in their order) to ``path`` atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.index"
    >>> _ = write_index_file(p, {"dim": 2}, {"keys": b"abc"})
    >>> f = read_index_file(p, required=["keys"])
    >>> f.header["dim"], bytes(f.sections["keys"])
    (2, b'abc')
    """
    views = {name: _flat(data) for name, data in sections.items()}
    header = {
        "format": _FORMAT,
        **fields,
        "sections": [
            {"name": n, "length": v.nbytes, "sha256": hashlib.sha256(v).hexdigest()}
            for n, v in views.items()
        ],
    }
    head = json.dumps(header).encode()
    with atomic_writer(path) as fh:
        fh.write(_MAGIC + _LENGTH.pack(len(head)) + head)
        for view in views.values():
            fh.write(view)
    return Path(path)


def _flat(data: Section) -> memoryview:
    """Return a one-dimensional byte view of ``data``, without a copy."""
    view = data.data if isinstance(data, np.ndarray) else memoryview(data)
    return view.cast("B") if view.nbytes else memoryview(b"")


def read_index_file(
    path: str | os.PathLike[str], *, required: Iterable[str] = (), view: bool = False
) -> IndexFile:
    """Read and verify an index file; ``view=True`` memory-maps it instead of reading it.

    Raises
    ------
    IndexFileError
        When the file cannot be opened, is not an index file, is of another format, is
        truncated, lacks a ``required`` section or fails a checksum.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open forever
            msg = f"{path} is not a regular file; an index file is one written by save()"
            raise IndexFileError(msg)
        fh = path.open("rb")
    except OSError as exc:
        msg = f"cannot open index file {path}: {exc}"
        raise IndexFileError(msg) from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < len(_MAGIC) + _LENGTH.size:
            msg = f"{path} is not an embed_sql index (too short: {size} bytes)"
            raise IndexFileError(msg)
        buf: mmap.mmap | bytes = (
            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if view else fh.read()
        )
    mv = memoryview(buf)
    if bytes(mv[: len(_MAGIC)]) != _MAGIC:
        msg = f"{path} is not an embed_sql index file (bad magic bytes)"
        raise IndexFileError(msg)
    start = len(_MAGIC) + _LENGTH.size
    (head_len,) = _LENGTH.unpack(mv[len(_MAGIC) : start])
    header, listed = _header(path, mv[start : start + head_len])
    missing = [name for name in required if name not in listed]
    if missing:
        msg = f"{path}: the index header is corrupt (no section {missing[0]!r})"
        raise IndexFileError(msg)
    offset = start + head_len
    sections: dict[str, memoryview] = {}
    for name, (length, digest) in listed.items():
        part = mv[offset : offset + length]
        if len(part) != length:
            msg = f"{path} is truncated: section {name!r} needs {length} bytes"
            raise IndexFileError(msg)
        if hashlib.sha256(part).hexdigest() != digest:
            msg = f"{path} is corrupt: checksum mismatch in section {name!r}"
            raise IndexFileError(msg)
        sections[name] = part
        offset += length
    return IndexFile(header, sections, buf)


def _header(path: Path, raw: memoryview) -> tuple[dict[str, Any], dict[str, tuple[int, str]]]:
    """Parse the header; its sections come as ``{name: (length, sha256)}``, in file order."""
    try:
        header = json.loads(bytes(raw))
        listed = {s["name"]: (int(s["length"]), str(s["sha256"])) for s in header["sections"]}
        if header.get("format") != _FORMAT:
            msg = f"{path}: index format {header.get('format')!r}, expected {_FORMAT}"
            raise IndexFileError(msg)
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"{path}: the index header is corrupt ({exc})"
        raise IndexFileError(msg) from exc
    return header, listed


def keys_to_ipc(keys: pa.Array) -> pa.Buffer:
    """Encode the ``keys`` section: one Arrow IPC stream with a single column ``key``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
        writer.write_batch(pa.record_batch([keys], names=["key"]))
    return sink.getvalue()


def keys_from_ipc(section: memoryview) -> pa.Array:
    """Decode a ``keys`` section into one Arrow array."""
    return pa.ipc.open_stream(pa.py_buffer(section)).read_all().column("key").combine_chunks()
