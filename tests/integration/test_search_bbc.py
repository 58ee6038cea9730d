"""Search on BBC News with the real default model: hybrid ranking, SQL = Python, passages.

The judged queries (``tests/data/search_queries.csv``) each paraphrase one article and hinge
on a rare name or a number; eight of them ask about a fact deep in the article, past the
opening that the article's vector sees. The right article is the one with the given title.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import embed_sql
from embed_sql.pipelines.search import BM25Index, search
from tests.corpus import bbc_articles

QUERIES = Path(__file__).resolve().parent.parent / "data" / "search_queries.csv"


def judged() -> list[tuple[str, str]]:
    with QUERIES.open(newline="") as f:
        return [(row["query"], row["title"]) for row in csv.DictReader(f)]


def mrr(found: pa.Table, titles: list[str], queries: list[tuple[str, str]]) -> float:
    """Mean reciprocal rank of the judged article in each query's top 10."""
    ranks: dict[str, int] = {}
    for q, key, rank in zip(
        *(found.column(c).to_pylist() for c in ("query", "key", "rank")), strict=True
    ):
        if titles[key] == dict(queries)[q] and q not in ranks:
            ranks[q] = rank
    return float(np.mean([1 / ranks[q] if q in ranks else 0.0 for q, _ in queries]))


@pytest.fixture(scope="module")
def articles(news: pa.Table) -> pa.Table:
    """The shared news vectors (title and opening) beside each article's full text."""
    return news.append_column("body", pa.array([f"{t}. {b}" for _, t, b in bbc_articles()]))


def test_hybrid_beats_vectors_and_bm25_alone(articles: pa.Table) -> None:
    queries = judged()
    titles = [t for _, t, _ in bbc_articles()]
    asked = [q for q, _ in queries]
    bm25 = BM25Index(articles.column("body"))
    scores = {
        name: mrr(search(articles, asked, k=10, text="body", bm25=bm25, **kw), titles, queries)
        for name, kw in {
            "vector": {},
            "bm25": {"hybrid": True, "weight": 0.0},
            "hybrid": {"hybrid": True},
        }.items()
    }
    assert scores["hybrid"] > scores["vector"]
    assert scores["hybrid"] > scores["bm25"]
    assert scores["hybrid"] > 0.9


def test_sql_hybrid_search_gives_pythons_ranking(articles: pa.Table) -> None:
    con = duckdb.connect()
    try:
        embed_sql.register(con)
        con.register("src", articles.select(["id", "body", "v"]))
        con.execute("CREATE TABLE news AS SELECT id, body, v::FLOAT[384] AS v FROM src").fetchall()
        con.execute("SELECT embed_create_index('news_ix', 'news', exact := true)").fetchall()
        asked = [q for q, _ in judged()[:12]]
        want = search(articles, asked, k=5, text="body", hybrid=True)
        for q in asked:
            got = con.execute(
                "SELECT key FROM embed_search('news_ix', ?, k := 5, hybrid := true)", [q]
            ).fetchall()
            mine = want.filter(pa.compute.equal(want.column("query"), q))
            assert [k for (k,) in got] == mine.column("key").to_pylist(), q
    finally:
        con.close()


def test_passages_of_chunked_articles_answer_per_article() -> None:
    """A fact deep in an article is found by its passage and reported once per article."""
    queries = judged()[-8:]  # the deep facts
    wanted = {t for _, t in queries}
    everything = list({a[1]: a for a in bbc_articles()}.values())  # the corpus repeats some
    picked = [a for a in everything if a[1] in wanted]
    picked += [a for a in everything if a[0] == "tech" and a[1] not in wanted][:40]
    con = duckdb.connect()
    try:
        embed_sql.register(con)
        con.execute("CREATE TABLE docs (id INTEGER, title VARCHAR, body VARCHAR)").fetchall()
        con.executemany(
            "INSERT INTO docs VALUES (?, ?, ?)", [(i, t, b) for i, (_, t, b) in enumerate(picked)]
        )
        con.execute(
            "CREATE TABLE passages AS SELECT key || '-' || chunk AS pid, key AS doc, text, "
            "embed(text) AS v FROM embed_chunks('docs', 'body', max_tokens := 96, overlap := 16)"
        ).fetchall()
        n_passages = con.execute("SELECT count(*) FROM passages").fetchall()[0][0]
        assert n_passages > 2 * len(picked)
        con.execute("SELECT embed_create_index('passages', 'passages', key := 'pid')").fetchall()
        first = 0
        for q, title in queries:
            got = con.execute(
                "SELECT d.title, s.key FROM embed_search('passages', ?, k := 5, "
                "document := 'doc', hybrid := true, text := 'text') s "
                "JOIN passages p ON p.pid = s.key JOIN docs d ON d.id = p.doc ORDER BY s.rank",
                [q],
            ).fetchall()
            assert len({t for t, _ in got}) == len(got) == 5  # five articles, one passage each
            first += got[0][0] == title
        assert first >= 7, first
    finally:
        con.close()
