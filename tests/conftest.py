from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from embed_sql.config import get_settings
from embed_sql.models.registry import ModelSpec
from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session", autouse=True)
def _no_cache_entries_of_temporary_models(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Remove the model cache entries this session made for models in its temporary folder.

    A model loaded from a folder (the tiny model, built under pytest's temporary folder) is
    exported into the user's cache under a name made of its path; that folder goes after a
    few sessions, and its entries would pile up, one set per run. Only this session's own
    are removed (named from its base folder), never another session's running beside it.
    """
    models = get_settings().cache_dir / "models"
    before = set(models.iterdir()) if models.is_dir() else set()
    yield
    base = tmp_path_factory.getbasetemp()
    ours = ModelSpec(name=str(base), dim=1).slug  # the cache's own naming rule
    for entry in set(models.iterdir()) - before if models.is_dir() else ():
        if entry.name.startswith(f"{ours}--") and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's Hugging Face directory, built once per session (never modify it)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture
def tiny_dir(tiny_source: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model directory that a test may change."""
    return Path(shutil.copytree(tiny_source, tmp_path / "tiny-bert"))
