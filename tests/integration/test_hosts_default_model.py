"""The real default model in every host: identical vectors, and search that finds food."""

from __future__ import annotations

import numpy as np
import pytest

from embed_sql import models
from embed_sql.demo import HEADLINES
from embed_sql.models.encoder import shared_encoder
from embed_sql.vectors import to_numpy
from tests.corpus import EDGE_CASES, bbc_articles
from tests.hosts.conftest import HOSTS, Host

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def headlines() -> list[str | None]:
    titles: list[str | None] = [t for _, t, _ in bbc_articles()[::4]]
    return [*titles, *EDGE_CASES, None]


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_same_text_same_vector_bit_for_bit(host: Host, headlines: list[str | None]) -> None:
    out = to_numpy(host.embed(headlines, models.DEFAULT_MODEL))
    ref = shared_encoder().encode_numpy(headlines)
    assert len(out) == len(headlines) > 500
    assert np.isnan(out[-1]).all()
    np.testing.assert_array_equal(out[:-1], ref[:-1])


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: h.name)
def test_food_finds_the_burrito_headline(host: Host) -> None:
    titles = [t for _, t in HEADLINES]
    docs = to_numpy(host.embed(titles, models.DEFAULT_MODEL))
    query = to_numpy(host.embed(["food"], models.DEFAULT_MODEL))[0]
    best = titles[int(np.argmax(docs @ query))]
    assert "burrito" in best
