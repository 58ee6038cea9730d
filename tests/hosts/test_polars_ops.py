"""The vector operators on Polars DataFrames and LazyFrames (tiny model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import embed_sql.polars  # noqa: F401 - registers the namespaces
from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
    ModelNotFoundError,
)
from tests.unit.test_index import clustered


@pytest.fixture
def frame() -> pl.DataFrame:
    x = clustered(300, dim=16)
    x[1] = x[0]  # an exact duplicate
    return pl.DataFrame(
        {"id": list(range(300)), "v": x}, schema_overrides={"v": pl.Array(pl.Float32, 16)}
    )


@pytest.mark.parametrize("lazy", [False, True])
def test_knn_join_eager_and_lazy_agree(frame: pl.DataFrame, lazy: bool) -> None:
    if lazy:
        out = frame.lazy().embed.knn_join(frame.lazy(), k=3, exact=True).collect()
    else:
        out = frame.embed.knn_join(frame, k=3, exact=True)
    assert out.columns == ["left_key", "right_key", "distance", "rank"]
    assert out.height == 900
    assert out.filter(pl.col("rank") == 1)["distance"].max() < 1e-5


def test_range_join_dedup_and_cluster(frame: pl.DataFrame) -> None:
    pairs = frame.embed.range_join(frame, threshold=1e-6, exact=True)
    assert set(pairs.filter(pl.col("left_key") != pl.col("right_key")).rows()) == {
        (0, 1, 0.0),
        (1, 0, 0.0),
    }
    flags = frame.embed.dedup(threshold=1e-6)
    assert flags.filter(~pl.col("keep"))["id"].to_list() == [1]
    assert flags.row(1, named=True)["representative"] == 0
    lazy_flags = frame.lazy().embed.dedup(threshold=1e-6).collect()
    assert lazy_flags.equals(flags)
    clusters = frame.embed.cluster(k=5, metric="l2")
    assert clusters["cluster"].n_unique() == 5
    assert frame.lazy().embed.cluster(k=5, metric="l2").collect().equals(clusters)


def test_search_embeds_the_query_with_the_model(tiny_source: Path) -> None:
    docs = pl.DataFrame({"id": [1, 2, 3], "title": ["food", "rain storm", "bank rates"]})
    docs = docs.with_columns(v=pl.col("title").embed.text(str(tiny_source)))
    hits = docs.embed.search("food", k=2, model=str(tiny_source))
    assert hits.height == 2
    assert hits["title"][0] == "food"
    assert hits["distance"][0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(hits["distance"].to_numpy()) >= 0)
    lazy = docs.lazy().embed.search("food", k=2, model=str(tiny_source)).collect()
    assert lazy.equals(hits)
    assert docs.head(0).embed.search("food", model=str(tiny_source)).height == 0


def test_operator_errors_name_the_problem(frame: pl.DataFrame) -> None:
    with pytest.raises(ColumnNotFoundError, match=r"column\(s\) \['emb'\] not in the frame"):
        frame.embed.knn_join(frame, k=1, vec="emb")
    with pytest.raises(ModelNotFoundError):
        frame.lazy().embed.search("x", model="nope")


@pytest.mark.parametrize("lazy", [False, True])
def test_knn_join_filter_applies_before_the_top_k(frame: pl.DataFrame, lazy: bool) -> None:
    where = (pl.col("id") % 50 == 7) & (pl.col("id") > 0)
    if lazy:
        out = frame.lazy().embed.knn_join(frame.lazy(), k=4, where=where).collect()
    else:
        out = frame.embed.knn_join(frame, k=4, where=where)
    assert out.height == 300 * 4  # six rows pass, so every query gets its four
    assert all(r % 50 == 7 for r in out["right_key"].to_list())
    with pytest.raises(InputTypeError, match="boolean expression"):
        frame.embed.knn_join(frame, k=1, where=pl.col("id"))


def test_clean_expression_and_chunk_frame(tiny_source: Path) -> None:
    df = pl.DataFrame({"id": ["a", "b", "c"], "body": ["<i>Hi</i>&amp; bye", None, "food " * 40]})
    cleaned = df.with_columns(c=pl.col("body").embed.clean(lowercase=True))
    assert cleaned["c"].to_list()[:2] == ["hi& bye", None]
    pieces = df.embed.chunk("body", max_tokens=10, overlap=2, model=str(tiny_source))
    assert pieces.columns == ["key", "chunk", "text", "char_start", "char_end", "tokens"]
    assert set(pieces["key"].to_list()) == {"a", "c"}
    assert pieces["tokens"].max() <= 10
    with pytest.raises(InputTypeError, match="cannot clean column 'id'"):
        pl.DataFrame({"id": [1]}).select(pl.col("id").embed.clean())


def test_drift_check_takes_polars_frames_eager_and_lazy() -> None:
    from embed_sql.pipelines import drift

    x = clustered(900, dim=16)

    def frame_of(rows: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"v": rows}, schema_overrides={"v": pl.Array(pl.Float32, 16)})

    ref, same, moved = frame_of(x[:300]), frame_of(x[300:600]), frame_of(x[600:] + 0.8)
    assert drift.check(ref, same, "v").verdict == "no drift"
    assert drift.check(ref.lazy(), moved.lazy(), "v").verdict == "drift"
    assert drift.check(ref, same, "v").to_dict() == drift.check(x[:300], x[300:600]).to_dict()
    assert drift.check(ref["v"], moved["v"]).verdict == "drift"  # Series work too


@pytest.mark.parametrize("lazy", [False, True])
def test_outlier_score_and_flag_expressions(lazy: bool) -> None:
    from embed_sql.pipelines.outliers import OutlierScorer

    x = clustered(1000, dim=16)
    ref = pl.DataFrame({"v": x[:900]}, schema_overrides={"v": pl.Array(pl.Float32, 16)})
    cur_rows = np.vstack([x[900:], x[900:905] + 10])
    cur = pl.DataFrame({"v": cur_rows}, schema_overrides={"v": pl.Array(pl.Float32, 16)})
    cur = cur.with_row_index().with_columns(
        pl.when(pl.col("index") == 3).then(None).otherwise(pl.col("v")).alias("v")
    )
    frame = cur.lazy() if lazy else cur
    out = frame.with_columns(
        score=pl.col("v").embed.outlier_score(ref, metric="l2"),
        flag=pl.col("v").embed.is_outlier(ref["v"], metric="l2"),
    )
    got = out.collect(engine="streaming") if isinstance(out, pl.LazyFrame) else out
    assert got.schema["score"] == pl.Float32
    assert got.schema["flag"] == pl.Boolean
    scorer = OutlierScorer(x[:900], metric="l2")
    want = scorer.score(cur_rows)
    want[3] = np.nan
    np.testing.assert_allclose(got["score"].fill_null(np.nan).to_numpy(), want, rtol=1e-5)
    assert got["flag"][3] is None
    assert got["flag"][100:].to_list() == [True] * 5
    assert got["flag"].drop_nulls().sum() == int(scorer.is_outlier(cur_rows).sum()) - int(
        scorer.is_outlier(cur_rows[3:4])[0]
    )


def test_outlier_expression_errors_name_the_problem() -> None:
    ref = pl.DataFrame({"v": clustered(10, dim=4)}, schema_overrides={"v": pl.Array(pl.Float32, 4)})
    with pytest.raises(InvalidParameterError, match="k=20 must be no larger than the 10 rows"):
        pl.col("v").embed.outlier_score(ref, k=20)
    with pytest.raises(ColumnNotFoundError, match="no column 'emb'"):
        pl.col("v").embed.outlier_score(ref, vec="emb")
    texts = pl.DataFrame({"v": ["a", "b"]})
    with pytest.raises(InputTypeError, match=r"expected a pl\.Array"):
        texts.select(pl.col("v").embed.outlier_score(ref, k=2))


def test_list_vector_columns_are_accepted_and_ragged_ones_refused(frame: pl.DataFrame) -> None:
    # ibis hands vectors over as List(Float32), jupysql as List(Float64)
    want = frame.embed.knn_join(frame, k=2, exact=True)
    for inner in (pl.Float32, pl.Float64):
        listed = frame.with_columns(pl.col("v").cast(pl.List(inner)))
        assert listed.embed.knn_join(listed, k=2, exact=True).equals(want)
        assert listed.embed.dedup(threshold=0.01)["keep"].equals(
            frame.embed.dedup(threshold=0.01)["keep"]
        )
    ragged = pl.DataFrame({"id": [1, 2], "v": [[0.1, 0.2], [0.3]]})
    with pytest.raises(DimensionMismatchError, match=r"mixes vector lengths.*pl\.Array"):
        ragged.embed.knn_join(ragged, k=1)
