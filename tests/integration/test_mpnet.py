"""all-mpnet-base-v2, the opt-in stronger model (``make models-extra``), when it is present.

The reference vectors are sentence-transformers' own (tests/data/mpnet_reference.npy: its
``SentenceTransformer(<the folder joined from the five wheels>).encode(texts)``, 3.x, CPU,
on every 25th of the 600 varied texts, from 2 characters to whole articles past the
384-token limit).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

import embed_sql
from embed_sql import TextEncoder, models
from tests.corpus import varied_texts

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "mpnet_reference.npy"


@pytest.fixture(scope="module")
def mpnet() -> TextEncoder:
    try:
        models.resolve("all-mpnet-base-v2", offline=True)
    except Exception:
        pytest.skip("all-mpnet-base-v2 is opt-in and not in the cache: run `make models-extra`")
    return embed_sql.models.encoder.shared_encoder("all-mpnet-base-v2")


def test_vectors_equal_sentence_transformers(mpnet: TextEncoder) -> None:
    texts = varied_texts(600)[::25]
    want = np.load(REFERENCE)
    got = mpnet.encode_numpy(texts)
    assert got.shape == want.shape == (24, 768)
    cos = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.999


def test_it_is_a_model_name_like_any_other(mpnet: TextEncoder) -> None:
    con = duckdb.connect()
    embed_sql.register(con, models={"mpnet": "all-mpnet-base-v2"})
    got = con.sql("SELECT embed_mpnet('street food'), typeof(embed_mpnet('x'))").fetchall()[0]
    assert got[1] == "FLOAT[768]"
    np.testing.assert_array_equal(
        np.asarray(got[0], np.float32), mpnet.encode_numpy(["street food"])[0]
    )
