"""examples/notebook.ipynb, executed headless: %%sql cells (jupysql), Polars, a drift report."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sql")  # jupysql

from tests.examples import EXAMPLES, load_script  # noqa: E402


def test_the_notebook_is_the_one_its_script_writes() -> None:
    module = load_script("make_notebook.py")
    committed = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in module.build().cells]


def test_the_notebook_runs_headless_and_shows_search_polars_and_drift(tmp_path: Path) -> None:
    nb = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

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
