"""Where the SQL k-NN join's time goes, against raw usearch and VectorIndex from Python.

On clustered vectors (as ``benchmarks/join.py``), each round runs, interleaved:

- raw usearch (``usearch.index.Index``: f16, all cores) add and search: the floor;
- ``VectorIndex.build`` / ``.search`` from Python (f16 + f32 rescoring, the default);
- ``embed_create_index`` and ``embed_knn_join`` fetched as Arrow, with the time spent inside
  them in embed_sql's own functions (usearch, rescoring, reading, key table, result lists);
- the join's SQL taken apart: the index fingerprint alone, the k-NN UDF alone, + unnest,
  + the key join (the full macro adds ORDER BY), and the build's reads.

Each piece reports its least-disturbed (min) and median wall time and median process CPU
time over ``--repeat`` rounds. The k-NN UDF's signature is an internal detail: a piece whose
SQL no longer runs is reported as such, not fatal.

    .venv/bin/python benchmarks/sql_profile.py                 # 20k x 20k, default preset
    .venv/bin/python benchmarks/sql_profile.py --n 100000 --hnsw 16 40 32
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from join import clustered, numpy_knn, recall_at_k

Times = dict[str, list[tuple[float, float]]]  # piece -> [(wall s, cpu s) per round]

# (module, class or None, attribute, label): embed_sql functions timed inside the SQL calls
INSIDE = [
    ("embed_sql.vectors.hnsw", "HNSWGraph", "search", "usearch search (HNSWGraph.search)"),
    ("embed_sql.vectors.exact", "ExactStore", "rescore", "f32 rescore + reselect"),
    ("embed_sql.vectors.index", "VectorIndex", "search", "VectorIndex.search"),
    ("embed_sql.vectors.index", "VectorIndex", "add", "VectorIndex.add"),
    ("embed_sql.udfs.duckdb.search", None, "vector_matrix", "query vectors to numpy"),
    ("embed_sql.udfs.duckdb.search", None, "struct", "result struct"),
    ("embed_sql.udfs.duckdb.search", None, "lists", "result lists"),
    ("embed_sql.udfs.duckdb.indexes", None, "read_source", "read_source (fingerprint, read)"),
    ("embed_sql.udfs.duckdb.indexes", None, "attach", "attach (key table)"),
]


class Inside:
    """Accumulating timers wrapped around embed_sql functions (wall, cpu, calls)."""

    def __init__(self) -> None:
        self.acc: dict[str, list[float]] = {}
        for module, cls, name, label in INSIDE:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
            owner = getattr(mod, cls, None) if cls else mod
            if owner is not None and hasattr(owner, name):
                setattr(owner, name, self._wrap(getattr(owner, name), label))

    def _wrap(self, fn: object, label: str) -> object:
        def inner(*args: object, **kwargs: object) -> object:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)  # type: ignore[operator]
            finally:
                got = self.acc.setdefault(label, [0.0, 0.0, 0])
                got[0] += time.perf_counter() - wall
                got[1] += time.process_time() - cpu
                got[2] += 1

        return inner

    def drain(self, prefix: str, times: Times) -> None:
        for label, (wall, cpu, calls) in self.acc.items():
            times.setdefault(f"{prefix}{label} [{int(calls)} calls]", []).append((wall, cpu))
        self.acc.clear()


def timed(times: Times, label: str, fn: object) -> object:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()  # type: ignore[operator]
    times.setdefault(label, []).append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="documents and queries")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hnsw", type=int, nargs=3, metavar=("M", "EF_CONSTRUCTION", "EF_SEARCH"))
    args = parser.parse_args()

    import duckdb
    import pyarrow as pa

    import embed_sql
    from embed_sql._native import usearch_index
    from embed_sql.vectors import VectorIndex, from_numpy
    from embed_sql.vectors.index import HNSW_DEFAULTS

    names = ("M", "ef_construction", "ef_search")
    params = dict(zip(names, args.hnsw or (HNSW_DEFAULTS[n] for n in names), strict=True))
    n, k = args.n, args.k
    data = clustered(2 * n, args.dim, seed=0)
    docs, queries = data[:n], data[n:]
    truth = numpy_knn(docs, queries, k)
    inside = Inside()
    index_cls = usearch_index()

    con = duckdb.connect()
    embed_sql.register(con)
    for name, x in (("docs", docs), ("q", queries)):
        con.register(f"{name}_src", pa.table({"id": np.arange(n), "v": from_numpy(x)}))
        con.execute(f"CREATE TABLE {name} AS SELECT id, v::FLOAT[{args.dim}] AS v FROM {name}_src")
        con.unregister(f"{name}_src")
    hnsw_sql = ", ".join(f"{name} := {value}" for name, value in params.items())
    knn = (
        f"embed_sql_knn(v, 'docs_index', {k}, NULL, 'id', embed_sql_fp_of('docs_index'), "
        "embed_sql_ctx(), NULL)"
    )
    pieces = {
        "J1 index fingerprint: embed_sql_fp_of(idx)": "SELECT embed_sql_fp_of('docs_index')",
        "J2 scan: SELECT id, v FROM q": "SELECT id, v FROM q",
        "J3 k-NN UDF lists: SELECT id, embed_sql_knn(v, ...)": f"SELECT id, {knn} AS s FROM q",
        "J4 + unnest": (
            "SELECT m.id AS left_key, m.s.label AS right_key "
            f"FROM (SELECT id, unnest({knn}) AS s FROM q) m"
        ),
        "J5 + key join (no ORDER BY)": (
            "SELECT m.id AS left_key, kk.key AS right_key "
            f"FROM (SELECT id, unnest({knn}) AS s FROM q) m "
            "JOIN query_table(embed_sql_index_keys('docs_index')) kk ON kk.label = m.s.label"
        ),
        "B1 table fingerprint: embed_sql_fp(tbl, key, vec)": (
            "SELECT embed_sql_fp('docs', 'id', 'v')"
        ),
        "B2 read id, v, hash(v)": "SELECT id, v, hash(v) AS h FROM docs",
        "B3 read id, v": "SELECT id, v FROM docs",
    }
    create = f"SELECT embed_create_index('docs_index', 'docs', {hnsw_sql})"
    join = f"SELECT left_key, right_key FROM embed_knn_join('q', 'docs_index', k := {k})"
    failed: dict[str, str] = {}
    times: Times = {}
    found: dict[str, np.ndarray] = {}
    for r in range(args.repeat):
        graph = index_cls(
            ndim=args.dim,
            metric="cos",
            dtype="f16",
            connectivity=params["M"],
            expansion_add=params["ef_construction"],
            expansion_search=params["ef_search"],
        )
        timed(
            times, "A raw usearch add", lambda g=graph: g.add(np.arange(n, dtype=np.uint64), docs)
        )
        got = timed(times, "A raw usearch search", lambda g=graph: g.search(queries, k))
        found["raw usearch"] = np.asarray(got.keys).reshape(n, k)  # type: ignore[attr-defined]
        del graph
        inside.acc.clear()
        index = timed(
            times, "P VectorIndex.build", lambda: VectorIndex.build(docs, np.arange(n), **params)
        )
        res = timed(times, "P VectorIndex.search", lambda i=index: i.search(queries, k))
        found["VectorIndex"] = res.labels  # type: ignore[attr-defined]
        inside.drain("P   in: ", times)
        del index
        if r:
            con.execute("SELECT embed_drop_index('docs_index')").fetchall()
        timed(times, "S embed_create_index", lambda: con.sql(create).fetchall())
        inside.drain("S   build in: ", times)
        out = timed(times, "S embed_knn_join -> Arrow", lambda: con.sql(join).to_arrow_table())
        found["SQL"] = np.asarray(out.column("right_key")).reshape(n, k)  # type: ignore[attr-defined]
        inside.drain("S   join in: ", times)
        for label, sql in pieces.items():
            if label in failed:
                continue
            try:
                timed(times, label, lambda s=sql: con.sql(s).to_arrow_table())
            except duckdb.Error as exc:  # an internal UDF changed its signature
                failed[label] = str(exc).splitlines()[0][:120]
        inside.acc.clear()
        row = {key: times[key][-1] for key in times if key[0] in "APS" and "in:" not in key}
        shown = ", ".join(f"{key[2:]} {w:.2f}/{c:.2f}" for key, (w, c) in row.items())
        print(f"round {r} (wall/cpu s): {shown}", file=sys.stderr, flush=True)

    print(
        f"\nclustered: {n:,} queries x {n:,} docs, dim {args.dim}, k={k}, M / ef_construction "
        f"/ ef_search {params['M']} / {params['ef_construction']} / {params['ef_search']}; "
        f"{args.repeat} interleaved rounds"
    )
    print(", ".join(f"recall {key} {recall_at_k(f, truth):.4f}" for key, f in found.items()))
    med = statistics.median
    walls = {key: min(w for w, _ in v) for key, v in times.items()}
    raw = walls["A raw usearch add"] + walls["A raw usearch search"]
    sql = walls["S embed_create_index"] + walls["S embed_knn_join -> Arrow"]
    py = walls["P VectorIndex.build"] + walls["P VectorIndex.search"]
    print(f"build + join over raw usearch (min wall): SQL {sql / raw:.2f}x, Python {py / raw:.2f}x")
    print("\n| piece | min wall s | median wall s | median cpu s |")
    print("|---|---|---|---|")
    for label in sorted(times):
        vals = times[label]
        print(
            f"| {label} | {walls[label]:.3f} | {med(w for w, _ in vals):.3f} | "
            f"{med(c for _, c in vals):.3f} |"
        )
    for label, why in failed.items():
        print(f"| {label} | did not run: {why} | | |")


if __name__ == "__main__":
    main()
