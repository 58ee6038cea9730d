from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import (
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.vectors import IndexFileError, VectorIndex, from_numpy, recall
from embed_sql.vectors.metrics import Metric, distances, pair_distances

METRICS = ["cos", "ip", "l2", "l2sq"]


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    """Points around a few centres: real neighbours, unlike i.i.d. noise in high dim."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)).astype(np.float32) * 4
    return (c[rng.integers(0, centers, n)] + rng.normal(size=(n, dim))).astype(np.float32)


def brute_force(metric: str, q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    d = distances(Metric(metric), q, x).astype(np.float64)
    return np.lexsort((np.broadcast_to(np.arange(len(x)), d.shape), d), axis=1)[:, :k]


@pytest.mark.parametrize("metric", METRICS)
def test_exact_mode_equals_numpy_brute_force(metric: str) -> None:
    x, q = clustered(3000), clustered(50, seed=1)
    idx = VectorIndex.build(x, np.arange(3000), metric=metric, exact=True)
    res = idx.search(q, 10)
    np.testing.assert_array_equal(res.labels, brute_force(metric, q, x, 10))
    expected = np.take_along_axis(distances(Metric(metric), q, x), res.labels, 1)
    np.testing.assert_allclose(res.distances, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_hnsw_recall_is_high_on_clustered_data(metric: str) -> None:
    x = clustered(5000)
    idx = VectorIndex.build(x, np.arange(5000), metric=metric)
    assert recall(idx, k=10, sample=300) >= 0.95


def test_results_are_closest_first_and_ties_go_to_the_smaller_key() -> None:
    x = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32)
    idx = VectorIndex.build(x, ["c", "a", "b", "z"], exact=True)
    res = idx.search(np.array([[1, 0]], np.float32), 2)
    assert idx.key_of(res.labels[0]).to_pylist() == ["a", "b"]


def test_k_larger_than_the_index_returns_every_row() -> None:
    idx = VectorIndex.build(clustered(5), range(5), exact=True)
    res = idx.search(clustered(2, seed=3), 50)
    assert res.labels.shape == (2, 5)
    assert res.counts.tolist() == [5, 5]


def test_empty_index_and_empty_queries() -> None:
    idx = VectorIndex(4)
    res = idx.search(np.ones((2, 4), np.float32), 3)
    assert res.counts.tolist() == [0, 0]
    assert len(idx) == 0
    full = VectorIndex.build(np.ones((3, 4), np.float32), range(3))
    assert full.search(np.zeros((0, 4), np.float32), 3).labels.shape == (0, 3)


def test_null_vectors_are_skipped_and_null_queries_match_nothing() -> None:
    arr = from_numpy(np.eye(3, dtype=np.float32), valid=np.array([True, False, True]))
    idx = VectorIndex.build(arr, [10, 11, 12], exact=True)
    assert idx.keys().to_pylist() == [10, 12]
    res = idx.search(arr, 5)
    assert res.counts.tolist() == [2, 0, 2]


def test_dimension_mismatch_names_both_lengths() -> None:
    idx = VectorIndex.build(np.ones((3, 4), np.float32), range(3))
    with pytest.raises(DimensionMismatchError, match=r"5 dimensions but the index has 4"):
        idx.search(np.ones((1, 5), np.float32), 1)


def test_keys_must_be_unique_unless_allowed() -> None:
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="duplicate key 'a'"):
        VectorIndex.build(x, ["a", "b", "a"])
    idx = VectorIndex.build(x, ["a", "b", "a"], allow_duplicates=True)
    assert len(idx) == 3
    with pytest.raises(InvalidParameterError, match="duplicate key 'b'"):
        VectorIndex.build(x[:2], ["a", "b"]).add(["b"], x[:1])


@pytest.mark.parametrize(
    ("keys", "match"),
    [([1.5, 2.5, 3.5], "integers or strings"), (["a", None, "c"], "NULL"), (["a"], "1 keys")],
)
def test_bad_keys_are_refused(keys: list[object], match: str) -> None:
    with pytest.raises((InputTypeError, DimensionMismatchError), match=match):
        VectorIndex.build(np.eye(3, dtype=np.float32), keys)


def test_nan_vectors_and_bad_parameters_are_refused() -> None:
    with pytest.raises(InputTypeError, match="NaN"):
        VectorIndex(2).add([1], from_numpy(np.array([[np.nan, 1]], np.float32)))
    with pytest.raises(InvalidParameterError, match="dtype='f64'"):
        VectorIndex(2, dtype="f64")
    with pytest.raises(InvalidParameterError, match="k=0"):
        VectorIndex.build(np.eye(2, dtype=np.float32), [1, 2]).search(np.eye(2), 0)


@pytest.mark.parametrize("exact", [True, False])
def test_add_then_remove(exact: bool) -> None:
    x = clustered(200)
    idx = VectorIndex.build(x[:100], np.arange(100), exact=exact)
    idx.add(np.arange(100, 200), x[100:])
    assert len(idx) == 200
    assert idx.remove([5, 150, 999]) == 2
    res = idx.search(x[[5, 150]], 1)
    found = idx.key_of(res.labels[:, 0]).to_pylist()
    assert 5 not in found
    assert 150 not in found
    assert len(idx) == 198
    with pytest.raises(InputTypeError, match="index whose keys are int64; pass int64"):
        idx.remove(["five"])


@pytest.mark.parametrize("exact", [True, False])
def test_filter_applies_before_top_k(exact: bool) -> None:
    x = clustered(4000)
    idx = VectorIndex.build(x, np.arange(4000), exact=exact)
    allowed = np.zeros(4000, dtype=bool)
    allowed[::97] = True  # 42 rows, scattered
    res = idx.search(x[:20], 10, allowed=allowed)
    assert (res.counts == 10).all()
    assert allowed[res.labels].all()
    truth = np.flatnonzero(allowed)[brute_force("cos", x[:20], x[allowed], 10)]
    np.testing.assert_array_equal(res.labels, truth)


@pytest.mark.parametrize(
    ("exact", "dtype", "rescore"),
    [
        (True, "f32", None),
        (False, "f32", None),
        (False, "f16", True),
        (False, "f16", False),
        (False, "i8", True),
        (False, "i8", False),
    ],
)
def test_save_load_and_view_round_trip(
    tmp_path: Path, exact: bool, dtype: str, rescore: bool | None
) -> None:
    x = clustered(500)
    keys = pa.array([f"doc-{i}" for i in range(500)])
    idx = VectorIndex.build(
        x, keys, exact=exact, dtype=dtype, rescore=rescore, metric="l2", model="m"
    )
    idx.remove(["doc-7"])
    path = idx.save(tmp_path / "docs.index")
    expected = idx.search(x[:20], 5)
    results = []
    for loaded in (VectorIndex.load(path), VectorIndex.view(path)):
        assert (loaded.metric, loaded.dim, loaded.dtype, loaded.model) == (
            Metric.L2,
            32,
            dtype,
            "m",
        )
        assert len(loaded) == 499
        assert loaded.rescore == idx.rescore
        got = loaded.search(x[:20], 5)
        same = got.labels == expected.labels
        if exact:
            assert same.all()
        else:  # a restored graph may end one search differently (seen once in 200 i8 builds)
            assert same.mean() >= 0.98
        np.testing.assert_array_equal(got.distances[same], expected.distances[same])
        assert loaded.key_of(got.labels[same]).to_pylist() == (
            idx.key_of(expected.labels[same]).to_pylist()
        )
        results.append(got)
    np.testing.assert_array_equal(results[0].labels, results[1].labels)  # load == view
    np.testing.assert_array_equal(results[0].distances, results[1].distances)
    assert [p.name for p in tmp_path.iterdir()] == ["docs.index"]


def test_corrupt_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = VectorIndex.build(clustered(300), range(300)).save(tmp_path / "a.index")
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.index"
    data[-100] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="checksum mismatch"):
        VectorIndex.load(flipped)
    short = tmp_path / "short.index"
    short.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(IndexFileError, match="truncated"):
        VectorIndex.view(short)
    foreign = tmp_path / "foreign.index"
    foreign.write_bytes(b"PK\x03\x04 not an index at all" * 10)
    with pytest.raises(IndexFileError, match="not an embed_sql index"):
        VectorIndex.load(foreign)
    with pytest.raises(IndexFileError, match="cannot open"):
        VectorIndex.load(tmp_path / "missing.index")


def test_failed_save_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx = VectorIndex.build(clustered(100), range(100), exact=True)
    path = idx.save(tmp_path / "a.index")
    before = path.read_bytes()
    idx.add([1000], clustered(1, seed=9))

    def no_fsync(_: int) -> None:
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr("os.fsync", no_fsync)
    with pytest.raises(OSError, match="disk full"):
        idx.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.index"]


@pytest.mark.parametrize("exact", [True, False])
def test_range_search_equals_brute_force(exact: bool) -> None:
    x = clustered(1500)
    idx = VectorIndex.build(x, np.arange(1500), metric="l2", exact=exact)
    d = distances(Metric.L2, x[:30], x)
    threshold = float(np.quantile(d, 0.02))
    qr, lab, dist = idx.range_search(x[:30], threshold)
    found = set(zip(qr.tolist(), lab.tolist(), strict=True))
    truth = set(zip(*np.nonzero(d <= threshold), strict=True))
    if exact:
        assert found == truth
    else:
        assert len(found & truth) >= 0.95 * len(truth)
    assert (dist <= threshold).all()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_reduced_precision_graph_returns_exact_distances(metric: str, dtype: str) -> None:
    x, q = clustered(2000, dim=48), clustered(50, dim=48, seed=1)
    idx = VectorIndex.build(x, range(2000), metric=metric, dtype=dtype)
    assert idx.rescore
    assert "rescore" in repr(idx)
    got = idx.search(q, 10)
    exact = pair_distances(idx.metric, q[:, None, :], x[got.labels])
    np.testing.assert_allclose(got.distances, exact, rtol=1e-6, atol=1e-6)
    assert (np.diff(got.distances, axis=1) >= 0).all()
    np.testing.assert_array_equal(idx.vectors(np.arange(5)), x[:5])  # the originals
    plain = VectorIndex.build(x, range(2000), metric=metric, dtype=dtype, rescore=False)
    approx = plain.search(q, 10)
    off = np.abs(approx.distances - pair_distances(plain.metric, q[:, None, :], x[approx.labels]))
    assert off.max() > 1e-6  # without rescoring the graph's rounding shows


def test_rescored_range_search_uses_exact_distances() -> None:
    x = clustered(1500, dim=48)
    q = x[:40] + 0.01
    exact = VectorIndex.build(x, range(1500), exact=True)
    threshold = float(np.quantile(exact.search(q, 30).distances, 0.5))
    want = exact.range_search(q, threshold)
    for dtype in ("f16", "i8"):
        got = VectorIndex.build(x, range(1500), dtype=dtype).range_search(q, threshold)
        assert (got[2] <= threshold).all()
        pairs = set(zip(got[0].tolist(), got[1].tolist(), strict=True))
        truth = set(zip(want[0].tolist(), want[1].tolist(), strict=True))
        assert len(pairs & truth) >= 0.97 * len(truth)
        assert pairs <= truth  # nothing beyond the threshold sneaks in
        hit = np.isin(got[0] * 10_000 + got[1], want[0] * 10_000 + want[1])
        np.testing.assert_allclose(
            np.sort(got[2][hit]),
            np.sort(want[2][np.isin(want[0] * 10_000 + want[1], got[0] * 10_000 + got[1])]),
            rtol=1e-6,
            atol=1e-6,
        )


@pytest.mark.parametrize("exact", [True, False])
def test_the_index_keeps_its_own_copy_of_the_vectors(exact: bool) -> None:
    x = clustered(300)
    idx = VectorIndex.build(x, range(300), exact=exact)
    before = idx.search(x[:5], 3)
    x[:] = 0.0  # the caller reuses its buffer
    after = idx.search(clustered(300)[:5], 3)
    np.testing.assert_array_equal(after.labels, before.labels)
    np.testing.assert_array_equal(after.distances, before.distances)
