"""k-NN join: embed_sql (HNSW and exact) against numpy and DuckDB's vss extension.

For each data set, every query row is joined to its k nearest document rows. Engines:

- numpy: one BLAS matrix product per query block + argpartition (exact; also the truth);
- embed_sql exact: ``VectorIndex(exact=True)`` (blocked BLAS, ties by key);
- embed_sql HNSW: ``VectorIndex`` over usearch, default parameters: an f16 graph with exact
  float32 rescoring (the default), an f32 graph, and an f16 graph alone (``rescore=False``);
- embed_sql from SQL: DuckDB 2.0, ``SELECT embed_create_index(...)`` then
  ``FROM knn_join('q', 'docs_index', k := 10)`` fetched as Arrow (what vss is timed on);
- DuckDB vss: duckdb 1.4.4 with the ``duckdb-ext-vss`` package in its own venv
  (``.venv-vss``, made on first run), HNSW index plus the LATERAL top-k join it
  accelerates (``HNSW_INDEX_JOIN``).

Data sets: ``clustered`` (a 16-d signal around 500 centres, lifted to ``--dim`` with noise;
i.i.d. random vectors have no real neighbours in 384-d) and ``text`` (BBC News sentences
embedded with the default model, queries = documents).

Approximate engines (HNSW, SQL, vss) run ``--repeat`` times (default 3), interleaved round by
round, and the median run is reported: single runs on this machine swing by up to 1.5x.

    .venv/bin/python benchmarks/join.py                     # 100k x 100k, dim 384, k 10
    .venv/bin/python benchmarks/join.py --n 20000 --skip-vss
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VSS_VENV = ROOT / ".venv-vss"

_VSS_WORKER = r"""
import json, sys, sysconfig, time
import duckdb, numpy as np, pyarrow as pa
docs_file, queries_file, out_file, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
docs, queries = np.load(docs_file), np.load(queries_file)
dim = docs.shape[1]
con = duckdb.connect()
con.execute(f"SET extension_directory='{sysconfig.get_paths()['purelib']}/duckdb_ext/extensions'")
con.execute("LOAD vss")
def table(x):
    v = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
    return pa.table({"id": np.arange(len(x)), "v": v})
con.register("d_src", table(docs)); con.register("q_src", table(queries))
con.execute(f"CREATE TABLE docs AS SELECT id, v::FLOAT[{dim}] AS v FROM d_src")
con.execute(f"CREATE TABLE q AS SELECT id, v::FLOAT[{dim}] AS v FROM q_src")
start = time.perf_counter()
con.execute("CREATE INDEX h ON docs USING HNSW (v) WITH (metric = 'cosine')")
build = time.perf_counter() - start
sql = f'''SELECT q.id AS qid, d.id AS did FROM q, LATERAL (
    SELECT id FROM docs ORDER BY array_cosine_distance(v, q.v) LIMIT {k}) d'''
plan = con.execute("EXPLAIN " + sql).fetchall()[0][1]
start = time.perf_counter()
res = con.execute(sql).fetch_arrow_table()
join = time.perf_counter() - start
qid = np.asarray(res.column("qid")); did = np.asarray(res.column("did"))
out = np.full((len(queries), k), -1, dtype=np.int64)
order = np.lexsort((np.arange(len(qid)), qid))
qid, did = qid[order], did[order]
starts = np.searchsorted(qid, np.arange(len(queries)))
for i in range(len(queries)):
    row = did[starts[i]: starts[i + 1] if i + 1 < len(queries) else len(did)][:k]
    out[i, : len(row)] = row
np.save(out_file, out)
print(json.dumps({"build": build, "join": join, "index_join": "HNSW_INDEX_JOIN" in plan}))
"""


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(500, 16))
    lift = rng.normal(size=(16, dim)) / 4
    signal = centres[rng.integers(0, 500, n)] + 0.3 * rng.normal(size=(n, 16))
    x = signal @ lift + 0.15 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def text_vectors(limit: int) -> np.ndarray:
    from embed_sql.models.encoder import shared_encoder
    from tests.corpus import sentences

    texts = list(dict.fromkeys(sentences(4, 60)))[:limit]
    return shared_encoder().encode_numpy(texts)


def numpy_knn(docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 2048):
        sims = queries[s : s + 2048] @ docs.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, 1), axis=1)
        out[s : s + 2048] = np.take_along_axis(part, order, 1)
    return out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def ensure_vss_venv() -> Path:
    python = VSS_VENV / "bin" / "python"
    if not python.exists():
        print("making .venv-vss (duckdb 1.4.4 + duckdb-ext-vss) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VSS_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "duckdb==1.4.4",
                "duckdb-ext-vss==1.4.4.20260205",
                "numpy",
                "pyarrow",
            ],
            check=True,
        )
    return python


def run_vss(docs: np.ndarray, queries: np.ndarray, k: int) -> tuple[dict[str, float], np.ndarray]:
    python = ensure_vss_venv()
    with tempfile.TemporaryDirectory() as tmp:
        d, q, o = (Path(tmp) / n for n in ("d.npy", "q.npy", "o.npy"))
        np.save(d, docs)
        np.save(q, queries)
        proc = subprocess.run(
            [str(python), "-c", _VSS_WORKER, str(d), str(q), str(o), str(k)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            msg = f"vss run failed:\n{proc.stderr[-3000:]}"
            raise RuntimeError(msg)
        return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(o)


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def run_sql(docs: np.ndarray, queries: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """Build and join through DuckDB SQL: ``embed_create_index`` + the ``knn_join`` macro."""
    import duckdb
    import pyarrow as pa

    import embed_sql
    from embed_sql.vectors import from_numpy

    con = duckdb.connect()
    try:
        embed_sql.register(con, progress=False)
        dim = docs.shape[1]
        for name, x in (("docs", docs), ("q", queries)):
            con.register(f"{name}_src", pa.table({"id": np.arange(len(x)), "v": from_numpy(x)}))
            con.execute(
                f"CREATE TABLE {name} AS SELECT id, v::FLOAT[{dim}] AS v FROM {name}_src"
            ).fetchall()
        t_b, _ = timed(
            lambda: con.sql("SELECT embed_create_index('docs_index', 'docs')").fetchall()
        )
        sql = f"SELECT left_key, right_key FROM knn_join('q', 'docs_index', k := {k})"
        t_j, res = timed(lambda: con.sql(sql).to_arrow_table())
    finally:
        con.close()
    right = np.asarray(res.column("right_key"))  # ordered by left_key, then rank
    return t_b, t_j, right.reshape(len(queries), min(k, len(docs)))


Run = tuple[float, float, np.ndarray]  # build s, join s, found labels (n, k)


def bench(
    name: str, docs: np.ndarray, queries: np.ndarray, k: int, skip_vss: bool, repeat: int
) -> None:
    from embed_sql.vectors import VectorIndex

    ids = np.arange(len(docs))
    t_np, truth = timed(lambda: numpy_knn(docs, queries, k))
    rows: list[tuple[str, float, float, float]] = [("numpy matmul + argpartition", 0.0, t_np, 1.0)]
    t_b, exact = timed(lambda: VectorIndex.build(docs, ids, exact=True))
    t_j, res = timed(lambda: exact.search(queries, k))
    rows.append(("embed_sql exact", t_b, t_j, recall_at_k(res.labels, truth)))

    def hnsw(dtype: str, rescore: bool) -> Run:
        t_b, index = timed(lambda: VectorIndex.build(docs, ids, dtype=dtype, rescore=rescore))
        t_j, res = timed(lambda: index.search(queries, k))  # type: ignore[attr-defined]
        return t_b, t_j, res.labels

    def vss() -> Run:
        info, found = run_vss(docs, queries, k)
        return info["build"], info["join"], found

    engines: dict[str, object] = {
        "embed_sql HNSW (f16 + f32 rescore, default)": lambda: hnsw("f16", True),
        "embed_sql HNSW (f32)": lambda: hnsw("f32", False),
        "embed_sql HNSW (f16, rescore=False)": lambda: hnsw("f16", False),
        "embed_sql from DuckDB SQL (default index)": lambda: run_sql(docs, queries, k),
    }
    if not skip_vss:
        engines["DuckDB vss (HNSW_INDEX_JOIN)"] = vss
    runs: dict[str, list[Run]] = {label: [] for label in engines}
    for _ in range(repeat):  # rounds interleave the engines, so drift in the machine is shared
        for label, run in engines.items():
            runs[label].append(run())  # type: ignore[operator]
    for label, got in runs.items():
        b, j, found = sorted(got, key=lambda r: r[0] + r[1])[len(got) // 2]  # the median run
        rows.append((label, b, j, recall_at_k(found, truth)))
    vss_total = None if skip_vss else sum(rows[-1][1:3])
    print(f"\n{name}: {len(queries):,} queries x {len(docs):,} docs, dim {docs.shape[1]}, k={k}")
    print(f"(approximate engines: the median of {repeat} interleaved runs)\n")
    print("| engine | build s | join s | total s | recall@k | vs vss | vs numpy |")
    print("|---|---|---|---|---|---|---|")
    for engine, b, j, r in rows:
        total = b + j
        vs_vss = f"{vss_total / total:.1f}x" if vss_total else "-"
        print(
            f"| {engine} | {b:.1f} | {j:.1f} | {total:.1f} | {r:.3f} | {vs_vss} | "
            f"{t_np / total:.2f}x |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents and queries")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--text-limit", type=int, default=40_000)
    parser.add_argument("--skip-vss", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per approximate engine")
    args = parser.parse_args()
    data = clustered(2 * args.n, args.dim, seed=0)  # one distribution, split in two
    docs, queries = data[: args.n], data[args.n :]
    bench("clustered", docs, queries, args.k, args.skip_vss, args.repeat)
    text = text_vectors(args.text_limit)
    bench("BBC sentences (default model)", text, text, args.k, args.skip_vss, args.repeat)


if __name__ == "__main__":
    main()
