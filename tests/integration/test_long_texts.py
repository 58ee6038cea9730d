"""Long texts are read only as far as the model reads them, with the very same vectors."""

from __future__ import annotations

import numpy as np
import pytest

from embed_sql.models import encoder as encoder_module
from embed_sql.models.encoder import shared_encoder
from tests.corpus import bbc_articles, passages


def test_cutting_long_texts_changes_no_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = shared_encoder("all-MiniLM-L6-v2")
    texts = [
        *passages(1000, 4),  # ~6,000 characters each: cut to a prefix
        " ".join(body for _, _, body in bbc_articles()[:3]),
        "x" * 9000 + " tail",  # one huge "word" first: the prefix falls short, re-read in full
        "https://example.org/" + "a/" * 3000 + " then words " * 200,
        "short text",
        "word\n" * 3000,  # lines, no spaces
    ]
    cut = enc.encode_numpy(texts)
    monkeypatch.setattr(encoder_module, "CHARS_PER_TOKEN", 10**9)  # never cut
    whole = enc.encode_numpy(texts)
    np.testing.assert_array_equal(cut, whole)
