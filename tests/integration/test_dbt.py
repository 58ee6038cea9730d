"""The dbt example project, run by dbt itself: file and in-memory databases, 4 and 1 threads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

pytest.importorskip("dbt.adapters.duckdb")

from tests.examples import load_script


@pytest.mark.parametrize("threads", [4, 1])
@pytest.mark.parametrize("db", ["target/warehouse.duckdb", ":memory:"])
def test_dbt_builds_the_example_and_a_second_run_reuses_the_saved_index(
    tmp_path: Path, db: str, threads: int
) -> None:
    results = load_script("dbt/run.py").run(tmp_path, db=db, threads=threads)
    models = {"articles", "articles_index", "duplicate_titles", "search_results", "nearest_titles"}
    for phase, nodes in results.items():
        names = {str(n["unique_id"]).rsplit(".", 1)[-1] for n in nodes}
        assert models <= names, f"{phase}: {sorted(models - names)} did not run"
        assert {n["status"] for n in nodes} <= {"success", "pass"}, phase
    compiled = next((tmp_path / "dbt" / "target" / "compiled").rglob("articles_index.sql"))
    assert "embed_load_index" in compiled.read_text()  # the second run opened the saved file
    assert (tmp_path / "dbt" / "target" / "articles.index").stat().st_size > 0
    if db == ":memory:":
        return
    con = duckdb.connect(str(tmp_path / "dbt" / "target" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.sql("SELECT titles_indexed FROM articles_index").fetchall() == [(2225,)]
        topics = [t for (t,) in con.sql("SELECT topic FROM search_results").fetchall()]
        assert len(topics) == 5
        assert topics.count("tech") + topics.count("business") >= 4
        dups = con.sql("SELECT title, kept_title FROM duplicate_titles").fetchall()
        assert len(dups) >= 20  # the BBC set repeats some articles word for word
        assert sum(a == b for a, b in dups) >= 0.9 * len(dups)
        [(nearest,)] = con.sql("SELECT count(DISTINCT left_key) FROM nearest_titles").fetchall()
        assert nearest == 2225
    finally:
        con.close()
