"""The real default model against the original (sentence-transformers on PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

from embed_sql import TextEncoder, models
from tests.corpus import EDGE_CASES

pytestmark = pytest.mark.integration


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_reference_set_is_varied(reference_texts: list[str]) -> None:
    assert len(reference_texts) >= 500
    assert set(EDGE_CASES) <= set(reference_texts)
    lengths = [len(t.split()) for t in reference_texts]
    assert min(lengths) == 0
    assert sum(n > 250 for n in lengths) >= 50  # past the 256-token limit: truncation matters


def test_fp32_matches_sentence_transformers_on_every_row(
    reference_texts: list[str], reference_vectors: np.ndarray
) -> None:
    enc = TextEncoder(models.DEFAULT_MODEL)
    assert enc.resolved.variant == "fp32"
    cos = _cosines(enc.encode_numpy(reference_texts), reference_vectors)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.999, (cos.min(), reference_texts[worst][:200])


def test_int8_stays_within_the_documented_bounds(
    reference_texts: list[str], reference_vectors: np.ndarray
) -> None:
    enc = TextEncoder("all-MiniLM-L6-v2:int8")
    assert enc.resolved.variant == "int8"
    cos = _cosines(enc.encode_numpy(reference_texts), reference_vectors)
    assert cos.mean() >= 0.99, cos.mean()
    assert cos.min() >= 0.97, cos.min()


def test_default_model_resolves_offline_from_cache_or_package() -> None:
    resolved = models.resolve(models.DEFAULT_MODEL, offline=True)
    assert resolved.source in {"cache", "package"}
    assert resolved.spec.dim == 384


def test_related_sentences_are_closer_than_unrelated_ones() -> None:
    enc = TextEncoder()
    food, tacos, rates = enc.encode_numpy(
        [
            "The new taqueria serves an enormous burrito.",
            "A Mexican restaurant famous for its tacos opened downtown.",
            "The central bank raised interest rates again.",
        ]
    )
    assert food @ tacos > food @ rates + 0.2
