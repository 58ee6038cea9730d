"""The same Parquet-to-Parquet embed job locally and on a local Ray cluster, side by side.

A Parquet file of ``--rows`` short texts (default 1,000,000; "market report 123" style, as
``benchmarks/hosts.py``) is embedded with all-MiniLM-L6-v2 into another Parquet file:

- **local**: the encoder over the file's record batches (what ``embed-sql embed`` does),
  one process, onnxruntime on every core;
- **ray**: ``ray.data.read_parquet`` -> :func:`embed_sql.distributed.ray.embed_dataset` ->
  ``write_parquet`` on a local Ray cluster of this machine's cores (its defaults: actors
  of one CPU each, one CPU left for reads).

Each job runs in its own process; peak memory is the largest sum of RSS over the job's
process tree (Ray's raylet, object store and workers included), sampled every 0.2 s.

    .venv/bin/python benchmarks/ray.py                 # 1M rows: about 40 minutes here
    .venv/bin/python benchmarks/ray.py --rows 50000

On a real cluster, the Ray side is the same code after ``ray.init(address="auto")``
(see the README, "Beyond one machine").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# run as a script, this file's folder comes first on sys.path and this file would shadow
# the ray package: drop the folder, add the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]


def make_input(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = ["market", "report", "storm", "election", "match", "film", "phone", "bank"]
    texts = [f"{words[i % 8]} {words[(i // 8) % 8]} {i}" for i in range(rows)]
    pq.write_table(pa.table({"id": range(rows), "text": texts}), path, row_group_size=10_000)


def job(engine: str, src: str, dst: str) -> dict[str, float]:
    """Run one job in this process; return its rows and seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = time.perf_counter()
    if engine == "local":
        from embed_sql.models.encoder import shared_encoder

        encoder = shared_encoder()
        reader = pq.ParquetFile(src)
        writer = None
        rows = 0
        for batch in reader.iter_batches(batch_size=10_000):
            vectors = encoder.encode(batch.column("text"))
            table = pa.Table.from_batches([batch]).append_column(encoder.field(), vectors)
            if writer is None:
                writer = pq.ParquetWriter(dst, table.schema)
            writer.write_table(table)
            rows += batch.num_rows
        assert writer is not None
        writer.close()
    else:
        import logging
        import os

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray
        import ray.data

        from embed_sql.distributed.ray import embed_dataset

        ray.init(include_dashboard=False, logging_level=logging.WARNING)
        ray.data.DataContext.get_current().print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no progress lines
        ds = embed_dataset(ray.data.read_parquet(src), "text", batch_size=1024)
        ds.write_parquet(dst)
        rows = sum(pq.read_metadata(p).num_rows for p in Path(dst).glob("*.parquet"))
        ray.shutdown()
    return {"rows": rows, "seconds": time.perf_counter() - start}


def measured(engine: str, src: Path, dst: Path) -> dict[str, float]:
    """Run ``engine``'s job in a child process; sample its process tree's RSS."""
    import psutil

    proc = subprocess.Popen(
        [sys.executable, __file__, "--job", engine, str(src), str(dst)],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                peak = max(peak, total)
            except psutil.Error:
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode:
        msg = f"{engine} job failed ({proc.returncode})"
        raise RuntimeError(msg)
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = peak / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--job", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job(*args.job)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.parquet"
        make_input(src, args.rows)
        results = {}
        for engine in ("local", "ray"):
            results[engine] = measured(engine, src, Path(tmp) / f"out-{engine}")
            print(f"  {engine}: {results[engine]}", file=sys.stderr)
    base = results["local"]["rows"] / results["local"]["seconds"]
    print(f"{args.rows:,} short texts, Parquet to Parquet, all-MiniLM-L6-v2; one run each\n")
    print("| engine | rows | rows/s | vs local | peak RSS MiB (process tree) |")
    print("|---|---|---|---|---|")
    for engine, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"| {engine} | {int(r['rows']):,} | {rate:,.0f} | {rate / base:.2f}x | "
            f"{r['peak_mib']:,.0f} |"
        )


if __name__ == "__main__":
    main()
