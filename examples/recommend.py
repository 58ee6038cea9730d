"""Recommendations in DuckDB SQL: readers of a few articles get more of what they read.

.venv/bin/python examples/recommend.py
"""

from __future__ import annotations

import duckdb
from bbc import articles

import embed_sql

READS = {  # reader -> a few headlines they read
    "ana": ["Ebbers 'aware' of WorldCom fraud", "WorldCom trial starts in New York"],
    "ben": ["Wales win in Rome", "Kirwan demands Italy consistency"],
    "cleo": ["Apple iPod family expands market", "Mobile music challenges 'iPod age'"],
}


def main() -> None:
    """Recommend three headlines to each reader; print them."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles()  # noqa: F841  (DuckDB reads the Polars frame by its name)
    con.sql(  # one item per headline (the corpus repeats a few stories)
        "CREATE TABLE items AS SELECT min(id) AS id, title, embed(title) AS v "
        "FROM news GROUP BY title"
    )
    con.sql("SELECT embed_create_index('items_index', 'items')").fetchall()
    con.sql("CREATE TABLE interactions (user_id VARCHAR, item_id BIGINT)")
    for user, titles in READS.items():
        con.execute(
            "INSERT INTO interactions SELECT ?, min(id) FROM items WHERE title IN "
            "(SELECT unnest(?)) GROUP BY title",
            [user, titles],
        )
    rows = con.sql(
        "SELECT r.user_key, r.rank, i.title FROM embed_recommend('interactions', 'items_index', "
        "k := 3) r JOIN items i ON i.id = r.item_key ORDER BY r.user_key, r.rank"
    ).fetchall()
    for user, rank, title in rows:
        print(f"{user:5} {rank}. {title}")


if __name__ == "__main__":
    main()
