"""Drift checks between two embedding columns: has the data moved.

Layout: :mod:`.statistics` (the four tests), :mod:`.report` (the report and its views),
:mod:`.check` (``DriftCheck``, ``check``, reading samples).

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

from embed_sql.pipelines.drift.check import TESTS, DriftCheck, check, read_sample
from embed_sql.pipelines.drift.report import DriftReport, DriftTest
from embed_sql.pipelines.drift.statistics import DriftParams

__all__ = ["TESTS", "DriftCheck", "DriftParams", "DriftReport", "DriftTest", "check", "read_sample"]
