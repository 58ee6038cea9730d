"""Two towers: queries embedded by one model, documents by another, joined in SQL.

Documents are embedded with the int8 variant of all-MiniLM-L6-v2 (smaller, faster) and the
queries with the fp32 one. embed_sql refuses to compare vectors of two different models,
because their distances usually mean nothing; two models made to work together (here: one
model and its quantised copy; in general, a query tower and a document tower trained as a
pair) are allowed explicitly with ``allow_models``.

    .venv/bin/python examples/two_towers.py
"""

from __future__ import annotations

import duckdb
from bbc import articles

import embed_sql

QUERIES = ["stock markets fall", "a new mobile phone", "the election campaign"]


def main() -> None:
    """Join fp32 query vectors to int8 document vectors, refused, then allowed."""
    con = duckdb.connect()
    embed_sql.register(con, models={"docs": "all-MiniLM-L6-v2:int8"})
    news = articles(every=2)  # noqa: F841  (read by DuckDB by its name)
    con.sql("CREATE TABLE docs AS SELECT id, title, embed_docs(title) AS v FROM news")
    con.sql("SELECT embed_create_index('docs_index', 'docs')").fetchall()
    con.execute("CREATE TABLE queries AS SELECT unnest($1) AS q", [QUERIES])
    con.sql("CREATE TABLE qv AS SELECT row_number() OVER () AS id, q, embed(q) AS v FROM queries")
    try:
        con.sql("FROM embed_knn_join('qv', 'docs_index', k := 1)").fetchall()
    except duckdb.Error as exc:
        print("without allow_models:", str(exc).split("UDF: ", 1)[-1][:110], "...\n")
    rows = con.sql(
        "SELECT q.q, d.title, round(j.distance, 3)::DECIMAL(4, 3) FROM embed_knn_join('qv', "
        "'docs_index', k := 1, allow_models := ['all-MiniLM-L6-v2', 'all-MiniLM-L6-v2:int8']) j "
        "JOIN qv q ON q.id = j.left_key JOIN docs d ON d.id = j.right_key ORDER BY q.id"
    ).fetchall()
    for query, title, distance in rows:
        print(f"{query:24} -> {title}  ({distance})")


if __name__ == "__main__":
    main()
