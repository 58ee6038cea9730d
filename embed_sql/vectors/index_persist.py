"""Saving and opening a :class:`~embed_sql.vectors.index.VectorIndex`.

What an index puts in its file (the header fields and the sections: keys, alive bitmap,
graph or vectors, and the float32 copy a reduced graph rescores with), and how an opened,
checked file becomes an index again, loaded or memory-mapped. The file format itself
(atomic streamed writes, checksums) is :mod:`~embed_sql.vectors.index_file`'s; the checks of
what a file claims, :mod:`~embed_sql.vectors.index_checks`'s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.vectors.index_checks import check_saved
from embed_sql.vectors.index_file import (
    FileSection,
    Section,
    keys_to_ipc,
    read_index_file,
    write_index_file,
)

if TYPE_CHECKING:
    from embed_sql.vectors.index import VectorIndex

__all__ = ["open_index", "save_index"]


def save_index(index: VectorIndex, path: str | os.PathLike[str]) -> Path:
    """Write ``index`` to ``path`` atomically (temporary file, then rename), streamed."""
    keys = index._keys if index._keys is not None else pa.array([], pa.int64())
    matrix = np.ascontiguousarray(index._store.matrix)
    graph = index._hnsw  # usearch writes it to a file, streamed from there: never copied
    sections: dict[str, Section] = {
        "keys": keys_to_ipc(keys),
        "alive": np.packbits(index._alive),
        "vectors": matrix if graph is None else FileSection(graph.size(), graph.save_to),
    }
    if graph is not None and index.rescore:
        sections["matrix"] = matrix
    fields = {
        "model": index.model,
        "model_key": index.model_key,
        "metric": index.metric.value,
        "dim": index.dim,
        "dtype": index.dtype,
        "exact": index.exact,
        "rescore": index.rescore,
        "count": len(index),
        "labels": len(index._alive),
        "params": index._params,
        "meta": index.meta,
    }
    return write_index_file(path, fields, sections)


def open_index(
    cls: type[VectorIndex], path: Path, *, view: bool, verify: bool = True
) -> VectorIndex:
    """Open a saved index: checked whole before anything is built, loaded or mapped."""
    checked = None if verify else ("keys", "alive")
    required = ("keys", "alive", "vectors")
    file = read_index_file(path, required=required, view=view, verify=checked)
    saved = check_saved(path, file, values=verify)  # fields and sizes, before building
    index = cls(
        saved.dim,
        metric=saved.metric,
        dtype=saved.dtype,
        exact=saved.exact,
        rescore=saved.rescore,
        model=saved.model,
        model_key=saved.model_key,
        M=saved.params["M"],
        ef_construction=saved.params["ef_construction"],
        ef_search=saved.params["ef_search"],
    )
    index.meta = saved.meta
    index._keys, index._alive = saved.keys, saved.alive
    if saved.matrix is not None:
        mat = np.frombuffer(saved.matrix, dtype=np.float32).reshape(-1, index.dim)
        index._store.replace(mat if view else mat.copy())
    if index._hnsw is not None and saved.graph is not None:
        (index._hnsw.view if view else index._hnsw.load)(saved.graph)
    if view:
        index._buffer = file.buffer  # keeps the mapping alive as long as the index
    return index
