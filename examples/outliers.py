"""Outlier scores in DuckDB SQL: incoming headlines unlike the reference set.

The reference is 400 business headlines; incoming are 20 more business headlines and 5
from sport. Each gets the distance to its 5th nearest reference headline, and a flag when
that is above the 0.99 quantile of the reference's own (leave-one-out) scores: a cut that
flags about 1 % of headlines like the reference, so it is strict; the ranking is the signal.

    .venv/bin/python examples/outliers.py
"""

from __future__ import annotations

import duckdb
import polars as pl
from bbc import articles

import embed_sql


def main() -> None:
    """Score incoming headlines against the reference; print the top and the sport ranks."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles().sample(fraction=1.0, shuffle=True, seed=1)
    business = news.filter(pl.col("topic") == "business")
    reference = business[:400]  # noqa: F841  (tables for DuckDB, by their names)
    incoming = pl.concat(  # noqa: F841
        [business[400:420], news.filter(pl.col("topic") == "sports")[:5]]
    )
    con.sql("CREATE TABLE ref AS SELECT id, embed(title) AS v FROM reference")
    con.sql("SELECT embed_create_index('ref_index', 'ref')").fetchall()
    rows = con.sql(
        "SELECT topic, title, round(embed_outlier_score(embed(title), 'ref_index'), 3) AS score, "
        "embed_is_outlier(embed(title), 'ref_index') AS outlier FROM incoming ORDER BY score DESC"
    ).fetchall()
    cut = con.sql("SELECT embed_outlier_threshold('ref_index')").fetchall()[0][0]
    print(f"cut: {cut:.3f} (0.99 quantile of the reference's own scores)")
    for topic, title, score, outlier in rows[:8]:
        print(f"{score:.3f} {'OUTLIER' if outlier else '       '} [{topic:8}] {title}")
    ranks = [i + 1 for i, (topic, *_) in enumerate(rows) if topic == "sports"]
    flagged = sum(o for *_, o in rows)
    print(f"sport headlines rank {ranks} of {len(rows)} by score; {flagged} above the cut")


if __name__ == "__main__":
    main()
