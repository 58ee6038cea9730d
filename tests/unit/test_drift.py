"""Drift checks on synthetic vectors: the statistics, the verdict, the report and bad input."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import (
    ColumnNotFoundError,
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.pipelines import drift
from embed_sql.pipelines.drift import TESTS, DriftCheck, check
from embed_sql.vectors import from_numpy


def _clusters(n: int, weights: list[float], seed: int, dim: int = 32) -> np.ndarray:
    """Unit vectors around four fixed topic centres, drawn with the given topic weights."""
    centres = np.random.default_rng(123).normal(size=(4, dim))
    rng = np.random.default_rng(seed)
    topic = rng.choice(4, size=n, p=weights)
    x = centres[topic] + rng.normal(scale=1.5, size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


EVEN = [0.25, 0.25, 0.25, 0.25]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(drift).failed == 0


@pytest.mark.parametrize("seed", range(5))
def test_two_samples_of_one_source_show_no_drift(seed: int) -> None:
    report = check(_clusters(600, EVEN, seed), _clusters(600, EVEN, seed + 100), seed=seed)
    assert report.verdict == "no drift"
    assert report.test("classifier").statistic < 0.55


def test_a_topic_shift_is_flagged_by_every_test() -> None:
    report = check(_clusters(600, EVEN, 1), _clusters(600, [0.0, 0.5, 0.25, 0.25], 2))
    assert report.verdict == "drift"
    assert report.drift
    assert [t.name for t in report.tests if t.drift] == list(TESTS)


def test_the_same_inputs_give_the_same_report() -> None:
    a, b = _clusters(300, EVEN, 1), _clusters(300, [0.4, 0.2, 0.2, 0.2], 2)
    assert check(a, b, seed=7).to_dict() == check(a, b, seed=7).to_dict()


def test_mmd_statistic_equals_the_textbook_formula() -> None:
    a, b = _clusters(50, EVEN, 1, dim=4), _clusters(40, [0.7, 0.1, 0.1, 0.1], 2, dim=4)
    got = check(a, b, tests=["mmd"], min_votes=1).test("mmd").statistic
    z = np.vstack([a, b]).astype(np.float64)
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / np.median(d2[np.triu_indices(len(z), 1)]))
    kxx, kyy, kxy = k[:50, :50], k[50:, 50:], k[:50, 50:]
    want = (
        (kxx.sum() - np.trace(kxx)) / (50 * 49)
        + (kyy.sum() - np.trace(kyy)) / (40 * 39)
        - 2 * kxy.mean()
    )
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_centroid_distance_is_the_cosine_distance_of_the_means() -> None:
    a, b = _clusters(80, EVEN, 1), _clusters(90, [0.7, 0.1, 0.1, 0.1], 2)
    got = check(a, b, tests=["centroid"], min_votes=1).test("centroid").statistic
    ma, mb = a.mean(0).astype(np.float64), b.mean(0).astype(np.float64)
    want = 1 - ma @ mb / np.linalg.norm(ma) / np.linalg.norm(mb)
    assert got == pytest.approx(want, rel=1e-6)


def test_classifier_auc_near_one_for_separable_samples() -> None:
    a = _clusters(200, [1, 0, 0, 0], 1)
    b = _clusters(200, [0, 1, 0, 0], 2)
    t = check(a, b, tests=["classifier"], min_votes=1).test("classifier")
    assert t.statistic > 0.95
    assert t.p_value == pytest.approx(1 / 1001)


def test_large_inputs_are_subsampled_and_the_report_says_so() -> None:
    a, b = _clusters(6_000, EVEN, 1), _clusters(6_000, EVEN, 2)
    report = check(a, b)
    assert report.test("mmd").n_reference == DriftCheck.params.max_rows_mmd
    assert report.test("pca").n_reference == 6_000
    assert any("mmd ran on a random subsample" in n for n in report.notes)
    assert not any(n.startswith("pca") for n in report.notes)


def test_report_serialises_to_json_arrow_text_and_html(tmp_path: pytest.TempPathFactory) -> None:
    report = check(_clusters(300, EVEN, 1), _clusters(300, [0.1, 0.3, 0.3, 0.3], 2))
    path = tmp_path / "report.json"  # type: ignore[operator]
    text = report.to_json(path)
    data = json.loads(path.read_text())
    assert data == json.loads(text)
    assert data["verdict"] == report.verdict
    assert [t["name"] for t in data["tests"]] == list(TESTS)
    assert len(data["tests"][3]["extra"]["ks_statistic"]) == 10
    table = report.to_arrow()
    assert table.column("test").to_pylist() == [*TESTS, "overall"]
    assert table.column("detail")[-1].as_py() == report.verdict
    assert report.verdict in str(report)
    page = report._repr_html_()
    assert "<table>" in page
    assert "data:image/png;base64," in page


def test_null_vectors_are_skipped_and_counted() -> None:
    a = _clusters(100, EVEN, 1)
    with_nulls = pa.table({"v": from_numpy(a, valid=np.arange(100) % 10 != 0)})
    report = check(with_nulls, a)
    assert report.n_reference == 90
    assert "10 NULL reference vectors skipped" in report.notes


def test_too_few_rows_give_an_explicit_insufficient_data_verdict() -> None:
    report = check(_clusters(100, EVEN, 1), _clusters(12, EVEN, 2))
    assert report.verdict == "insufficient data"
    assert not report.drift
    assert report.tests == ()
    assert "fewer than min_rows=30" in report.notes[0]
    assert report.to_arrow().column("drift").to_pylist() == [None]


@pytest.mark.parametrize(
    ("ref", "cur", "error", "match"),
    [
        (np.zeros((0, 4)), np.ones((40, 4)), InvalidParameterError, "reference has no"),
        (np.ones((40, 4)), np.zeros((0, 4)), InvalidParameterError, "current sample has no"),
        (np.ones((40, 4)), np.ones((40, 5)), DimensionMismatchError, "4 dimensions.*5"),
        ("not vectors", np.ones((40, 4)), InputTypeError, "got str"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    ref: object, cur: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check(ref, cur)


def test_vectors_of_different_models_are_refused() -> None:
    a = _clusters(40, EVEN, 1)

    def tagged(key: str) -> pa.Table:
        field = pa.field("v", pa.list_(pa.float32(), 32), metadata={b"embed_sql.model_key": key})
        return pa.table([from_numpy(a)], schema=pa.schema([field]))

    with pytest.raises(DimensionMismatchError, match="different models"):
        check(tagged("aaaa"), tagged("bbbb"))
    assert check(tagged("aaaa"), tagged("aaaa")).verdict == "no drift"


def test_missing_column_and_bad_options_are_refused() -> None:
    a = pa.table({"v": from_numpy(_clusters(40, EVEN, 1))})
    with pytest.raises(ColumnNotFoundError, match="no column 'emb'"):
        check(a, a, vec="emb")
    with pytest.raises(InvalidParameterError, match="allowed are"):
        DriftCheck(a, tests=["ks"])
    with pytest.raises(InvalidParameterError, match="min_votes"):
        DriftCheck(a, tests=["mmd"], min_votes=2)
