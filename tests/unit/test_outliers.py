"""Novelty scores: the k-th neighbour distance, its calibration and bad input."""

from __future__ import annotations

import doctest

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.pipelines import outliers
from embed_sql.pipelines.outliers import OutlierScorer, kth_distance, outlier_scores
from embed_sql.vectors import VectorIndex, from_numpy
from embed_sql.vectors.metrics import Metric, distances
from tests.unit.test_index import clustered


def test_docstring_examples_run() -> None:
    assert doctest.testmod(outliers).failed == 0


@pytest.mark.parametrize("k", [1, 3, 10])
def test_score_is_the_kth_nearest_reference_distance(k: int) -> None:
    ref, q = clustered(500, dim=16), clustered(40, dim=16, seed=1)
    got = OutlierScorer(ref, k=k, metric="l2").score(q)
    want = np.sort(distances(Metric.L2, q, ref), axis=1)[:, k - 1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_calibration_leaves_each_reference_row_out() -> None:
    ref = clustered(300, dim=8)
    scorer = OutlierScorer(ref, k=2, metric="l2")
    d = distances(Metric.L2, ref, ref)
    np.fill_diagonal(d, np.inf)
    want = np.sort(np.sort(d, axis=1)[:, 1])
    np.testing.assert_allclose(scorer.reference_scores, want, rtol=1e-5, atol=1e-5)
    assert scorer.threshold == pytest.approx(np.quantile(want, 0.99), rel=1e-5)


def test_rows_like_the_reference_are_rarely_flagged_and_far_rows_always() -> None:
    rows = clustered(4000, dim=16)  # same centres: held-out rows are like the reference
    ref, held = rows[:3000], rows[3000:]
    scorer = OutlierScorer(ref, k=5, quantile=0.99, metric="l2")
    assert scorer.is_outlier(held).mean() < 0.03  # about 1 % by construction
    far = held[:50] + 8.0  # moved away from every cluster
    assert scorer.is_outlier(far).mean() > 0.9
    p_held, p_far = scorer.p_value(held), scorer.p_value(far)
    assert 0.35 < p_held.mean() < 0.65  # conformal p-values of exchangeable rows: uniform
    assert p_far.max() < 0.05


def test_hnsw_and_an_existing_index_give_the_scores_of_exact_search() -> None:
    rows = clustered(2100, dim=16)
    ref, q = rows[:2000], rows[2000:]
    exact = OutlierScorer(ref, k=5, exact=True).score(q)
    hnsw = OutlierScorer(ref, k=5, exact=False).score(q)
    index = VectorIndex.build(ref, np.arange(2000), exact=True)
    assert (hnsw >= exact - 1e-6).all()  # an approximate k-th neighbour is never closer
    assert np.mean(np.isclose(hnsw, exact, atol=1e-5)) >= 0.95
    np.testing.assert_allclose(OutlierScorer(index, k=5).score(q), exact, rtol=1e-6)
    np.testing.assert_allclose(kth_distance(index, q, 5), exact, rtol=1e-6)


def test_null_vectors_score_null_and_reference_nulls_are_skipped() -> None:
    ref = from_numpy(clustered(100, dim=8), valid=np.arange(100) % 7 != 0)
    scorer = OutlierScorer(ref, k=3)
    assert len(scorer.index) == 100 - 15
    q = from_numpy(clustered(3, dim=8, seed=3), valid=np.array([True, False, True]))
    table = scorer.table(q)
    assert table.column("outlier_score").null_count == 1
    assert table.column("is_outlier").to_pylist()[1] is None
    assert np.isnan(scorer.score(q)[1])


def test_outlier_scores_appends_columns_to_the_current_table() -> None:
    ref = clustered(200, dim=8)
    cur = pa.table({"id": [1, 2], "v": from_numpy(np.vstack([ref[:1], ref[:1] + 100]))})
    out = outlier_scores(ref, cur, k=3, metric="l2")
    assert out.column_names == ["id", "v", "outlier_score", "outlier_p", "is_outlier"]
    assert out.column("is_outlier").to_pylist() == [False, True]


def test_bad_input_is_refused_with_a_clear_message() -> None:
    ref = clustered(10, dim=4)
    with pytest.raises(InvalidParameterError, match="k=10 needs at least 11"):
        OutlierScorer(ref, k=10)
    with pytest.raises(InvalidParameterError, match="k=0"):
        OutlierScorer(ref, k=0)
    with pytest.raises(InvalidParameterError, match=r"quantile=1\.5"):
        OutlierScorer(ref, quantile=1.5)
    with pytest.raises(DimensionMismatchError, match="5 dimensions but the index has 4"):
        OutlierScorer(ref, k=2).score(np.ones((1, 5), np.float32))
    with pytest.raises(InputTypeError, match="got str"):
        OutlierScorer("vectors")
    with pytest.raises(ColumnNotFoundError, match="no column 'emb'"):
        outlier_scores(ref, pa.table({"v": from_numpy(ref)}), vec="emb")
