"""The vector operators on real text embeddings (BBC News titles, default model)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import embed_sql.polars  # noqa: F401
from embed_sql.vectors import VectorIndex, cluster, dedup, recall

pytestmark = pytest.mark.integration


def test_hnsw_recall_on_real_embeddings(news: pa.Table) -> None:
    index = VectorIndex.build(news.column("v"), news.column("id"))
    assert recall(index, k=10, sample=500) >= 0.95


def test_kmeans_recovers_the_news_topics(news: pa.Table) -> None:
    res = cluster(news, k=5, seed=0)
    labels = np.asarray(res.table.column("cluster"))
    topics = news.column("topic").to_pylist()
    majority = sum(
        Counter(t for t, c in zip(topics, labels, strict=True) if c == k).most_common(1)[0][1]
        for k in range(5)
    )
    assert majority / len(topics) >= 0.6  # purity; chance is about 0.23


def test_dedup_finds_the_repeated_articles(news: pa.Table) -> None:
    flags = dedup(news, 0.001)
    texts = news.column("text").to_pylist()
    groups = flags.column("group").to_pylist()
    first_seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        first_seen.setdefault(t, i)
        assert groups[i] == groups[first_seen[t]]  # identical text, same group
    repeated = len(texts) - len(first_seen)
    assert repeated > 0
    assert flags.column("keep").to_pylist().count(False) >= repeated


def test_polars_search_finds_sport_for_a_football_query(news: pa.Table) -> None:
    df = pl.from_arrow(news)
    hits = df.embed.search("football match result", k=5)
    assert Counter(hits["topic"].to_list()).most_common(1)[0][0] == "sports"
