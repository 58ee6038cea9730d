"""A drift check in DuckDB SQL: has this week's news moved away from last week's.

Two batches of business news give "no drift"; a batch where nearly 4 in 10 stories are
technology news instead gives "drift". The report's figure is saved as a PNG.

    .venv/bin/python examples/drift.py [figure.png]
"""

from __future__ import annotations

import sys

import duckdb
import polars as pl
from bbc import articles

import embed_sql
from embed_sql.pipelines import drift


def main(figure: str | None = None) -> None:
    """Compare two batches with the reference; save the report's figure to ``figure``."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles().sample(fraction=1.0, shuffle=True, seed=0)
    business, tech = (
        news.filter(pl.col("topic") == "business"),
        news.filter(pl.col("topic") == "tech"),
    )
    reference = business[:200]  # noqa: F841  (tables for DuckDB, by their names)
    same = business[200:400]  # noqa: F841
    moved = pl.concat([business[400:][:130], tech[:70]])  # noqa: F841
    for name in ("reference", "same", "moved"):
        con.sql(f"CREATE TABLE {name}_v AS SELECT title, embed(title) AS v FROM {name}")
    for name in ("same", "moved"):
        verdict = con.sql(
            f"SELECT statistic, drift FROM embed_drift('reference_v', '{name}_v') "
            "WHERE test = 'overall'"
        ).fetchall()[0]
        print(f"reference vs {name:5}: {'drift' if verdict[1] else 'no drift'}")
    report = drift.check(
        con.sql("SELECT v FROM reference_v").pl(), con.sql("SELECT v FROM moved_v").pl(), "v"
    )
    print(report)
    if figure:
        report.figure().savefig(figure, dpi=90)
        print(f"figure: {figure}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
