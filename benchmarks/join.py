"""k-NN join: embed_sql (HNSW and exact) against numpy and DuckDB's vss extension.

For each data set, every query row is joined to its k nearest document rows. Engines:

- numpy: one BLAS matrix product per query block + argpartition (exact; also the truth);
- embed_sql exact: ``VectorIndex(exact=True)`` (blocked BLAS, ties by key);
- embed_sql HNSW: ``VectorIndex`` over usearch: an f16 graph with exact float32 rescoring
  (the default), an f32 graph, and an f16 graph alone (``rescore=False``);
- embed_sql from SQL: DuckDB 2.0, ``SELECT embed_create_index(...)`` then
  ``FROM embed_knn_join('q', 'docs_index', k := 10)`` fetched as Arrow (what vss is timed on),
  with the default index and with ``rescore := false`` (an f16 graph alone: the same work as
  raw usearch, so the ratio between the two is the SQL path's own overhead);
- raw usearch: ``usearch.index.Index`` alone (f16, all cores, labels 0..n-1): the floor
  under every embed_sql HNSW row, so their overhead over it is measured;
- DuckDB vss: duckdb 1.4.4 with the ``duckdb-ext-vss`` package in its own venv
  (``.venv-vss``, made on first run), HNSW index plus the LATERAL top-k join it
  accelerates (``HNSW_INDEX_JOIN``), twice: at vss's own defaults (M 16, ef_construction
  128, ef_search 64) and at embed_sql's parameters.

Every HNSW row except "vss defaults" runs at the same parameters: embed_sql's defaults
(``HNSW_DEFAULTS``) or ``--hnsw M EF_CONSTRUCTION EF_SEARCH``; where embed_sql has a "fast"
preset, one more row shows it. Every row is measured on the same data at the same k, and
reports its own recall@k against numpy's exact top-k.

Data sets: ``clustered`` (a 16-d signal around 500 centres, lifted to ``--dim`` with noise;
i.i.d. random vectors have no real neighbours in 384-d) and ``text`` (BBC News sentences
embedded with the default model, queries = documents).

Approximate engines (HNSW, SQL, vss) run ``--repeat`` times (default 3), interleaved round by
round, and the median run is reported: single runs on this machine swing by up to 1.5x.

    .venv/bin/python benchmarks/join.py                     # 100k x 100k, dim 384, k 10
    .venv/bin/python benchmarks/join.py --n 20000 --skip-vss
    .venv/bin/python benchmarks/join.py --n 20000 --data clustered --hnsw 16 128 64
    .venv/bin/python benchmarks/join.py --skip-sql     # before embed_knn_join exists
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
params = json.loads(sys.argv[5])  # {} = vss's defaults, else M, ef_construction, ef_search
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
options = "".join(f", {name} = {int(value)}" for name, value in params.items())
con.execute(f"CREATE INDEX h ON docs USING HNSW (v) WITH (metric = 'cosine'{options})")
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


def run_vss(
    docs: np.ndarray, queries: np.ndarray, k: int, params: dict[str, int] | None
) -> tuple[dict[str, float], np.ndarray]:
    """Build and join with vss in its own venv; ``params`` None = vss's own defaults."""
    python = ensure_vss_venv()
    with tempfile.TemporaryDirectory() as tmp:
        d, q, o = (Path(tmp) / n for n in ("d.npy", "q.npy", "o.npy"))
        np.save(d, docs)
        np.save(q, queries)
        argv = [str(d), str(q), str(o), str(k), json.dumps(params or {})]
        proc = subprocess.run(
            [str(python), "-c", _VSS_WORKER, *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            msg = f"vss run failed:\n{proc.stderr[-3000:]}"
            raise RuntimeError(msg)
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if not info["index_join"]:
            msg = "vss did not plan an HNSW_INDEX_JOIN: its row would time a brute-force join"
            raise RuntimeError(msg)
        return info, np.load(o)


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def run_usearch(
    docs: np.ndarray, queries: np.ndarray, k: int, params: dict[str, int]
) -> tuple[float, float, np.ndarray]:
    """usearch alone: an f16 graph, all cores, labels 0..n-1 (what embed_sql wraps)."""
    from embed_sql._native import usearch_index  # loads onnxruntime first (see _native)

    index_cls = usearch_index()

    def build() -> object:
        index = index_cls(
            ndim=docs.shape[1],
            metric="cos",
            dtype="f16",
            connectivity=params["M"],
            expansion_add=params["ef_construction"],
            expansion_search=params["ef_search"],
        )
        index.add(np.arange(len(docs), dtype=np.uint64), docs, threads=0)
        return index

    t_b, index = timed(build)
    t_j, matches = timed(lambda: index.search(queries, k, threads=0))  # type: ignore[attr-defined]
    found = np.asarray(matches.keys, dtype=np.int64).reshape(len(queries), -1)
    counts = np.asarray(matches.counts).reshape(len(queries))
    found[np.arange(found.shape[1])[None, :] >= counts[:, None]] = -1
    return t_b, t_j, found


def run_sql(
    docs: np.ndarray,
    queries: np.ndarray,
    k: int,
    params: dict[str, int],
    *,
    rescore: bool = True,
) -> tuple[float, float, np.ndarray]:
    """Build and join through DuckDB SQL: ``embed_create_index`` + ``embed_knn_join``."""
    import duckdb
    import pyarrow as pa

    import embed_sql
    from embed_sql.vectors import from_numpy

    con = duckdb.connect()
    try:
        embed_sql.register(con)
        dim = docs.shape[1]
        for name, x in (("docs", docs), ("q", queries)):
            con.register(f"{name}_src", pa.table({"id": np.arange(len(x)), "v": from_numpy(x)}))
            con.execute(
                f"CREATE TABLE {name} AS SELECT id, v::FLOAT[{dim}] AS v FROM {name}_src"
            ).fetchall()
        hnsw = "".join(f", {name} := {int(value)}" for name, value in params.items())
        hnsw += "" if rescore else ", rescore := false"
        t_b, _ = timed(
            lambda: con.sql(f"SELECT embed_create_index('docs_index', 'docs'{hnsw})").fetchall()
        )
        sql = f"SELECT left_key, right_key FROM embed_knn_join('q', 'docs_index', k := {k})"
        t_j, res = timed(lambda: con.sql(sql).to_arrow_table())
    finally:
        con.close()
    right = np.asarray(res.column("right_key"))  # ordered by left_key, then rank
    return t_b, t_j, right.reshape(len(queries), min(k, len(docs)))


Run = tuple[float, float, np.ndarray]  # build s, join s, found labels (n, k)
VSS_DEFAULTS = {"M": 16, "ef_construction": 128, "ef_search": 64}  # vss 1.4.4's own


def show(params: dict[str, int]) -> str:
    return f"{params['M']} / {params['ef_construction']} / {params['ef_search']}"


def bench(
    name: str,
    docs: np.ndarray,
    queries: np.ndarray,
    k: int,
    params: dict[str, int],
    *,
    skip_vss: bool,
    skip_sql: bool,
    repeat: int,
    origin: str,
    fast: dict[str, int] | None,
) -> None:
    from embed_sql.vectors import VectorIndex

    ids = np.arange(len(docs))
    mine = show(params)
    t_np, truth = timed(lambda: numpy_knn(docs, queries, k))
    rows: list[tuple[str, str, float, float, float]] = [
        ("numpy matmul + argpartition", "exact", 0.0, t_np, 1.0)
    ]
    t_b, exact = timed(lambda: VectorIndex.build(docs, ids, exact=True))
    t_j, res = timed(lambda: exact.search(queries, k))
    rows.append(("embed_sql exact", "exact", t_b, t_j, recall_at_k(res.labels, truth)))

    def hnsw(dtype: str, rescore: bool, at: dict[str, int] = params) -> Run:
        t_b, index = timed(lambda: VectorIndex.build(docs, ids, dtype=dtype, rescore=rescore, **at))
        t_j, res = timed(lambda: index.search(queries, k))  # type: ignore[attr-defined]
        return t_b, t_j, res.labels

    def vss(at: dict[str, int] | None) -> Run:
        info, found = run_vss(docs, queries, k, at)
        return info["build"], info["join"], found

    engines: dict[str, tuple[str, object]] = {
        "embed_sql HNSW (f16 + f32 rescore, default)": (mine, lambda: hnsw("f16", True)),
        "embed_sql HNSW (f32)": (mine, lambda: hnsw("f32", False)),
        "embed_sql HNSW (f16, rescore=False)": (mine, lambda: hnsw("f16", False)),
    }
    if fast is not None and fast != params:  # the named speed-for-recall setting, for contrast
        engines["embed_sql HNSW (preset 'fast', f16 + f32 rescore)"] = (
            show(fast),
            lambda: hnsw("f16", True, fast),
        )
    if not skip_sql:
        engines["embed_sql from DuckDB SQL (default index)"] = (
            mine,
            lambda: run_sql(docs, queries, k, params),
        )
        engines["embed_sql from DuckDB SQL (rescore := false)"] = (
            mine,
            lambda: run_sql(docs, queries, k, params, rescore=False),
        )
    engines["raw usearch (same params, f16)"] = (
        mine,
        lambda: run_usearch(docs, queries, k, params),
    )
    if not skip_vss:
        engines["DuckDB vss at its defaults (f32)"] = (show(VSS_DEFAULTS), lambda: vss(None))
        engines["DuckDB vss at embed_sql's parameters (f32)"] = (mine, lambda: vss(params))
    runs: dict[str, list[Run]] = {label: [] for label in engines}
    for _ in range(repeat):  # rounds interleave the engines, so drift in the machine is shared
        for label, (_, run) in engines.items():
            runs[label].append(run())  # type: ignore[operator]
    for label, got in runs.items():
        b, j, found = sorted(got, key=lambda r: r[0] + r[1])[len(got) // 2]  # the median run
        rows.append((label, engines[label][0], b, j, recall_at_k(found, truth)))
    totals = {row[0]: row[2] + row[3] for row in rows}
    vss_default = totals.get("DuckDB vss at its defaults (f32)")
    vss_matched = totals.get("DuckDB vss at embed_sql's parameters (f32)")
    raw = totals["raw usearch (same params, f16)"]

    print(f"\n{name}: {len(queries):,} queries x {len(docs):,} docs, dim {docs.shape[1]}, k={k}")
    print(
        f"- HNSW parameters (M / ef_construction / ef_search): {mine} ({origin}) in every "
        f"HNSW row but vss at its defaults ({show(VSS_DEFAULTS)})"
        + (f" and the 'fast' preset ({show(fast)})" if fast is not None and fast != params else "")
        + "\n"
        f"- recall@k: each row's own, against numpy's exact top-{k}; approximate engines: "
        f"the median of {repeat} interleaved runs\n"
        "- vs vss default / vs vss matched: how many times faster than that vss row; "
        "/ raw usearch: total time over raw usearch's (the wrapping's overhead)\n"
    )
    print(
        "| engine | M / ef_c / ef_s | build s | join s | total s | recall@k "
        "| vs vss default | vs vss matched | / raw usearch | vs numpy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for engine, at, b, j, r in rows:
        total = b + j
        vs_default = f"{vss_default / total:.1f}x" if vss_default else "-"
        vs_matched = f"{vss_matched / total:.1f}x" if vss_matched else "-"
        print(
            f"| {engine} | {at} | {b:.1f} | {j:.1f} | {total:.1f} | {r:.3f} | {vs_default} | "
            f"{vs_matched} | {total / raw:.2f} | {t_np / total:.2f}x |",
            flush=True,
        )


def main() -> None:
    from embed_sql.vectors import index as vector_index

    defaults = vector_index.HNSW_DEFAULTS
    presets = getattr(vector_index, "HNSW_PRESETS", None) or getattr(
        sys.modules.get("embed_sql.vectors.hnsw"), "HNSW_PRESETS", {}
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="documents and queries")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--text-limit", type=int, default=40_000)
    parser.add_argument(
        "--text-cache", type=Path, help="an .npy file keeping the text vectors between runs"
    )
    parser.add_argument("--data", choices=("clustered", "text", "both"), default="both")
    parser.add_argument(
        "--hnsw",
        type=int,
        nargs=3,
        metavar=("M", "EF_CONSTRUCTION", "EF_SEARCH"),
        help="HNSW parameters of every row but vss's defaults (default: embed_sql's)",
    )
    parser.add_argument("--skip-vss", action="store_true")
    parser.add_argument(
        "--skip-sql", action="store_true", help="leave out the DuckDB SQL row (embed_knn_join)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per approximate engine")
    args = parser.parse_args()
    names = ("M", "ef_construction", "ef_search")
    params = dict(zip(names, args.hnsw or (defaults[n] for n in names), strict=True))
    opts = {
        "skip_vss": args.skip_vss,
        "skip_sql": args.skip_sql,
        "repeat": args.repeat,
        "origin": "--hnsw" if args.hnsw else "embed_sql's defaults",
        "fast": dict(presets["fast"]) if "fast" in presets else None,
    }
    if args.data in ("clustered", "both"):
        data = clustered(2 * args.n, args.dim, seed=0)  # one distribution, split in two
        docs, queries = data[: args.n], data[args.n :]
        bench("clustered", docs, queries, args.k, params, **opts)
    if args.data in ("text", "both"):
        if args.text_cache is not None and args.text_cache.exists():
            text = np.load(args.text_cache)
        else:
            text = text_vectors(args.text_limit)
            if args.text_cache is not None:
                np.save(args.text_cache, text)
        bench("BBC sentences (default model)", text, text, args.k, params, **opts)


if __name__ == "__main__":
    main()
