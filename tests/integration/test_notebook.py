"""The example notebooks, executed headless: notebook.ipynb (%%sql cells with jupysql, Polars,
a drift report) and tour.ipynb (every application, with the pictures)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sql")  # jupysql

from tests.examples import EXAMPLES, load_script  # noqa: E402


def test_the_notebooks_are_the_ones_their_script_writes() -> None:
    module = load_script("make_notebook.py")
    for name in ("notebook.ipynb", "tour.ipynb"):
        committed = nbformat.read(EXAMPLES / name, as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in module.build(name).cells]


def execute(name: str, tmp_path: Path) -> object:
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    return nb


def outputs(nb: object, marker: str, kind: str) -> str:
    """The outputs of type ``kind`` (a MIME type, or 'stream') of the cell holding ``marker``."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)  # type: ignore[attr-defined]
    if kind == "stream":
        return "".join(o.get("text", "") for o in cell.outputs)
    return "".join(o.get("data", {}).get(kind, "") for o in cell.outputs)


def test_the_tour_runs_headless_and_shows_each_step(tmp_path: Path) -> None:
    nb = execute("tour.ipynb", tmp_path)
    searched = outputs(nb, "hybrid in (False, True)", "stream").splitlines()
    assert searched[1].startswith("hybrid ['UK debut for Kevin Spacey movie'")
    assert "guess" in outputs(nb, "embed_classify(", "text/html")
    assert len(outputs(nb, "embed.plot(", "image/png")) > 20_000  # the map, inline
    assert "<img" in outputs(nb, "drift.check(", "text/html")
    assert "microsoft" in outputs(nb, "fuzzy_join(", "text/plain")
    assert "Wales" in outputs(nb, "embed_recommend(", "text/plain")


def test_the_notebook_runs_headless_and_shows_search_polars_and_drift(tmp_path: Path) -> None:
    nb = execute("notebook.ipynb", tmp_path)

    def html(marker: str) -> str:
        cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
        return "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)

    search = html("embed_search(")
    assert search.count("<tr>") >= 6
    assert "tech" in search
    assert "nearest" in html("embed.knn_join(")
    report = html("drift.check(")
    assert "drift" in report
    assert "<img" in report or "<svg" in report
