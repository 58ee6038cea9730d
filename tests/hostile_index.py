"""Crafting hostile index files for tests: the documented layout, checksums recomputed.

Shared by ``tests/unit/test_index_file_hostile.py`` (header, sections, non-files) and
``tests/unit/test_index_graph_hostile.py`` (the usearch graph). The invariant they test:
``VectorIndex.load`` and ``VectorIndex.view`` raise only :class:`IndexFileError` (naming the
file and the fix), never hang, never ask for memory the file cannot justify, and a file
that opens always searches.
"""

from __future__ import annotations

import hashlib
import json
import resource
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embed_sql.vectors import IndexFileError, VectorIndex

MAGIC = b"EMBEDSQL-INDEX\x00\x01"
DIM = 8
Q = np.random.default_rng(9).normal(size=(4, DIM)).astype(np.float32)
Opener = Callable[[Path], VectorIndex]
OPENERS: tuple[Opener, ...] = (VectorIndex.load, VectorIndex.view)
HUGE = (10**9, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**30)
WRONG = (None, True, False, 1.5, float("nan"), "8", [8], {"x": 8}, "")


# -- reading and crafting files by the documented layout -----------------------------------
def split(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    data = path.read_bytes()
    (head_len,) = struct.unpack("<Q", data[16:24])
    header = json.loads(data[24 : 24 + head_len])
    offset, sections = 24 + head_len, {}
    for s in header["sections"]:
        sections[s["name"]] = data[offset : offset + s["length"]]
        offset += s["length"]
    return header, sections


def craft(
    path: Path, header: dict[str, Any], sections: dict[str, bytes], *, fix: bool = True
) -> Path:
    """Write ``header`` and ``sections``; ``fix`` recomputes every section's length and hash."""
    if fix:
        header = {**header, "sections": [_entry(n, b) for n, b in sections.items()]}
    head = json.dumps(header).encode()
    path.write_bytes(MAGIC + struct.pack("<Q", len(head)) + head + b"".join(sections.values()))
    return path


def _entry(name: str, data: bytes) -> dict[str, Any]:
    return {"name": name, "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@contextmanager
def memory_cap(extra: int = 1 << 30) -> Iterator[None]:
    """Refuse any allocation past the current address space plus ``extra`` bytes."""
    with open("/proc/self/status") as fh:
        size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def refused(path: Path, *words: str) -> str:
    """Both openers refuse ``path`` with an IndexFileError naming it, a fix and ``words``."""
    msg = ""
    for opener in OPENERS:
        with memory_cap(), pytest.raises(IndexFileError) as info:
            opener(path)
        msg = str(info.value)
        assert str(path) in msg
        assert "save()" in msg or "rebuild" in msg, msg
        for word in words:
            assert word in msg, msg
    return msg


def unverified_view(path: Path) -> VectorIndex:
    """A view that trusts vector values (every structural check still runs)."""
    return VectorIndex.view(path, verify=False)


def refused_or_usable(path: Path, openers: tuple[Opener, ...] = OPENERS) -> None:
    """Each opener refuses ``path`` (as :func:`refused`) or gives an index that searches."""
    for opener in openers:
        index, refusal = _open(opener, path)
        if index is None:
            assert str(path) in refusal
            assert "save()" in refusal or "rebuild" in refusal, refusal
            continue
        with warnings.catch_warnings():  # huge values overflow, as in a built index
            warnings.filterwarnings("ignore", "overflow", RuntimeWarning)
            found = index.search(Q, 5)
            rows, labels, _ = index.range_search(Q, 1.0)
        assert ((found.labels >= -1) & (found.labels < index.label_count)).all()
        assert found.counts.tolist() == [min(5, len(index))] * len(Q)
        assert len(rows) == len(labels)
        assert len(index.key_of(found.labels.ravel())) == found.labels.size
        assert index.vectors().shape == (len(index), index.dim)
        assert len(index.keys()) == len(index)


def _open(opener: Callable[[Path], VectorIndex], path: Path) -> tuple[VectorIndex | None, str]:
    try:
        with memory_cap():
            return opener(path), ""
    except IndexFileError as exc:
        return None, str(exc)


KINDS = ("exact", "f16", "i8", "f32")


def save_kinds(folder: Path) -> dict[str, Path]:
    """Save small real indexes of each kind (one with removed rows) in ``folder``."""
    x = np.random.default_rng(0).normal(size=(60, DIM)).astype(np.float32)
    kinds = {
        "exact": VectorIndex.build(x, [f"k{i}" for i in range(60)], exact=True),
        "f16": VectorIndex.build(x, range(60), M=4, threads=1),
        "i8": VectorIndex.build(x, range(60), dtype="i8", rescore=False, M=4, threads=1),
        "f32": VectorIndex.build(x, range(60), dtype="f32", metric="l2", M=4, threads=1),
    }
    kinds["f16"].remove([3, 10, 11])
    return {name: index.save(folder / f"{name}.index") for name, index in kinds.items()}
