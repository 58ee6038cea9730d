from __future__ import annotations

from collections import deque

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InvalidParameterError,
)
from embed_sql.vectors import (
    VectorIndex,
    cluster,
    connected_components,
    dedup,
    from_numpy,
    knn_join,
    range_join,
    self_knn_join,
    self_range_join,
)
from embed_sql.vectors.metrics import Metric, distances
from tests.unit.test_index import clustered


def table(x: np.ndarray, keys: list[object] | None = None, **meta: str) -> pa.Table:
    keys = keys if keys is not None else list(range(len(x)))
    field = pa.field("v", pa.list_(pa.float32(), x.shape[1]), metadata=meta or None)
    return pa.table(
        [pa.array(keys), from_numpy(x)], schema=pa.schema([("id", pa.array(keys).type), field])
    )


def test_knn_join_returns_user_keys_distance_and_rank() -> None:
    x = clustered(300)
    docs = table(x, [f"d{i}" for i in range(300)])
    queries = table(x[:5] + 0.01, [100, 101, 102, 103, 104])
    out = knn_join(queries, docs, k=3, metric="l2", exact=True)
    assert out.column_names == ["left_key", "right_key", "distance", "rank"]
    assert out.num_rows == 15
    assert out.column("left_key").to_pylist()[:3] == [100, 100, 100]
    assert out.column("rank").to_pylist()[:3] == [1, 2, 3]
    assert out.column("right_key").to_pylist()[0] == "d0"
    direct = np.linalg.norm((x[:5] + 0.01)[:, None, :] - x[None, :, :], axis=2)
    np.testing.assert_allclose(
        out.column("distance").to_numpy()[::3], direct.min(axis=1), atol=1e-5
    )


def test_knn_join_k_beyond_right_and_empty_sides() -> None:
    x = clustered(4)
    out = knn_join(table(x), table(x), k=10, exact=True)
    assert out.num_rows == 16
    empty = table(np.zeros((0, 32), np.float32), [])
    assert knn_join(empty, table(x), k=3).num_rows == 0
    assert knn_join(table(x), empty, k=3).num_rows == 0
    assert range_join(empty, empty, 0.5).num_rows == 0


def test_knn_join_with_a_prebuilt_index_and_a_filter() -> None:
    x = clustered(1000)
    idx = VectorIndex.build(x, np.arange(1000))
    where = np.arange(1000) % 2 == 1
    out = knn_join(table(x[:10]), idx, k=5, where=where)
    assert out.num_rows == 50
    assert all(k % 2 == 1 for k in out.column("right_key").to_pylist())


def test_self_knn_join_never_matches_a_row_with_itself() -> None:
    x = clustered(200)
    out = self_knn_join(table(x), k=4, exact=True)
    assert out.num_rows == 800
    left, right = out.column("left_key").to_numpy(), out.column("right_key").to_numpy()
    assert (left != right).all()
    assert out.column("rank").to_pylist()[:4] == [1, 2, 3, 4]


def test_range_join_and_self_range_join_match_brute_force() -> None:
    x = clustered(400)
    d = distances(Metric.COS, x, x)
    t = float(np.quantile(d, 0.01))
    out = range_join(table(x), table(x), t, exact=True)
    truth = set(zip(*np.nonzero(d <= t), strict=True))
    got = set(
        zip(out.column("left_key").to_pylist(), out.column("right_key").to_pylist(), strict=True)
    )
    assert got == truth
    pairs, _, a, b = self_range_join(table(x), t, exact=True)
    assert (a < b).all()
    assert pairs.num_rows == sum(1 for i, j in truth if i < j)


def test_vectors_of_different_models_are_refused() -> None:
    x = clustered(10)
    a = table(x, **{"embed_sql.model_key": "aaaa"})
    b = table(x, **{"embed_sql.model_key": "bbbb"})
    with pytest.raises(DimensionMismatchError, match="different models"):
        knn_join(a, b, k=1)


def test_missing_columns_are_named() -> None:
    with pytest.raises(ColumnNotFoundError, match=r"vector column 'emb' is not in the table"):
        knn_join(table(clustered(3)), table(clustered(3)), k=1, vec="emb")


def test_dedup_groups_near_duplicates_deterministically() -> None:
    x = np.array([[1, 0], [0, 1], [1, 0.001], [0, 1], [1, 1]], np.float32)
    arr = from_numpy(np.vstack([x, [[0, 0]]]), valid=np.array([True] * 5 + [False]))
    t = pa.table({"id": ["a", "b", "c", "d", "e", "f"], "v": arr})
    out = dedup(t, 0.001)
    assert out.column("group_id").to_pylist() == [0, 1, 0, 1, 4, 5]
    assert out.column("representative").to_pylist() == ["a", "b", "a", "b", "e", "f"]
    assert out.column("keep").to_pylist() == [True, True, False, False, True, True]


def test_dedup_chains_are_transitive() -> None:
    x = np.array([[np.cos(a), np.sin(a)] for a in (0.0, 0.04, 0.08, 1.5)], np.float32)
    out = dedup(table(x), 0.001)  # 0↔1 and 1↔2 are close, 0↔2 is not: still one group
    assert out.column("group_id").to_pylist() == [0, 0, 0, 3]


def test_kmeans_recovers_planted_clusters_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 16)).astype(np.float32) * 6
    truth = rng.integers(0, 4, 800)
    x = (centres[truth] + rng.normal(size=(800, 16))).astype(np.float32)
    res = cluster(table(x), k=4, metric="l2")
    labels = np.array(res.table.column("cluster").to_pylist())
    for c in range(4):  # every planted cluster maps to exactly one label
        assert len(set(labels[truth == c])) == 1
    assert sorted(res.sizes.tolist()) == sorted(np.bincount(truth).tolist())
    assert res.centroids.shape == (4, 16)
    again = cluster(table(x), k=4, metric="l2").table.column("cluster").to_pylist()
    assert again == labels.tolist()


def test_threshold_clustering_and_argument_checks() -> None:
    x = np.array([[1, 0], [1, 0.001], [0, 1]], np.float32)
    res = cluster(table(x), threshold=0.01)
    assert res.table.column("cluster").to_pylist() == [0, 0, 1]
    assert res.sizes.tolist() == [2, 1]
    with pytest.raises(InvalidParameterError, match="exactly one of k="):
        cluster(table(x))
    with pytest.raises(InvalidParameterError, match="at least 5 non-NULL"):
        cluster(table(x), k=5)


def _bfs_components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    label = [-1] * n
    for s in range(n):
        if label[s] < 0:
            queue, label[s] = deque([s]), s
            while queue:
                u = queue.popleft()
                for v in adj[u]:
                    if label[v] < 0:
                        label[v] = s
                        queue.append(v)
    return label


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60),
        )
    )
)
def test_connected_components_agree_with_bfs(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, edges = case
    a = np.array([e[0] for e in edges], dtype=np.int64)
    b = np.array([e[1] for e in edges], dtype=np.int64)
    assert connected_components(n, a, b).tolist() == _bfs_components(n, edges)


def test_dedup_and_cluster_refuse_a_key_repeated_on_a_null_vector_row() -> None:
    # found by the property suite: SQL's embed_dedup answered 9 rows for these 3
    table = pa.table(
        {"id": [0, 0, 1], "v": pa.array([[0.0, 1.0], None, [0.0, 1.0]], pa.list_(pa.float32(), 2))}
    )
    with pytest.raises(InvalidParameterError, match="duplicate key 0"):
        dedup(table, 0.1)
    with pytest.raises(InvalidParameterError, match="duplicate key 0"):
        cluster(table, threshold=0.1)
    with pytest.raises(InvalidParameterError, match="duplicate key 0"):
        cluster(table, k=1)
