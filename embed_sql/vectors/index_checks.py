"""Checks of a saved index before it is used: every header field, every section's size.

:func:`read_index_file` proves that a file is whole (its sections have the lengths and
checksums its header lists); this module proves that what the header says makes sense and
agrees with the sections, before anything is allocated from it: a file with valid checksums
may still have been crafted, or written by a buggy tool. A file that passes opens into an
index that searches; one that fails raises :class:`IndexFileError` naming the field or
section.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors.graph_file import check_graph
from embed_sql.vectors.hnsw import hnsw_params, params_from_header
from embed_sql.vectors.index_file import IndexFile, IndexFileError, corrupt
from embed_sql.vectors.metrics import Metric, parse_metric

__all__ = ["DTYPES", "SavedIndex", "check_saved"]

DTYPES = ("f32", "f16", "i8")
_MAX_DIM = 1 << 20
_MAX_LABELS = 1 << 48
_WIDTH = {"f32": 4, "f16": 2}
_PARAM_NAMES = ("M", "ef_construction", "ef_search")
_USEARCH_NAMES = ("connectivity", "expansion_add", "expansion_search")  # files before 0.2


@dataclass(frozen=True)
class SavedIndex:
    """The checked contents of an index file, ready to become a VectorIndex."""

    dim: int
    metric: Metric
    dtype: str
    exact: bool
    rescore: bool
    model: str | None
    model_key: str | None
    params: dict[str, int]
    meta: dict[str, str]
    keys: pa.Array
    alive: np.ndarray  # bool, one per label
    matrix: memoryview | None  # float32 (labels, dim): exact vectors or rescoring copy
    graph: memoryview | None  # the usearch graph of an HNSW index


def check_saved(path: Path, file: IndexFile, *, values: bool = True) -> SavedIndex:
    """Check ``file``'s header fields and sections against each other; return them typed.

    ``values=False`` trusts the vector values (no scan for NaN or infinity), so a view reads
    only the keys, the alive bitmap and the graph's links; every structural check remains.
    """
    h = file.header
    dim = _integer(path, h, "dim", 1, _MAX_DIM)
    labels = _integer(path, h, "labels", 0, _MAX_LABELS)
    count = _integer(path, h, "count", 0, labels)
    metric = _metric(path, h.get("metric"))
    dtype = h.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise corrupt(path, f"header field 'dtype' is {dtype!r}, not one of {DTYPES}")
    exact = _flag(path, h, "exact", required=True)
    rescore = _flag(path, h, "rescore", required=False)
    model, model_key = _text(path, h, "model"), _text(path, h, "model_key")
    params, meta = _params(path, h.get("params", {})), _meta(path, h.get("meta", {}))
    parts = file.sections
    expected = ["keys", "alive", "vectors"] + (["matrix"] if not exact and rescore else [])
    for name in parts:
        if name not in expected:
            raise corrupt(path, f"section {name!r} does not belong in this kind of index")
    for name in expected:
        if name not in parts:
            raise corrupt(path, f"the header lists no section {name!r}")
    _size(path, parts, "alive", (labels + 7) // 8, f"one bit per label ({labels})")
    matrix_name = "vectors" if exact else "matrix" if rescore else None
    if matrix_name is not None:
        want = labels * dim * 4
        _size(path, parts, matrix_name, want, f"{labels} labels x dim {dim} x 4 bytes")
    if matrix_name is not None and values:
        _finite(path, matrix_name, np.frombuffer(parts[matrix_name], dtype="<f4"))
    keys = _keys(path, parts["keys"], labels)
    alive = _alive(path, parts["alive"], labels, count)
    graph = None
    if not exact:
        graph = parts["vectors"]
        check_graph(path, graph, dim=dim, dtype=dtype, metric=metric, alive=alive)
        if dtype != "i8" and values:  # u32 rows, u32 bytes per row, then the vectors
            rows, width = np.frombuffer(graph, dtype="<u4", count=2)
            stored = graph[8 : 8 + int(rows) * int(width)]
            _finite(path, "vectors", np.frombuffer(stored, dtype=f"<f{_WIDTH[dtype]}"))
    return SavedIndex(
        dim=dim,
        metric=metric,
        dtype=dtype,
        exact=exact,
        rescore=rescore,
        model=model,
        model_key=model_key,
        params=params,
        meta=meta,
        keys=keys,
        alive=alive,
        matrix=parts[matrix_name] if matrix_name is not None else None,
        graph=graph,
    )


def _integer(path: Path, header: dict[str, Any], name: str, low: int, high: int) -> int:
    value = header.get(name)
    if type(value) is not int or not low <= value <= high:
        problem = f"header field {name!r} is {value!r}, not an integer from {low} to {high}"
        raise corrupt(path, problem)
    return value


def _flag(path: Path, header: dict[str, Any], name: str, *, required: bool) -> bool:
    value = header.get(name, None if required else False)
    if not isinstance(value, bool):
        raise corrupt(path, f"header field {name!r} is {value!r}, not true or false")
    return value


def _text(path: Path, header: dict[str, Any], name: str) -> str | None:
    value = header.get(name)
    if value is not None and not isinstance(value, str):
        raise corrupt(path, f"header field {name!r} is {value!r}, not a string or null")
    return value


def _metric(path: Path, value: object) -> Metric:
    try:
        if not isinstance(value, str):
            raise InvalidParameterError(repr(value))  # noqa: TRY301 - one message for both
        return parse_metric(value)
    except InvalidParameterError:
        raise corrupt(path, f"header field 'metric' is {value!r}, not a known metric") from None


def _params(path: Path, value: object) -> dict[str, int]:
    known = (*_PARAM_NAMES, *_USEARCH_NAMES)
    if not isinstance(value, dict) or any(
        k not in known or (v is not None and type(v) is not int) for k, v in value.items()
    ):
        problem = f"header field 'params' is {str(value)[:80]}, not integers named {known}"
        raise corrupt(path, problem)
    try:
        given = params_from_header(value)
        return hnsw_params(given.get("M"), given.get("ef_construction"), given.get("ef_search"))
    except InvalidParameterError as exc:
        raise corrupt(path, f"header field 'params' is out of range ({exc})") from None


def _meta(path: Path, value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problem = f"header field 'meta' is {str(value)[:80]}, not an object of strings"
        raise corrupt(path, problem)
    return dict(value)


def _size(path: Path, parts: dict[str, memoryview], name: str, want: int, why: str) -> None:
    if len(parts[name]) != want:
        problem = f"section {name!r} has {len(parts[name])} bytes, not {want} ({why})"
        raise corrupt(path, problem)


def _finite(path: Path, name: str, values: np.ndarray) -> None:
    """Refuse NaN or infinite vector values (a build never stores them)."""
    step = 1 << 18  # bounds the temporary mask
    if not all(np.isfinite(values[i : i + step]).all() for i in range(0, len(values), step)):
        raise corrupt(path, f"section {name!r} holds NaN or infinite vector values")


def _keys(path: Path, section: memoryview, labels: int) -> pa.Array:
    """Decode the ``keys`` section: one Arrow IPC stream, exactly, of ``labels`` keys."""
    source = pa.BufferReader(pa.py_buffer(section))
    try:
        for message in pa.ipc.MessageReader.open_stream(pa.py_buffer(section)):
            if message.type != "schema" and (
                message.type != "record batch" or _compressed(message.metadata.to_pybytes())
            ):  # a compressed body declares its inflated size: a bomb would be allocated
                problem = f"section 'keys' is compressed or has a {message.type}; save() none"
                raise corrupt(path, problem)
        table = pa.ipc.open_stream(source).read_all()
        keys = table.column("key").combine_chunks() if table.num_columns == 1 else None
        if keys is not None:
            keys.validate(full=True)
    except IndexFileError:
        raise
    except (pa.ArrowException, OSError, KeyError, ValueError, struct.error) as exc:
        problem = f"section 'keys' is not an Arrow IPC stream of keys ({str(exc)[:80]})"
        raise corrupt(path, problem) from None
    if keys is None or source.tell() != len(section):
        raise corrupt(path, "section 'keys' is not exactly one Arrow IPC stream of one column")
    kind = keys.type
    if not (
        pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
    ):
        raise corrupt(path, f"section 'keys' holds {kind}, not integer or string keys")
    if len(keys) != labels or keys.null_count:
        problem = (
            f"section 'keys' has {len(keys)} keys ({keys.null_count} null) for {labels} labels"
        )
        raise corrupt(path, problem)
    return keys


def _compressed(meta: bytes) -> bool:
    """Whether a record batch message (Arrow's flatbuffer) declares a body compression.

    Message field 2 is its header, a RecordBatch table, whose field 3 is the compression.
    """
    message = struct.unpack_from("<I", meta, 0)[0]
    at = _field(meta, message, 2)
    if not at:
        return False
    batch = message + at + struct.unpack_from("<I", meta, message + at)[0]
    return _field(meta, batch, 3) != 0


def _field(meta: bytes, table: int, index: int) -> int:
    """Offset of field ``index`` within a flatbuffer ``table`` (0 when it is absent)."""
    vtable = table - struct.unpack_from("<i", meta, table)[0]
    size = struct.unpack_from("<H", meta, vtable)[0]
    slot = 4 + 2 * index
    return int(struct.unpack_from("<H", meta, vtable + slot)[0]) if slot < size else 0


def _alive(path: Path, section: memoryview, labels: int, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(section, dtype=np.uint8))
    if bits[labels:].any():
        raise corrupt(path, f"section 'alive' marks rows past the last label ({labels})")
    alive = bits[:labels].astype(bool)
    if int(alive.sum()) != count:
        problem = f"section 'alive' marks {int(alive.sum())} rows, the header's 'count' {count}"
        raise corrupt(path, problem)
    return alive
