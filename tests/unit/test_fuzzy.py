"""The fuzzy join without a sentence model: candidates, scores, rows, refusals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.pipelines.fuzzy import SCORERS, fuzzy_join, ngram_vectors

PEOPLE = pa.table({"id": [1, 2, 3, 4], "text": ["Jon Smith", None, "Mary Jones", "Jon Smith"]})
REGISTER = pa.table(
    {"rid": ["a", "b", "c", "d"], "name": ["John Smith", "Marie Jones", "J. Smyth", "John Smith"]}
)


def join(**kw: object) -> pa.Table:
    return fuzzy_join(PEOPLE, REGISTER, right_text="name", right_key="rid", **kw)  # type: ignore[arg-type]


def test_each_left_row_gets_its_k_best_right_rows_in_order() -> None:
    out = join(k=3).to_pylist()
    assert [(r["left_key"], r["right_key"], r["rank"]) for r in out] == [
        (1, "a", 1), (1, "d", 2), (1, "c", 3),  # a repeated right string: each of its rows
        (3, "b", 1), (3, "a", 2), (3, "d", 3),
        (4, "a", 1), (4, "d", 2), (4, "c", 3),  # a repeated left string: the same matches
    ]  # fmt: skip
    assert out[0]["char_score"] == pytest.approx(18 / 19)  # Indel: 1 edit in 19 characters
    assert all(r["semantic_score"] is None and r["score"] == r["char_score"] for r in out)
    scores = [r["score"] for r in out[:3]]
    assert scores == sorted(scores, reverse=True)


def test_threshold_keeps_only_good_matches_and_null_strings_match_nothing() -> None:
    out = join(k=5, threshold=0.9)
    assert out.column("left_key").to_pylist() == [1, 1, 4, 4]
    assert 2 not in join(k=5).column("left_key").to_pylist()


def test_every_scorer_answers_in_zero_to_one() -> None:
    for scorer in SCORERS:
        scores = np.array(join(k=2, scorer=scorer).column("char_score").to_pylist())
        assert ((scores >= 0) & (scores <= 1)).all(), scorer
        assert scores.max() > 0.8, scorer


def test_hnsw_candidates_give_the_exact_answer_on_easy_data() -> None:
    words = [f"{a}{b}{c}word" for a in "abcdefgh" for b in "ijklmnop" for c in "qrstuvwx"]
    right = pa.table({"id": np.arange(len(words)), "text": words})
    typos = pa.table({"id": [0, 1], "text": ["aiqwrod", "hpxwordd"]})
    exact = fuzzy_join(typos, right, 1, exact=True).column("right_key").to_pylist()
    approx = fuzzy_join(typos, right, 1, exact=False).column("right_key").to_pylist()
    assert exact == approx == [words.index("aiqword"), words.index("hpxword")]


def test_ngram_vectors_are_unit_length_and_close_for_typos() -> None:
    v = ngram_vectors(["receive", "recieve", "banana", "bandana"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, rtol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > 0.4
    assert sim[2, 3] > 0.4
    assert sim[0, 2] < 0.1


def test_empty_sides_give_an_empty_table_of_the_right_types() -> None:
    none = pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())})
    out = fuzzy_join(none, PEOPLE, 3)
    assert out.num_rows == 0
    assert out.schema.names == [
        "left_key", "right_key", "char_score", "semantic_score", "score", "rank"
    ]  # fmt: skip


def test_refusals_name_the_fix() -> None:
    with pytest.raises(InvalidParameterError, match="scorer='edit' is not one of"):
        join(scorer="edit")
    with pytest.raises(InvalidParameterError, match="semantic=2"):
        join(semantic=2)
    with pytest.raises(ColumnNotFoundError, match="right_text= / right_key="):
        fuzzy_join(PEOPLE, REGISTER)
    with pytest.raises(InputTypeError, match="not text"):
        fuzzy_join(PEOPLE, pa.table({"id": [1], "text": [3]}))
    with pytest.raises(InvalidParameterError, match="NULL keys"):
        fuzzy_join(pa.table({"id": [None, 1], "text": ["a", "b"]}), PEOPLE)
