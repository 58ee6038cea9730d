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
    assert "4. Applications in SQL" in out
    assert "procesor -> processor" in out  # fuzzy matching needs no model


def _vectors_parquet(path: Path, x: object) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embed_sql.vectors import from_numpy

    pq.write_table(pa.table({"id": range(len(x)), "v": from_numpy(x)}), path)  # type: ignore[arg-type]
    return path


def test_drift_on_vector_files_writes_json_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_index import clustered

    x = clustered(600, dim=16)
    ref = _vectors_parquet(tmp_path / "ref.parquet", x[:300])
    cur = _vectors_parquet(tmp_path / "cur.parquet", x[300:] + 0.8)
    report_json, report_html = tmp_path / "r.json", tmp_path / "r.html"
    args = ["drift", str(ref), str(cur), "--column", "v", "--json", str(report_json)]
    assert main([*args, "--html", str(report_html)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("drift check: drift")
    assert json.loads(report_json.read_text())["verdict"] == "drift"
    page = report_html.read_text()
    assert "<table>" in page
    assert "data:image/png;base64," in page
    assert main([*args, "--fail-on-drift"]) == 1
    assert "Holm-adjusted alpha=0.05" in capsys.readouterr().out
    assert main(["drift", str(ref), str(ref), "--column", "v", "--fail-on-drift"]) == 0


def test_drift_embeds_a_text_column_and_samples_large_files(
    tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.corpus import sentences

    texts = sentences(5, 40)[:400]
    pq.write_table(pa.table({"text": texts[:200]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"text": texts[200:]}), tmp_path / "b.parquet")
    args = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"), "--column", "text"]
    assert main(["drift", *args, "--model", str(tiny_source), "--max-rows", "150"]) == 0
    out = capsys.readouterr().out
    assert "reference 150 rows, current 150 rows, dim 32" in out
    assert "a random sample of 150 of its 200 rows was used" in out


def test_drift_errors_exit_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    ref = _vectors_parquet(tmp_path / "ref.parquet", np.ones((40, 4), np.float32))
    assert main(["drift", str(ref), str(ref), "--column", "text"]) == 2
    assert "has no column 'text'; its columns are ['id', 'v']" in capsys.readouterr().err
    assert main(["drift", str(ref), str(ref), "--column", "id"]) == 2
    assert "give a text column" in capsys.readouterr().err
    (tmp_path / "bad.parquet").write_text("not parquet")
    assert main(["drift", str(tmp_path / "bad.parquet"), str(ref), "--column", "v"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["drift", str(ref), str(ref), "--column", "v", "--min-votes", "2"]) == 2
    assert "min_votes=2 is no longer" in capsys.readouterr().err
    assert main(["drift", str(ref), str(ref), "--column", "v", "--alpha", "0"]) == 2
    assert "strictly between 0 and 1" in capsys.readouterr().err


def test_embed_streams_parquet_and_csv_to_parquet(
    tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from embed_sql import TextEncoder

    texts = [f"text number {i}" if i % 7 else None for i in range(50)]
    table = pa.table({"id": list(range(50)), "body": texts, "extra": [i * 2 for i in range(50)]})
    pq.write_table(table, tmp_path / "in.parquet")
    pcsv.write_csv(table, tmp_path / "in.csv")
    want = TextEncoder(str(tiny_source)).encode_numpy(texts)
    for src, key in (("in.parquet", None), ("in.csv", "id")):
        out = tmp_path / f"{src}.out.parquet"
        args = ["embed", str(tmp_path / src), str(out), "--column", "body", "--batch-rows", "16"]
        args += ["--model", str(tiny_source)] + (["--key", key] if key else [])
        assert main(args) == 0
        assert "50 rows" in capsys.readouterr().out
        got = pq.read_table(out)
        assert got.column_names == (["id", "v"] if key else ["id", "body", "extra", "v"])
        assert got.column("id").to_pylist() == list(range(50))  # order kept
        assert pq.ParquetFile(out).num_row_groups == 4  # one per 16-row batch
        assert b"embed_sql.model" in got.schema.field("v").metadata
        vectors = np.array([np.nan * np.ones(32) if v is None else v for v in got["v"].to_pylist()])
        np.testing.assert_allclose(np.nan_to_num(vectors), np.nan_to_num(want), atol=1e-6)
        assert got.column("v").null_count == len([t for t in texts if t is None])


def test_embed_errors_name_the_problem_and_leave_no_file(
    tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1], "n": [3]}), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    base = ["embed", str(tmp_path / "in.parquet"), str(out), "--model", str(tiny_source)]
    assert main([*base, "--column", "body"]) == 2
    assert "text column 'body' is not in" in capsys.readouterr().err
    assert main([*base, "--column", "n"]) == 2
    assert "is int64, not text" in capsys.readouterr().err
    assert main([*base, "--column", "n", "--output-column", "id"]) == 2
    assert main(["embed", str(tmp_path / "nope.parquet"), str(out), "--column", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet*"))  # no temp file left behind


def test_sql_runs_one_statement_on_a_registered_database(
    tiny_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "x.duckdb")
    model = ["--model", str(tiny_source), "--db", db]
    create = "CREATE TABLE t AS SELECT 1 AS id, embed('hello') AS v"
    assert main(["sql", create, *model]) == 0
    assert main(["sql", "SELECT id, len(v) AS dim FROM t", *model, "--plain"]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["id\tdim", "1\t32"]
    assert main(["sql", "SELECT * FROM nope", *model]) == 2
    assert "nope" in capsys.readouterr().err
