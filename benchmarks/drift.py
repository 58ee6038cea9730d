"""Drift checks side by side: embed_sql, Evidently and alibi-detect on the same vectors.

False alarms on random exchangeable splits (no drift) and power at 10, 20 and 30 % topic
shift, with time per check. The vectors are the default model's (all-MiniLM-L6-v2):

- "BBC articles": the 2,225 BBC News articles (title and opening, as the integration tests
  embed them), five topics;
- "BBC sentences": up to three sentences of 6-40 words from each article (about 6,600), for
  samples of 1,000 rows a side, where Evidently's default rule is its AUC > 0.55 cut.

A no-drift split draws two disjoint random samples of ``n`` rows. A shift of s draws the
reference at random, and a current sample of ``n - s·n`` other random rows plus ``s·n`` rows
of one topic (drawn per split): s of the current rows are a topic's surplus. The peers run
in their own venv (``make peers``; numpy<2) in a subprocess on the same vectors and splits,
passed as .npy files (see ``benchmarks/drift_peers.py`` for their settings).

    .venv/bin/python benchmarks/drift.py
    .venv/bin/python benchmarks/drift.py --corpora articles --null 40 --per-shift 20
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus import bbc_articles, exchangeable_split, topic_shift_split  # noqa: E402

PEERS_PYTHON = ROOT / ".peers-venv" / "bin" / "python"
SHIFTS = (0.1, 0.2, 0.3)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def corpus(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Default-model vectors and topics of one corpus."""
    from embed_sql.models.encoder import shared_encoder
    from embed_sql.vectors import to_numpy

    texts, topics = [], []
    for topic, title, body in bbc_articles():
        if name == "articles":
            texts.append(f"{title}. {body[:200]}")
            topics.append(topic)
            continue
        picked = [s for s in _SENTENCE_END.split(body) if 6 <= len(s.split()) <= 40][:3]
        texts.extend(picked)
        topics.extend([topic] * len(picked))
    return to_numpy(shared_encoder().encode(texts)), np.asarray(topics)


def make_splits(
    topics: np.ndarray, n: int, nulls: int, per_shift: int
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    cases: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    cases["null"] = [
        exchangeable_split(len(topics), n, np.random.default_rng([i, 0])) for i in range(nulls)
    ]
    for share in SHIFTS:
        rngs = (np.random.default_rng([i, round(100 * share)]) for i in range(per_shift))
        cases[f"shift{round(100 * share)}"] = [
            topic_shift_split(topics, n, share, rng)[:2] for rng in rngs
        ]
    return cases  # type: ignore[return-value]


def run_ours(
    vectors: np.ndarray, cases: dict[str, list[tuple[np.ndarray, np.ndarray]]]
) -> dict[str, dict[str, list[float]]]:
    from embed_sql.pipelines.drift import TESTS, DriftCheck

    out: dict[str, dict[str, list[float]]] = {}
    warm = cases["null"][0]
    DriftCheck(vectors[warm[0]]).check(vectors[warm[1]])  # imports and first calls, untimed
    for case, splits in cases.items():
        rows: dict[str, list[float]] = {"drift": [], "seconds": []}
        rows |= {t: [] for t in TESTS}
        for i, (ref, cur) in enumerate(splits):
            start = time.perf_counter()
            report = DriftCheck(vectors[ref], seed=i).check(vectors[cur])
            rows["seconds"].append(time.perf_counter() - start)
            rows["drift"].append(float(report.drift))
            for t in report.tests:
                rows[t.name].append(float(bool(t.drift)))
        out[case] = rows
        print(f"  embed_sql {case}: {np.mean(rows['drift']):.0%}", file=sys.stderr, flush=True)
    return out


def run_peers(
    vectors: np.ndarray, cases: dict[str, list[tuple[np.ndarray, np.ndarray]]]
) -> tuple[dict[str, dict[str, dict[str, list[float]]]], str]:
    """Results per peer, case and field; and why the peers did not run ("" when they did)."""
    if not PEERS_PYTHON.exists():
        return {}, f"peers not run: {PEERS_PYTHON.relative_to(ROOT)} is missing (make peers)"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "vectors.npy", vectors)
        arrays = {
            f"{case}/{i}/{side}": idx
            for case, splits in cases.items()
            for i, pair in enumerate(splits)
            for side, idx in zip(("ref", "cur"), pair, strict=True)
        }
        np.savez(folder / "splits.npz", **arrays)  # type: ignore[arg-type]
        proc = subprocess.run(
            [str(PEERS_PYTHON), str(ROOT / "benchmarks" / "drift_peers.py"), tmp],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        return {}, f"peers failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        fields = out.setdefault(row["peer"], {}).setdefault(
            row["case"], {"drift": [], "seconds": []}
        )
        fields["drift"].append(float(row["drift"]))
        fields["seconds"].append(row["seconds"])
    return out, ""


def _rate(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{int(sum(values))}/{len(values)} ({np.mean(values):.0%})"


CASE_NAMES = {
    "null": "no drift: false alarms",
    "shift10": "10 % topic shift: power",
    "shift20": "20 % topic shift: power",
    "shift30": "30 % topic shift: power",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=["articles", "sentences"])
    parser.add_argument("--null", type=int, default=100, help="no-drift splits per corpus")
    parser.add_argument("--per-shift", type=int, default=50, help="splits per shift level")
    args = parser.parse_args()
    sizes = {"articles": 500, "sentences": 1_000}
    table = [
        "| corpus, rows per side | case | splits | embed_sql | Evidently (default) | "
        "alibi-detect MMDDrift |",
        "|---|---|---|---|---|---|",
    ]
    per_test = [
        "| corpus, rows per side | case | classifier | mmd | centroid | pca |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for name in args.corpora:
        start = time.perf_counter()
        vectors, topics = corpus(name)
        n = sizes[name]
        print(
            f"{name}: {len(vectors):,} vectors in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        cases = make_splits(topics, n, args.null, args.per_shift)
        ours = run_ours(vectors, cases)
        peers, why = run_peers(vectors, cases)
        if why:
            notes.append(f"{name}: {why}")
        label = f"BBC {name}, {n:,}"
        for case in cases:
            cells = [_rate(ours[case]["drift"])]
            cells += [_rate(peers.get(p, {}).get(case, {}).get("drift", [])) for p in PEERS]
            table.append(
                f"| {label} | {CASE_NAMES[case]} | {len(cases[case])} | {' | '.join(cells)} |"
            )
            per_test.append(
                f"| {label} | {CASE_NAMES[case]} | "
                + " | ".join(f"{np.mean(ours[case][t]):.0%}" for t in ours[case] if t in TEST_NAMES)
                + " |"
            )
        ours_s = float(np.mean([s for c in ours.values() for s in c["seconds"]]))
        cells = [f"{ours_s:.2f}"]
        for p in PEERS:
            secs = [s for c in peers.get(p, {}).values() for s in c["seconds"]]
            cells.append(f"{np.mean(secs):.2f} ({np.mean(secs) / ours_s:.2g}x)" if secs else "n/a")
        total = sum(len(v) for v in cases.values())
        table.append(f"| {label} | time per check, s (mean) | {total} | {' | '.join(cells)} |")
    print(
        "Same vectors and splits for all three. embed_sql: DriftCheck defaults (alpha=0.05, "
        "Holm over 4 tests). Evidently 0.7.23: EmbeddingsDriftMetric's default method, "
        "model(bootstrap=reference rows < 1000): AUC > 0.55 from 1,000 reference rows, else "
        "the 95th percentile of random AUCs. alibi-detect 0.13.0: MMDDrift(backend='pytorch', "
        "p_val=0.05), CPU torch. Time per check: mean over all splits, after one untimed "
        "warm-up check; in brackets a peer's time over embed_sql's.\n"
    )
    print("\n".join(table))
    print("\nembed_sql, share of splits where each test rejects (Holm-adjusted p < 0.05):\n")
    print("\n".join(per_test))
    for note in notes:
        print(f"\nNote: {note}")


PEERS = ("evidently", "alibi")
TEST_NAMES = ("classifier", "mmd", "centroid", "pca")

if __name__ == "__main__":
    main()
