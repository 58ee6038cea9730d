"""How long a statement embedding long texts takes to stop, asked from another thread.

``SELECT count(embed(body)) FROM docs`` runs over real BBC News texts of about 1,000 words
(the default model reads the first 256 tokens of each); after ``--after`` seconds another
thread asks it to stop, with DuckDB's ``con.interrupt()`` or with ``embed_sql.interrupt(con)``
(which also stops the model batch under way). The table shows the seconds from that call to
the statement's end, over ``--repeat`` runs each, and the ratio.

    .venv/bin/python benchmarks/interrupt.py
    .venv/bin/python benchmarks/interrupt.py --repeat 3 --after 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

import embed_sql  # noqa: E402
from tests.corpus import bbc_articles  # noqa: E402


def stop_latency(con: duckdb.DuckDBPyConnection, how: str, after: float) -> tuple[float, str]:
    """Run the statement, stop it ``after`` seconds in; return seconds to its end, and why."""
    marks: dict[str, float] = {}

    def stopper() -> None:
        time.sleep(after)
        marks["asked"] = time.perf_counter()
        if how == "embed_sql.interrupt(con)":
            embed_sql.interrupt(con)
        else:
            con.interrupt()

    thread = threading.Thread(target=stopper)
    thread.start()
    try:
        con.sql("SELECT count(embed(body)) FROM docs").fetchall()
        outcome = "finished"
    except duckdb.Error as exc:
        outcome = "OperationInterrupted" if "OperationInterrupted" in str(exc) else "Interrupted"
    ended = time.perf_counter()
    thread.join()
    return ended - marks["asked"], outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--after", type=float, default=3.0)
    args = parser.parse_args()
    bodies = [body for _, _, body in bbc_articles()]
    texts = [
        " ".join(bodies[i % len(bodies) : i % len(bodies) + 3])[:6000] for i in range(args.rows)
    ]
    con = duckdb.connect()
    embed_sql.register(con)
    con.register("docs_view", pa.table({"id": range(len(texts)), "body": texts}))
    con.execute("CREATE TABLE docs AS FROM docs_view")
    con.sql("SELECT embed('warm up')").fetchall()
    print(
        f"{args.rows:,} texts of ~1,000 words, stopped {args.after:g} s in; {args.repeat} runs each"
    )
    print()
    print("| stopped with | seconds to stop (median) | max | ended as |")
    print("|---|---|---|---|")
    medians = {}
    for how in ("con.interrupt()", "embed_sql.interrupt(con)"):
        runs = [stop_latency(con, how, args.after) for _ in range(args.repeat)]
        seconds = [s for s, _ in runs]
        medians[how] = statistics.median(seconds)
        ended = ", ".join(sorted({o for _, o in runs}))
        print(f"| `{how}` | {medians[how]:.2f} | {max(seconds):.2f} | {ended} |")
    ratio = medians["con.interrupt()"] / medians["embed_sql.interrupt(con)"]
    print()
    print(f"embed_sql.interrupt stops {ratio:,.0f}x sooner")


if __name__ == "__main__":
    main()
