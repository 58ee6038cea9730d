"""Zero-shot labels in DuckDB SQL: topics for headlines, with no training data.

.venv/bin/python examples/classify.py
"""

from __future__ import annotations

import duckdb
import polars as pl
from bbc import articles

import embed_sql

LABELS = ["business", "entertainment", "politics", "sport", "technology"]


def main() -> None:
    """Label a fifth of the articles by their first sentence; print a few and the accuracy."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles(every=5).with_columns(  # noqa: F841  (read by DuckDB by its name)
        first=pl.col("body").str.extract(r"^(.*?[.!?])\s", 1)  # the first sentence
    )
    labelled = con.execute(
        "SELECT title, topic, embed_classify(first, $1, "
        "template := 'This news story is about {}.') AS c FROM news",
        [LABELS],
    ).fetchall()
    for title, topic, c in labelled[:: len(labelled) // 8][:8]:
        print(f"{c['label']:13} (margin {c['margin']:.2f})  {title}   [{topic}]")
    right = sum(
        c["label"].replace("technology", "tech").replace("sport", "sports") == t
        for _, t, c in labelled
    )
    print(
        f"\naccuracy on {len(labelled)} first sentences: {right / len(labelled):.2f} (chance 0.20)"
    )


if __name__ == "__main__":
    main()
