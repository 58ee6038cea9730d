"""Checks of a serialised usearch graph (the ``vectors`` section of an HNSW index file).

usearch trusts its input: a graph whose neighbour lists point past the last node, or whose
levels disagree with its nodes, loads and then crashes the process at the first search; a
header asking for a huge connectivity makes it try a huge allocation. So every count, kind
and neighbour of the graph is checked here first, with numpy, against the layout usearch
2.x writes (``Index.save()``, vectors included, 32-bit matrix dimensions)::

    u32 rows, u32 bytes per row, rows x bytes    the vectors
    64 bytes                                     "usearch", version, kinds, counts, dims
    u64 size, connectivity, base connectivity,   the graph's header
        max level, entry slot
    i16 level per node
    per node: u64 key, i16 level,                free nodes (removed rows) have key 2^64-1
        u32 count + base x u32 slots (level 0),
        u32 count + connectivity x u32 slots (each level above)
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from embed_sql.vectors.index_file import corrupt
from embed_sql.vectors.metrics import Metric, usearch_metric

__all__ = ["check_graph"]

_MATRIX = struct.Struct("<II")
_HEAD = struct.Struct("<7s3H4B3QB")  # magic, version, metric/scalar/key/slot kinds, counts, multi
_HEAD_SIZE = 64
_CORE = struct.Struct("<5Q")
_NODE_HEAD = 10
_FREE = np.uint64(2**64 - 1)
_SCALAR = {"f32": 11, "f16": 12, "i8": 23}
_WIDTH = {"f32": 4, "f16": 2, "i8": 1}
_METRIC = {"cos": 99, "ip": 105, "l2sq": 101}
_KEY_U64, _SLOT_U32 = 14, 15
_MAX_DEGREE = 2 * 4096  # hnsw_params allows M up to 4096; the base layer has 2 M
_GRAPH = "the HNSW graph in section 'vectors' "
_GATHER = 1 << 17  # u32 words gathered per step while checking nodes (bounds temporaries)


def check_graph(
    path: Path, blob: memoryview, *, dim: int, dtype: str, metric: Metric, alive: np.ndarray
) -> None:
    """Refuse (``IndexFileError``) a graph usearch could not search safely.

    ``alive`` is the index's live-row mask: the graph must hold exactly those labels.
    """
    if len(blob) < _MATRIX.size + _HEAD_SIZE + _CORE.size:
        raise corrupt(path, _GRAPH + f"is too short ({len(blob)} bytes)")
    rows, width = _MATRIX.unpack_from(blob, 0)
    if width != dim * _WIDTH[dtype]:
        raise corrupt(path, _GRAPH + f"stores {width} bytes per vector, not {dim} x {dtype}")
    at = _MATRIX.size + rows * width
    if at + _HEAD_SIZE + _CORE.size > len(blob):
        raise corrupt(path, _GRAPH + f"claims {rows} vectors, more than its {len(blob)} bytes hold")
    magic, major, _, _, kind, scalar, key, slot, present, deleted, dims, multi = _HEAD.unpack_from(
        blob, at
    )
    want = (b"usearch", 2, _METRIC[usearch_metric(metric)], _SCALAR[dtype], _KEY_U64, _SLOT_U32)
    if (magic, major, kind, scalar, key, slot) != want:
        raise corrupt(
            path, _GRAPH + "is not a usearch 2 graph of this index's metric, dtype and key kinds"
        )
    if dims != dim or multi:
        raise corrupt(path, _GRAPH + f"has {dims} dimensions (multi={multi}), the header {dim}")
    size, conn, base, top, entry = _CORE.unpack_from(blob, at + _HEAD_SIZE)
    if size != rows or present + deleted != size or present != alive.sum():
        problem = f"has {size} nodes, {rows} vectors, {present} present and {deleted} removed"
        raise corrupt(path, _GRAPH + f"{problem}; the index has {int(alive.sum())} rows")
    if not 2 <= conn <= base <= _MAX_DEGREE:
        raise corrupt(path, _GRAPH + f"has connectivity {conn} and base connectivity {base}")
    at += _HEAD_SIZE + _CORE.size
    if at + 2 * size > len(blob):
        raise corrupt(path, _GRAPH + f"claims {size} nodes, more than its {len(blob)} bytes hold")
    levels = np.frombuffer(blob, dtype="<i2", count=size, offset=at).astype(np.int64)
    at += 2 * size
    if size and levels.min() < 0:
        raise corrupt(path, _GRAPH + "has a node with a negative level")
    sizes = _NODE_HEAD + 4 * (1 + base) + levels * 4 * (1 + conn)
    if at + int(sizes.sum()) != len(blob):
        raise corrupt(
            path, _GRAPH + f"has nodes of {int(sizes.sum())} bytes where {len(blob) - at} follow"
        )
    if size == 0 and (top, entry) != (2**64 - 1, 0):  # what usearch writes for no nodes
        raise corrupt(path, _GRAPH + f"has no nodes but max level {top} and entry node {entry}")
    if size and (top != levels.max() or entry >= size or levels[entry] != top):
        raise corrupt(
            path,
            _GRAPH + f"has max level {top} and entry node {entry}, which its levels contradict",
        )
    offsets = at + np.cumsum(sizes) - sizes
    keys = _check_nodes(path, np.frombuffer(blob, dtype=np.uint8), offsets, levels, base, conn)
    keys = np.sort(keys[keys != _FREE])
    if len(keys) != present or not np.array_equal(keys, np.flatnonzero(alive)):
        raise corrupt(path, _GRAPH + "does not hold exactly the index's live rows")


def _check_nodes(
    path: Path, raw: np.ndarray, offsets: np.ndarray, levels: np.ndarray, base: int, conn: int
) -> np.ndarray:
    """Check each node's level and neighbour lists; return the nodes' keys."""
    keys = np.empty(len(offsets), dtype=np.uint64)
    step = max(1, _GATHER // (1 + base))
    for lo in range(0, len(offsets), step):
        at, lv = offsets[lo : lo + step], levels[lo : lo + step]
        head = raw[at[:, None] + np.arange(_NODE_HEAD)]
        keys[lo : lo + step] = head[:, :8].copy().view("<u8").ravel()
        if not np.array_equal(head[:, 8:].copy().view("<i2").ravel(), lv):
            raise corrupt(path, _GRAPH + "has a node whose level disagrees with the level table")
        for level in range(int(lv.max()) + 1):
            degree = base if level == 0 else conn
            skip = 0 if level == 0 else 4 * (1 + base) + (level - 1) * 4 * (1 + conn)
            block = _words(raw, at[lv >= level] + _NODE_HEAD + skip, 1 + degree)
            count, slots = block[:, 0], block[:, 1:]
            if (count > degree).any():
                raise corrupt(
                    path, _GRAPH + f"has a node with more than {degree} neighbours on level {level}"
                )
            used = slots[np.arange(degree)[None, :] < count[:, None]]
            if len(used) and (used.max() >= len(levels) or levels[used].min() < level):
                raise corrupt(
                    path,
                    _GRAPH + f"has a neighbour on level {level} that is not a node of that level",
                )
    return keys


def _words(raw: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """Return the ``width`` little-endian u32 words at each byte offset ``start`` (unaligned)."""
    out = np.empty((len(start), width), dtype=np.uint32)
    shift = start % 4
    for s in range(4):  # one aligned u32 view per byte shift: a quarter of the gathers
        rows = np.flatnonzero(shift == s)
        if len(rows):
            words = raw[s : s + (len(raw) - s) // 4 * 4].view("<u4")
            out[rows] = words[((start[rows] - s) // 4)[:, None] + np.arange(width)]
    return out
