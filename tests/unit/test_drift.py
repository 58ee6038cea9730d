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
from embed_sql.pipelines.drift import statistics as stats
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
    assert report.p_value is not None
    assert report.p_value >= 0.05
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
    got = check(a, b, tests=["mmd"]).test("mmd").statistic
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
    got = check(a, b, tests=["centroid"]).test("centroid").statistic
    ma, mb = a.mean(0).astype(np.float64), b.mean(0).astype(np.float64)
    want = 1 - ma @ mb / np.linalg.norm(ma) / np.linalg.norm(mb)
    assert got == pytest.approx(want, rel=1e-6)


def test_classifier_auc_near_one_for_separable_samples() -> None:
    a = _clusters(200, [1, 0, 0, 0], 1)
    b = _clusters(200, [0, 1, 0, 0], 2)
    t = check(a, b, tests=["classifier"]).test("classifier")
    assert t.statistic > 0.95
    assert t.p_value == pytest.approx(1 / (1 + DriftCheck.params.classifier_permutations))
    assert t.p_adjusted == t.p_value  # one test: Holm changes nothing
    assert t.drift


def test_large_inputs_are_subsampled_and_the_report_says_so() -> None:
    a, b = _clusters(6_000, EVEN, 1), _clusters(6_000, EVEN, 2)
    report = check(a, b)
    assert report.test("mmd").n_reference == DriftCheck.params.max_rows_mmd
    assert report.test("classifier").n_reference == DriftCheck.params.max_rows_classifier
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
    assert table.column_names[:4] == ["test", "statistic", "p_value", "p_adjusted"]
    assert table.column("p_adjusted")[-1].as_py() == report.p_value
    assert table.column("detail")[-1].as_py() == report.verdict
    assert data["p_value"] == report.p_value
    assert data["alpha"] == 0.05
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
    with pytest.raises(InvalidParameterError, match=r"min_votes=2 is no longer.*set alpha"):
        DriftCheck(a, min_votes=2)
    for alpha in (0, 1, -0.1, 1.5, float("nan"), True, "0.05"):
        with pytest.raises(InvalidParameterError, match="strictly between 0 and 1"):
            DriftCheck(a, alpha=alpha)  # type: ignore[arg-type]


def test_holm_adjusts_like_the_textbook() -> None:
    # Holm (1979): sorted p times (m, m-1, ...), made monotone, capped at 1
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([0.2]) == [0.2]


def test_the_verdict_is_the_smallest_holm_adjusted_p_value_below_alpha() -> None:
    a, b = _clusters(300, EVEN, 1), _clusters(300, [0.3, 0.25, 0.25, 0.2], 2)
    for alpha in (0.01, 0.05, 0.2, 0.5):
        report = check(a, b, alpha=alpha)
        raw = [t.p_value for t in report.tests]
        assert [t.p_adjusted for t in report.tests] == pytest.approx(stats.holm(raw))
        assert [t.drift for t in report.tests] == [t.p_adjusted < alpha for t in report.tests]
        assert report.drift == (min(raw) * len(raw) < alpha)
        assert report.rejections == sum(t.drift for t in report.tests)
    assert check(a, b, alpha=0.5).drift  # a mild shift: found at a lax alpha only
    assert not check(a, b, alpha=0.01).drift


# -- every test's p-value is valid: roughly uniform when both samples come from one source --
#
# Few replicates and a loose bound: for u in 0.05, 0.1, 0.2, 0.5 the share of p <= u must
# not exceed the binomial 0.9995 quantile of a uniform p-value's. A test that permuted fixed
# out-of-fold scores, or projected on the reference's own components, fails it (measured:
# the former design's PCA test gives p <= 0.5 in 83 % of the replicates below).

LEVELS = (0.05, 0.1, 0.2, 0.5)


def _one_source(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Anisotropic Gaussian rows (four strong directions) on the unit sphere."""
    scale = np.r_[np.full(4, 3.0), np.ones(dim - 4)]
    x = rng.normal(size=(n, dim)) * scale
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _null_p_values(name: str, replicates: int, n: int, dim: int) -> np.ndarray:
    params = stats.DriftParams(permutations=99, mmd_permutations=99, classifier_permutations=99)
    out = []
    for r in range(replicates):
        rng = np.random.default_rng([r, 17])
        a, b = _one_source(n, dim, rng), _one_source(n, dim, rng)
        if name == "pca":
            t = stats.pca_ks_test(params, stats.fit_pca(params, a, b, rng), a, b, rng)
        else:
            runner = {
                "classifier": stats.classifier_test,
                "mmd": stats.mmd_test,
                "centroid": stats.centroid_test,
            }[name]
            t = runner(params, a, b, rng)
        out.append(t.p_value)
    return np.asarray(out)


def _assert_not_anti_conservative(p: np.ndarray) -> None:
    from scipy.stats import binom

    for u in LEVELS:
        bound = binom.ppf(1 - 0.0005, len(p), u)
        assert np.count_nonzero(p <= u) <= bound, (u, np.sort(p)[:10])


@pytest.mark.parametrize(
    ("name", "replicates", "n", "dim"),
    [("classifier", 200, 40, 32), ("mmd", 150, 40, 32), ("centroid", 200, 40, 32)],
)
def test_permutation_p_values_are_uniform_when_nothing_moved(
    name: str, replicates: int, n: int, dim: int
) -> None:
    p = _null_p_values(name, replicates, n, dim)
    _assert_not_anti_conservative(p)
    # and not stuck near 1 either: a permutation p-value is uniform, so about half <= 0.5
    assert np.count_nonzero(p <= 0.5) >= 0.35 * replicates


def test_pca_p_values_are_valid_when_nothing_moved() -> None:
    # few rows for many dimensions: components fitted on the reference alone would overfit
    # it and make the KS tests see drift here
    p = _null_p_values("pca", 60, 50, 100)
    _assert_not_anti_conservative(p)
    assert np.count_nonzero(p < 1.0) >= 0.2 * len(p)  # Bonferroni is conservative, not inert
