"""Property tests (hypothesis): the tiny model's fixtures, and a count of generated cases.

Every property runs with a modest ``max_examples`` and no deadline (a 2-core machine shared
with other work); the session ends with one line saying how many generated cases ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from hypothesis.internal.observability import (
    add_observability_callback,
    remove_observability_callback,
)

import embed_sql
from tests.unit.conftest import (  # noqa: F401 - fixtures shared with the unit tests
    _offline_private_cache,
    session_cache,
    tiny_encoder,
)

_CASES: dict[str, int] = {"passed": 0, "failed": 0, "gave_up": 0}


def _count(observation: object, _thread: int) -> None:
    if getattr(observation, "type", None) == "test_case":
        status = str(getattr(observation, "status", "passed"))
        _CASES[status] = _CASES.get(status, 0) + 1


def pytest_configure(config: pytest.Config) -> None:
    add_observability_callback(_count, all_threads=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_observability_callback(_count)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    total = sum(_CASES.values())
    detail = ", ".join(f"{n} {s}" for s, n in _CASES.items() if n)
    terminalreporter.write_line(f"hypothesis: {total} generated cases ran ({detail or 'none'})")


@pytest.fixture(scope="session")
def tiny_model(tiny_source: Path) -> str:
    """The tiny model's path, as ``register(con, model=...)`` and the Polars namespace take it."""
    return str(tiny_source)


@pytest.fixture(scope="module")
def con(tiny_model: str, session_cache: Path) -> Iterator[duckdb.DuckDBPyConnection]:  # noqa: F811
    """One registered connection per test module, on the tiny model, offline."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBED_SQL_CACHE", str(session_cache))
    mp.setenv("HF_HUB_OFFLINE", "1")
    connection = duckdb.connect()
    embed_sql.register(connection, model=tiny_model)
    yield connection
    connection.close()
    mp.undo()
