"""The embedding cache on disk: file bytes per stored vector, time for a batch of hits.

A stand-in encoder returns random float32 vectors, so the numbers are the cache's own (no
model runs). The cache is filled in DuckDB-sized batches (2,048 texts); then batches of
2,048 already-stored texts are looked up (each a single ``encode`` call, as one DuckDB
vector is). A second, bounded cache receives several times its bound, to show the size the
file really ends at next to ``max_bytes``.

    .venv/bin/python benchmarks/cache.py                    # 50k x 384, as in issue #16
    .venv/bin/python benchmarks/cache.py --n 10000 --rounds 1   # quick look

At 50k x 384 on a busy 2-core box (issue #16): file format 1 (a WITHOUT ROWID row of
1.5 KiB per vector, 4 KiB pages: one overflow page each; a write per hit) took 4,729 bytes
per vector, 3.08x the raw vectors, 0.37 s per 2,048 hits, and its bounded file grew to
4.1x ``max_bytes``; format 2 takes 1,643 bytes (1.07x), 0.02-0.06 s, and 1.00x.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embed_sql.models.cache import EmbeddingCache  # noqa: E402
from embed_sql.vectors.arrow import from_numpy  # noqa: E402

BATCH = 2048


class RandomEncoder:
    """Unit-length random vectors, seeded by the text: the same text gives the same vector."""

    name = "random"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.key = f"random-{dim}"

    def encode(self, texts: list[str]) -> pa.Array:
        seed = int.from_bytes(hashlib.blake2b("\0".join(texts).encode()).digest()[:8], "little")
        mat = np.random.default_rng(seed).standard_normal((len(texts), self.dim))
        mat = (mat / np.linalg.norm(mat, axis=1, keepdims=True)).astype(np.float32)
        return from_numpy(mat)


def file_bytes(path: Path) -> int:
    """The database's bytes on disk once its write-ahead log is folded back in."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def fill(cache: EmbeddingCache, enc: RandomEncoder, n: int, prefix: str = "text") -> list[str]:
    texts = [f"{prefix} {i}" for i in range(n)]
    for start in range(0, n, BATCH):
        cache.encode(enc, texts[start : start + BATCH])  # type: ignore[arg-type]
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="vectors stored")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=3, help="batches of 2,048 hits timed")
    ap.add_argument("--bound-mib", type=int, default=8, help="max_bytes of the bounded run")
    args = ap.parse_args()
    enc = RandomEncoder(args.dim)
    raw = args.n * args.dim * 4
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.sqlite"
        start = time.perf_counter()
        texts = fill(EmbeddingCache(path), enc, args.n)
        fill_s = time.perf_counter() - start
        size = file_bytes(path)
        cache = EmbeddingCache(path)  # a fresh process would start like this
        times = []
        for _ in range(args.rounds):
            batch = [texts[i] for i in rng.choice(args.n, BATCH, replace=False)]
            start = time.perf_counter()
            cache.encode(enc, batch)  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
        del cache

        bound = args.bound_mib * 2**20
        bounded_path = Path(tmp) / "bounded.sqlite"
        bounded = EmbeddingCache(bounded_path, max_bytes=bound)
        fill(bounded, enc, 3 * bound // (args.dim * 4), prefix="bounded")
        kept = len(bounded)
        del bounded
        bounded_size = file_bytes(bounded_path)

    hits = statistics.median(times)
    rows = [
        (f"fill, {BATCH:,}-text batches", f"{fill_s:.1f} s"),
        ("file size", f"{size / 2**20:.1f} MiB"),
        ("bytes per vector", f"{size / args.n:,.0f}"),
        ("file / raw vectors", f"{size / raw:.2f}x"),
        (f"{BATCH:,} hits, one call (median of {args.rounds})", f"{hits:.3f} s"),
        ("bounded: max_bytes", f"{bound / 2**20:.1f} MiB"),
        ("bounded: file after 3x the bound", f"{bounded_size / 2**20:.1f} MiB"),
        ("bounded: file / max_bytes", f"{bounded_size / bound:.2f}x"),
        ("bounded: raw vectors kept / max_bytes", f"{kept * args.dim * 4 / bound:.2f}x"),
    ]
    print(f"| {args.n:,} x {args.dim} float32 (raw {raw / 2**20:.1f} MiB) | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
