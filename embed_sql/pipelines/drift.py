"""Drift checks between two embedding columns: has the data moved.

:class:`DriftCheck` prepares a reference once and compares any number of current samples
with it. Four tests, each with a documented default threshold, vote for the verdict:

============  ==========================================================  ===================
test          statistic                                                   flags drift when
============  ==========================================================  ===================
classifier    ROC AUC of a logistic regression telling reference from     AUC > 0.55 and
              current, out of fold (5 folds); p from 1,000 permutations   p < 0.05
              of the out-of-fold scores
mmd           unbiased MMD² with an RBF kernel, bandwidth by the median   p < 0.05
              heuristic; p from 100 permutations
centroid      cosine distance between the two mean vectors; p from 1,000  p < 0.05
              permutations
pca           share of the reference's first 10 principal components      share > 0.2
              whose two-sample KS test has p < 0.05 / 10 (Bonferroni)
============  ==========================================================  ===================

The verdict is ``"drift"`` when at least ``min_votes`` (default 2) tests flag it,
``"insufficient data"`` when either side has fewer than ``min_rows`` (default 30) vectors,
and ``"no drift"`` otherwise. Large inputs are subsampled (at most 5,000 rows per side for
the classifier and the centroid test, 2,000 for MMD, 50,000 for the PCA tests); the report
says where it did so. NULL vectors are skipped and counted.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref, cur = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
>>> check(ref, cur).verdict
'no drift'
>>> check(ref, cur + 0.5).verdict
'drift'
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from embed_sql._io import write_text_atomic
from embed_sql.exceptions import (
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
    MissingDependencyError,
)
from embed_sql.vectors.arrow import to_numpy, vector_input

__all__ = ["TESTS", "DriftCheck", "DriftReport", "DriftTest", "check", "read_sample"]

TESTS = ("classifier", "mmd", "centroid", "pca")
_FOLDS = 5


def _sklearn() -> tuple[object, object, object]:
    try:
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        msg = "drift checks need scikit-learn; install the extra: pip install 'embed-sql[drift]'"
        raise MissingDependencyError(msg) from exc
    return PCA, LogisticRegression, StratifiedKFold


@dataclass(frozen=True)
class DriftTest:
    """One test of a :class:`DriftReport`: its statistic, p-value, threshold and vote.

    ``drift`` is None when the test could not run (too few rows).
    """

    name: str
    statistic: float
    p_value: float | None
    threshold: str
    drift: bool | None
    detail: str
    n_reference: int
    n_current: int
    extra: dict[str, object] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DriftReport:
    """The outcome of a drift check: one :class:`DriftTest` per test and an overall verdict."""

    verdict: str
    tests: tuple[DriftTest, ...]
    n_reference: int
    n_current: int
    dim: int
    min_votes: int
    seed: int
    model: str | None = None
    notes: tuple[str, ...] = ()
    projection: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def drift(self) -> bool:
        """True when the verdict is ``"drift"``."""
        return self.verdict == "drift"

    @property
    def votes(self) -> int:
        """How many tests flagged drift."""
        return sum(bool(t.drift) for t in self.tests)

    def test(self, name: str) -> DriftTest:
        """Return the test called ``name`` (one of :data:`TESTS`)."""
        for t in self.tests:
            if t.name == name:
                return t
        msg = f"no test {name!r} in this report; it ran {[t.name for t in self.tests]}"
        raise KeyError(msg)

    def to_dict(self) -> dict[str, object]:
        """Return the report as plain JSON-ready data (no projection coordinates)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("tests", "projection")
        }
        out["notes"] = list(self.notes)
        out["votes"] = self.votes
        out["tests"] = [dataclasses.asdict(t) for t in self.tests]
        return _plain(out)  # type: ignore[return-value]

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """Return the report as JSON; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            write_text_atomic(path, text)
        return text

    def to_arrow(self) -> pa.Table:
        """Return one row per test plus an ``overall`` row (its statistic is the vote count)."""
        rows = [
            (t.name, t.statistic, t.p_value, t.threshold, t.drift, t.detail) for t in self.tests
        ]
        rows.append(
            (
                "overall",
                float(self.votes),
                None,
                f"at least {self.min_votes} tests flag drift",
                None if self.verdict == "insufficient data" else self.drift,
                self.verdict,
            )
        )
        names = ["test", "statistic", "p_value", "threshold", "drift", "detail"]
        types = [pa.string(), pa.float64(), pa.float64(), pa.string(), pa.bool_(), pa.string()]
        columns = [pa.array([r[i] for r in rows], t) for i, t in enumerate(types)]
        return pa.table(columns, names=names)

    def __str__(self) -> str:
        lines = [
            f"drift check: {self.verdict} ({self.votes} of {len(self.tests)} tests flag drift; "
            f"reference {self.n_reference:,} rows, current {self.n_current:,} rows, dim {self.dim})"
        ]
        for t in self.tests:
            p = "" if t.p_value is None else f"  p={t.p_value:.4f}"
            vote = {True: "DRIFT", False: "ok", None: "n/a"}[t.drift]
            lines.append(f"  {t.name:<10} {t.statistic:10.4f}{p:<12} {vote:<6} [{t.threshold}]")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_html(self, *, figure: bool = True) -> str:
        """Return a small HTML table, with the figure inlined when matplotlib is installed."""
        head = "".join(
            f"<th>{h}</th>" for h in ("test", "statistic", "p-value", "flags when", "drift")
        )
        body = []
        for t in self.tests:
            p = "" if t.p_value is None else f"{t.p_value:.4f}"
            vote = {True: "<b>drift</b>", False: "no", None: "n/a"}[t.drift]
            body.append(
                f"<tr><td title='{html.escape(t.detail, quote=True)}'>{t.name}</td>"
                f"<td>{t.statistic:.4f}</td><td>{p}</td><td>{html.escape(t.threshold)}</td>"
                f"<td>{vote}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        img = ""
        if figure:
            from embed_sql import plot

            img = plot.drift_figure_html(self)
        return (
            f"<div><p><b>Drift check: {html.escape(self.verdict)}</b> — {self.votes} of "
            f"{len(self.tests)} tests flag drift (reference {self.n_reference:,} rows, current "
            f"{self.n_current:,} rows, dim {self.dim}).</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{f'<ul>{notes}</ul>' if notes else ''}{img}</div>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- inputs ------------------------------------------------------------------------------


def _as_vectors(data: object, column: str, side: str) -> tuple[np.ndarray, int, str | None]:
    """Return (matrix without NULL rows, NULL count, model key) for one side."""
    vectors, key = vector_input(data, column, side)
    if isinstance(vectors, np.ndarray):
        mat = np.asarray(vectors, dtype=np.float32)
    else:
        mat = to_numpy(vectors)
    if mat.ndim != 2:
        msg = f"{side} vectors must form a (rows, dim) matrix, got shape {mat.shape}"
        raise DimensionMismatchError(msg)
    ok = ~np.isnan(mat).any(axis=1)
    return np.ascontiguousarray(mat[ok]), int((~ok).sum()), key


def _sample(x: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
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


class DriftCheck:
    """A reference embedding sample, prepared once, that current samples are checked against.

    Parameters
    ----------
    reference
        Vectors: an Arrow table (``column`` picks the vector column), a Polars or pandas
        frame, an Arrow vector array or a numpy ``(rows, dim)`` matrix.
    column
        The vector column when ``reference`` is a table.
    tests
        Which of :data:`TESTS` to run.
    min_votes
        How many tests must flag drift for the verdict ``"drift"``.
    min_rows
        Fewer vectors than this on either side gives the verdict ``"insufficient data"``.
    seed
        Seed of every subsample and permutation: the same inputs give the same report.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.random.default_rng(1).normal(size=(300, 4))
    >>> DriftCheck(ref).check(ref[::-1] + 1.0).drift
    True
    """

    classifier_auc = 0.55
    alpha = 0.05
    pca_components = 10
    pca_share = 0.2
    max_rows_classifier = 5_000
    max_rows_mmd = 2_000
    max_rows_centroid = 5_000
    max_rows_pca = 50_000
    mmd_permutations = 100
    permutations = 1_000

    def __init__(
        self,
        reference: object,
        *,
        vec: str = "v",
        tests: Sequence[str] = TESTS,
        min_votes: int = 2,
        min_rows: int = 30,
        seed: int = 0,
    ) -> None:
        unknown = [t for t in tests if t not in TESTS]
        if unknown or not tests:
            msg = f"tests={list(tests)!r}: allowed are {list(TESTS)}"
            raise InvalidParameterError(msg)
        if not 1 <= min_votes <= len(tests):
            msg = f"min_votes={min_votes!r} must lie between 1 and the {len(tests)} tests run"
            raise InvalidParameterError(msg)
        if min_rows < 2 * _FOLDS:
            msg = f"min_rows={min_rows!r} must be at least {2 * _FOLDS} (the classifier folds)"
            raise InvalidParameterError(msg)
        self.vec, self.tests = vec, tuple(tests)
        self.min_votes, self.min_rows, self.seed = min_votes, min_rows, seed
        self.reference, self.ref_nulls, self.model_key = _as_vectors(reference, vec, "reference")
        if len(self.reference) == 0:
            msg = "the reference has no (non-NULL) vectors; a drift check needs some to compare"
            raise InvalidParameterError(msg)
        self.dim = self.reference.shape[1]
        self._pca: object | None = None

    def check(self, current: object, *, vec: str | None = None) -> DriftReport:
        """Compare ``current`` (same forms as the reference) with the reference."""
        cur, cur_nulls, cur_key = _as_vectors(current, vec or self.vec, "current")
        if len(cur) == 0:
            msg = "the current sample has no (non-NULL) vectors; a drift check needs some"
            raise InvalidParameterError(msg)
        if cur.shape[1] != self.dim:
            msg = (
                f"reference vectors have {self.dim} dimensions but current ones have "
                f"{cur.shape[1]}; embed both with the same model"
            )
            raise DimensionMismatchError(msg)
        if self.model_key and cur_key and self.model_key != cur_key:
            msg = (
                f"reference and current vectors come from different models (model keys "
                f"{self.model_key[:12]}… and {cur_key[:12]}…); embed both with the same model"
            )
            raise DimensionMismatchError(msg)
        ref = self.reference
        notes = [
            f"{n:,} NULL {side} vectors skipped"
            for n, side in ((self.ref_nulls, "reference"), (cur_nulls, "current"))
            if n
        ]
        common = {
            "n_reference": len(ref),
            "n_current": len(cur),
            "dim": self.dim,
            "min_votes": self.min_votes,
            "seed": self.seed,
            "model": self.model_key,
        }
        if min(len(ref), len(cur)) < self.min_rows:
            notes.append(
                f"fewer than min_rows={self.min_rows} vectors on one side "
                f"({len(ref)} reference, {len(cur)} current): no test was run"
            )
            return DriftReport("insufficient data", (), notes=tuple(notes), **common)
        runners = {
            "classifier": self._classifier,
            "mmd": self._mmd,
            "centroid": self._centroid,
            "pca": self._pca_ks,
        }
        results = tuple(
            runners[name](ref, cur, np.random.default_rng([self.seed, i]))
            for i, name in enumerate(self.tests)
        )
        notes.extend(
            f"{t.name} ran on a random subsample: {t.n_reference:,} reference and "
            f"{t.n_current:,} current rows"
            for t in results
            if (t.n_reference, t.n_current) != (len(ref), len(cur))
        )
        votes = sum(bool(t.drift) for t in results)
        verdict = "drift" if votes >= self.min_votes else "no drift"
        return DriftReport(
            verdict,
            results,
            notes=tuple(notes),
            projection=self._projection(ref, cur),
            **common,
        )

    # -- the tests -------------------------------------------------------------------------

    def _classifier(self, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> DriftTest:
        _, logistic_regression, k_fold = _sklearn()
        a = _sample(ref, self.max_rows_classifier, rng)
        b = _sample(cur, self.max_rows_classifier, rng)
        x = np.vstack([a, b]).astype(np.float64)
        x -= x.mean(axis=0)
        x /= x.std(axis=0) + 1e-12
        y = np.r_[np.zeros(len(a)), np.ones(len(b))]
        scores = np.empty(len(y))
        folds = k_fold(n_splits=_FOLDS, shuffle=True, random_state=int(rng.integers(2**31)))  # type: ignore[operator]
        for train, test in folds.split(x, y):
            model = logistic_regression(C=0.01, max_iter=2_000)  # type: ignore[operator]
            model.fit(x[train], y[train])
            scores[test] = model.decision_function(x[test])
        ranks = _ranks(scores)
        auc = _auc_from_ranks(ranks, y.astype(bool))
        null = np.array(
            [
                _auc_from_ranks(ranks, rng.permutation(y).astype(bool))
                for _ in range(self.permutations)
            ]
        )
        p = _perm_p(auc, null)
        return DriftTest(
            "classifier",
            auc,
            p,
            f"AUC > {self.classifier_auc} and p < {self.alpha}",
            bool(auc > self.classifier_auc and p < self.alpha),
            f"{_FOLDS}-fold logistic regression, out-of-fold ROC AUC, p from "
            f"{self.permutations:,} permutations{_sampled(len(ref), len(cur), len(a))}",
            len(a),
            len(b),
        )

    def _mmd(self, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> DriftTest:
        a = _sample(ref, self.max_rows_mmd, rng).astype(np.float64)
        b = _sample(cur, self.max_rows_mmd, rng).astype(np.float64)
        z = np.vstack([a, b])
        sq = (z * z).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
        iu = np.triu_indices(len(z), k=1)
        bandwidth = float(np.median(d2[iu])) or 1.0
        kern = np.exp(-d2 / bandwidth)
        np.fill_diagonal(kern, 0.0)
        n, m = len(a), len(b)
        labels = _memberships(len(z), n, self.mmd_permutations, rng).T
        row, total = kern.sum(axis=1), kern.sum()
        kz = kern @ labels
        s_xx = (labels * kz).sum(axis=0)
        s_x = row @ labels
        s_xy, s_yy = s_x - s_xx, total - 2 * s_x + s_xx
        mmd2 = s_xx / (n * (n - 1)) + s_yy / (m * (m - 1)) - 2 * s_xy / (n * m)
        p = _perm_p(float(mmd2[0]), mmd2[1:])
        return DriftTest(
            "mmd",
            float(mmd2[0]),
            p,
            f"p < {self.alpha}",
            p < self.alpha,
            f"unbiased MMD², RBF kernel exp(-d²/{bandwidth:.4g}) (median heuristic), p from "
            f"{self.mmd_permutations} permutations{_sampled(len(ref), len(cur), n)}",
            n,
            m,
        )

    def _centroid(self, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> DriftTest:
        a = _sample(ref, self.max_rows_centroid, rng).astype(np.float64)
        b = _sample(cur, self.max_rows_centroid, rng).astype(np.float64)
        z = np.vstack([a, b])
        n = len(a)
        labels = _memberships(len(z), n, self.permutations, rng)
        sums = labels @ z
        mean_a = sums / n
        mean_b = (z.sum(axis=0) - sums) / len(b)
        dist = _cosine_distance(mean_a, mean_b)
        p = _perm_p(float(dist[0]), dist[1:])
        return DriftTest(
            "centroid",
            float(dist[0]),
            p,
            f"p < {self.alpha}",
            p < self.alpha,
            f"cosine distance between the mean vectors, p from {self.permutations:,} "
            f"permutations{_sampled(len(ref), len(cur), n)}",
            n,
            len(b),
        )

    def _fitted_pca(self, rng: np.random.Generator) -> object:
        if self._pca is None:
            pca, _, _ = _sklearn()
            k = min(self.pca_components, self.dim, len(self.reference) - 1)
            model = pca(n_components=k, random_state=int(rng.integers(2**31)))  # type: ignore[operator]
            model.fit(_sample(self.reference, self.max_rows_pca, rng))
            self._pca = model
        return self._pca

    def _pca_ks(self, ref: np.ndarray, cur: np.ndarray, rng: np.random.Generator) -> DriftTest:
        from scipy.stats import ks_2samp

        model = self._fitted_pca(rng)
        a = model.transform(_sample(ref, self.max_rows_pca, rng))  # type: ignore[attr-defined]
        b = model.transform(_sample(cur, self.max_rows_pca, rng))  # type: ignore[attr-defined]
        k = a.shape[1]
        res = ks_2samp(a, b, axis=0)
        stats, pvals = np.atleast_1d(res.statistic), np.atleast_1d(res.pvalue)
        drifted = pvals < self.alpha / k
        share = float(drifted.mean())
        return DriftTest(
            "pca",
            share,
            None,
            f"share > {self.pca_share} (KS p < {self.alpha}/{k} per component)",
            share > self.pca_share,
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

    def _projection(self, ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if "pca" not in self.tests:
            return None
        rng = np.random.default_rng([self.seed, 99])
        model = self._fitted_pca(rng)
        pick = [_sample(x, 1_000, rng) for x in (ref, cur)]
        out = [model.transform(x)[:, :2].astype(np.float32) for x in pick]  # type: ignore[attr-defined]
        return out[0], out[1]


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


def check(
    reference: object,
    current: object,
    vec: str = "v",
    **options: object,
) -> DriftReport:
    """Check ``current`` against ``reference`` in one call; see :class:`DriftCheck`.

    ``reference`` and ``current`` may be Arrow tables, Polars DataFrames or LazyFrames,
    pandas frames, Arrow vector arrays or numpy matrices; ``vec`` names the vector column
    of a table. ``options`` go to :class:`DriftCheck`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(2).normal(size=(200, 3))
    >>> check(x[:100], x[100:]).verdict
    'no drift'
    """
    return DriftCheck(reference, vec=vec, **options).check(current)  # type: ignore[arg-type]


def read_sample(
    path: str | os.PathLike[str],
    column: str,
    *,
    max_rows: int = 50_000,
    seed: int = 0,
    model: object = None,
) -> tuple[pa.Table, str | None]:
    """Read at most ``max_rows`` rows of one column of a Parquet file as a vector table.

    Rows are a uniform random sample when the file is larger (chosen before anything is
    read, then read batch by batch, so memory stays bounded). A text column is embedded with
    ``model`` (default all-MiniLM-L6-v2); a vector column is used as it is.

    Returns
    -------
    (pyarrow.Table, str | None)
        A table with the vector column ``v`` (model metadata kept), and a note when the
        file was sampled.
    """
    import pyarrow.parquet as pq

    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows <= 0:
        msg = f"max_rows={max_rows!r} must be a positive integer"
        raise InvalidParameterError(msg)
    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"cannot read {os.fspath(path)!r} as Parquet: {exc}"
        raise InputTypeError(msg) from exc
    names = source.schema_arrow.names
    if column not in names:
        msg = f"{os.fspath(path)!r} has no column {column!r}; its columns are {names}"
        raise InputTypeError(msg)
    field_ = source.schema_arrow.field(column)
    text = pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type)
    if not text and not pa.types.is_fixed_size_list(field_.type):
        msg = (
            f"column {column!r} of {os.fspath(path)!r} has type {field_.type}; give a text "
            "column (it is embedded) or a fixed-size vector column"
        )
        raise InputTypeError(msg)
    n = source.metadata.num_rows
    keep = None
    note = None
    if n > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
        note = f"{os.fspath(path)}: a random sample of {max_rows:,} of its {n:,} rows was used"
    encoder = None
    if text:
        from embed_sql.models.encoder import shared_encoder

        encoder = shared_encoder(model)  # type: ignore[arg-type]
    parts, start = [], 0
    for batch in source.iter_batches(batch_size=8_192, columns=[column]):
        values = batch.column(0)
        if keep is not None:
            lo, hi = np.searchsorted(keep, [start, start + len(values)])
            values = values.take(pa.array(keep[lo:hi] - start))
        start += batch.num_rows
        parts.append(encoder.encode(values) if encoder is not None else values)
    out_field = encoder.field("v") if encoder is not None else field_.with_name("v")
    chunks = [c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    return pa.table([pa.chunked_array(chunks, out_field.type)], schema=pa.schema([out_field])), note
