"""Hostile index files: header fields, section tables and sizes, keys, things not files.

Each file is crafted with valid checksums (:mod:`tests.hostile_index`), so the checks behind
them are what is tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors import VectorIndex
from tests.hostile_index import (
    DIM,
    HUGE,
    KINDS,
    MAGIC,
    WRONG,
    Q,
    craft,
    refused,
    refused_or_usable,
    save_kinds,
    split,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_kinds(tmp_path_factory.mktemp("saved"))


def test_the_saved_files_open_and_search(saved: dict[str, Path]) -> None:
    for path in saved.values():
        refused_or_usable(path)
        assert VectorIndex.load(path).search(Q, 3).counts.tolist() == [3] * 4


def test_a_crafted_copy_of_a_good_file_still_opens(saved: dict[str, Path], tmp_path: Path) -> None:
    header, sections = split(saved["f16"])
    path = craft(tmp_path / "same.index", header, sections)
    assert path.read_bytes() == saved["f16"].read_bytes()
    assert len(VectorIndex.view(path)) == 57


# -- header fields ----------------------------------------------------------------------------
FIELDS = ("format", "dim", "count", "labels", "metric", "dtype", "exact", "rescore", "params")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field", FIELDS)
def test_every_header_field_zero_negative_huge_or_mistyped_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, field: str
) -> None:
    header, sections = split(saved[kind])
    for i, value in enumerate((0, -1, -(2**63), *HUGE, *WRONG)):
        if value == header[field] and type(value) is type(header[field]):
            continue
        if (kind, field) == ("exact", "rescore") and isinstance(value, bool):
            continue  # an exact index has no graph to rescore: either flag describes it
        refused(craft(tmp_path / f"{field}{i}.index", {**header, field: value}, sections), field)


@pytest.mark.parametrize("kind", ["f16", "i8"])
@pytest.mark.parametrize("name", ["M", "ef_construction", "ef_search"])
def test_hnsw_parameters_out_of_range_are_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, name: str
) -> None:
    header, sections = split(saved[kind])
    for i, value in enumerate((0, -1, 4097, *HUGE, *WRONG)):
        if value is None:
            continue  # None stands for the preset's value (as older files wrote it)
        params = {**header["params"], name: value}
        refused(craft(tmp_path / f"{i}.index", {**header, "params": params}, sections), name)


@pytest.mark.parametrize("value", [[], "x", 7, None, {"M": {"a": 1}}])
def test_params_that_are_not_a_mapping_of_integers_are_refused(
    saved: dict[str, Path], tmp_path: Path, value: object
) -> None:
    header, sections = split(saved["f16"])
    refused(craft(tmp_path / "p.index", {**header, "params": value}, sections), "params")


@pytest.mark.parametrize("field", ["model", "model_key", "meta"])
@pytest.mark.parametrize("value", [7, [1], {"a": [1]}, True])
def test_model_and_meta_of_the_wrong_type_are_refused(
    saved: dict[str, Path], tmp_path: Path, field: str, value: object
) -> None:
    header, sections = split(saved["exact"])
    refused(craft(tmp_path / "m.index", {**header, field: value}, sections), field)


@pytest.mark.parametrize(
    "text",
    [b"[]", b"null", b"7", b'"x"', b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 50_000, b"\xff"],
)
def test_a_header_that_is_not_a_json_object_is_refused(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "h.index"
    path.write_bytes(MAGIC + struct.pack("<Q", len(text)) + text)
    refused(path, "header")


@pytest.mark.parametrize("head_len", [0, 2**31, 2**63, 2**64 - 1])
def test_a_header_length_beyond_the_file_is_refused(
    saved: dict[str, Path], tmp_path: Path, head_len: int
) -> None:
    data = saved["exact"].read_bytes()
    path = tmp_path / "l.index"
    path.write_bytes(data[:16] + struct.pack("<Q", head_len) + data[24:])
    refused(path, "header")


# -- section table and sizes ------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_section_lengths_that_disagree_with_the_bytes_are_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    header, sections = split(saved[kind])
    for i, entry in enumerate(header["sections"]):
        for j, length in enumerate((entry["length"] + 1, -1, *HUGE, "9", None, 1.0)):
            table = [dict(e) for e in header["sections"]]
            table[i]["length"] = length
            path = craft(
                tmp_path / f"{i}-{j}.index", {**header, "sections": table}, sections, fix=False
            )
            refused(path)


@pytest.mark.parametrize(
    "table",
    [
        [],
        {},
        "keys",
        [["keys", 1, "ab"]],
        [{"name": "keys"}],
        [{"name": 7, "length": 0, "sha256": hashlib.sha256(b"").hexdigest()}],
    ],
)
def test_a_malformed_section_table_is_refused(
    saved: dict[str, Path], tmp_path: Path, table: object
) -> None:
    header, _ = split(saved["exact"])
    refused(craft(tmp_path / "t.index", {**header, "sections": table}, {}, fix=False))


def test_a_section_listed_twice_is_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    header, sections = split(saved["exact"])
    table = [*header["sections"], header["sections"][0]]
    body = {**sections, "again": sections["keys"]}
    path = craft(tmp_path / "twice.index", {**header, "sections": table}, body, fix=False)
    refused(path, "'keys'")


def test_bytes_after_the_last_section_are_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "long.index"
    path.write_bytes(saved["exact"].read_bytes() + b"\0" * 8)
    refused(path, "8 bytes")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("delta", [-4, -1, 1, 4, 1 << 16])
def test_a_section_shorter_or_longer_than_dims_times_rows_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, delta: int
) -> None:
    header, sections = split(saved[kind])
    for name, data in sections.items():
        grown = data[:delta] if delta < 0 else data + b"\1" * delta
        refused(craft(tmp_path / f"{name}.index", header, {**sections, name: grown}), name)


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_or_unexpected_section_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    header, sections = split(saved[kind])
    for name in sections:
        rest = {n: b for n, b in sections.items() if n != name}
        refused(craft(tmp_path / f"no-{name}.index", header, rest), name)
    if "matrix" not in sections:
        extra = {**sections, "matrix": np.zeros((60, DIM), np.float32).tobytes()}
        refused(craft(tmp_path / "extra.index", header, extra), "matrix")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dim", [4, 16, 7])
def test_a_dim_that_disagrees_with_the_vectors_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str, dim: int
) -> None:
    header, sections = split(saved[kind])
    refused(craft(tmp_path / "dim.index", {**header, "dim": dim}, sections))


# -- keys and the alive bitmap ---------------------------------------------------------------
def keys_ipc(keys: pa.Array) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)])) as writer:
        writer.write_batch(pa.record_batch([keys], names=["key"]))
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("kind", KINDS)
def test_duplicate_and_negative_keys_load_and_search(
    saved: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    header, sections = split(saved[kind])
    keys = pa.array([-5] * 30 + list(range(-30, 0)), pa.int64())
    path = craft(tmp_path / "k.index", header, {**sections, "keys": keys_ipc(keys)})
    refused_or_usable(path)
    assert len(VectorIndex.load(path).search(Q, 3).labels) == 4


@pytest.mark.parametrize(
    "keys",
    [
        pa.array(range(59), pa.int64()),
        pa.array(range(61), pa.int64()),
        pa.array([None] * 60, pa.int64()),
        pa.array([1.5] * 60),
        pa.array([[1]] * 60),
        pa.array([b"x"] * 60),
        pa.nulls(60),
    ],
    ids=["short", "long", "nulls", "float", "list", "binary", "null-type"],
)
def test_keys_of_the_wrong_count_or_type_are_refused(
    saved: dict[str, Path], tmp_path: Path, keys: pa.Array
) -> None:
    header, sections = split(saved["f16"])
    refused(craft(tmp_path / "k.index", header, {**sections, "keys": keys_ipc(keys)}), "keys")


@pytest.mark.parametrize("junk", [b"", b"\0" * 16, b"\xff" * 64, b"ARROW1" + b"\0" * 100])
def test_keys_that_are_not_arrow_ipc_are_refused(
    saved: dict[str, Path], tmp_path: Path, junk: bytes
) -> None:
    header, sections = split(saved["exact"])
    refused(craft(tmp_path / "k.index", header, {**sections, "keys": junk}), "keys")


@pytest.mark.parametrize("kind", KINDS)
def test_an_alive_bitmap_that_disagrees_with_the_count_is_refused(
    saved: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    header, sections = split(saved[kind])
    alive = np.unpackbits(np.frombuffer(sections["alive"], np.uint8))
    flipped = alive.copy()
    flipped[0] ^= 1
    padded = alive.copy()
    padded[-1] = 1  # a bit past the last label
    for name, bits in (("flip", flipped), ("pad", padded)):
        body = {**sections, "alive": np.packbits(bits).tobytes()}
        refused(craft(tmp_path / f"{name}.index", header, body), "alive")


# -- not files at all -----------------------------------------------------------------------
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.index"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def attempt() -> None:
        try:
            refused(fifo, "regular file")
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the reader so the thread can end
        with open(fifo, "wb"):
            pass
        pytest.fail("opening a FIFO blocked")
    assert not errors, errors


@pytest.mark.parametrize("name", ["directory", "/dev/null", "empty", "missing"])
def test_things_that_are_not_index_files_are_refused(tmp_path: Path, name: str) -> None:
    path = {"directory": tmp_path, "/dev/null": Path("/dev/null")}.get(name, tmp_path / name)
    if name == "empty":
        path.write_bytes(b"")
    refused(path)


# -- random damage, checksums recomputed ----------------------------------------------------
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_random_header_bytes_with_valid_checksums_are_refused_or_usable(
    saved: dict[str, Path], tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    raw = saved[kind].read_bytes()
    header, _ = split(saved[kind])
    head = json.dumps({k: v for k, v in header.items() if k != "sections"}).encode()
    at = data.draw(st.integers(0, len(head) - 1))
    new = data.draw(st.binary(min_size=1, max_size=4))
    text = head[:at] + new + head[at + len(new) :]
    try:
        fields = json.loads(text)
        assert isinstance(fields, dict)
        fields["sections"] = header["sections"]
        text = json.dumps(fields).encode()
    except (ValueError, AssertionError, RecursionError):
        pass  # unparsable: the reader must say so
    path = tmp_path / "fuzz.index"
    path.write_bytes(
        MAGIC + struct.pack("<Q", len(text)) + text + raw[24 + len(json.dumps(header)) :]
    )
    refused_or_usable(path)


VALUES = st.one_of(
    st.integers(-(2**64), 2**64),
    st.sampled_from([*HUGE, *WRONG, -1, 0, 1, 2, 3, 4, 7, 8, 16, 59, 60, 61]),
    st.text(max_size=5),
    st.floats(allow_nan=True),
    st.lists(st.integers(0, 9), max_size=3),
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_random_header_values_with_valid_checksums_are_refused_or_usable(
    saved: dict[str, Path], tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    header, sections = split(saved[kind])
    field = data.draw(st.sampled_from([k for k in header if k != "sections"]))
    value = data.draw(VALUES)
    if field == "params":
        value = {**header["params"], data.draw(st.sampled_from(list(header["params"]))): value}
    refused_or_usable(craft(tmp_path / "v.index", {**header, field: value}, sections))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_random_section_bytes_with_valid_checksums_are_refused_or_usable(
    saved: dict[str, Path], tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    header, sections = split(saved[kind])
    name = data.draw(st.sampled_from(list(sections)))
    blob = sections[name]
    if not blob:
        return
    at = data.draw(st.integers(0, len(blob) - 1))
    new = data.draw(st.binary(min_size=1, max_size=8))
    bad = blob[:at] + new + blob[at + len(new) :]
    refused_or_usable(craft(tmp_path / "s.index", header, {**sections, name: bad}))


def test_a_graph_degree_of_one_is_refused_when_building_and_when_opening(
    saved: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(InvalidParameterError, match="M=1 must be an integer from 2"):
        VectorIndex(4, M=1)
    header, sections = split(saved["f16"])
    params = {**header["params"], "M": 1}
    refused(craft(tmp_path / "m1.index", {**header, "params": params}, sections), "params")


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_compressed_keys_are_refused_before_they_are_inflated(
    saved: dict[str, Path], tmp_path: Path, codec: str
) -> None:
    header, sections = split(saved["f16"])
    keys = pa.array(["a" * (1 << 18)] * 60)  # 15 MiB of keys, a few KiB compressed
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=codec)
    with pa.ipc.new_stream(sink, pa.schema([("key", keys.type)]), options=options) as writer:
        writer.write_batch(pa.record_batch([keys], names=["key"]))
    bomb = sink.getvalue().to_pybytes()
    assert len(bomb) * 100 < keys.nbytes
    refused(craft(tmp_path / "z.index", header, {**sections, "keys": bomb}), "is compressed")
