"""Drift checks between two embedding columns: has the data moved.

Layout: :mod:`.statistics` (the four tests), :mod:`.report` (the report and its views),
:mod:`.check` (``DriftCheck``, ``check``, reading samples).

:class:`DriftCheck` keeps a reference and compares any number of current samples with it.
Four tests, each giving a p-value that is valid by construction (see :mod:`.statistics`):

============  ==========================================================================
test          statistic and p-value
============  ==========================================================================
classifier    ROC AUC of a ridge classifier telling reference from current, out of fold
              (5 folds drawn without the labels); p from 200 relabellings, each refitted
mmd           unbiased MMD² with an RBF kernel, bandwidth by the median heuristic on the
              pooled rows; p from 100 permutations
centroid      cosine distance between the two mean vectors; p from 1,000 permutations
pca           two-sample KS test on each of the pooled rows' first 10 principal
              components; p = 10 x the smallest (Bonferroni)
============  ==========================================================================

The verdict is ``"drift"`` when the smallest Holm-adjusted p-value is below ``alpha``
(default 0.05): under no drift that happens with probability at most ``alpha``, whatever the
dependence between the tests. Each test's row says its p-value, its Holm-adjusted p-value
and whether it rejects. ``"insufficient data"`` when either side has fewer than ``min_rows``
(default 30) vectors. Large inputs are subsampled (at most 2,500 rows per side for the
classifier, 5,000 for the centroid test, 2,000 for MMD, 50,000 for the PCA test); the report
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
