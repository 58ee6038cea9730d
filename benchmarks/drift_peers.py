"""The peers of ``benchmarks/drift.py``, run in their own venv (``make peers``).

Evidently 0.7.23 and alibi-detect 0.13 cannot share our lock (alibi-detect needs numpy<2),
so ``benchmarks/drift.py`` writes the vectors and the splits as .npy files and runs this
script with ``.peers-venv/bin/python``. It prints one JSON line per peer and split:
``{"case", "split", "peer", "drift", "score", "seconds"}``.

Each peer at its documented default for embeddings:

- Evidently: ``EmbeddingsDriftMetric``'s default drift method, ``model(bootstrap=<reference
  rows below 1,000>)`` (a ``SGDClassifier`` on half the rows, ROC AUC on the other half;
  drift when the AUC exceeds 0.55, or, below 1,000 reference rows, the 95th percentile of
  100 random predictions' AUCs). The method is called as the metric's ``calculate`` calls
  it, without the report around it (whose rendering takes about 40 s per check here).
- alibi-detect: ``MMDDrift(x_ref, backend="pytorch", p_val=0.05)`` (Gaussian RBF kernel,
  bandwidth from the reference, 100 permutations), then ``predict(x)``.

    .peers-venv/bin/python benchmarks/drift_peers.py FOLDER
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main(folder: Path) -> None:
    import pandas as pd
    from alibi_detect.cd import MMDDrift
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

    warnings.filterwarnings("ignore")
    vectors = np.load(folder / "vectors.npy")
    splits = np.load(folder / "splits.npz")
    cols = [f"e{i}" for i in range(vectors.shape[1])]
    keys = sorted({k.rsplit("/", 1)[0] for k in splits.files}, key=_order)
    warm = vectors[splits[f"{keys[0]}/ref"]], vectors[splits[f"{keys[0]}/cur"]]
    model(bootstrap=False)(pd.DataFrame(warm[1], columns=cols), pd.DataFrame(warm[0], columns=cols))
    MMDDrift(warm[0], backend="pytorch", p_val=0.05).predict(warm[1])  # first calls, untimed
    for key in keys:
        case, split = key.split("/")
        ref, cur = vectors[splits[f"{key}/ref"]], vectors[splits[f"{key}/cur"]]
        start = time.perf_counter()
        method = model(bootstrap=len(ref) < 1000)  # EmbeddingsDriftMetric.calculate's default
        score, drift, _ = method(pd.DataFrame(cur, columns=cols), pd.DataFrame(ref, columns=cols))
        took = time.perf_counter() - start
        _emit(case, split, "evidently", bool(drift), float(score), took)
        start = time.perf_counter()
        detector = MMDDrift(ref, backend="pytorch", p_val=0.05)
        out = detector.predict(cur)["data"]
        took = time.perf_counter() - start
        _emit(case, split, "alibi", bool(out["is_drift"]), float(out["p_val"]), took)


def _order(key: str) -> tuple[str, int]:
    case, split = key.split("/")
    return case, int(split)


def _emit(case: str, split: str, peer: str, drift: bool, score: float, seconds: float) -> None:
    row = {"case": case, "split": int(split), "peer": peer, "drift": drift, "score": score}
    print(json.dumps(row | {"seconds": seconds}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
