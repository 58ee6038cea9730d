"""embed_sql.interrupt(con) stops a statement that is embedding long texts at once.

DuckDB's own ``con.interrupt()`` waits for the 2,048-row chunk a Python function is
working on (a minute and more of long texts with the default model): ours also terminates
the model batch under way, so no model run finishes after it returns.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

import embed_sql
from embed_sql import _cancel
from embed_sql.exceptions import OperationInterrupted
from embed_sql.models.encoder import shared_encoder
from tests.corpus import bbc_articles


class CountingSession:
    """An onnxruntime session that records when each run ended and whether it finished."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.runs: list[tuple[float, bool]] = []

    def run(self, *args: Any) -> Any:
        try:
            out = self.inner.run(*args)
        except Exception:
            self.runs.append((time.monotonic(), False))
            raise
        self.runs.append((time.monotonic(), True))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def long_texts() -> list[str]:
    """2,100 real news texts of about 1,000 words (two DuckDB chunks): minutes to embed."""
    bodies = [body for _, _, body in bbc_articles()]
    return [" ".join(bodies[i : i + 3])[:6000] for i in range(2100)]


def test_interrupt_stops_a_statement_within_the_model_batch_under_way(
    monkeypatch: pytest.MonkeyPatch, long_texts: list[str]
) -> None:
    con = duckdb.connect()
    embed_sql.register(con)
    con.register("docs_view", pa.table({"id": range(len(long_texts)), "body": long_texts}))
    con.execute("CREATE TABLE docs AS FROM docs_view")
    enc = shared_encoder()
    session, _ = enc._load()
    counting = CountingSession(session)
    monkeypatch.setattr(enc, "_session", counting)

    failure: list[BaseException] = []

    def query() -> None:
        try:
            con.cursor().sql("SELECT count(embed(body)) FROM docs").fetchall()
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    worker = threading.Thread(target=query)
    worker.start()
    deadline = time.monotonic() + 120
    while len(counting.runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(counting.runs) >= 2, "the statement never started embedding"
    stopped = embed_sql.interrupt(con)
    returned = time.monotonic()
    worker.join(timeout=300)
    assert not worker.is_alive()

    assert stopped == 1  # the one embed() call under way
    assert len(failure) == 1
    assert isinstance(failure[0], duckdb.Error)
    # the statement ran on a cursor, which con.interrupt() does not reach: ours stopped it
    assert "OperationInterrupted" in str(failure[0])
    finished_after = [end for end, ok in counting.runs if ok and end > returned]
    assert finished_after == []  # not one more model batch ran to its end
    assert len(counting.runs) < 0.1 * len(long_texts)  # far from the whole statement

    # nothing stays cancelled: the next statement on the database runs to its end
    got = con.sql("SELECT embed(body) AS e FROM docs WHERE id < 3 ORDER BY id").to_arrow_table()
    want = enc.encode_numpy(long_texts[:3])
    np.testing.assert_array_equal(np.array(got["e"].to_pylist(), np.float32), want)


def test_interrupt_on_an_idle_or_unregistered_connection_stops_nothing() -> None:
    assert embed_sql.interrupt(duckdb.connect()) == 0
    con = duckdb.connect()
    embed_sql.register(con)
    assert embed_sql.interrupt(con) == 0
    assert con.sql("SELECT len(embed('still works'))").fetchall() == [(384,)]


def test_outside_a_scope_nothing_is_cancelled_and_inside_one_the_check_says_why() -> None:
    _cancel.check()  # plain Python and Polars: no scope, never stopped this way
    scope = _cancel.Scope("embed()")
    with _cancel.running(scope):
        _cancel.check()
        inner = _cancel.Scope("embed_search()")
        with _cancel.running(inner):
            scope.cancel()
            _cancel.check()  # the inner call was not cancelled
        with pytest.raises(OperationInterrupted, match=r"embed\(\) was stopped .* run the"):
            _cancel.check()
    _cancel.check()
