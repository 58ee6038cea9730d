"""Every example script runs offline on the real default model and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples import EXAMPLES, load_script


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the scripts share examples/bbc.py


def run(name: str, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    load_script(name).main(*args)
    return capsys.readouterr().out


def test_every_script_is_tested() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"bbc", "photos", "make_notebook"}
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    # (make_notebook.py: tests/integration/test_notebook.py)
    assert scripts <= tested


def test_news_search(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("news_search.py", capsys)
    bosworth = out.split("Bobby Darin")[1]
    assert bosworth.split("hybrid : ")[1].startswith("UK debut for Kevin Spacey movie")
    assert "Ebbers" in out.split("'Ebbers on trial'")[1].split("\n")[1]


def test_recommend(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("recommend.py", capsys)
    ben = [line for line in out.splitlines() if line.startswith("ben")]
    assert len(ben) == 3
    assert any("Wales" in line or "Italy" in line for line in ben)
    assert "Wales win in Rome" not in out  # already read


def test_classify(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("classify.py", capsys)
    accuracy = float(out.split("first sentences: ")[1].split()[0])
    assert accuracy > 0.65


def test_fuzzy_match(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("fuzzy_match.py", capsys)
    assert float(out.split("words: ")[1].split("%")[0]) > 90
    assert float(out.split("FEBRL: ")[1].split("%")[0]) > 97


def test_analogies(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("analogies.py", capsys)
    assert "woman : queen" in out
    assert "japan : tokyo" in out


def test_two_towers() -> None:
    # its own process: the refusal relies on the query vectors being recognised, which is
    # best-effort after a model's first 4,096 vectors in a process (README, two towers)
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "two_towers.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "without allow_models: DimensionMismatchError" in out
    assert out.count(" -> ") == 3


def test_dedup(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("dedup.py", capsys)
    groups = int(out.split(" groups")[0])
    assert groups > 50  # the corpus repeats stories


def test_drift(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = run("drift.py", capsys, str(tmp_path / "drift.png"))
    assert "reference vs same : no drift" in out
    assert "reference vs moved: drift" in out
    assert (tmp_path / "drift.png").stat().st_size > 10_000


def test_outliers(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("outliers.py", capsys)
    assert "sport headlines rank [1, 2, 3, 4, 5] of 25" in out


def test_embedding_map(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = run("embedding_map.py", capsys, str(tmp_path / "map.png"))
    assert "742 headlines drawn" in out
    assert (tmp_path / "map.png").stat().st_size > 20_000


def test_demo_shows_the_applications_on_the_default_model(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from embed_sql.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "politics    Parliament votes on the new housing bill" in out
    assert "bm25 0." in out.split("hybrid search")[1].splitlines()[2]  # the word 'processor'
    for typo, word in (("burito", "burrito"), ("parliment", "parliament")):
        assert f"{typo} -> {word} (" in out


def test_image_search(capsys: pytest.CaptureFixture[str]) -> None:
    out = run("image_search.py", capsys)
    assert "102 files, 102 embedded" in out
    assert "17 distinct pictures" in out
    assert "pairs: precision 1.000, recall 1.000" in out
    hits = out.split("a new file:\n")[1].splitlines()
    assert all(line.strip().startswith("china") for line in hits[:3])
    assert "Polars vectors equal SQL's: True" in out
