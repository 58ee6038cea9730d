"""A map of BBC News headlines: one point per headline, coloured by topic (PCA of the vectors).

.venv/bin/python examples/embedding_map.py [map.png]
"""

from __future__ import annotations

import sys

import polars as pl
from bbc import articles

import embed_sql.polars  # noqa: F401  (the .embed namespace)


def main(path: str = "embedding_map.png") -> None:
    """Draw the headlines' map and save it as a PNG."""
    news = articles(every=3).with_columns(v=pl.col("title").embed.text())
    fig = news.embed.plot(
        "v", color="topic", labels="title", title="BBC News headlines (all-MiniLM-L6-v2), PCA"
    )
    fig.savefig(path, dpi=90)
    print(f"{news.height} headlines drawn: {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
