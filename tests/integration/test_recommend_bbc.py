"""Recommendations on BBC News with the real default model: readers get their own topic."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from embed_sql.models.encoder import shared_encoder
from embed_sql.pipelines.recommend import recommend
from tests.corpus import bbc_articles


def test_readers_of_one_topic_are_recommended_that_topic() -> None:
    articles = bbc_articles()
    topics = np.array([t for t, _, _ in articles])
    vectors = shared_encoder("all-MiniLM-L6-v2").encode([title for _, title, _ in articles])
    items = pa.table({"id": np.arange(len(articles)), "v": vectors})
    rng = np.random.default_rng(0)
    users, reads, likes = [], [], {}
    for u, topic in enumerate(sorted(set(topics)) * 4):  # 20 readers, 5 articles each
        likes[f"u{u}"] = topic
        for i in rng.choice(np.flatnonzero(topics == topic), 5, replace=False):
            users.append(f"u{u}")
            reads.append(int(i))
    out = recommend(pa.table({"user_id": users, "item_id": reads}), items, k=10)
    got = zip(out.column("user_key").to_pylist(), out.column("item_key").to_pylist(), strict=True)
    same = [topics[item] == likes[user] for user, item in got]
    assert len(same) == 200
    assert np.mean(same) > 0.85  # five topics: chance is 0.2
    assert not set(zip(users, reads, strict=True)) & set(
        zip(out.column("user_key").to_pylist(), out.column("item_key").to_pylist(), strict=True)
    )
