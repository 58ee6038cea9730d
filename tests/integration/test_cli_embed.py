"""`embed-sql embed` on real text with real models: the vectors every other host gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embed_sql.cli import main
from embed_sql.models.encoder import shared_encoder
from tests.corpus import bbc_articles


@pytest.mark.parametrize("model", ["all-MiniLM-L6-v2", "potion-base-8M"])
def test_embed_command_gives_the_encoders_vectors(model: str, tmp_path: Path) -> None:
    rows = bbc_articles()[:300]
    titles = [title for _, title, _ in rows]
    pq.write_table(
        pa.table({"id": range(len(rows)), "topic": [t for t, _, _ in rows], "title": titles}),
        tmp_path / "news.parquet",
        row_group_size=64,
    )
    out = tmp_path / "vectors.parquet"
    args = ["embed", str(tmp_path / "news.parquet"), str(out), "--column", "title"]
    assert main([*args, "--model", model, "--key", "id", "--batch-rows", "100"]) == 0
    got = pq.read_table(out)
    assert got.column("id").to_pylist() == list(range(len(rows)))
    vectors = np.stack(got.column("v").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(vectors, shared_encoder(model).encode_numpy(titles))
