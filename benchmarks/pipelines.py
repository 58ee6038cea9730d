"""Drift checks and outlier scores at scale: time per size, with the verdicts.

Vectors are clustered 384-d points (a low-dimensional signal plus noise, as in
``benchmarks/join.py``), so the statistics see structure like that of real embeddings.
"Same" compares two samples of one distribution; "shifted" moves 30 % of the current
sample's rows to clusters the reference does not use. The issue's target: 100k x 100k in
under a minute. False alarms and power against Evidently and alibi-detect, on real
default-model vectors: ``benchmarks/drift.py``.

    .venv/bin/python benchmarks/pipelines.py
    .venv/bin/python benchmarks/pipelines.py --sizes 10000 100000 300000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clustered(n: int, dim: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    lift = np.random.default_rng(7).normal(size=(centres.shape[1], dim)) / 4
    signal = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(
        size=(n, centres.shape[1])
    )
    x = signal @ lift + 0.15 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    from embed_sql.pipelines.drift import DriftCheck
    from embed_sql.pipelines.outliers import OutlierScorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    all_centres = np.random.default_rng(0).normal(size=(600, 16))
    known, unknown = all_centres[:500], all_centres[500:]

    print(
        "| rows per side | case | drift check s | verdict | p (Holm) | tests rejecting | "
        "outlier fit s | score s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        rng = np.random.default_rng(n)
        ref = clustered(n, args.dim, rng, known)
        same = clustered(n, args.dim, rng, known)
        moved = same.copy()
        swap = rng.choice(n, int(0.3 * n), replace=False)
        moved[swap] = clustered(len(swap), args.dim, rng, unknown)
        start = time.perf_counter()
        scorer = OutlierScorer(ref)
        fit = time.perf_counter() - start
        for case, cur in (("same", same), ("shifted 30 %", moved)):
            start = time.perf_counter()
            report = DriftCheck(ref).check(cur)
            took = time.perf_counter() - start
            start = time.perf_counter()
            scorer.score(cur)
            score = time.perf_counter() - start
            print(
                f"| {n:,} | {case} | {took:.1f} | {report.verdict} | {report.p_value:.3f} | "
                f"{report.rejections}/4 | {fit:.1f} | {score:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
