"""Word analogies with GloVe word vectors ("a is to b as c is to what").

.venv/bin/python examples/analogies.py
"""

from __future__ import annotations

import duckdb

import embed_sql

ASKED = [
    ("man", "king", "woman"),
    ("france", "paris", "japan"),
    ("walk", "walked", "swim"),
    ("good", "better", "bad"),
    ("mouse", "mice", "child"),
]


def main() -> None:
    """Answer each analogy in SQL."""
    con = duckdb.connect()
    embed_sql.register(con)
    for a, b, c in ASKED:
        words = con.execute(
            "SELECT list(word ORDER BY rank) FROM embed_analogy(?, ?, ?, k := 3)", [a, b, c]
        ).fetchall()[0][0]
        print(f"{a} : {b} :: {c} : {words[0]:10} (then {', '.join(words[1:])})")


if __name__ == "__main__":
    main()
