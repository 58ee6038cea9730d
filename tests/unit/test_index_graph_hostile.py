"""Hostile usearch graphs inside index files: counts, kinds, connectivity, levels, nodes.

usearch trusts what it loads, so these files crashed the process or made it allocate
gigabytes before ``embed_sql.vectors.graph_file`` checked them. Checksums are recomputed
(:mod:`tests.hostile_index`), so the graph checks are what is tested.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embed_sql.vectors import IndexFileError, VectorIndex
from tests.hostile_index import (
    OPENERS,
    Q,
    craft,
    refused,
    refused_or_usable,
    save_kinds,
    split,
    unverified_view,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_kinds(tmp_path_factory.mktemp("saved"))


def graph_offsets(blob: bytes) -> dict[str, int]:
    rows, cols = struct.unpack("<II", blob[:8])
    head = 8 + rows * cols
    core = head + 64
    return {"rows": 0, "cols": 4, "head": head, "core": core, "levels": core + 40}


def patch(blob: bytes, at: int, value: int, size: int = 8) -> bytes:
    raw = value.to_bytes(size, "little", signed=value < 0)
    return blob[:at] + raw + blob[at + size :]


GRAPH_EDITS: dict[str, Callable[[bytes, dict[str, int]], bytes]] = {
    "rows huge": lambda b, o: patch(b, o["rows"], 2**32 - 1, 4),
    "rows 0": lambda b, o: patch(b, o["rows"], 0, 4),
    "cols 0": lambda b, o: patch(b, o["cols"], 0, 4),
    "magic": lambda b, o: patch(b, o["head"], 0, 7),
    "metric": lambda b, o: patch(
        b, o["head"] + 13, ord("i") if b[o["head"] + 13] != 105 else 99, 1
    ),
    "scalar": lambda b, o: patch(b, o["head"] + 14, 11 if b[o["head"] + 14] != 11 else 12, 1),
    "key kind": lambda b, o: patch(b, o["head"] + 15, 15, 1),
    "slot kind": lambda b, o: patch(b, o["head"] + 16, 14, 1),
    "present": lambda b, o: patch(b, o["head"] + 17, 10**9),
    "deleted": lambda b, o: patch(b, o["head"] + 25, 5),
    "dimensions": lambda b, o: patch(b, o["head"] + 33, 10**9),
    "multi": lambda b, o: patch(b, o["head"] + 41, 1, 1),
    "size huge": lambda b, o: patch(b, o["core"], 10**9),
    "size 0": lambda b, o: patch(b, o["core"], 0),
    "connectivity 0": lambda b, o: patch(b, o["core"] + 8, 0),
    "connectivity 1e9": lambda b, o: patch(b, o["core"] + 8, 10**9),
    "connectivity 2^63": lambda b, o: patch(b, o["core"] + 8, 2**63),
    "base 1e9": lambda b, o: patch(b, o["core"] + 16, 10**9),
    "base 1": lambda b, o: patch(b, o["core"] + 16, 1),
    "max level 1e9": lambda b, o: patch(b, o["core"] + 24, 10**9),
    "max level 0": lambda b, o: patch(b, o["core"] + 24, 0),
    "entry 1e9": lambda b, o: patch(b, o["core"] + 32, 10**9),
    "level -5": lambda b, o: patch(b, o["levels"], -5, 2),
    "level 30000": lambda b, o: patch(b, o["levels"], 30000, 2),
    "level +1": lambda b, o: patch(b, o["levels"], b[o["levels"]] + 1, 2),
}


@pytest.mark.parametrize("kind", ["f16", "i8", "f32"])
@pytest.mark.parametrize("edit", list(GRAPH_EDITS))
def test_a_graph_with_corrupt_counts_connectivity_or_levels_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, edit: str
) -> None:
    header, sections = split(saved[kind])
    blob = sections["vectors"]
    bad = GRAPH_EDITS[edit](blob, graph_offsets(blob))
    assert bad != blob
    refused(craft(tmp_path / "g.index", header, {**sections, "vectors": bad}), "graph")


def node_at(blob: bytes, index: int) -> tuple[int, int, int, int]:
    """Offset of node ``index``, its level, the base degree and connectivity of the graph."""
    o = graph_offsets(blob)
    size, conn, base = struct.unpack("<QQQ", blob[o["core"] : o["core"] + 24])
    levels = np.frombuffer(blob[o["levels"] : o["levels"] + 2 * size], "<i2")
    sizes = 10 + 4 * (1 + base) + levels.astype(np.int64) * 4 * (1 + conn)
    start = o["levels"] + 2 * size + int(sizes[:index].sum())
    return start, int(levels[index]), base, conn


@pytest.mark.parametrize("kind", ["f16", "i8", "f32"])
@pytest.mark.parametrize(
    "edit",
    [
        "key huge",
        "key twice",
        "neighbour out of range",
        "neighbour count huge",
        "upper neighbour too low",
    ],
)
def test_a_graph_with_corrupt_nodes_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, edit: str
) -> None:
    header, sections = split(saved[kind])
    blob = sections["vectors"]
    at, _, _, _ = node_at(blob, 1)
    if edit == "key huge":
        bad = patch(blob, at, 10**6)
    elif edit == "key twice":
        bad = patch(blob, at, struct.unpack("<Q", blob[node_at(blob, 0)[0] :][:8])[0])
    elif edit == "neighbour out of range":
        bad = patch(patch(blob, at + 10, 1, 4), at + 14, 10**6, 4)
    elif edit == "neighbour count huge":
        bad = patch(blob, at + 10, 10**6, 4)
    else:  # an upper-level neighbour that has no list on that level
        o = graph_offsets(blob)
        size = struct.unpack("<Q", blob[o["core"] : o["core"] + 8])[0]
        levels = np.frombuffer(blob[o["levels"] : o["levels"] + 2 * size], "<i2")
        high, low = int(np.argmax(levels)), int(np.argmin(levels))
        at, _, base, _ = node_at(blob, high)
        upper = at + 10 + 4 * (1 + base)
        bad = patch(patch(blob, upper, 1, 4), upper + 4, low, 4)
    assert bad != blob
    refused(craft(tmp_path / "n.index", header, {**sections, "vectors": bad}), "graph")


@pytest.mark.parametrize("kind", ["f16", "i8", "f32"])
def test_a_graph_without_edges_loads_and_finds_every_match(
    saved: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    header, sections = split(saved[kind])
    blob = sections["vectors"]
    size = struct.unpack("<Q", blob[graph_offsets(blob)["core"] :][:8])[0]
    for node in range(size):  # every level-0 list emptied: valid, but usearch finds little
        blob = patch(blob, node_at(blob, node)[0] + 10, 0, 4)
    path = craft(tmp_path / "bare.index", header, {**sections, "vectors": blob})
    refused_or_usable(path)  # short answers are finished exactly, no NaN distances
    assert VectorIndex.view(path).search(Q, 5).counts.tolist() == [5] * len(Q)


INTERESTING = st.sampled_from([0, 1, 2, 3, 4, 7, 8, 59, 60, 61, 2**15, 2**16 - 1, 2**31, 2**32 - 1])


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(["f16", "i8", "f32"]), data=st.data())
def test_random_graph_integers_with_valid_checksums_are_refused_or_usable(
    saved: dict[str, Path], tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    header, sections = split(saved[kind])
    blob = sections["vectors"]
    o = graph_offsets(blob)
    size = struct.unpack("<Q", blob[o["core"] : o["core"] + 8])[0]
    node = data.draw(st.integers(0, size - 1))
    at, level, base, conn = node_at(blob, node)
    fields = [
        (o["head"] + 17, 8),  # counts and dimensions
        (o["head"] + 25, 8),
        *[(o["core"] + 8 * i, 8) for i in range(5)],  # size .. entry slot
        (o["levels"] + 2 * node, 2),
        (at, 8),  # the node's key, level, neighbour counts and slots
        (at + 8, 2),
        *[(at + 10 + 4 * i, 4) for i in range(1 + base)],
        *[(at + 10 + 4 * (1 + base) + 4 * i, 4) for i in range(level * (1 + conn))],
    ]
    where, width = data.draw(st.sampled_from(fields))
    value = data.draw(INTERESTING) % (1 << (8 * width))
    bad = patch(blob, where, value, width)
    path = craft(tmp_path / "r.index", header, {**sections, "vectors": bad})
    refused_or_usable(path, (*OPENERS, unverified_view))


@pytest.mark.parametrize("kind", ["exact", "f16", "i8", "f32"])
def test_a_view_without_verify_reads_only_keys_alive_and_graph_links(
    saved: dict[str, Path], tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from embed_sql.vectors import index_file

    _, sections = split(saved[kind])
    hashed: list[int] = []
    real = hashlib.sha256

    def counting(data: bytes | memoryview = b"") -> object:
        hashed.append(len(data))
        return real(data)

    monkeypatch.setattr(index_file.hashlib, "sha256", counting)
    index = VectorIndex.view(saved[kind], verify=False)
    assert sum(hashed) == len(sections["keys"]) + len(sections["alive"])
    assert index.search(Q, 3).counts.tolist() == [3] * len(Q)


def test_a_view_without_verify_trusts_vector_values_but_never_the_structure(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    header, sections = split(saved["f16"])
    raw = saved["f16"].read_bytes()
    flipped = bytearray(raw)
    flipped[-len(sections["matrix"]) + 5] ^= 0x01  # one matrix byte; checksum left stale
    stale = tmp_path / "stale.index"
    stale.write_bytes(bytes(flipped))
    refused(stale, "checksum")
    assert len(VectorIndex.view(stale, verify=False)) == 57  # values are trusted, as asked
    blob = sections["vectors"]
    at = node_at(blob, 1)[0]
    bad = patch(patch(blob, at + 10, 1, 4), at + 14, 10**6, 4)  # a neighbour out of range
    crafted = craft(tmp_path / "n.index", header, {**sections, "vectors": bad})
    with pytest.raises(IndexFileError, match="neighbour"):
        VectorIndex.view(crafted, verify=False)
    keys = bytearray(raw)
    keys[24 + len(json.dumps(header)) + 3] ^= 0xFF  # inside the keys section, stale checksum
    (tmp_path / "keys.index").write_bytes(bytes(keys))
    with pytest.raises(IndexFileError, match="'keys'"):
        VectorIndex.view(tmp_path / "keys.index", verify=False)
