from __future__ import annotations

import duckdb
import numpy as np
import pytest

from embed_sql.exceptions import DimensionMismatchError, InvalidParameterError
from embed_sql.vectors.metrics import (
    Metric,
    candidate_distances,
    distances,
    pair_distances,
    parse_metric,
)


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("cos", Metric.COS),
        ("Cosine", Metric.COS),
        ("dot", Metric.IP),
        ("euclidean", Metric.L2),
        ("L2SQ", Metric.L2SQ),
        ("squared-euclidean", Metric.L2SQ),
        (Metric.IP, Metric.IP),
    ],
)
def test_metric_aliases_normalise_in_one_place(name: str, metric: Metric) -> None:
    assert parse_metric(name) is metric


def test_unknown_metric_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidParameterError, match=r"unknown metric 'manhattan'.*'cos'.*'l2sq'"):
        parse_metric("manhattan")


def test_textbook_values() -> None:
    zero, three_four = np.array([[0, 0]], np.float32), np.array([[3, 4]], np.float32)
    assert distances(Metric.L2, zero, three_four)[0, 0] == pytest.approx(5.0)
    assert distances(Metric.L2SQ, zero, three_four)[0, 0] == pytest.approx(25.0)
    v = np.array([[1, 2]], np.float32)
    assert distances(Metric.COS, v, v)[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert distances(Metric.COS, v, -v)[0, 0] == pytest.approx(2.0, abs=1e-6)
    assert distances(Metric.IP, v, three_four)[0, 0] == pytest.approx(-11.0)


def test_zero_vectors_are_at_cosine_distance_one() -> None:
    zero, v = np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32)
    assert distances(Metric.COS, zero, v)[0, 0] == 1.0
    assert pair_distances(Metric.COS, zero, v)[0] == 1.0


def test_dimension_mismatch_names_both_lengths() -> None:
    with pytest.raises(DimensionMismatchError, match=r"3 dimensions.*2"):
        distances(Metric.L2, np.ones((1, 3), np.float32), np.ones((1, 2), np.float32))


@pytest.mark.parametrize(
    ("metric", "sql"),
    [
        (Metric.COS, "array_cosine_distance(a, b)"),
        (Metric.IP, "array_negative_inner_product(a, b)"),
        (Metric.L2, "array_distance(a, b)"),
        (Metric.L2SQ, "array_distance(a, b) ** 2"),
    ],
)
def test_distances_equal_duckdb_array_functions(metric: Metric, sql: str) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(20, 8)).astype(np.float32), rng.normal(size=(20, 8)).astype(np.float32)
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT {sql} FROM (SELECT unnest(?::FLOAT[8][]) AS a, unnest(?::FLOAT[8][]) AS b)",
        [a.tolist(), b.tolist()],
    ).fetchall()
    con.close()
    theirs = np.array([r[0] for r in rows])
    np.testing.assert_allclose(np.diag(distances(metric, a, b)), theirs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pair_distances(metric, a, b), theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", list(Metric))
def test_candidate_distances_equal_pair_distances(metric: Metric) -> None:
    rng = np.random.default_rng(3)
    q = rng.normal(size=(6, 24)).astype(np.float32)
    cands = rng.normal(size=(6, 4, 24)).astype(np.float32)
    cands[0, 0] = 0.0  # a zero vector: distance 1 under cos, never NaN
    cands[1, 0] = q[1]  # the query itself: distance 0
    want = pair_distances(metric, q[:, None, :], cands)
    got = candidate_distances(metric, q, cands.copy())
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
    if metric is not Metric.IP:
        assert got[1, 0] == pytest.approx(0.0, abs=1e-5)
    if metric is Metric.COS:
        assert got[0, 0] == 1.0
    two = np.array([[0.0, 0.0]], np.float32)
    far = np.array([[[3.0, 4.0]]], np.float32)
    if metric is Metric.L2:
        assert candidate_distances(metric, two, far)[0, 0] == 5.0
