from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import embed_sql
from embed_sql import TextEncoder
from embed_sql.exceptions import InputTypeError, InvalidParameterError, ModelLoadError
from embed_sql.models import cache as cache_module
from embed_sql.models.cache import EmbeddingCache
from embed_sql.vectors import from_numpy, to_numpy


class CountingEncoder:
    """Wraps an encoder and counts the texts it really embeds."""

    def __init__(self, encoder: TextEncoder, key: str | None = None) -> None:
        self.inner = encoder
        self.dim = encoder.dim
        self.name = encoder.name
        self.key = key or encoder.key
        self.embedded: list[str] = []

    def encode(self, texts: list[str]) -> pa.Array:
        self.embedded.extend(texts)
        return self.inner.encode(texts)


def _random_vector(text: str) -> np.ndarray:
    return np.random.default_rng(list(text.encode())).random(384).astype(np.float32)


class RandomEncoder:
    """Stands in for a model where only sizes matter: a seeded random vector per text."""

    name = "random"
    key = "random-384"
    dim = 384

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def encode(self, texts: list[str]) -> pa.Array:
        self.embedded.extend(texts)
        return from_numpy(np.asarray([_random_vector(t) for t in texts]).reshape(-1, self.dim))


def _file_bytes(path: Path) -> int:
    """The database file's size once its write-ahead log is folded back in."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def test_cached_vectors_equal_fresh_ones_and_skip_the_model(
    tiny_encoder: TextEncoder, tmp_path: Path
) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    enc = CountingEncoder(tiny_encoder)
    texts = ["food", None, "rain", "food", ""]
    first = cache.encode(enc, texts)  # type: ignore[arg-type]
    assert sorted(enc.embedded) == ["", "food", "food", "rain"]
    enc.embedded.clear()
    second = cache.encode(enc, pa.array(texts))  # type: ignore[arg-type]
    assert enc.embedded == []
    assert second.is_valid().to_pylist() == [True, False, True, True, True]
    np.testing.assert_array_equal(to_numpy(first), to_numpy(second))
    np.testing.assert_array_equal(
        to_numpy(second)[[0, 2]], tiny_encoder.encode_numpy(["food", "rain"])
    )


def test_cache_survives_a_restart(tiny_encoder: TextEncoder, tmp_path: Path) -> None:
    EmbeddingCache(tmp_path / "c.sqlite").encode(tiny_encoder, ["food", "rain"])
    enc = CountingEncoder(tiny_encoder)
    EmbeddingCache(tmp_path / "c.sqlite").encode(enc, ["food", "rain"])  # type: ignore[arg-type]
    assert enc.embedded == []


def test_different_models_never_share_entries(tiny_encoder: TextEncoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.encode(tiny_encoder, ["food"])
    other = CountingEncoder(tiny_encoder, key="another-model-key")
    cache.encode(other, ["food"])  # type: ignore[arg-type]
    assert other.embedded == ["food"]
    assert len(cache) == 2


def test_the_file_stays_under_max_bytes_by_evicting_least_recently_used(
    tmp_path: Path,
) -> None:
    path, bound, enc = tmp_path / "c.sqlite", 2 * 2**20, RandomEncoder()
    with EmbeddingCache(path, max_bytes=bound) as cache:
        for start in range(0, 4_000, 250):  # 6 MiB of vectors
            texts = ["text 0"] + [f"text {i}" for i in range(start, start + 250)]
            cache.encode(enc, texts)  # type: ignore[arg-type]
        kept = len(cache)
        enc.embedded.clear()
        cache.encode(enc, ["text 0", "text 1"])  # type: ignore[arg-type]
    assert enc.embedded == ["text 1"]  # the one used all along stayed
    assert _file_bytes(path) <= bound
    # evicted down to ~90 %, not much further (the file's own ~8 pages are 12 % of 2 MiB)
    assert kept * enc.dim * 4 >= 0.6 * bound


def test_the_write_ahead_log_stays_small(tmp_path: Path) -> None:
    path, enc = tmp_path / "c.sqlite", RandomEncoder()
    with EmbeddingCache(path) as cache:
        for start in range(0, 10_000, 1_000):  # 15 MiB of vectors, 1.5 MiB per write
            cache.encode(enc, [f"text {i}" for i in range(start, start + 1_000)])  # type: ignore[arg-type]
        wal = path.with_name(path.name + "-wal").stat().st_size
    assert wal <= 10 * 2**20  # 8 MiB and one write


def test_clear_gives_the_space_back(tmp_path: Path) -> None:
    path, enc = tmp_path / "c.sqlite", RandomEncoder()
    with EmbeddingCache(path) as cache:
        cache.encode(enc, [f"text {i}" for i in range(1_000)])  # type: ignore[arg-type]
        cache.clear()
        assert len(cache) == 0
    assert _file_bytes(path) < 256 * 2**10  # the file's own few pages


def test_concurrent_threads_share_one_cache(tiny_encoder: TextEncoder, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts = [f"food {i}" for i in range(300)]
    expected = tiny_encoder.encode_numpy(texts)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            got = to_numpy(cache.encode(tiny_encoder, texts[offset:] + texts[:offset]))
            np.testing.assert_array_equal(got, np.roll(expected, -offset, axis=0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 50,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 300


def test_readers_in_another_connection_see_committed_entries(
    tiny_encoder: TextEncoder, tmp_path: Path
) -> None:
    path = tmp_path / "c.sqlite"
    EmbeddingCache(path).encode(tiny_encoder, ["food", "rain"])
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone() == (2,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_bad_arguments_are_refused(tiny_encoder: TextEncoder, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="max_bytes=0"):
        EmbeddingCache(tmp_path / "c.sqlite", max_bytes=0)
    with pytest.raises(InvalidParameterError, match="at least 1 MiB"):
        EmbeddingCache(tmp_path / "c.sqlite", max_bytes=100_000)
    with pytest.raises(InputTypeError, match="item 0 of type int"):
        EmbeddingCache(tmp_path / "c.sqlite").encode(tiny_encoder, [1])  # type: ignore[list-item]


def _data_version(db: sqlite3.Connection) -> int:
    """A number that changes whenever another connection commits a write to the file."""
    (version,) = db.execute("PRAGMA data_version").fetchone()
    return int(version)


def _last_used(path: Path, model_key: str, text: str) -> float:
    (key,) = EmbeddingCache._keys(model_key, [text])
    with closing(sqlite3.connect(path)) as db:
        (used,) = db.execute("SELECT used FROM entries WHERE key = ?", (key,)).fetchone()
    return float(used)


def test_hits_write_nothing_to_the_file(tiny_encoder: TextEncoder, tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = EmbeddingCache(path)
    cache.encode(tiny_encoder, ["food", "rain"])
    enc = CountingEncoder(tiny_encoder)
    with closing(sqlite3.connect(path)) as other:
        before = _data_version(other)
        for _ in range(3):
            cache.encode(enc, ["food", "rain", "food"])  # type: ignore[arg-type]
        assert _data_version(other) == before
    assert enc.embedded == []


def test_recency_of_hits_is_written_in_one_batch_when_due(
    tiny_encoder: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.sqlite"
    cache = EmbeddingCache(path)
    cache.encode(tiny_encoder, ["food", "rain"])
    stored = _last_used(path, tiny_encoder.key, "food")
    monkeypatch.setattr(cache_module, "_FLUSH_SECONDS", 0.0)
    with closing(sqlite3.connect(path)) as other:
        before = _data_version(other)
        cache.encode(tiny_encoder, ["food"])
        assert _data_version(other) == before + 1
    assert _last_used(path, tiny_encoder.key, "food") > stored
    assert _last_used(path, tiny_encoder.key, "rain") < _last_used(path, tiny_encoder.key, "food")


def test_recency_of_hits_is_written_once_many_keys_wait(
    tiny_encoder: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.sqlite"
    cache = EmbeddingCache(path)
    cache.encode(tiny_encoder, ["food", "rain", "sun"])
    monkeypatch.setattr(cache_module, "_FLUSH_KEYS", 2)
    with closing(sqlite3.connect(path)) as other:
        before = _data_version(other)
        cache.encode(tiny_encoder, ["food"])
        assert _data_version(other) == before
        cache.encode(tiny_encoder, ["rain"])
        assert _data_version(other) == before + 1


def test_recency_of_hits_reaches_the_file_on_close(
    tiny_encoder: TextEncoder, tmp_path: Path
) -> None:
    path = tmp_path / "c.sqlite"
    with EmbeddingCache(path) as cache:
        cache.encode(tiny_encoder, ["food", "rain"])
        stored = _last_used(path, tiny_encoder.key, "food")
        cache.encode(tiny_encoder, ["food"])
        assert _last_used(path, tiny_encoder.key, "food") == stored
    assert _last_used(path, tiny_encoder.key, "food") > stored
    assert _last_used(path, tiny_encoder.key, "rain") == stored


_EXIT_WITHOUT_CLOSE = """
import sys, time
import numpy as np
from embed_sql.models.cache import EmbeddingCache
from embed_sql.vectors import from_numpy

class Encoder:
    name, key, dim = "random", "random-4", 4
    def encode(self, texts):
        return from_numpy(np.ones((len(texts), 4), np.float32))

cache = EmbeddingCache(sys.argv[1])
cache.encode(Encoder(), ["food", "rain"])
time.sleep(0.05)
cache.encode(Encoder(), ["food"])  # a hit: its time is only in memory now
"""


def test_recency_of_hits_reaches_the_file_at_a_normal_exit_without_close(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    root = str(Path(embed_sql.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_CLOSE, str(path)], env=env, check=True)
    # written by the exit hook: it lost the last 30 s of hits before
    assert _last_used(path, "random-4", "food") > _last_used(path, "random-4", "rain")


def test_file_is_at_most_1_3x_the_raw_vectors(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    n, enc = 2_000, RandomEncoder()
    with EmbeddingCache(path) as cache:
        for start in range(0, n, 500):
            cache.encode(enc, [f"text {i}" for i in range(start, start + 500)])  # type: ignore[arg-type]
    assert _file_bytes(path) <= 1.3 * n * enc.dim * 4


_OLD_SCHEMA = """
CREATE TABLE embeddings (key BLOB PRIMARY KEY, vec BLOB NOT NULL, used REAL NOT NULL)
WITHOUT ROWID;
CREATE INDEX embeddings_used ON embeddings(used);
"""


def test_a_cache_file_in_the_old_format_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.executescript(_OLD_SCHEMA)
    with pytest.raises(ModelLoadError, match=r"older embed_sql.*delete the file"):
        EmbeddingCache(path)
    with closing(sqlite3.connect(path)) as db:  # left as it was
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("embeddings",)]


def test_a_file_that_is_not_a_cache_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(ModelLoadError, match="not an embed_sql embedding cache"):
        EmbeddingCache(path)
    newer = tmp_path / "newer.sqlite"
    with closing(sqlite3.connect(newer)) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ModelLoadError, match="newer embed_sql"):
        EmbeddingCache(newer)


_OTHER_PROCESS = """
import sys
import numpy as np
from embed_sql.models.cache import EmbeddingCache
from tests.unit.test_cache import RandomEncoder, _random_vector
rng = np.random.default_rng(int(sys.argv[2]))
with EmbeddingCache(sys.argv[1], max_bytes=2**21) as cache:
    print("ready", flush=True)
    for _ in range(15):
        texts = [f"text {i}" for i in rng.integers(0, 3_000, 200)]
        got = np.asarray(cache.encode(RandomEncoder(), texts).values).reshape(200, 384)
        assert (got == np.asarray([_random_vector(t) for t in texts])).all(), "wrong vector"
"""


def test_two_processes_and_threads_share_one_bounded_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    root = str(Path(embed_sql.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    other = subprocess.Popen(
        [sys.executable, "-c", _OTHER_PROCESS, str(path), "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert other.stdout is not None
    ready = other.stdout.readline()  # both run at once from here
    assert ready == "ready\n", other.stderr.read() if other.stderr else ""
    cache = EmbeddingCache(path, max_bytes=2**21)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(15):
                texts = [f"text {i}" for i in rng.integers(0, 3_000, 200)]
                got = to_numpy(cache.encode(RandomEncoder(), texts))  # type: ignore[arg-type]
                np.testing.assert_array_equal(got, [_random_vector(t) for t in texts])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, stderr = other.communicate(timeout=120)
    cache.close()
    assert errors == []
    assert other.returncode == 0, stderr
    assert _file_bytes(path) <= 2**21
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (orphans,) = db.execute(
            "SELECT count(*) FROM vectors WHERE id NOT IN (SELECT id FROM entries)"
        ).fetchone()
    assert orphans == 0
