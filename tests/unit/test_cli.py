from __future__ import annotations

import json
from pathlib import Path

import pytest

from embed_sql.cli import main


def test_models_list_shows_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "sentence-transformers/all-MiniLM-L6-v2" in out
    assert "384" in out


def test_models_info_prints_the_spec_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "all-MiniLM-L6-v2"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dim"] == 384
    assert info["max_tokens"] == 256


def test_models_export_builds_both_variants(
    tiny_source: Path, fresh_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "export", str(tiny_source)]) == 0
    assert main(["models", "export", str(tiny_source), "--int8"]) == 0
    out = capsys.readouterr().out
    assert ":int8" in out
    assert len(list(fresh_cache.rglob("model.onnx"))) == 2


def test_unknown_model_exits_2_with_the_known_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "info", "nope"]) == 2
    assert "Known models" in capsys.readouterr().err


def test_demo_prints_pairs_and_searches_in_both_hosts(
    tiny_source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--model", str(tiny_source), "--pairs", "2", "--query", "food"]) == 0
    out = capsys.readouterr().out
    assert "the 2 most similar pairs" in out
    assert "2. DuckDB: semantic search for 'food'" in out
    assert "the same through a vector index" in out
    assert "3. Polars" in out
