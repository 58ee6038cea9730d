"""The four drift tests and Holm's combination of their p-values.

Each test is a function of the check's parameters, the two samples and a seeded generator,
and returns a :class:`~embed_sql.pipelines.drift.report.DriftTest` whose p-value is valid
by construction: under "no drift" (the reference and current rows are exchangeable, as two
random samples of one source are), ``P(p <= u) <= u`` for every ``u``.

Why. Each test computes a statistic ``T(Z, y)`` of the pooled rows ``Z`` and the labels ``y``
(reference or current), and compares it with ``T(Z, y')`` for random relabellings ``y'``
(or, for the KS test, with the exact or asymptotic law of that comparison). Under no drift
every relabelling of the pooled rows is as likely as the real one, so the real statistic is
one more draw from the same law, and ``p = (1 + #{T(y') >= T(y)}) / (1 + B)`` is valid for
any number ``B`` of random relabellings. That holds only if everything ``T`` fits from data
is either fitted on the pooled rows without looking at the labels (standardisation, the
folds, the kernel bandwidth, the principal components: the same for every relabelling) or
fitted again for each relabelling (the classifier). Three designs that break it, and were
measured to (BBC News, default-model vectors, random halves):

- permuting the labels over fixed out-of-fold classifier scores, globally or within folds:
  labels are exchangeable within one fold given its scores, but the model scoring fold k
  was trained on the labels of fold j and the one scoring fold j on those of fold k, so
  under no drift the fold AUCs move together (correlation 0.24-0.30 between folds on 60
  splits of 500 + 500 articles) and the pooled AUC's spread is 1.45 times the permutations'
  (sd 0.027 against 0.018): p < 0.05 in 8 % (global) and 12 % (within folds) of the splits,
  with label-blind folds; stratified ones did no better;
- principal components fitted on the reference only: the reference spreads more along its
  own components than another sample of the same source does, which a KS test sees as
  drift (p < 0.05 in 3 of 20 such splits; with 50 rows a side in 100 dimensions, p <= 0.5
  in 47 of 60 synthetic replicates);
- any split that is not exchangeable (time-ordered halves of a drifting source): those are
  real differences, not false alarms.

The verdict combines the tests with Holm's step-down procedure (:func:`holm`), which keeps
the chance of any false rejection at ``alpha`` under arbitrary dependence between the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embed_sql.exceptions import MissingDependencyError
from embed_sql.pipelines.drift.report import DriftTest

__all__ = [
    "FOLDS",
    "Components",
    "DriftParams",
    "centroid_test",
    "classifier_test",
    "fit_pca",
    "holm",
    "mmd_test",
    "pca_ks_test",
    "sample",
]

FOLDS = 5


@dataclass(frozen=True)
class DriftParams:
    """Sample caps, permutation counts and model settings of the drift tests."""

    classifier_ridge: float = 10.0
    classifier_permutations: int = 200
    pca_components: int = 10
    max_rows_classifier: int = 2_500
    max_rows_mmd: int = 2_000
    max_rows_centroid: int = 5_000
    max_rows_pca: int = 50_000
    max_rows_pca_fit: int = 10_000
    mmd_permutations: int = 100
    permutations: int = 1_000


def _scipy_stats() -> object:
    try:
        from scipy import stats
    except ImportError as exc:
        msg = "drift checks need scipy; install the extra: pip install 'embed-sql[drift]'"
        raise MissingDependencyError(msg) from exc
    return stats


def _scipy_linalg() -> object:
    _scipy_stats()  # the same install hint when scipy is missing
    from scipy import linalg

    return linalg


class Components:
    """Principal components from the eigenvectors of a sample's covariance matrix.

    ``transform`` centres rows on the sample's mean and projects them; each component's
    sign is fixed (its largest loading positive), so the same rows give the same axes.
    """

    def __init__(self, rows: np.ndarray, k: int) -> None:
        x = rows.astype(np.float64)
        self.mean = x.mean(axis=0)
        x -= self.mean
        cov = x.T @ x / max(len(x) - 1, 1)
        dim = len(cov)
        values, vectors = _scipy_linalg().eigh(cov, subset_by_index=[dim - k, dim - 1])  # type: ignore[attr-defined]
        order = np.argsort(values)[::-1]
        axes = vectors[:, order]
        axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])] + 1e-300)
        self.components = axes
        total = float(np.trace(cov))
        self.explained_variance_ratio_ = values[order].clip(min=0) / (total or 1.0)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """Project ``rows`` on the components."""
        return (rows.astype(np.float64) - self.mean) @ self.components


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
    """Out-of-fold ROC AUC of a ridge classifier, p from relabellings each refitted.

    The pooled rows are standardised and cut into ``FOLDS`` folds at random, both without
    looking at the labels. For each fold, a least-squares (ridge) classifier trained on the
    other folds scores it, and the statistic is the ROC AUC of all out-of-fold scores. Its
    weights are linear in the labels (``w = (X'X + λI)⁻¹ X'y`` on the training folds), so
    the whole cross-fitted procedure is re-run exactly for every relabelling at the cost of
    a matrix product: the p-value compares like with like (see the module docstring; fixed
    out-of-fold scores permuted would not).
    """
    a = sample(ref, p.max_rows_classifier, rng)
    b = sample(cur, p.max_rows_classifier, rng)
    z = np.vstack([a, b]).astype(np.float64)
    z -= z.mean(axis=0)
    z /= z.std(axis=0) + 1e-12
    total, dim = z.shape
    labels = _memberships(total, len(a), p.classifier_permutations, rng).T  # reference = 1
    fold = np.empty(total, dtype=np.int64)
    fold[rng.permutation(total)] = np.arange(total) % FOLDS
    gram, by_label, counts, col_sums = z.T @ z, z.T @ labels, labels.sum(axis=0), z.sum(axis=0)
    scores = np.empty_like(labels)
    for k in range(FOLDS):
        rows = np.flatnonzero(fold == k)
        held, held_labels = z[rows], labels[rows]
        n_train = total - len(rows)
        mean = (col_sums - held.sum(axis=0)) / n_train
        # the training folds' centred Gram matrix and X'y, from the pooled ones minus fold k
        lhs = gram - held.T @ held - n_train * np.outer(mean, mean)
        lhs[np.diag_indices(dim)] += p.classifier_ridge * n_train
        rhs = by_label - held.T @ held_labels - np.outer(mean, counts - held_labels.sum(axis=0))
        scores[rows] = (held - mean) @ np.linalg.solve(lhs, rhs)
    auc = _auc(scores, labels, len(a))
    pv = _perm_p(float(auc[0]), auc[1:])
    return DriftTest(
        name="classifier",
        statistic=float(auc[0]),
        p_value=pv,
        threshold="",
        drift=None,
        detail=f"{FOLDS}-fold ridge classifier (λ = {p.classifier_ridge:g}·rows, standardised "
        f"features), out-of-fold ROC AUC; p from {p.classifier_permutations} relabellings, "
        f"each refitted{_sampled(len(ref), len(cur), len(a))}",
        n_reference=len(a),
        n_current=len(b),
    )


def mmd_test(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Unbiased MMD² with an RBF kernel, p from permutations.

    The bandwidth is the median pairwise squared distance of the pooled rows, the same for
    every relabelling, so the permutation p-value is exact.
    """
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
        name="mmd",
        statistic=float(mmd2[0]),
        p_value=pv,
        threshold="",
        drift=None,
        detail=f"unbiased MMD², RBF kernel exp(-d²/{bandwidth:.4g}) (median heuristic on the "
        f"pooled rows), p from {p.mmd_permutations} permutations"
        f"{_sampled(len(ref), len(cur), n)}",
        n_reference=n,
        n_current=m,
    )


def centroid_test(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> DriftTest:
    """Cosine distance between the mean vectors, p from permutations (nothing is fitted)."""
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
        name="centroid",
        statistic=float(dist[0]),
        p_value=pv,
        threshold="",
        drift=None,
        detail=f"cosine distance between the mean vectors, p from {p.permutations:,} "
        f"permutations{_sampled(len(ref), len(cur), n)}",
        n_reference=n,
        n_current=len(b),
    )


def fit_pca(
    p: DriftParams, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator
) -> Components:
    """Fit principal components on a uniform sample of the pooled rows, labels unseen.

    Rows are drawn from the pooled sample without regard to which side they came from, so
    under no drift the components do not depend on the labelling (reference-only components
    would: the reference spreads more along its own components than the current does).
    """
    total = len(ref) + len(cur)
    pick = np.sort(rng.choice(total, min(total, p.max_rows_pca_fit), replace=False))
    cut = int(np.searchsorted(pick, len(ref)))
    fit_rows = np.vstack([ref[pick[:cut]], cur[pick[cut:] - len(ref)]])
    return Components(fit_rows, min(p.pca_components, ref.shape[1], len(fit_rows) - 1))


def pca_ks_test(
    p: DriftParams,
    model: Components,
    ref: np.ndarray,
    cur: np.ndarray,
    rng: np.random.Generator,
    *,
    alpha: float = 0.05,
) -> DriftTest:
    """Two-sample KS tests on the pooled principal components, one Bonferroni p-value.

    ``p = min(1, k · min_j p_j)`` over the ``k`` components: valid whatever the dependence
    between the components' tests. Each KS p-value is the law of the statistic over the
    relabellings of the projected pooled rows (exact for small samples, asymptotic for large
    ones), valid because the projection was fitted without the labels (:func:`fit_pca`).
    ``extra["drifted"]`` marks the components with ``k · p_j < alpha``.
    """
    a = model.transform(sample(ref, p.max_rows_pca, rng))
    b = model.transform(sample(cur, p.max_rows_pca, rng))
    k = a.shape[1]
    res = _scipy_stats().ks_2samp(a, b, axis=0)  # type: ignore[attr-defined]
    stats, pvals = np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue)
    best = int(np.argmin(pvals))
    return DriftTest(
        name="pca",
        statistic=float(stats[best]),
        p_value=float(min(1.0, k * pvals[best])),
        threshold="",
        drift=None,
        detail=f"two-sample KS test on each of the first {k} principal components of the "
        f"pooled rows; p = {k} x the smallest (Bonferroni); statistic: that component's KS "
        f"statistic{_sampled(len(ref), len(cur), len(a))}",
        n_reference=len(a),
        n_current=len(b),
        extra={
            "ks_statistic": stats.round(6).tolist(),
            "ks_p_value": pvals.tolist(),
            "drifted": (pvals * k < alpha).tolist(),
            "explained_variance": model.explained_variance_ratio_.round(6).tolist(),
        },
    )


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (in the input order).

    A test rejects when its adjusted p-value is below ``alpha``; the chance of any false
    rejection is then at most ``alpha`` under arbitrary dependence between the tests, and
    at least one test rejects exactly when the smallest p-value is below ``alpha / m``.

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for i, j in enumerate(sorted(range(m), key=lambda t: p_values[t])):
        running = max(running, (m - i) * p_values[j])
        adjusted[j] = min(1.0, running)
    return adjusted


def _auc(scores: np.ndarray, labels: np.ndarray, n_pos: int) -> np.ndarray:
    """ROC AUC of each column of ``scores`` for the 0/1 column of ``labels`` beside it."""
    ranks = _scipy_stats().rankdata(scores, axis=0)  # type: ignore[attr-defined]
    n_neg = len(scores) - n_pos
    return ((ranks * labels).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-30)
    return np.clip(1.0 - cos, 0.0, 2.0)
