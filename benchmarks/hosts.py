"""Host overhead: ``SELECT embed(text)`` in DuckDB and ``pl.col(...).embed.text()`` in Polars
against calling the encoder directly, on the same texts, side by side in one run.

Part 1, throughput: BBC News titles and sentences, engines alternating within each round;
reports rows/s (median over rounds) and the overhead against the encoder.

Part 2, memory at scale: a Parquet file of ``--memory-rows`` short texts (default 1M) is
embedded into another Parquet file by each host in its own process (DuckDB ``COPY ... TO``,
Polars ``scan_parquet().sink_parquet()``, the encoder over Parquet batches), so none of them
holds the whole vector column; reports rows/s and peak RSS.

    .venv/bin/python benchmarks/hosts.py                        # both parts
    .venv/bin/python benchmarks/hosts.py --memory-rows 0        # throughput only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENGINES = ("encoder", "duckdb", "polars", "polars-streaming")


def _throughput_once(engine: str, texts: list[str]) -> float:
    import duckdb
    import polars as pl
    import pyarrow as pa

    import embed_sql
    import embed_sql.polars
    from embed_sql.models.encoder import shared_encoder

    encoder = shared_encoder()
    column = pa.array(texts, pa.string())
    start = time.perf_counter()
    if engine == "encoder":
        encoder.encode(column)
    elif engine == "duckdb":
        con = duckdb.connect()
        embed_sql.register(con, progress=False)
        con.register("src", pa.table({"s": column}))
        con.execute("CREATE TABLE out AS SELECT embed(s) AS v FROM src").fetchall()
        con.close()
    elif engine == "polars":
        pl.DataFrame({"s": column}).with_columns(v=pl.col("s").embed.text())
    else:
        lf = pl.LazyFrame({"s": column}).with_columns(v=pl.col("s").embed.text())
        lf.collect(engine="streaming")
    return len(texts) / (time.perf_counter() - start)


_MEMORY_WORKER = r"""
import resource, sys, time, json
engine, src, dst = sys.argv[1:4]
import pyarrow.parquet as pq
start = time.perf_counter()
if engine == "encoder":
    from embed_sql.models.encoder import shared_encoder
    import pyarrow as pa
    enc = shared_encoder()
    reader = pq.ParquetFile(src)
    writer = None
    for batch in reader.iter_batches(batch_size=8192):
        out = pa.table({"id": batch.column("id"), "v": enc.encode(batch.column("s"))})
        writer = writer or pq.ParquetWriter(dst, out.schema)
        writer.write_table(out)
    writer.close()
elif engine == "duckdb":
    import duckdb, embed_sql
    con = duckdb.connect()
    embed_sql.register(con, progress=False)
    # without these DuckDB buffers the whole result to keep row order (memory grows with rows)
    con.execute("SET preserve_insertion_order = false").fetchall()
    sql = f"COPY (SELECT id, embed(s) AS v FROM read_parquet('{src}')) TO '{dst}'"
    con.execute(sql + " (FORMAT parquet, ROW_GROUP_SIZE 10000)").fetchall()
    con.close()
else:
    import polars as pl, embed_sql.polars
    pl.scan_parquet(src).with_columns(v=pl.col("s").embed.text()).sink_parquet(dst)
seconds = time.perf_counter() - start
rows = pq.ParquetFile(dst).metadata.num_rows
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "rss_mib": rss}))
"""


def _memory_run(engine: str, src: Path, dst: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_WORKER, engine, str(src), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"{engine} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from tests.corpus import bbc_articles, sentences

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000, help="texts for the throughput part")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    pool = [t for _, t, _ in bbc_articles()] + sentences(3, 20)
    texts = (pool * (args.rows // len(pool) + 1))[: args.rows]
    _throughput_once("encoder", texts[:256])  # load the model once, outside the timings
    rates: dict[str, list[float]] = {e: [] for e in ENGINES}
    for _ in range(args.rounds):
        for engine in ENGINES:
            rates[engine].append(_throughput_once(engine, texts))
    base = statistics.median(rates["encoder"])
    print(f"Throughput, {len(texts)} BBC titles and sentences, median of {args.rounds} rounds\n")
    print("| engine | rows/s | vs encoder | overhead |")
    print("|---|---|---|---|")
    for engine in ENGINES:
        rate = statistics.median(rates[engine])
        print(f"| {engine} | {rate:.0f} | {rate / base:.3f}x | {100 * (base / rate - 1):+.1f} % |")

    if args.memory_rows <= 0:
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.parquet"
        n = args.memory_rows
        words = ["market", "storm", "burrito", "election", "goal", "chip", "film", "rate"]
        column = pa.array([f"{words[i % 8]} report {i}" for i in range(n)], pa.string())
        pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()), "s": column}), src)
        del column
        print(f"\nParquet to Parquet, {n:,} short texts, each host in its own process\n")
        print("| engine | rows | rows/s | peak RSS MiB |")
        print("|---|---|---|---|")
        for engine in ("encoder", "duckdb", "polars"):
            res = _memory_run(engine, src, Path(tmp) / f"{engine}.parquet")
            print(
                f"| {engine} | {int(res['rows']):,} | {res['rows'] / res['seconds']:.0f} "
                f"| {res['rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
