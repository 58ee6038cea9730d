from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's Hugging Face directory, built once per session (never modify it)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture
def tiny_dir(tiny_source: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model directory that a test may change."""
    return Path(shutil.copytree(tiny_source, tmp_path / "tiny-bert"))
