"""HNSW parameter sweep: recall@k and build + search time of embed_sql's default index.

For every (M, ef_construction) one ``VectorIndex`` (f16 graph, float32 rescoring: the
default) is built over the documents; every ef_search is then searched with it. Data: the
``text`` set (BBC News sentences embedded with the default model, queries = documents) and
the ``clustered`` set (queries and documents drawn from one distribution), as in
``benchmarks/join.py``; the truth is numpy's exact top-k.

Times are reported as ratios to a reference setting (``--ref``, default today's 16/40/32)
timed in the same round: the machine is shared, so absolute times swing between runs. Both
wall time and process CPU time (all threads: steadier when other work shares the cores) are
given. With ``--repeat`` > 1, rounds alternate the order of the builds (forward, backward)
so drift in the machine is shared, and each cell reports its median.

    .venv/bin/python benchmarks/hnsw_sweep.py                    # both sets, full grid
    .venv/bin/python benchmarks/hnsw_sweep.py --data text --M 16 --ef-search 32 64
    .venv/bin/python benchmarks/hnsw_sweep.py --cache /tmp/sweep  # keep vectors and truth
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from join import clustered, numpy_knn, recall_at_k, text_vectors

Setting = tuple[int, int, int]  # M, ef_construction, ef_search
Cell = tuple[float, float, float, float, float]  # build s, search s, their cpu s, recall@k


def cached(cache: Path | None, name: str, make: object) -> np.ndarray:
    """``make()``, kept as ``cache/name.npy`` when a cache directory is given."""
    if cache is not None and (cache / f"{name}.npy").exists():
        return np.load(cache / f"{name}.npy")
    out = make()  # type: ignore[operator]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{name}.npy", out)
    return out


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def sweep(
    docs: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    k: int,
    builds: list[tuple[int, int]],
    efs: list[int],
    dtype: str,
) -> dict[Setting, Cell]:
    """One round: ``{(M, efc, ef): (build s, search s, build cpu s, search cpu s, recall)}``."""
    from embed_sql.vectors import VectorIndex

    ids = np.arange(len(docs))
    out: dict[Setting, Cell] = {}
    for m, efc in builds:
        wall, cpu = clocks()
        index = VectorIndex.build(docs, ids, dtype=dtype, M=m, ef_construction=efc)
        build, build_cpu = (b - a for a, b in zip((wall, cpu), clocks(), strict=True))
        for ef in efs:
            # ef_search only steers the search: one graph serves every value
            # (VectorIndex(ef_search=ef) sets the same field at construction)
            index._hnsw.ef_search = ef  # type: ignore[union-attr]
            wall, cpu = clocks()
            res = index.search(queries, k)
            search, search_cpu = (b - a for a, b in zip((wall, cpu), clocks(), strict=True))
            rec = recall_at_k(res.labels, truth)
            out[(m, efc, ef)] = (build, search, build_cpu, search_cpu, rec)
            print(
                f"  M={m} ef_construction={efc} ef_search={ef}: build {build:.1f} s, "
                f"search {search:.1f} s (cpu {build_cpu + search_cpu:.1f} s), recall {rec:.4f}",
                file=sys.stderr,
                flush=True,
            )
        del index
    return out


def report(
    name: str,
    rounds: list[dict[Setting, Cell]],
    ref: Setting,
    shape: tuple[int, int, int],
    k: int,
) -> dict[Setting, tuple[float, float]]:
    """Print one data set's table; return ``{setting: (recall, wall time ratio to ref)}``."""
    n_q, n_d, dim = shape
    print(f"\n{name}: {n_q:,} queries x {n_d:,} docs, dim {dim}, k={k}")
    print(
        f"(median of {len(rounds)} round(s); vs ref = build + search time over that of "
        f"M {ref[0]} / ef_construction {ref[1]} / ef_search {ref[2]} in the same round, "
        "in wall time and in CPU time)\n"
    )
    print(
        "| M | ef_construction | ef_search | recall@k | build s | search s | total s "
        "| vs ref (wall) | vs ref (cpu) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    summary: dict[Setting, tuple[float, float]] = {}

    def med(setting: Setting, i: int) -> float:
        return statistics.median(r[setting][i] for r in rounds)

    def ratio(setting: Setting, i: int, j: int) -> float:
        return statistics.median(
            (r[setting][i] + r[setting][j]) / (r[ref][i] + r[ref][j]) for r in rounds
        )

    for setting in sorted(rounds[0]):
        b, s, rec = med(setting, 0), med(setting, 1), med(setting, 4)
        wall, cpu = ratio(setting, 0, 1), ratio(setting, 2, 3)
        summary[setting] = (rec, wall)
        print(
            f"| {setting[0]} | {setting[1]} | {setting[2]} | {rec:.3f} | {b:.1f} | {s:.1f} | "
            f"{b + s:.1f} | {wall:.2f}x | {cpu:.2f}x |",
            flush=True,
        )
    return summary


def fastest(summary: dict[Setting, tuple[float, float]], floor: float) -> Setting | None:
    ok = [s for s, (rec, _) in summary.items() if rec >= floor]
    return min(ok, key=lambda s: summary[s][1]) if ok else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("text", "clustered", "both"), default="both")
    parser.add_argument("--n", type=int, default=100_000, help="clustered documents and queries")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--text-limit", type=int, default=40_000)
    parser.add_argument("--M", type=int, nargs="+", default=[16, 24, 32])
    parser.add_argument("--ef-construction", type=int, nargs="+", default=[40, 64, 96, 128])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[32, 48, 64, 96, 128])
    parser.add_argument(
        "--ref", type=int, nargs=3, default=[16, 40, 32], metavar=("M", "EFC", "EF")
    )
    parser.add_argument("--dtype", default="f16", choices=("f16", "f32", "i8"))
    parser.add_argument("--repeat", type=int, default=1, help="rounds (median reported)")
    parser.add_argument("--text-floor", type=float, default=0.98)
    parser.add_argument("--clustered-floor", type=float, default=0.99)
    parser.add_argument("--cache", type=Path, help="directory for the text vectors and truths")
    args = parser.parse_args()

    ref: Setting = tuple(args.ref)  # type: ignore[assignment]
    builds = sorted(set(itertools.product(args.M, args.ef_construction)) | {ref[:2]})
    efs = sorted(set(args.ef_search) | {ref[2]})
    sets: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    if args.data in ("text", "both"):
        text = cached(args.cache, f"text_{args.text_limit}", lambda: text_vectors(args.text_limit))
        sets.append(("text", "BBC sentences (default model)", text, text))
    if args.data in ("clustered", "both"):
        data = clustered(2 * args.n, args.dim, seed=0)  # one distribution, split in two
        sets.append(("clustered", "clustered", data[: args.n], data[args.n :]))
    floors = {"text": args.text_floor, "clustered": args.clustered_floor}
    summaries: dict[str, dict[Setting, tuple[float, float]]] = {}
    for key, title, docs, queries in sets:
        tag = f"truth_{key}_{len(docs)}_{args.dim}_{args.k}"
        truth = cached(args.cache, tag, lambda d=docs, q=queries: numpy_knn(d, q, args.k))
        print(f"{title}: sweeping {len(builds)} builds x {len(efs)} ef_search", file=sys.stderr)
        rounds = [  # odd rounds run the builds backwards: drift falls on both ends
            sweep(docs, queries, truth, args.k, builds[:: -1 if r % 2 else 1], efs, args.dtype)
            for r in range(args.repeat)
        ]
        shape = (len(queries), len(docs), docs.shape[1])
        summaries[key] = report(title, rounds, ref, shape, args.k)
        best = fastest(summaries[key], floors[key])
        print(f"\nfastest with recall@{args.k} >= {floors[key]}: {best}")

    if len(summaries) == 2:
        both = {  # setting -> mean time ratio over the two sets, where both floors hold
            s: statistics.mean(v[s][1] for v in summaries.values())
            for s in summaries["text"]
            if all(summaries[key][s][0] >= floors[key] for key in summaries)
        }
        best = min(both, key=both.__getitem__) if both else None
        print(
            f"\nfastest with text >= {floors['text']} and clustered >= {floors['clustered']} "
            f"(mean time ratio of the two sets): {best}"
            + (f", {both[best]:.2f}x the reference's time" if best else "")
        )


if __name__ == "__main__":
    main()
