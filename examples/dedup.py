"""Near-duplicate news in DuckDB SQL: the same story told twice, found by its vector.

The BBC corpus carries some stories twice, word for word, and some retold; ``embed_dedup``
groups rows within a cosine distance and keeps one per group.

    .venv/bin/python examples/dedup.py
"""

from __future__ import annotations

import duckdb
from bbc import articles

import embed_sql


def main() -> None:
    """Group near-duplicate articles and print a few groups."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles()  # noqa: F841  (read by DuckDB by its name)
    con.sql(  # each story by its title and opening
        "CREATE TABLE news AS SELECT id, title, embed(title || '. ' || left(body, 200)) AS v "
        "FROM news"
    )
    groups = con.sql(
        "SELECT d.group_id, list(n.title ORDER BY n.id) AS titles "
        "FROM embed_dedup('news', 0.05) d JOIN news n ON n.id = d.key "
        "GROUP BY d.group_id HAVING count(*) > 1 ORDER BY d.group_id"
    ).fetchall()
    kept = con.sql("SELECT count(*) FROM embed_dedup('news', 0.05) WHERE keep").fetchall()[0][0]
    print(f"{len(groups)} groups of near-duplicates; {kept:,} of 2,225 articles kept")
    retold = [g for g in groups if len(set(g[1])) > 1]  # different titles, same story
    for _, titles in (retold or groups)[:5]:
        print("  " + " | ".join(titles))


if __name__ == "__main__":
    main()
