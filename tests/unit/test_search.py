"""Hybrid search's parts without a model: BM25 over texts, and reciprocal rank fusion."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import InputTypeError, InvalidParameterError
from embed_sql.pipelines.search import RRF_K, BM25Index, check_weight, fuse

TEXTS = [
    "WorldCom boss Ebbers goes on trial for fraud",
    "Shares fell 3.5% on Tuesday as markets slid",
    "",
    None,
    "The trial of the century: a fraud case",
    "Dogs and cats, the nation's favourite pets",
]


def test_bm25_finds_rows_by_their_words_and_stems() -> None:
    bm25 = BM25Index(TEXTS)
    rows, scores = bm25.search(["Ebbers", "pet", "trials frauds"], 3)
    assert rows[0].tolist() == [0, -1, -1]  # one row has the name
    assert rows[1].tolist()[0] == 5  # "pets" stems to "pet"
    assert set(rows[2][:2].tolist()) == {0, 4}
    assert (scores[rows >= 0] > 0).all()
    assert (scores[rows < 0] == 0).all()


def test_bm25_hits_nothing_for_unknown_stop_or_empty_words() -> None:
    bm25 = BM25Index(TEXTS)
    rows, _ = bm25.search(["zebra", "the and of", "", "3"], 4)
    assert (rows == -1).all()  # not the empty row: an unknown word is no match


def test_bm25_asks_for_no_more_rows_than_it_has_and_refuses_non_text() -> None:
    rows, _ = BM25Index(pa.array(["one fraud", "two frauds"])).search(["fraud"], 10)
    assert rows.shape == (1, 2)
    with pytest.raises(InputTypeError, match="cast it to text"):
        BM25Index([1, 2])  # type: ignore[list-item]


def test_fuse_adds_reciprocal_ranks_by_weight() -> None:
    vector = (np.array([[7, 8, 9]]), np.array([[0.1, 0.2, 0.3]], np.float32))
    lexical = (np.array([[9, 5, -1]]), np.array([[4.0, 2.0, 0.0]], np.float32))
    got = fuse(3, 1, vector=vector, lexical=lexical, weight=0.5)
    # 9: 0.5/63 + 0.5/61 beats 7 (0.5/61 only)
    assert got.row.tolist() == [9, 7, 8]
    assert got.score[0] == pytest.approx(0.5 / (RRF_K + 3) + 0.5 / (RRF_K + 1))
    assert got.distance[0] == pytest.approx(0.3)
    assert got.bm25[0] == pytest.approx(4.0)
    assert np.isnan(got.bm25[1])
    assert got.rank.tolist() == [1, 2, 3]
    alone = fuse(4, 1, vector=vector, lexical=lexical, weight=0.0)  # BM25 alone
    assert alone.row.tolist() == [9, 5]
    assert np.isnan(alone.distance[1])
    vectors_only = fuse(4, 1, vector=vector, lexical=lexical, weight=1.0)
    assert vectors_only.row.tolist() == [7, 8, 9]


def test_fuse_keeps_each_groups_best_row_and_k_groups() -> None:
    vector = (np.array([[0, 1, 2, 3], [3, 2, 1, 0]]), np.zeros((2, 4), np.float32))
    groups = np.array([10, 10, 20, 30])
    got = fuse(2, 2, vector=vector, groups=groups)
    assert got.query.tolist() == [0, 0, 1, 1]
    assert got.row.tolist() == [0, 2, 3, 2]


def test_fuse_with_no_queries_and_bad_weights() -> None:
    assert len(fuse(3, 0, vector=(np.zeros((0, 3)), np.zeros((0, 3)))).row) == 0
    for bad in (-0.1, 1.5, "half", True, None):
        with pytest.raises(InvalidParameterError, match="from 0 \\(BM25 alone\\) to 1"):
            check_weight(bad)


def test_fuse_keeps_the_best_row_of_a_group_in_rank_order() -> None:
    vector = (np.array([[0, 2, 1]]), np.zeros((1, 3), np.float32))
    got = fuse(3, 1, vector=vector, groups=np.array([7, 7, 8]))
    assert got.row.tolist() == [0, 2]
