"""What only the Polars host does: contexts, lazy and streaming engines, conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import embed_sql.polars  # noqa: F401 - registers pl.col(...).embed
from embed_sql import TextEncoder
from embed_sql.exceptions import InputTypeError
from embed_sql.udfs.polars import vector_dtype, vectors_to_numpy
from tests.tiny_model import HIDDEN

DF = pl.DataFrame(
    {
        "g": ["a", "a", "b", "b", "b"],
        "s": ["food", None, "rain", "storm flood", "cup"],
        "n": [1, 2, 3, 4, 5],
    }
)


def test_with_columns_declares_the_array_dtype_before_running(tiny_source: Path) -> None:
    lf = DF.lazy().with_columns(v=pl.col("s").embed.text(str(tiny_source)))
    assert lf.collect_schema()["v"] == pl.Array(pl.Float32, HIDDEN)
    assert vector_dtype(HIDDEN) == pl.Array(pl.Float32, HIDDEN)


def test_group_by_agg_embeds_within_groups(tiny_source: Path, tiny_encoder: TextEncoder) -> None:
    out = DF.group_by("g", maintain_order=True).agg(v=pl.col("s").embed.text(str(tiny_source)))
    assert out["v"].dtype == pl.List(pl.Array(pl.Float32, HIDDEN))
    b = vectors_to_numpy(out.filter(pl.col("g") == "b")["v"].explode())
    np.testing.assert_array_equal(b, tiny_encoder.encode_numpy(["rain", "storm flood", "cup"]))


def test_streaming_engine_matches_eager(tiny_source: Path) -> None:
    texts = [f"food {i}" if i % 5 else None for i in range(20_000)]
    lf = pl.LazyFrame({"s": texts}).with_columns(v=pl.col("s").embed.text(str(tiny_source)))
    streamed = lf.collect(engine="streaming")
    eager = lf.collect()
    assert streamed["v"].null_count() == sum(t is None for t in texts)
    np.testing.assert_array_equal(vectors_to_numpy(streamed["v"]), vectors_to_numpy(eager["v"]))


def test_non_text_column_is_refused_with_a_cast_hint(tiny_source: Path) -> None:
    with pytest.raises(InputTypeError, match=r"column 'n' of type Int64.*cast\(pl\.String\)"):
        DF.select(pl.col("n").embed.text(str(tiny_source)))


def test_vectors_to_numpy_is_zero_copy_without_nulls_and_nan_with(tiny_source: Path) -> None:
    out = DF.select(v=pl.col("s").embed.text(str(tiny_source)))["v"]
    mat = vectors_to_numpy(out)
    assert mat.shape == (5, HIDDEN)
    assert np.isnan(mat[1]).all()
    dense = out.drop_nulls()
    np.testing.assert_array_equal(vectors_to_numpy(dense), mat[[0, 2, 3, 4]])
    with pytest.raises(InputTypeError, match=r"expected a pl\.Array"):
        vectors_to_numpy(DF["n"])


def test_sliced_series_round_trip_keeps_the_offset(tiny_source: Path) -> None:
    out = DF.select(v=pl.col("s").embed.text(str(tiny_source)))["v"]
    np.testing.assert_array_equal(vectors_to_numpy(out.slice(2, 2)), vectors_to_numpy(out)[2:4])


def test_streaming_scan_embeds_in_bounded_batches(
    tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embed_sql.models.encoder import shared_encoder

    path = tmp_path / "docs.parquet"
    pl.DataFrame({"s": [f"food {i % 50}" for i in range(200_000)]}).write_parquet(
        path, row_group_size=20_000
    )
    encoder = shared_encoder(str(tiny_source))
    sizes: list[int] = []
    real = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda t: (sizes.append(len(t)), real(t))[1])
    out = (
        pl.scan_parquet(path)
        .with_columns(v=pl.col("s").embed.text(str(tiny_source)))
        .select(pl.col("v").arr.get(0).count())
        .collect(engine="streaming")
    )
    assert out.item() == 200_000
    assert sum(sizes) == 200_000
    assert max(sizes) <= 100_000  # never the whole column at once
