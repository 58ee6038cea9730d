"""The fuzzy join on real linkage data: FEBRL records and codespell's misspellings.

It must find what rapidfuzz over all pairs finds (the n-gram candidates lose almost
nothing); the time it saves is measured in benchmarks/fuzzy.py, not here.
"""

from __future__ import annotations

import random

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from rapidfuzz import fuzz, process, utils

import embed_sql
from embed_sql.pipelines.fuzzy import fuzzy_join
from tests.linkage import febrl, misspellings


def all_pairs_best(left: list[str], right: list[str]) -> np.ndarray:
    """The right position rapidfuzz ranks first for each left string, over every pair."""
    scores = process.cdist(
        left, right, scorer=fuzz.ratio, processor=utils.default_process, workers=-1
    )
    return np.argmax(scores, axis=1)  # ties: the first right string, as fuzzy_join


def test_febrl_duplicates_are_found_as_rapidfuzz_over_all_pairs_finds_them() -> None:
    a, b = febrl("dataset4a"), febrl("dataset4b")
    left = pa.table({"id": [e for e, _ in a], "text": [t for _, t in a]})
    right = pa.table({"id": [e for e, _ in b], "text": [t for _, t in b]})
    out = fuzzy_join(left, right, 1)
    assert out.num_rows == len(a)
    ours = np.mean(np.array(out.column("right_key").to_pylist()) == left.column("id").to_numpy())
    best = all_pairs_best([t for _, t in a], [t for _, t in b])
    theirs = np.mean(np.array([b[j][0] for j in best]) == np.array([e for e, _ in a]))
    assert ours > 0.97  # FEBRL 4: one corrupted duplicate per record
    assert ours >= theirs - 0.01


def test_misspellings_find_their_word_in_sql_as_in_python() -> None:
    pairs = random.Random(0).sample(misspellings(), 1_000)
    words = sorted({r for _, r in misspellings()})
    con = duckdb.connect()
    try:
        embed_sql.register(con)
        con.execute("CREATE TABLE typos (id INTEGER, typo VARCHAR)").fetchall()
        con.executemany(
            "INSERT INTO typos VALUES (?, ?)", [(i, w) for i, (w, _) in enumerate(pairs)]
        )
        con.execute("CREATE TABLE words AS SELECT unnest($1) AS word", [words]).fetchall()
        got = con.sql(
            "SELECT left_key, right_key FROM embed_fuzzy_join('typos', 'words', 'typo', 'word', "
            "k := 5, right_key := 'word')"
        ).fetchall()
    finally:
        con.close()
    top: dict[int, list[str]] = {}
    for i, word in got:
        top.setdefault(i, []).append(word)
    first = np.mean([top[i][0] == right for i, (_, right) in enumerate(pairs)])
    five = np.mean([right in top[i] for i, (_, right) in enumerate(pairs)])
    best = all_pairs_best([w for w, _ in pairs], words)
    theirs = np.mean([words[j] == right for j, (_, right) in zip(best, pairs, strict=True)])
    assert five > 0.96
    assert first >= theirs - 0.01
    python = fuzzy_join(
        pa.table({"id": list(range(len(pairs))), "text": [w for w, _ in pairs]}),
        pa.table({"id": words, "text": words}),
        5,
    )
    assert python.column("right_key").to_pylist() == [w for _, w in got]


def test_semantic_score_is_the_default_models_cosine_similarity() -> None:
    from embed_sql.models.encoder import shared_encoder

    left = pa.table({"id": [1], "text": ["International Business Machines"]})
    right = pa.table({"id": [7, 8], "text": ["IBM", "Intl Bussiness Machine"]})
    out = fuzzy_join(left, right, 2, semantic=0.5).to_pylist()
    v = shared_encoder().encode_numpy(["International Business Machines", "IBM"])
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    ibm = next(r for r in out if r["right_key"] == 7)
    assert ibm["semantic_score"] == pytest.approx(float(v[0] @ v[1]), abs=1e-5)
    assert ibm["score"] == pytest.approx(0.5 * ibm["char_score"] + 0.5 * ibm["semantic_score"])
