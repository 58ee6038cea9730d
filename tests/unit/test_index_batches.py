"""Building an index from a stream of record batches, in memory bounded by one batch."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.vectors import VectorIndex, from_numpy
from embed_sql.vectors.exact import ExactStore
from embed_sql.vectors.metrics import Metric


def vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, dim)) * 4
    return (centres[rng.integers(0, 8, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def table(n: int, dim: int = 16) -> pa.Table:
    return pa.table({"id": pa.array(np.arange(n) * 3 + 7), "v": from_numpy(vectors(n, dim))})


@pytest.mark.parametrize("exact", [True, False])
def test_batches_give_the_index_a_whole_column_gives(exact: bool) -> None:
    t = table(2_000)
    whole = VectorIndex.build(t["v"], t["id"], exact=exact)
    streamed = VectorIndex.from_batches(t.to_batches(max_chunksize=300), exact=exact)
    assert len(streamed) == len(whole) == 2_000
    assert streamed.keys().equals(whole.keys())
    np.testing.assert_array_equal(streamed.vectors(), whole.vectors())
    q = vectors(40, seed=1)
    a, b = streamed.search(q, 5, exact=True), whole.search(q, 5, exact=True)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.distances, b.distances)


def test_a_parquet_file_written_as_duckdb_writes_it_is_read_batch_by_batch(tmp_path: Path) -> None:
    # DuckDB and Polars write vectors to Parquet as plain lists, with NULL rows; the first
    # batch here holds only NULL vectors, which tell no dimension
    mat = vectors(1_000)
    valid = np.ones(1_000, dtype=bool)
    valid[:250] = False
    valid[600] = False
    lists = pa.array([row.tolist() if ok else None for row, ok in zip(mat, valid, strict=True)])
    path = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"id": np.arange(1_000), "v": lists}), path, row_group_size=250)
    file = pq.ParquetFile(path)
    index = VectorIndex.from_batches(
        file.iter_batches(batch_size=250), rows=file.metadata.num_rows, exact=True
    )
    assert len(index) == valid.sum()
    assert index.keys().to_pylist() == np.flatnonzero(valid).tolist()
    np.testing.assert_array_equal(index.vectors(), mat[valid])


def test_duplicate_keys_are_refused_within_and_across_batches() -> None:
    t = table(100)
    again = pa.table({"id": pa.array([7, 500]), "v": from_numpy(vectors(2))})
    with pytest.raises(InvalidParameterError, match="duplicate key 7"):
        VectorIndex.from_batches([*t.to_batches(max_chunksize=40), *again.to_batches()])
    twice = pa.table({"id": pa.array([1, 1]), "v": from_numpy(vectors(2))})
    with pytest.raises(InvalidParameterError, match="duplicate key 1"):
        VectorIndex.from_batches(twice.to_batches())
    both = VectorIndex.from_batches([*t.to_batches(), *again.to_batches()], allow_duplicates=True)
    assert len(both) == 102


def test_bad_streams_are_refused_with_the_fix() -> None:
    t = table(10)
    with pytest.raises(ColumnNotFoundError, match="vec="):
        VectorIndex.from_batches(t.to_batches(), vec="embedding")
    with pytest.raises(ColumnNotFoundError, match="key="):
        VectorIndex.from_batches(t.to_batches(), key="doc")
    other = pa.table({"id": pa.array(["a"]), "v": from_numpy(vectors(1))})
    with pytest.raises(InputTypeError, match="keys of type string follow keys of type int64"):
        VectorIndex.from_batches([*t.to_batches(), *other.to_batches()])
    with pytest.raises(InvalidParameterError, match="does not tell the dimension"):
        VectorIndex.from_batches([])
    empty = pa.RecordBatchReader.from_batches(t.schema, [])
    assert len(VectorIndex.from_batches(empty)) == 0
    assert VectorIndex.from_batches(empty).dim == 16


@pytest.mark.parametrize("exact", [True, False])
def test_unusable_norms_are_refused_naming_the_row_of_the_stream(exact: bool) -> None:
    # the first batch holds only NULL vectors; the huge one is the 5th row of the third batch
    mat = vectors(30)
    mat[24] *= 1e20
    lists = [None] * 10 + [row.tolist() for row in mat[10:]]
    t = pa.table({"id": np.arange(30), "v": pa.array(lists, pa.list_(pa.float32()))})
    with pytest.raises(InvalidParameterError, match="row 24: norm"):
        VectorIndex.from_batches(t.to_batches(max_chunksize=10), exact=exact)
    mat[24] /= 1e20
    mat[3] = 1e-30  # vanishing, under cos only
    t = pa.table({"id": np.arange(30), "v": from_numpy(mat)})
    with pytest.raises(InvalidParameterError, match="row 3: norm"):
        VectorIndex.from_batches(t.to_batches(max_chunksize=10), exact=exact)
    assert len(VectorIndex.from_batches(t.to_batches(), metric="l2sq", exact=exact)) == 30
    mat[27, 5] = np.nan
    t = pa.table({"id": np.arange(30), "v": from_numpy(mat)})
    with pytest.raises(InputTypeError, match="row 27"):
        VectorIndex.from_batches(t.to_batches(max_chunksize=10), metric="l2sq", exact=exact)


def test_numpy_rows_of_nan_are_null_and_a_nan_or_overflow_among_numbers_is_refused() -> None:
    mat = vectors(4).astype(np.float64)
    mat[1] = np.nan  # a NULL, as to_numpy writes one
    assert VectorIndex(16, exact=True).add([1, 2, 3, 4], mat) == 3
    for bad in (np.nan, np.inf, 1e39):  # 1e39: beyond float32, inf once cast
        odd = mat.copy()
        odd[2, 3] = bad
        with pytest.raises(InputTypeError, match="row 2"):
            VectorIndex(16, exact=True).add([1, 2, 3, 4], odd)
    with pytest.raises(InputTypeError, match="numeric"):
        VectorIndex(16, exact=True).add([1], [["a"] * 16])


def test_the_model_comes_from_the_field_metadata() -> None:
    t = table(10)
    field = t.schema.field("v").with_metadata({b"embed_sql.model_key": b"k-123"})
    t = t.cast(pa.schema([t.schema.field("id"), field]))
    assert VectorIndex.from_batches(t.to_batches()).model_key == "k-123"


def test_appending_batches_does_not_copy_the_stored_vectors_each_time() -> None:
    # the float32 store used to concatenate its whole matrix with every batch: quadratic
    # copying, and twice the matrix in memory at each step
    store = ExactStore(8, Metric.COS)
    moves = 0
    for i in range(200):
        before = store.matrix
        store.append(vectors(10, 8, seed=i), source=None)
        moves += not np.shares_memory(before, store.matrix)
    assert len(store.matrix) == 2_000
    np.testing.assert_array_equal(store.matrix[-10:], vectors(10, 8, seed=199))
    assert moves <= 15  # grows by half when full: ~log1.5(200) moves, not one per batch


def test_a_reserved_stream_holds_the_float32_vectors_once() -> None:
    t = table(20_000, dim=64)  # 5 MiB of vectors
    batches = t.to_batches(max_chunksize=1_000)
    tracemalloc.start()
    try:
        index = VectorIndex.from_batches(batches, rows=t.num_rows, exact=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    matrix = 20_000 * 64 * 4
    assert index.nbytes >= matrix
    assert peak < 1.3 * matrix  # was 2x: the old matrix and its concatenated copy


def test_duplicate_keys_are_found_by_sorting_in_memory_near_the_keys() -> None:
    import subprocess
    import sys

    from embed_sql.vectors.inputs import first_duplicate

    assert first_duplicate(pa.array([5, 3, 9, 3, 5])) == (True, 3)
    assert first_duplicate(pa.array(["b", "a", "c", "a"])) == (True, "a")
    assert first_duplicate(pa.array([2**62, -1, 0])) == (False, None)
    assert first_duplicate(pa.array(["x"])) == (False, None)
    # the end of a 10M-row index build jumped by 1.7 GiB: Arrow's count_distinct hash table
    # over the keys, kept by its pool; the sort takes about twice the keys' 40 MiB here
    code = """
import numpy as np, pyarrow as pa
from embed_sql.vectors.inputs import refuse_duplicates
keys = pa.array(np.arange(5_000_000, dtype=np.int64) * 3)
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
before = hwm()
refuse_duplicates(keys[:0], keys)
print((hwm() - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 200, out.stdout  # MiB; the hash table took ~900
