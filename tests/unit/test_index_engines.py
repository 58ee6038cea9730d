"""The two engines behind VectorIndex, on their own: exact search and the HNSW graph."""

from __future__ import annotations

import numpy as np
import pytest

from embed_sql.exceptions import InvalidParameterError
from embed_sql.vectors.exact import ExactStore, top_k
from embed_sql.vectors.hnsw import HNSW_DEFAULTS, HNSWGraph, hnsw_params, params_from_header
from embed_sql.vectors.metrics import Metric, distances, pair_distances

SENTINEL = np.iinfo(np.int64).max


def points(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_top_k_breaks_ties_by_key_rank_across_the_cut() -> None:
    d = np.array([[0.5, 0.1, 0.5, 0.5, np.inf]], np.float32)
    rank = np.array([4, 0, 3, 1, 2, SENTINEL])  # label 3 has the smallest key of the tied
    labels, dist = top_k(d, np.arange(5), rank, 3)
    assert labels.tolist() == [[1, 3, 2]]
    assert dist.tolist() == [[pytest.approx(0.1), 0.5, 0.5]]
    labels, dist = top_k(d, np.arange(5), rank, 7)  # more than there are: -1 pads
    assert labels.tolist() == [[1, 3, 2, 0, -1, -1, -1]]
    assert np.isinf(dist[0, 4:]).all()


@pytest.mark.parametrize("metric", list(Metric))
def test_exact_store_knn_over_candidates_equals_brute_force(metric: Metric) -> None:
    x, q = points(500), points(20, seed=1)
    store = ExactStore(16, metric)
    store.append(x, source=x)
    candidates = np.arange(0, 500, 3)
    rank = np.append(np.arange(500), SENTINEL)
    labels, dist = store.knn(q, 5, candidates, rank)
    d = distances(metric, q, x[candidates]).astype(np.float64)
    want = candidates[np.argsort(d, axis=1, kind="stable")[:, :5]]
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(dist, pair_distances(metric, q[:, None, :], x[labels]))


def test_exact_store_copies_the_callers_array_and_reads_rows_through_fetch() -> None:
    x = points(10)
    store = ExactStore(16, Metric.L2)
    store.append(x, source=x)
    x[:] = 0.0
    assert np.abs(store.rows(np.arange(10))).sum() > 0
    fetched = ExactStore(16, Metric.L2, fetch=lambda labels: np.ones((len(labels), 16), np.float32))
    fetched.append(x, source=x)
    assert not fetched.kept
    assert len(fetched.matrix) == 0
    assert fetched.rows(np.array([3, 4])).shape == (2, 16)
    assert fetched.rows(np.array([], np.int64)).shape == (0, 16)


def test_exact_store_range_pairs_are_exactly_within_the_threshold() -> None:
    x, q = points(300), points(10, seed=2)
    store = ExactStore(16, Metric.COS)
    store.append(x, source=None)
    d = distances(Metric.COS, q, x)
    threshold = float(np.quantile(d, 0.05))
    parts = store.range_pairs(q, np.arange(10), threshold, np.arange(300))
    found = {(int(r), int(c)) for p in parts for r, c in zip(p[0], p[1], strict=True)}
    exact = pair_distances(Metric.COS, q[:, None, :], x[None, :, :])
    assert found == set(zip(*np.nonzero(exact <= threshold), strict=True))


def test_hnsw_params_take_the_known_names_and_defaults() -> None:
    assert hnsw_params() == HNSW_DEFAULTS
    assert hnsw_params(M=8) == {**HNSW_DEFAULTS, "M": 8}
    for bad in (0, 4097, True, 2.5):
        with pytest.raises(InvalidParameterError, match="from 1 to 4096"):
            hnsw_params(ef_search=bad)  # type: ignore[arg-type]
    old = {"connectivity": 8, "expansion_add": 50, "expansion_search": 20}
    assert params_from_header(old) == {"M": 8, "ef_construction": 50, "ef_search": 20}  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", list(Metric))
def test_hnsw_graph_finds_itself_and_reports_project_distances(metric: Metric) -> None:
    x = points(400)
    graph = HNSWGraph(16, metric, "f32", **HNSW_DEFAULTS)
    graph.add(np.arange(400), x, threads=1)
    labels, dist, hit = graph.search(x[:20], 4, threads=1)
    assert hit.all()
    assert (labels[:, 0] == np.arange(20)).mean() >= 0.9
    want = pair_distances(metric, x[:20, None, :], x[labels])
    np.testing.assert_allclose(dist, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(graph.get(np.array([5, 6])), x[5:7])


def test_hnsw_graph_round_trips_through_bytes_and_keeps_ef_search() -> None:
    x = points(300)
    graph = HNSWGraph(16, Metric.L2, "f16", M=8, ef_construction=40, ef_search=20)
    graph.add(np.arange(300), x)
    graph.remove(np.array([0, 1]))
    assert graph.ef_search == 20
    graph.ef_search = 64
    assert graph.ef_search == 64
    data = memoryview(graph.to_bytes())
    for how in ("load", "view"):
        # the restored graph searches with the ef_search of the graph it is restored into
        other = HNSWGraph(16, Metric.L2, "f16", M=8, ef_construction=40, ef_search=64)
        getattr(other, how)(data)
        assert other.ef_search == 64
        labels, _, hit = other.search(x[:5], 1)
        assert hit.all()
        assert labels[2:, 0].tolist() == [2, 3, 4]
        assert not np.isin(labels, [0, 1]).any()
