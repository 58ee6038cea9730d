"""The ``embed-sql demo``: similar sentences, search in DuckDB and Polars, applications.

The applications are zero-shot labels, hybrid search and fuzzy matching, in SQL.

Runs on the embedded default model, offline. Each host step runs only when its extra is
installed, and says so when it is not.
"""

from __future__ import annotations

from typing import Any

from embed_sql.models.encoder import shared_encoder

__all__ = ["HEADLINES", "run"]

SENTENCES = (
    "The new taqueria downtown serves a burrito the size of your forearm.",
    "A family-run Mexican restaurant opened near the station, famous for its tacos.",
    "Central bank raises interest rates for the third time this year.",
    "Inflation slowed in October as energy prices fell.",
    "The striker scored twice as the home side won the cup final.",
    "Tennis champion withdraws from the tournament with a wrist injury.",
    "Heavy rain and flooding close roads across the north of the country.",
    "Storms bring widespread flooding and power cuts to coastal towns.",
)

HEADLINES = (
    (1, "Stocks slide as investors weigh another rate rise"),
    (2, "Local chef wins award for the city's best breakfast burrito"),
    (3, "Striker's late goal sends United into the semi-finals"),
    (4, "Parliament votes on the new housing bill"),
    (5, "Chip maker unveils faster processor for laptops"),
    (6, "Flood warnings issued as heavy rain continues"),
    (7, "Film festival opens with a sold-out premiere"),
    (8, "Oil prices climb after supply cut announced"),
)


def _similar_pairs(model: str, pairs: int) -> None:
    encoder = shared_encoder(model)
    vectors = encoder.encode_numpy(list(SENTENCES))
    sims = vectors @ vectors.T
    print(f"model: {encoder.name} ({encoder.dim}-d, from {encoder.resolved.source})")
    print(f"\n1. {len(SENTENCES)} sentences, the {pairs} most similar pairs:")
    upper = [
        (sims[i, j], i, j) for i in range(len(SENTENCES)) for j in range(i + 1, len(SENTENCES))
    ]
    for sim, i, j in sorted(upper, reverse=True)[:pairs]:
        print(f"  {sim:.3f}  {SENTENCES[i]}\n         {SENTENCES[j]}")


def _news(duckdb: Any, model: str) -> Any:
    """Return a registered connection with the headlines (``news``) and vectors (``news_v``)."""
    from embed_sql.udfs.duckdb import register

    con = duckdb.connect()
    register(con, model=model)
    con.execute("CREATE TABLE news (id INTEGER, title VARCHAR)").fetchall()
    con.executemany("INSERT INTO news VALUES (?, ?)", [list(h) for h in HEADLINES])
    con.execute("CREATE TABLE news_v AS SELECT id, title, embed(title) AS v FROM news").fetchall()
    return con


def _duckdb_search(model: str, query: str) -> None:
    try:
        import duckdb
    except ImportError:
        print("\n2. DuckDB: skipped (pip install 'embed-sql[duckdb]')")
        return

    con = _news(duckdb, model)
    sql = (
        "SELECT array_cosine_similarity(v, embed(?)) AS score, title "
        "FROM news_v ORDER BY score DESC LIMIT 3"
    )
    print(f"\n2. DuckDB: semantic search for {query!r}\n   {sql}")
    for score, title in con.execute(sql, [query]).fetchall():
        print(f"  {score:.3f}  {title}")
    make = "SELECT embed_create_index('news_index', 'news_v', vec := 'v', key := 'id')"
    con.execute(make).fetchall()
    sql = (
        "SELECT s.distance, n.title FROM embed_search('news_index', ?, k := 3) AS s "
        "JOIN news AS n ON n.id = s.key ORDER BY s.rank"
    )
    print(f"   the same through a vector index:\n   {make}\n   {sql}")
    for distance, title in con.execute(sql, [query]).fetchall():
        print(f"  {distance:.3f}  {title}  (cosine distance)")
    con.close()


def _polars_search(model: str, query: str) -> None:
    try:
        import polars as pl

        from embed_sql.udfs.polars import vectors_to_numpy
    except ImportError:
        print("\n3. Polars: skipped (pip install 'embed-sql[polars]')")
        return

    df = pl.DataFrame({"id": [h[0] for h in HEADLINES], "title": [h[1] for h in HEADLINES]})
    df = df.with_columns(v=pl.col("title").embed.text(model))  # type: ignore[attr-defined]
    q = shared_encoder(model).encode_numpy([query])[0]
    scores = vectors_to_numpy(df["v"]) @ q
    top = df.with_columns(score=pl.Series(scores)).sort("score", descending=True).head(3)
    print(f'\n3. Polars: df.with_columns(v=pl.col("title").embed.text()), search {query!r}')
    for score, title in top.select("score", "title").iter_rows():
        print(f"  {score:.3f}  {title}")


LABELS = ["business", "sport", "politics", "technology", "weather", "film"]
TYPOS = ("burito", "procesor", "parliment", "festivle")


def _applications(model: str) -> None:
    try:
        import duckdb
    except ImportError:
        print("\n4. Applications in SQL: skipped (pip install 'embed-sql[duckdb]')")
        return
    con = _news(duckdb, model)
    print("\n4. Applications in SQL")
    sql = f"SELECT title, embed_classify(title, {LABELS}).label FROM news ORDER BY id"
    print(f"   zero-shot labels: {sql}")
    for title, label in con.sql(sql).fetchall()[:4]:
        print(f"  {label:10}  {title}")
    con.execute("SELECT embed_create_index('news_index', 'news_v')").fetchall()
    sql = (
        "SELECT n.title, s.bm25 FROM embed_search('news_index', 'processor', k := 2, "
        "hybrid := true) s JOIN news n ON n.id = s.key ORDER BY s.rank"
    )
    try:
        found = con.sql(sql).fetchall()
    except duckdb.Error as exc:
        print(f"   hybrid search: skipped ({str(exc).split(': ')[-1][:70]})")
    else:
        print(f"   hybrid search (BM25 + vectors):\n   {sql}")
        for title, bm25 in found:
            side = f"bm25 {bm25:.2f}" if bm25 is not None else "vectors  "
            print(f"  {side}  {title}")
    con.execute(
        "CREATE TABLE words AS SELECT DISTINCT lower(w) AS word FROM (SELECT "
        "unnest(regexp_split_to_array(title, '[^A-Za-z]+')) AS w FROM news) WHERE w <> ''"
    ).fetchall()
    con.execute("CREATE TABLE typos AS SELECT unnest($1) AS typo", [list(TYPOS)]).fetchall()
    sql = (
        "SELECT left_key, right_key, round(score, 2)::DECIMAL(3, 2) FROM embed_fuzzy_join("
        "'typos', 'words', 'typo', 'word', k := 1, key := 'typo', right_key := 'word')"
    )
    try:
        matched = con.sql(sql).fetchall()
    except duckdb.Error as exc:
        print(f"   fuzzy matching: skipped ({str(exc).split(': ')[-1][:70]})")
    else:
        print(f"   fuzzy matching (typos to the headlines' words):\n   {sql}")
        for typo, word, score in matched:
            print(f"  {typo:>10} -> {word} ({score})")
    con.close()


def run(model: str, *, pairs: int = 3, query: str = "food") -> None:
    """Print the demo to stdout."""
    _similar_pairs(model, pairs)
    _duckdb_search(model, query)
    _polars_search(model, query)
    _applications(model)
