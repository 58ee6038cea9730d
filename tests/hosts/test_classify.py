"""Zero-shot labels: the same rows from Python, SQL and Polars; errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import embed_sql
import embed_sql.polars
from embed_sql.exceptions import InvalidParameterError
from embed_sql.pipelines.classify import classify

TEXTS = ["a burrito with beans", None, "the election results", "", "tennis final tonight"]
LABELS = ["food", "politics", "sport"]


def test_python_sql_and_polars_give_the_same_rows(tiny_source: Path) -> None:
    model = str(tiny_source)
    want = classify(TEXTS, LABELS, model=model).to_pylist()
    assert want[1] is None  # NULL in, NULL out
    assert {r["label"] for r in want if r} <= set(LABELS)
    assert all(r["margin"] >= 0 for r in want if r)
    con = duckdb.connect()
    try:
        embed_sql.register(con, model=model)
        con.execute(
            "CREATE TABLE t AS SELECT * FROM unnest($1) WITH ORDINALITY AS u(s, i)", [TEXTS]
        )
        sql = [
            r[0]
            for r in con.sql(f"SELECT embed_classify(s, {LABELS}) FROM t ORDER BY i").fetchall()
        ]
    finally:
        con.close()
    frame = pl.DataFrame({"s": TEXTS}).select(pl.col("s").embed.classify(LABELS, model=model))
    for got in (sql, frame["s"].to_list()):
        assert [g and g["label"] for g in got] == [w and w["label"] for w in want]
        for g, w in zip(got, want, strict=True):
            if w is not None:
                assert g["score"] == pytest.approx(w["score"], abs=1e-6)
                assert g["margin"] == pytest.approx(w["margin"], abs=1e-6)


def test_every_score_on_request_in_label_order(tiny_source: Path) -> None:
    out = classify(["tacos"], LABELS, model=str(tiny_source), scores=True)[0].as_py()
    assert len(out["scores"]) == 3
    assert out["score"] == pytest.approx(max(out["scores"]))
    assert out["label"] == LABELS[int(np.argmax(out["scores"]))]


@pytest.mark.parametrize(
    ("labels", "template", "message"),
    [
        (["sport"], "{}", r"at least two non-empty strings"),
        ("sport", "{}", r"labels must be a list of strings"),
        (["a", "a"], "{}", r"repeat a label"),
        (["a", "b"], "no slot", r"one '\{\}' where the label goes"),
    ],
)
def test_bad_labels_and_templates_are_refused(
    tiny_source: Path, labels: object, template: str, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        classify(["x"], labels, template=template, model=str(tiny_source))  # type: ignore[arg-type]
    con = duckdb.connect()
    try:
        embed_sql.register(con, model=str(tiny_source))
        with pytest.raises(duckdb.Error, match=r"labels is NULL"):
            con.sql("SELECT embed_classify('x', NULL::VARCHAR[])").fetchall()
    finally:
        con.close()


def test_sql_model_names_a_registered_alias_or_a_model(tiny_source: Path, tmp_path: Path) -> None:
    from tests.tiny_model import build_tiny_model

    other = build_tiny_model(tmp_path / "other", seed=7)
    con = duckdb.connect()
    try:
        embed_sql.register(con, model=str(tiny_source), models={"other": str(other)})
        default = con.sql(f"SELECT embed_classify('tennis', {LABELS})").fetchall()[0][0]
        by_alias = con.sql(
            f"SELECT embed_classify('tennis', {LABELS}, model := 'other')"
        ).fetchall()[0][0]
        by_path = con.sql(
            f"SELECT embed_classify('tennis', {LABELS}, model := '{other}')"
        ).fetchall()[0][0]
    finally:
        con.close()
    want = classify(["tennis"], LABELS, model=str(other)).to_pylist()[0]
    assert by_alias == pytest.approx(want)
    assert by_path == pytest.approx(want)
    assert default == pytest.approx(
        classify(["tennis"], LABELS, model=str(tiny_source)).to_pylist()[0]
    )
