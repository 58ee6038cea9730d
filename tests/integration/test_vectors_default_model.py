"""The vector operators on real text embeddings (BBC News titles, default model)."""

from __future__ import annotations

from collections import Counter

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql.vectors import VectorIndex, cluster, dedup, recall
from embed_sql.vectors.metrics import Metric, pair_distances

pytestmark = pytest.mark.integration


def test_hnsw_recall_on_real_embeddings(news: pa.Table) -> None:
    # the default preset is chosen to reach 0.98 on sentence embeddings; "fast" trades it
    index = VectorIndex.build(news.column("v"), news.column("id"))
    assert recall(index, k=10, sample=500) >= 0.98
    fast = VectorIndex.build(news.column("v"), news.column("id"), preset="fast")
    assert recall(fast, k=10, sample=500) >= 0.9


def test_default_index_distances_equal_duckdbs_array_functions(news: pa.Table) -> None:
    con = duckdb.connect()
    try:
        embed_sql.register(con)
        con.register("src", news.select(["id", "v"]))
        con.execute("CREATE TABLE docs AS SELECT id, v::FLOAT[384] AS v FROM src").fetchall()
        index = embed_sql.create_index(con, "news_index", "docs")  # f16 graph, f32 rescoring
        assert (index.dtype, index.rescore) == ("f16", True)
        got = con.sql(
            """
            SELECT j.distance, array_cosine_distance(a.v, b.v), j.rank
            FROM embed_knn_join('docs', 'news_index', k := 5) AS j
            JOIN docs AS a ON a.id = j.left_key JOIN docs AS b ON b.id = j.right_key
            """
        ).fetchall()
    finally:
        con.close()
    ours, theirs, ranks = (np.array(c, dtype=np.float64) for c in zip(*got, strict=True))
    assert len(ours) == 5 * news.num_rows
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    x = np.asarray(news.column("v").combine_chunks().flatten()).reshape(-1, 384)
    plain = VectorIndex.build(x, news.column("id"), rescore=False)
    approx = plain.search(x, 5)
    exact = pair_distances(Metric.COS, x[:, None, :], x[approx.labels])
    assert np.abs(approx.distances - exact).max() > 1e-5  # what rescoring fixes
    assert set(ranks) == {1, 2, 3, 4, 5}


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
    groups = flags.column("group_id").to_pylist()
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


def test_sql_only_index_finds_sport_for_a_football_query(news: pa.Table) -> None:
    con = duckdb.connect()
    try:
        embed_sql.register(con)
        con.register("src", news.select(["id", "topic", "v"]))
        con.execute("CREATE TABLE docs AS SELECT id, topic, v::FLOAT[384] AS v FROM src")
        made = con.sql("SELECT embed_create_index('news_index', 'docs')").fetchall()
        assert made == [(news.num_rows,)]
        hits = con.sql(
            """
            SELECT d.topic FROM embed_search('news_index', 'football match result', k := 5) s
            JOIN docs d ON d.id = s.key ORDER BY s.rank
            """
        ).fetchall()
    finally:
        con.close()
    assert Counter(t for (t,) in hits).most_common(1)[0][0] == "sports"


def test_fp32_and_int8_columns_of_the_default_model_are_not_joined(news: pa.Table) -> None:
    con = duckdb.connect()
    try:
        embed_sql.register(con, models={"q8": "all-MiniLM-L6-v2:int8"})
        spread = news.take(list(range(0, news.num_rows, news.num_rows // 300))[:300])
        con.register("src", spread.select(["id", "text"]))
        con.execute("CREATE TABLE f AS SELECT id, embed(text) AS v FROM src").fetchall()
        con.execute("CREATE TABLE q AS SELECT id, embed_q8(text) AS v FROM src").fetchall()
        con.execute("SELECT embed_create_index('f_index', 'f')").fetchall()
        con.execute("SELECT embed_create_index('q_index', 'q')").fetchall()
        # each column joins its own model's index; the int8 index embeds text queries in int8
        assert len(con.sql("FROM embed_knn_join('q', 'q_index', k := 3)").fetchall()) == 900
        hits = con.sql("SELECT key FROM embed_search('q_index', 'football', k := 3)").fetchall()
        topics = news.column("topic").to_pylist()
        assert [topics[h] for (h,) in hits].count("sports") >= 2
        with pytest.raises(duckdb.Error, match=r"different models .*all-MiniLM-L6-v2:int8"):
            con.sql("FROM embed_knn_join('q', 'f_index', k := 3)").fetchall()
    finally:
        con.close()
