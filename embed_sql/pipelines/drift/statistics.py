"""The four drift tests.

Each is a function of the check's parameters, the two samples and a seeded generator, and
returns a :class:`~embed_sql.pipelines.drift.report.DriftTest`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embed_sql.exceptions import MissingDependencyError
from embed_sql.pipelines.drift.report import DriftTest

__all__ = [
    "FOLDS",
    "DriftParams",
    "centroid_test",
    "classifier_test",
    "fit_pca",
    "mmd_test",
    "pca_ks_test",
    "sample",
]

FOLDS = 5


@dataclass(frozen=True)
class DriftParams:
    """Thresholds, sample caps and permutation counts of the drift tests."""

    classifier_auc: float = 0.55
    alpha: float = 0.05
    pca_components: int = 10
    pca_share: float = 0.2
    max_rows_classifier: int = 5_000
    max_rows_mmd: int = 2_000
    max_rows_centroid: int = 5_000
    max_rows_pca: int = 50_000
    mmd_permutations: int = 100
    permutations: int = 1_000


def _sklearn() -> tuple[object, object, object]:
    try:
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        msg = "drift checks need scikit-learn; install the extra: pip install 'embed-sql[drift]'"
        raise MissingDependencyError(msg) from exc
    return PCA, LogisticRegression, StratifiedKFold


def sample(x: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Return at most ``cap`` rows of ``x``, a seeded uniform sample in row order."""
    if len(x) <= cap:
        return x
    return x[np.sort(rng.choice(len(x), cap, replace=False))]


def _memberships(total: int, n: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    """Return 0/1 rows marking which rows belong to the first sample.

    Row 0 is the real split (the first ``n`` of ``total``), then one random relabelling per
    permutation.
    """
    labels = np.zeros((permutations + 1, total))
    labels[0, :n] = 1.0
    for j in range(1, permutations + 1):
        labels[j, rng.permutation(total)[:n]] = 1.0
    return labels


def _perm_p(observed: float, null: np.ndarray) -> float:
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + len(null)))


def _sampled(n_ref: int, n_cur: int, cap: int) -> str:
    if n_ref <= cap and n_cur <= cap:
        return ""
    return f" (subsampled to at most {cap:,} rows per side)"


def classifier_test(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Out-of-fold ROC AUC of a domain classifier, p from label permutations."""
    _, logistic_regression, k_fold = _sklearn()
    a = sample(ref, p.max_rows_classifier, rng)
    b = sample(cur, p.max_rows_classifier, rng)
    x = np.vstack([a, b]).astype(np.float64)
    x -= x.mean(axis=0)
    x /= x.std(axis=0) + 1e-12
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    scores = np.empty(len(y))
    folds = k_fold(n_splits=FOLDS, shuffle=True, random_state=int(rng.integers(2**31)))  # type: ignore[operator]
    for train, test in folds.split(x, y):
        model = logistic_regression(C=0.01, max_iter=2_000)  # type: ignore[operator]
        model.fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    ranks = _ranks(scores)
    auc = _auc_from_ranks(ranks, y.astype(bool))
    null = np.array(
        [_auc_from_ranks(ranks, rng.permutation(y).astype(bool)) for _ in range(p.permutations)]
    )
    pv = _perm_p(auc, null)
    return DriftTest(
        "classifier",
        auc,
        pv,
        f"AUC > {p.classifier_auc} and p < {p.alpha}",
        bool(auc > p.classifier_auc and pv < p.alpha),
        f"{FOLDS}-fold logistic regression, out-of-fold ROC AUC, p from "
        f"{p.permutations:,} permutations{_sampled(len(ref), len(cur), len(a))}",
        len(a),
        len(b),
    )


def mmd_test(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Unbiased MMD² with an RBF kernel (median heuristic), p from permutations."""
    a = sample(ref, p.max_rows_mmd, rng).astype(np.float64)
    b = sample(cur, p.max_rows_mmd, rng).astype(np.float64)
    z = np.vstack([a, b])
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    iu = np.triu_indices(len(z), k=1)
    bandwidth = float(np.median(d2[iu])) or 1.0
    kern = np.exp(-d2 / bandwidth)
    np.fill_diagonal(kern, 0.0)
    n, m = len(a), len(b)
    labels = _memberships(len(z), n, p.mmd_permutations, rng).T
    row, total = kern.sum(axis=1), kern.sum()
    kz = kern @ labels
    s_xx = (labels * kz).sum(axis=0)
    s_x = row @ labels
    s_xy, s_yy = s_x - s_xx, total - 2 * s_x + s_xx
    mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2 * s_xy / (n * m)
    pv = _perm_p(float(mmd2[0]), mmd2[1:])
    return DriftTest(
        "mmd",
        float(mmd2[0]),
        pv,
        f"p < {p.alpha}",
        pv < p.alpha,
        f"unbiased MMD², RBF kernel exp(-d²/{bandwidth:.4g}) (median heuristic), p from "
        f"{p.mmd_permutations} permutations{_sampled(len(ref), len(cur), n)}",
        n,
        m,
    )


def centroid_test(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Cosine distance between the mean vectors, p from permutations."""
    a = sample(ref, p.max_rows_centroid, rng).astype(np.float64)
    b = sample(cur, p.max_rows_centroid, rng).astype(np.float64)
    z = np.vstack([a, b])
    n = len(a)
    labels = _memberships(len(z), n, p.permutations, rng)
    sums = labels @ z
    mean_a = sums / n
    mean_b = (z.sum(axis=0) - sums) / len(b)
    dist = _cosine_distance(mean_a, mean_b)
    pv = _perm_p(float(dist[0]), dist[1:])
    return DriftTest(
        "centroid",
        float(dist[0]),
        pv,
        f"p < {p.alpha}",
        pv < p.alpha,
        f"cosine distance between the mean vectors, p from {p.permutations:,} "
        f"permutations{_sampled(len(ref), len(cur), n)}",
        n,
        len(b),
    )


def fit_pca(p: DriftParams, reference: np.ndarray, rng: np.random.Generator) -> object:
    """Fit the reference's principal components (at most ``p.pca_components``)."""
    if True:
        pca, _, _ = _sklearn()
        k = min(p.pca_components, reference.shape[1], len(reference) - 1)
        model = pca(n_components=k, random_state=int(rng.integers(2**31)))  # type: ignore[operator]
        model.fit(sample(reference, p.max_rows_pca, rng))
    return model


def pca_ks_test(
    p: DriftParams, model: object, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Share of the reference's principal components whose KS test flags a change."""
    from scipy.stats import ks_2samp

    a = model.transform(sample(ref, p.max_rows_pca, rng))  # type: ignore[attr-defined]
    b = model.transform(sample(cur, p.max_rows_pca, rng))  # type: ignore[attr-defined]
    k = a.shape[1]
    res = ks_2samp(a, b, axis=0)
    stats, pvals = np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue)
    drifted = pvals < p.alpha / k
    share = float(drifted.mean())
    return DriftTest(
        "pca",
        share,
        None,
        f"share > {p.pca_share} (KS p < {p.alpha}/{k} per component)",
        share > p.pca_share,
        f"two-sample KS test on each of the reference's first {k} principal components"
        f"{_sampled(len(ref), len(cur), len(a))}",
        len(a),
        len(b),
        extra={
            "ks_statistic": stats.round(6).tolist(),
            "ks_p_value": pvals.tolist(),
            "drifted": drifted.tolist(),
            "explained_variance": model.explained_variance_ratio_.round(6).tolist(),  # type: ignore[attr-defined]
        },
    )


def _ranks(scores: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(scores)


def _auc_from_ranks(ranks: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-30)
    return np.clip(1.0 - cos, 0.0, 2.0)
