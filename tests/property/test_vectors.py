"""Properties of the Python vector operator: k-NN and range joins, dedup, clustering, indexes.

Arbitrary small tables (empty, one row, repeated and zero vectors, NULL vectors, NaN/Inf
entries, duplicate and NULL keys), ``k`` and thresholds at and past their limits: every call
either answers with the documented number of rows, equal to a brute-force reference, or
refuses with an :class:`~embed_sql.exceptions.EmbedSQLError`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embed_sql.exceptions import EmbedSQLError, InvalidParameterError
from embed_sql.vectors import (
    VectorIndex,
    cluster,
    dedup,
    from_numpy,
    knn_join,
    range_join,
    self_knn_join,
)
from tests.property.helpers import prop, refusals, usable_norms, vectors

METRICS = st.sampled_from(["cos", "ip", "l2", "l2sq"])
K = st.one_of(st.integers(-2, 12), st.sampled_from([2**31, 2**63 - 1]))


def brute(metric: str, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Distances in float64, as the README's metric table defines them."""
    q64, x64 = q.astype(np.float64), x.astype(np.float64)
    if metric == "cos":
        nq = np.linalg.norm(q64, axis=1)[:, None]
        nx = np.linalg.norm(x64, axis=1)[None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - (q64 @ x64.T) / (nq * nx)
        return np.where((nq == 0) | (nx == 0), 1.0, d)
    if metric == "ip":
        return -(q64 @ x64.T)
    sq = ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)
    return np.sqrt(sq) if metric == "l2" else sq


@st.composite
def tables(
    draw: st.DrawFn,
    *,
    dim: int | None = None,
    odd: bool = True,
    min_rows: int = 0,
    keys: str = "any",
) -> pa.Table:
    """An Arrow table ``id``, ``v``: NULL vectors anywhere; keys unique, or (``keys='any'``)
    with duplicates and NULLs now and then; integer or string keys."""
    mat = draw(vectors(dim=dim, odd=odd, min_rows=min_rows))
    n = len(mat)
    null_rows = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    arr = from_numpy(mat)
    arr = pa.array(
        [None if nul else row for nul, row in zip(null_rows, arr.to_pylist(), strict=True)],
        arr.type,
    )
    ids: list[object] = list(range(n))
    if keys == "any" and n and draw(st.booleans()):
        ids = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n))
    if draw(st.booleans()):
        ids = [None if i is None else f"k{i}" for i in ids]
    key_type = pa.string() if any(isinstance(i, str) for i in ids) else pa.int64()
    return pa.table({"id": pa.array(ids, key_type), "v": arr})


def _finite(table: pa.Table) -> bool:
    rows = [r for r in table.column("v").to_pylist() if r is not None]
    return bool(np.isfinite(np.array(rows, dtype=np.float64)).all()) if rows else True


def _usable(data: pa.Table | np.ndarray, metric: str = "cos") -> bool:
    """Whether every non-NULL vector is finite with a norm float32 distances can use."""
    if isinstance(data, pa.Table):
        rows = [r for r in data.column("v").to_pylist() if r is not None]
        d = data.schema.field("v").type.list_size
        mat = np.array(rows, dtype=np.float64).reshape(len(rows), d)
    else:
        mat = data.astype(np.float64)
        mat = mat[np.isfinite(mat).all(axis=1)]  # NaN rows of a numpy matrix are NULLs
    return usable_norms(mat, metric)


def _keys_ok(table: pa.Table) -> bool:
    """Whether the keys can key an index: no NULL key, no key twice among non-NULL vectors."""
    live = _live(table)[1]
    return None not in table.column("id").to_pylist() and len(set(live)) == len(live)


def _keys_unique(table: pa.Table) -> bool:
    """Whether every row has its own key: dedup and cluster answer per row, by key."""
    ids = table.column("id").to_pylist()
    return None not in ids and len(set(ids)) == len(ids)


def _live(table: pa.Table) -> tuple[np.ndarray, list[object]]:
    """The non-NULL vectors of a table as a matrix, and their keys."""
    vs = table.column("v").to_pylist()
    ids = table.column("id").to_pylist()
    rows = [(v, i) for v, i in zip(vs, ids, strict=True) if v is not None]
    d = table.schema.field("v").type.list_size
    mat = np.array([v for v, _ in rows], dtype=np.float32).reshape(len(rows), d)
    return mat, [i for _, i in rows]


@prop(60)
@given(
    left=tables(dim=3),
    right=tables(dim=3),
    k=K,
    metric=METRICS,
    exact=st.booleans(),
)
def test_knn_join_gives_min_k_n_rows_per_live_query_or_refuses(
    left: pa.Table, right: pa.Table, k: int, metric: str, exact: bool
) -> None:
    with refusals() as refused:
        out = knn_join(left, right, k, metric=metric, exact=exact)
    if refused:
        # refusals only for what the docs say is refused
        assert (
            k <= 0 or not _usable(left, metric) or not _usable(right, metric) or not _keys_ok(right)
        )
        return
    assert k > 0
    assert _finite(left)
    assert _finite(right)
    assert _keys_ok(right)
    assert out.column_names == ["left_key", "right_key", "distance", "rank"]
    q, _ = _live(left)
    x, xkeys = _live(right)
    assert out.num_rows == len(q) * min(k, len(x))
    if not len(q) or not len(x):
        return
    want = np.sort(brute(metric, q, x), axis=1)[:, : min(k, len(x))]
    dist = np.array(out.column("distance").to_pylist(), dtype=np.float64)
    got = dist.reshape(len(q), min(k, len(x)))
    assert (np.diff(got, axis=1) >= 0).all()
    assert out.column("rank").to_pylist() == list(range(1, min(k, len(x)) + 1)) * len(q)
    assert set(out.column("right_key").to_pylist()) <= set(xkeys)
    if exact:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@prop(50)
@given(
    left=tables(dim=2),
    right=tables(dim=2),
    threshold=st.one_of(
        st.floats(-1, 3, allow_nan=False),
        st.sampled_from([0.0, float("nan"), float("inf"), float("-inf")]),
    ),
    metric=METRICS,
)
def test_exact_range_join_equals_brute_force_or_refuses(
    left: pa.Table, right: pa.Table, threshold: float, metric: str
) -> None:
    with refusals() as refused:
        out = range_join(left, right, threshold, metric=metric, exact=True)
    if refused:
        assert (
            not np.isfinite(threshold)
            or not _usable(left, metric)
            or not _usable(right, metric)
            or not _keys_ok(right)
        )
        return
    assert np.isfinite(threshold)
    assert _finite(left)
    assert _finite(right)
    assert _keys_ok(right)
    q, _ = _live(left)
    x, _ = _live(right)
    d = brute(metric, q, x) if len(q) and len(x) else np.zeros((len(q), len(x)))
    dist = np.array(out.column("distance").to_pylist(), dtype=np.float64)
    assert (dist <= threshold + 1e-4 * max(1.0, abs(threshold))).all()
    sure = int((d < threshold - 1e-3 * max(1.0, abs(threshold))).sum())
    maybe = int((d <= threshold + 1e-3 * max(1.0, abs(threshold))).sum())
    assert sure <= out.num_rows <= maybe


@prop(50)
@given(
    table=tables(dim=3),
    threshold=st.one_of(
        st.floats(-0.5, 2.5, allow_nan=False), st.sampled_from([0.0, float("nan"), 1e300])
    ),
    metric=METRICS,
)
def test_dedup_keeps_every_row_and_one_representative_per_group(
    table: pa.Table, threshold: float, metric: str
) -> None:
    with refusals() as refused:
        out = dedup(table, threshold, metric=metric)
    if refused:
        assert (
            not np.isfinite(threshold) or threshold < 0 or not _usable(table, metric)
        ) or not _keys_unique(table)
        return
    assert out.num_rows == table.num_rows
    assert out.column("key").to_pylist() == table.column("id").to_pylist()
    groups = out.column("group_id").to_pylist()
    keep = out.column("keep").to_pylist()
    assert sum(keep) == len(set(groups))
    for pos, (g, kept) in enumerate(zip(groups, keep, strict=True)):
        assert g <= pos
        assert kept == (g == pos)
    for row, g in zip(table.column("v").to_pylist(), groups, strict=True):
        if row is None:  # a NULL vector is its own group
            assert groups.count(g) == 1


@prop(50)
@given(
    table=tables(dim=3),
    k=st.one_of(st.none(), st.integers(-1, 9)),
    threshold=st.one_of(st.none(), st.floats(0, 2), st.sampled_from([float("nan"), -1.0])),
    metric=METRICS,
    seed=st.integers(0, 2**32),
)
def test_cluster_labels_every_row_null_for_null_or_refuses(
    table: pa.Table, k: int | None, threshold: float | None, metric: str, seed: int
) -> None:
    with refusals() as refused:
        out = cluster(table, k=k, threshold=threshold, metric=metric, seed=seed).table
    if refused:
        return
    assert (k is None) != (threshold is None)
    assert _finite(table), "a NaN/Inf vector was clustered instead of refused"
    assert _keys_unique(table), "keys that cannot identify rows were accepted"
    assert out.num_rows == table.num_rows
    assert out.column("key").to_pylist() == table.column("id").to_pylist()
    labels = out.column("cluster").to_pylist()
    for row, label in zip(table.column("v").to_pylist(), labels, strict=True):
        assert (row is None) == (label is None)
    live = [x for x in labels if x is not None]
    assert sorted(set(live)) == list(range(len(set(live))))  # 0.. by first appearance
    if k is not None:
        assert len(set(live)) <= k


@prop(40)
@given(table=tables(dim=4, odd=False, keys="unique"), k=K, exact=st.booleans())
def test_self_knn_join_never_matches_a_row_with_itself(
    table: pa.Table, k: int, exact: bool
) -> None:
    with refusals() as refused:
        out = self_knn_join(table, k, exact=exact)
    if refused:
        assert k <= 0
        return
    _, keys = _live(table)
    pairs = list(
        zip(out.column("left_key").to_pylist(), out.column("right_key").to_pylist(), strict=False)
    )
    assert all(a != b for a, b in pairs)
    assert out.num_rows == len(keys) * min(k, max(len(keys) - 1, 0))


@prop(40)
@given(
    table=tables(dim=3, odd=False, keys="unique"),
    queries=vectors(dim=3),
    k=K,
    exact=st.booleans(),
)
def test_index_search_counts_are_min_k_n_and_labels_map_to_keys(
    table: pa.Table, queries: np.ndarray, k: int, exact: bool
) -> None:
    with refusals() as refused:
        index = VectorIndex.build(table.column("v"), table.column("id"), exact=exact)
        res = index.search(from_numpy(queries), k)
    if refused:
        # as Arrow (from_numpy), a NaN or Inf query is refused, and so are unusable norms
        assert (
            k <= 0 or not np.isfinite(queries).all() or not _usable(queries) or not _usable(table)
        )
        return
    n = len(_live(table)[1])
    assert len(index) == n
    assert res.counts.tolist() == [min(k, n)] * len(queries)
    found = res.labels[res.labels >= 0]
    assert set(index.key_of(found).to_pylist()) <= set(table.column("id").to_pylist())


@prop(30)
@given(left=tables(dim=2, odd=False), dim=st.integers(1, 5))
def test_mismatched_dimensions_are_refused_by_name(left: pa.Table, dim: int) -> None:
    right = pa.table({"id": [1, 2], "v": from_numpy(np.ones((2, dim), np.float32))})
    if dim == 2:
        return
    for call in (
        lambda: knn_join(left, right, 1),
        lambda: range_join(left, right, 0.5),
    ):
        if not _live(left)[1]:
            continue  # nothing to compare: an empty or all-NULL side may answer nothing
        with pytest.raises(EmbedSQLError, match="dimension"):
            call()


def test_empty_table_clusters_by_threshold_into_no_rows() -> None:
    empty = pa.table({"id": pa.array([], pa.int64()), "v": from_numpy(np.zeros((0, 2), "f4"))})
    assert cluster(empty, threshold=0.1).table.num_rows == 0


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize(
    ("metric", "scale"),
    [("cos", 1e30), ("ip", 1e30), ("l2", 1e30), ("cos", 1e-30)],
)
def test_vectors_float32_distances_cannot_hold_are_refused_by_name(
    metric: str, scale: float, exact: bool
) -> None:
    # |x|^2 of 1e30 overflows float32 (distances were inf/NaN, rows dropped); under cos a
    # norm of 1e-30 vanishes from every product (a range join matched nothing)
    mat = np.array([[1, 0], [0, 1], [1, 1], [scale, 0]], np.float32)
    table = pa.table({"id": [1, 2, 3, 4], "v": from_numpy(mat)})
    normal = table.slice(0, 3)
    for left, right in ((table, normal), (normal, table)):
        with pytest.raises(InvalidParameterError, match=r"row 3: norm .* rescale them"):
            knn_join(left, right, 2, metric=metric, exact=exact)
        with pytest.raises(InvalidParameterError, match=r"row 3: norm .* rescale them"):
            range_join(left, right, 0.5, metric=metric, exact=exact)


def test_tiny_vectors_are_fine_under_l2_and_zero_vectors_under_cos() -> None:
    mat = np.array([[1e-30, 0], [0, 0], [1, 0]], np.float32)
    table = pa.table({"id": [1, 2, 3], "v": from_numpy(mat)})
    assert knn_join(table, table, 1, metric="l2", exact=True).num_rows == 3
    assert knn_join(table.slice(1), table.slice(1), 1, metric="cos", exact=True).num_rows == 2
