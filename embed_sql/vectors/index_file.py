r"""The index file format: magic bytes, a JSON header, then checksummed sections.

::

    EMBEDSQL-INDEX\x00\x01              16 bytes of magic (the last two: format 1)
    <u64 little-endian>                 length of the JSON header
    {"format": 1, ..., "sections": [{"name", "length", "sha256"}, ...]}
    section bytes, back to back, in the header's order

The header's other fields describe the index (model, metric, dim, ...); they belong to
:class:`~embed_sql.vectors.index.VectorIndex`, which also decides the sections (``keys`` as
Arrow IPC, ``alive``, ``vectors``, ``matrix``). Files are written atomically
(:func:`embed_sql._io.atomic_writer`) in one streaming pass, each section hashed as it is
written (a usearch graph through a temporary file, never copied whole in memory); reading
opens regular files only, checks the magic, the header and every section's length and
SHA-256, so a truncated or corrupt file raises :class:`IndexFileError` rather than giving
wrong answers. What the header's fields mean, and whether they agree with the sections, is
checked next by :mod:`embed_sql.vectors.index_checks` (and the usearch graph by
:mod:`embed_sql.vectors.graph_file`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import re
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

import numpy as np
import pyarrow as pa

from embed_sql._io import atomic_writer
from embed_sql.exceptions import FileWriteError, IndexFileError

__all__ = [
    "FileSection",
    "IndexFile",
    "IndexFileError",
    "Section",
    "corrupt",
    "keys_to_ipc",
    "read_index_file",
    "write_index_file",
]

_MAGIC = b"EMBEDSQL-INDEX\x00\x01"
_FORMAT = 1
_LENGTH = struct.Struct("<Q")
_MAX_HEADER = 1 << 24  # a header is a few hundred bytes; 16 MiB leaves room for any meta
_SHA256 = re.compile("[0-9a-f]{64}")

_CHUNK = 1 << 20  # bytes hashed and written at a time


@dataclass(frozen=True)
class FileSection:
    """A section written by a library to a file of its own (``write(path)``), then streamed.

    For sections too large to hold twice in memory (a usearch graph); ``length`` is known
    before writing, so the header can be laid out first.
    """

    length: int
    write: Callable[[Path], None]


# the bytes of one section, written as they are (a numpy array must be C-contiguous)
Section: TypeAlias = "bytes | bytearray | memoryview | np.ndarray | pa.Buffer | FileSection"


@dataclass(frozen=True)
class IndexFile:
    """A verified index file: its ``header`` and one read-only view per section.

    ``buffer`` holds the bytes (a memory map for a view) and must live as long as any
    section, or anything made from one, is in use.
    """

    header: dict[str, Any]  # parsed JSON
    sections: dict[str, memoryview]
    buffer: mmap.mmap | bytearray


def write_index_file(
    path: str | os.PathLike[str], fields: Mapping[str, object], sections: Mapping[str, Section]
) -> Path:
    """Write ``fields`` and ``sections`` (in their order) to ``path`` atomically.

    The file is written in one streaming pass: the header first with placeholder checksums
    (their length is fixed), each section hashed as it is written, then the header again. So
    nothing is copied whole in memory; a :class:`FileSection` goes through a temporary file
    beside ``path`` in chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.index"
    >>> _ = write_index_file(p, {"dim": 2}, {"keys": b"abc"})
    >>> f = read_index_file(p, required=["keys"])
    >>> f.header["dim"], bytes(f.sections["keys"])
    (2, b'abc')
    """
    parts = {n: d if isinstance(d, FileSection) else _flat(d) for n, d in sections.items()}
    lengths = {n: d.length if isinstance(d, FileSection) else d.nbytes for n, d in parts.items()}
    head = _head(fields, lengths, dict.fromkeys(parts, "0" * 64))
    target = Path(path)
    with atomic_writer(target) as fh:
        try:
            fh.write(_MAGIC + _LENGTH.pack(len(head)) + head)
            digests = {}
            for name, data in parts.items():
                digest = hashlib.sha256()
                if isinstance(data, FileSection):
                    _copy_hashed(target, name, data, fh, digest)
                else:
                    for i in range(0, data.nbytes, _CHUNK):
                        digest.update(data[i : i + _CHUNK])
                        fh.write(data[i : i + _CHUNK])
                digests[name] = digest.hexdigest()
            fh.seek(len(_MAGIC) + _LENGTH.size)
            fh.write(_head(fields, lengths, digests))  # the same length: only digests differ
        except FileWriteError:
            raise
        except OSError as exc:  # a full disk, an I/O error: name the file, not a temporary one
            msg = f"cannot write {str(target)!r}: {exc.strerror or exc}"
            raise FileWriteError(exc.errno or errno.EIO, msg) from exc
    return target


def _head(fields: Mapping[str, object], lengths: dict[str, int], digests: dict[str, str]) -> bytes:
    table = [{"name": n, "length": lengths[n], "sha256": digests[n]} for n in lengths]
    return json.dumps({"format": _FORMAT, **fields, "sections": table}).encode()


def _copy_hashed(target: Path, name: str, section: FileSection, out: BinaryIO, digest: Any) -> None:
    """Have ``section`` write its file beside ``target``, then copy it into ``out``, hashed.

    The scratch file is named after ``out``'s temporary file (``<temp>.<name>``), so that a
    killed save's leftovers are removed together by the next save (see :mod:`embed_sql._io`).
    """
    spool = Path(f"{out.name}.{name}")
    try:
        os.close(os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        msg = f"cannot write {str(target)!r}: {exc.strerror or exc}"
        raise FileWriteError(exc.errno or errno.EIO, msg) from exc
    try:
        try:
            section.write(spool)
        except (OSError, RuntimeError) as exc:  # usearch raises RuntimeError for I/O errors
            msg = f"cannot write {str(target)!r}: section {name!r} failed ({exc})"
            raise FileWriteError(msg) from exc
        copied, chunk = 0, memoryview(bytearray(_CHUNK))  # one buffer, reused
        with open(spool, "rb", buffering=0) as fh:
            while got := fh.readinto(chunk):
                digest.update(chunk[:got])
                out.write(chunk[:got])
                copied += got
        if copied != section.length:
            msg = f"section {name!r} of {str(target)!r}: {copied} bytes, {section.length} expected"
            raise FileWriteError(msg)
    finally:
        spool.unlink(missing_ok=True)


def _flat(data: bytes | bytearray | memoryview | np.ndarray | pa.Buffer) -> memoryview:
    """Return a one-dimensional byte view of ``data``, without a copy."""
    view = data.data if isinstance(data, np.ndarray) else memoryview(data)
    return view.cast("B") if view.nbytes else memoryview(b"")


def read_index_file(
    path: str | os.PathLike[str],
    *,
    required: Iterable[str] = (),
    view: bool = False,
    verify: Collection[str] | None = None,
) -> IndexFile:
    """Read and verify an index file; ``view=True`` memory-maps it instead of reading it.

    ``verify`` names the sections whose SHA-256 is checked (default: all); a view that
    checks only its small sections touches no page of the others.

    Only regular files are opened (a FIFO is refused at once, never waited on); the header's
    length and section table are checked against the file's size before anything is read.

    Raises
    ------
    IndexFileError
        When the file cannot be opened, is not an index file, is of another format, is
        truncated or extended, lacks a ``required`` section or fails a checksum.
    """
    path = Path(path)
    with _open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        start = len(_MAGIC) + _LENGTH.size
        if size < start:
            raise corrupt(path, f"it is too short ({size} bytes) to be an embed_sql index")
        magic = fh.read(start)
        if magic[: len(_MAGIC)] != _MAGIC:
            raise corrupt(path, "it is not an embed_sql index file (bad magic bytes)")
        (head_len,) = _LENGTH.unpack(magic[len(_MAGIC) :])
        if head_len > min(size - start, _MAX_HEADER):
            problem = f"the header claims {head_len} bytes but the file has {size - start}"
            raise corrupt(path, problem)
        header, listed = _header(path, fh.read(head_len))
        body = sum(length for length, _ in listed.values())
        if body != size - start - head_len:
            have = size - start - head_len
            problem = (
                f"it is truncated: its sections need {body} bytes, {have} follow the header"
                if body > have
                else f"{have - body} bytes follow the last section"
            )
            raise corrupt(path, problem)
        buf: mmap.mmap | bytearray
        if view:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        else:  # read into one buffer of the known size: read() would join chunks (2x)
            buf = bytearray(body)
            view_of, got = memoryview(buf), 0
            while got < body and (n := fh.readinto(view_of[got:])):  # type: ignore[attr-defined]
                got += n
            view_of.release()
            if got != body:  # it shrank since fstat
                raise corrupt(path, f"it is truncated: its sections need {body} bytes")
    missing = [name for name in required if name not in listed]
    if missing:
        raise corrupt(path, f"the header lists no section {missing[0]!r}")
    mv = memoryview(buf).toreadonly()
    offset = 0 if not view else start + head_len
    if len(mv) - offset != body:  # it changed size since fstat
        raise corrupt(path, f"it is truncated: its sections need {body} bytes")
    sections: dict[str, memoryview] = {}
    for name, (length, digest) in listed.items():
        part = mv[offset : offset + length]
        checked = verify is None or name in verify
        if checked and hashlib.sha256(part).hexdigest() != digest:
            raise corrupt(path, f"checksum mismatch in section {name!r}")
        sections[name] = part
        offset += length
    return IndexFile(header, sections, buf)


def corrupt(path: Path, problem: str) -> IndexFileError:
    """Return the error for an unusable index file: the file, the ``problem``, the fix."""
    msg = f"cannot use index file {path}: {problem}; rebuild the index and save() it again"
    return IndexFileError(msg)


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open ``path`` for reading if it is a regular file (a FIFO is refused, not waited on)."""
    try:  # O_NONBLOCK: opening a FIFO returns at once; fstat then refuses it
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        msg = (
            f"cannot open index file {path}: {exc.strerror}; "
            "give the path of a file written by VectorIndex.save()"
        )
        raise IndexFileError(msg) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = (
            f"cannot open index file {path}: it is not a regular file (a directory, device "
            "or FIFO); give the path of a file written by VectorIndex.save()"
        )
        raise IndexFileError(msg)
    with os.fdopen(fd, "rb") as fh:
        yield fh


def _header(path: Path, raw: bytes) -> tuple[dict[str, Any], dict[str, tuple[int, str]]]:
    """Parse the header; its sections come as ``{name: (length, sha256)}``, in file order."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        problem = "its header is not JSON" if isinstance(exc, ValueError) else "its header nests"
        raise corrupt(path, f"{problem} ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise corrupt(path, f"its header is a JSON {type(header).__name__}, not an object")
    form = header.get("format")
    if type(form) is not int or form != _FORMAT:
        msg = (
            f"cannot use index file {path}: index format {form!r}, this version of embed_sql "
            f"reads format {_FORMAT}; save() the index again with the embed_sql that reads it"
        )
        raise IndexFileError(msg)
    table = header.get("sections")
    if not isinstance(table, list):
        raise corrupt(path, "its header has no list of sections ('sections')")
    listed: dict[str, tuple[int, str]] = {}
    for entry in table:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and type(entry.get("length")) is int
            and 0 <= entry["length"] < 2**62
            and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"])
        ):
            raise corrupt(path, f"its section table has a malformed entry {str(entry)[:80]}")
        if entry["name"] in listed:
            raise corrupt(path, f"its section table lists {entry['name']!r} twice")
        listed[entry["name"]] = (entry["length"], entry["sha256"])
    return header, listed


def keys_to_ipc(keys: pa.Array) -> pa.Buffer:
    """Encode the ``keys`` section: one Arrow IPC stream with a single column ``key``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
        writer.write_batch(pa.record_batch([keys], names=["key"]))
    return sink.getvalue()
