"""News search in DuckDB SQL: by meaning, then hybrid (BM25 + vectors) for names and numbers.

Embeds the 2,225 BBC News titles and openings, indexes them, and asks three questions:
a paraphrase (vectors shine), a name in the titles, and names found only deep in an
article's body, which BM25 reads whole (hybrid shines: the right article comes first).

    .venv/bin/python examples/news_search.py
"""

from __future__ import annotations

import duckdb
from bbc import articles

import embed_sql

QUESTIONS = [
    "a supermarket chain's profits fall",  # a paraphrase: vectors find it by meaning
    "Ebbers on trial",  # a rare name in the titles: both find it
    "Bosworth and Orlando Bloom at the Bobby Darin film premiere",  # names deep in the text
]


def main() -> None:
    """Ask each question by vectors alone, then hybrid; print the top three titles."""
    con = duckdb.connect()
    embed_sql.register(con)
    news = articles()  # noqa: F841  (DuckDB reads the Polars frame by its name)
    con.sql(
        "CREATE TABLE news AS SELECT id, topic, title, body, "
        "embed(title || '. ' || left(body, 200)) AS v FROM news"
    )
    con.sql("SELECT embed_create_index('news_index', 'news')").fetchall()
    for question in QUESTIONS:
        print(f"\n{question!r}")
        for hybrid in (False, True):
            hits = con.execute(
                "SELECT n.title FROM embed_search('news_index', ?, k := 3, hybrid := $2, "
                "text := 'body') s JOIN news n ON n.id = s.key ORDER BY s.rank",
                [question, hybrid],
            ).fetchall()
            label = "hybrid " if hybrid else "vectors"
            print(f"  {label}: " + " | ".join(t for (t,) in hits))


if __name__ == "__main__":
    main()
