"""Vectors DuckDB writes to Parquet, read back by the index, the drift check and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embed_sql.cli import main
from embed_sql.exceptions import InputTypeError
from embed_sql.pipelines.drift.check import read_sample
from embed_sql.pipelines.files import parquet_batches
from embed_sql.vectors import VectorIndex, to_numpy
from tests.corpus import sentences

duckdb = pytest.importorskip("duckdb")


@pytest.fixture
def con(tiny_source: Path) -> duckdb.DuckDBPyConnection:
    import embed_sql

    con = duckdb.connect()
    embed_sql.register(con, model=str(tiny_source))
    texts = sentences(5, 40)[:300]
    nulls = set(range(0, 300, 7))  # a NULL in every row group of 50
    con.register(
        "src",
        pa.table(
            {
                "id": pa.array(range(300), pa.int64()),
                "text": pa.array([None if i in nulls else t for i, t in enumerate(texts)]),
            }
        ),
    )
    return con


def copy(con: duckdb.DuckDBPyConnection, path: Path, vector: str) -> np.ndarray:
    """Write ``id, <vector> AS v`` as the README says; return the vectors DuckDB computed."""
    con.execute(
        f"COPY (SELECT id, {vector} AS v FROM src ORDER BY id) TO '{path}' "
        "(FORMAT parquet, ROW_GROUP_SIZE 50)"
    )
    vectors = con.sql("SELECT embed(text) AS v FROM src ORDER BY id").to_arrow_table()
    return to_numpy(vectors.column("v"))


def test_vectors_written_as_lists_feed_the_index_drift_and_cli(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vectors.parquet"
    mat = copy(con, path, "embed(text)::FLOAT[]")
    valid = ~np.isnan(mat).any(axis=1)
    index = VectorIndex.from_batches(parquet_batches(path, ["id", "v"], 32), exact=True)
    assert index.keys().to_pylist() == np.flatnonzero(valid).tolist()
    np.testing.assert_array_equal(index.vectors(), mat[valid])
    # a list column of one length is a vector column for the drift check (it was refused)
    sample, _ = read_sample(path, "v")
    assert sample.column("v").type == pa.list_(pa.float32(), mat.shape[1])
    np.testing.assert_array_equal(to_numpy(sample.column("v")), mat, strict=False)
    assert main(["drift", str(path), str(path), "--column", "v"]) == 0
    out = capsys.readouterr().out
    kept = int(valid.sum())
    assert f"reference {kept} rows, current {kept} rows, dim {mat.shape[1]}" in out
    assert f"{300 - kept} NULL reference vectors skipped" in out


def test_null_fixed_size_arrays_are_refused_naming_duckdbs_bug_and_the_cast(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "arrays.parquet"
    mat = copy(con, path, "embed(text)")  # FLOAT[d] with NULLs
    try:
        readable = pq.read_table(path)
    except pa.ArrowInvalid:
        readable = None
    if readable is not None:  # DuckDB fixed duckdb#24731: then the file must read right
        got = to_numpy(pa.chunked_array(readable.column("v").chunks))
        np.testing.assert_array_equal(got, mat)
        return
    with pytest.raises(InputTypeError) as caught:
        list(parquet_batches(path, ["id", "v"]))
    message = str(caught.value)
    assert repr(str(path)) in message
    assert "row group 0" in message
    assert "written by DuckDB" in message
    assert "duckdb/duckdb#24731" in message
    assert "embed(text)::FLOAT[] AS v" in message
    with pytest.raises(InputTypeError, match=r"duckdb#24731.*::FLOAT\[\]"):
        read_sample(path, "v")
    assert main(["drift", str(path), str(path), "--column", "v"]) == 2


def test_a_list_column_of_two_lengths_is_refused_for_drift(tmp_path: Path) -> None:
    path = tmp_path / "ragged.parquet"
    v = pa.array([[1.0, 2.0], [1.0, 2.0], None], pa.list_(pa.float32()))
    w = pa.array([[1.0, 2.0, 3.0]], pa.list_(pa.float32()))
    with pq.ParquetWriter(path, pa.schema([pa.field("v", v.type)])) as writer:
        writer.write_table(pa.table({"v": v}))
        writer.write_table(pa.table({"v": w}))
    with pytest.raises(Exception, match="mixes vector lengths") as caught:
        read_sample(path, "v")
    assert "ragged.parquet" in str(caught.value)
