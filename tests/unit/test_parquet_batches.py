"""Reading Parquet in batches in memory bounded by one row group, not by the file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embed_sql.cli import main
from embed_sql.exceptions import ColumnNotFoundError
from embed_sql.pipelines.files import parquet_batches
from embed_sql.vectors import VectorIndex, from_numpy


@pytest.fixture
def vectors_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """32 MiB of 64-d vectors in 64 row groups of 2,048 rows."""
    x = np.random.default_rng(0).normal(size=(64 * 2048, 64)).astype(np.float32)
    path = tmp_path / "vectors.parquet"
    pq.write_table(
        pa.table({"id": np.arange(len(x)), "v": from_numpy(x)}), path, row_group_size=2048
    )
    return path, x


def peak_live_mib(batches: Iterable[pa.RecordBatch]) -> tuple[float, int]:
    """The most bytes pyarrow held while the batches were read one by one, and the rows."""
    peak, rows = 0, 0
    for batch in batches:
        rows += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes())
    return peak / 2**20, rows


def test_reading_holds_one_row_group_not_the_file(vectors_file: tuple[Path, np.ndarray]) -> None:
    # ParquetFile.iter_batches over the whole file held 53 MiB of this 32 MiB file by its end
    # (pyarrow 26; Dataset.to_batches 67 MiB): an index built from 10M vectors read that way
    # held them all a second time
    path, x = vectors_file
    peak, rows = peak_live_mib(parquet_batches(path, ["id", "v"], batch_rows=4096))
    assert rows == len(x)
    assert peak < 8  # one 2,048-row group is 0.5 MiB; the file 32


def test_batches_keep_order_split_row_groups_and_feed_an_index(
    vectors_file: tuple[Path, np.ndarray],
) -> None:
    path, x = vectors_file
    batches = list(parquet_batches(path, ["v", "id"], batch_rows=1000))
    assert {b.num_rows for b in batches} == {1000, 48}  # never across a row group
    ids = pa.concat_arrays([b.column("id") for b in batches])
    assert ids.to_pylist() == list(range(len(x)))
    index = VectorIndex.from_batches(parquet_batches(path, ["id", "v"]), exact=True)
    np.testing.assert_array_equal(index.vectors(), x)


def test_files_of_a_folder_are_read_in_order_and_cast_to_one_schema(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"id": pa.array([1, 2], pa.int32()), "t": ["a", "b"]}), tmp_path / "0.parquet"
    )
    pq.write_table(pa.table({"id": pa.array([3], pa.int64()), "t": ["c"]}), tmp_path / "1.parquet")
    schema = pa.schema([("id", pa.int64()), ("t", pa.string())])
    got = list(parquet_batches([tmp_path / "0.parquet", tmp_path / "1.parquet"], schema=schema))
    table = pa.Table.from_batches(got)
    assert table.schema == schema
    assert table.column("id").to_pylist() == [1, 2, 3]
    with pytest.raises(ColumnNotFoundError, match="'body'"):
        next(parquet_batches(tmp_path / "0.parquet", ["id", "body"]))


def test_the_cli_embeds_a_folder_of_parquet_files(
    tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for part in range(3):
        ids = pa.array(range(part * 10, part * 10 + 10), pa.int32() if part else pa.int64())
        texts = [f"text {i}" for i in range(10)]
        pq.write_table(pa.table({"id": ids, "body": texts}), folder / f"part-{part}.parquet")
    out = tmp_path / "out.parquet"
    args = ["embed", str(folder), str(out), "--column", "body", "--key", "id"]
    assert main([*args, "--model", str(tiny_source)]) == 0
    assert "30 rows" in capsys.readouterr().out
    got = pq.read_table(out)
    assert got.column("id").type == pa.int64()
    assert got.column("id").to_pylist() == list(range(30))
