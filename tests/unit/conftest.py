from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from embed_sql import TextEncoder, models


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embed_sql_cache")


@pytest.fixture(autouse=True)
def _offline_private_cache(monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> Iterator[None]:
    """Unit tests never touch the user's cache or the network."""
    monkeypatch.setenv("EMBED_SQL_CACHE", str(session_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache of this test's own, for tests about exporting and caching."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EMBED_SQL_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_encoder(tiny_source: Path, session_cache: Path) -> TextEncoder:
    mp = pytest.MonkeyPatch()
    mp.setenv("EMBED_SQL_CACHE", str(session_cache))
    try:
        return TextEncoder(tiny_source, batch_size=4, max_batch_tokens=64)
    finally:
        mp.undo()


@pytest.fixture
def registered(tiny_source: Path) -> Iterator[list[str]]:
    """Names registered during a test, removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        models.remove_model(name)
