"""Prompts (named prefixes a model was trained with) and execution providers, in every host."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import TextEncoder, models
from embed_sql.exceptions import InvalidParameterError

PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture
def prompted(tiny_dir: Path, registered: list[str]) -> str:
    """The tiny model as a sentence-transformers folder that declares two prompts."""
    (tiny_dir / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": PROMPTS, "default_prompt_name": None})
    )
    spec = models.add_model(tiny_dir, name="tiny-e5")
    registered.append(spec.name)
    return spec.name


def test_prompts_are_read_from_the_folder_and_prepended(prompted: str) -> None:
    assert dict(models.get(prompted).prompts) == PROMPTS
    enc = TextEncoder(prompted)
    got = enc.encode_numpy(["food", None, ""], prompt="query")
    want = enc.encode_numpy(["query: food", None, "query: "])
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got[0], enc.encode_numpy(["food"])[0])
    batches = list(enc.encode_batches([["food"], ["rates"]], prompt="document"))
    np.testing.assert_array_equal(
        batches[1].values.to_numpy(), enc.encode_numpy(["passage: rates"])[0]
    )


def test_sql_has_a_function_per_prompt_and_polars_a_parameter(prompted: str) -> None:
    con = duckdb.connect()
    reg = embed_sql.register(con, model=prompted)
    assert {"embed_query", "embed_document"} <= set(reg.functions)
    same = con.sql(
        "SELECT embed_query('food') = embed('query: food'), "
        "embed_document('food') = embed('passage: food'), embed_query(NULL) IS NULL"
    ).fetchall()
    assert same == [(True, True, True)]
    frame = pl.DataFrame({"t": ["food", None]})
    out = frame.select(pl.col("t").embed.text(prompted, prompt="query"))["t"]
    sql = con.sql("SELECT embed_query('food')").fetchall()[0][0]
    np.testing.assert_array_equal(out[0].to_numpy(), np.asarray(sql, np.float32))
    assert out[1] is None


def test_unknown_prompts_and_providers_are_refused_with_the_fix(prompted: str) -> None:
    with pytest.raises(
        InvalidParameterError, match=r"'nope' is not a prompt .* \['document', 'query'\]"
    ):
        TextEncoder(prompted).encode(["x"], prompt="nope")
    with pytest.raises(InvalidParameterError, match="has no prompts; prepend the text yourself"):
        pl.select(pl.lit("x").embed.text(prompt="query"))
    with pytest.raises(InvalidParameterError, match="install onnxruntime-gpu"):
        embed_sql.register(duckdb.connect(), providers=["CUDAExecutionProvider"])
    with pytest.raises(InvalidParameterError, match="not available in this onnxruntime build"):
        pl.select(pl.lit("x").embed.text(providers=["NoSuchProvider"]))
    with pytest.raises(InvalidParameterError, match="give a list of names"):
        TextEncoder(prompted, providers="CPUExecutionProvider")  # type: ignore[arg-type]


def test_providers_reach_the_session(prompted: str) -> None:
    con = duckdb.connect()
    reg = embed_sql.register(con, model=prompted, providers=["CPUExecutionProvider"])
    con.sql("SELECT embed('food')").fetchall()
    session = reg.functions["embed"]._session  # type: ignore[union-attr]
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_the_command_line_takes_a_prompt(prompted: str, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from embed_sql.cli import main

    pq.write_table(pa.table({"id": [1, 2], "t": ["food", None]}), tmp_path / "in.parquet")
    args = ["embed", str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet")]
    assert main([*args, "--column", "t", "--model", prompted, "--prompt", "document"]) == 0
    got = pq.read_table(tmp_path / "out.parquet").column("v").to_pylist()
    want = TextEncoder(prompted).encode_numpy(["passage: food"])[0]
    np.testing.assert_array_equal(np.asarray(got[0], np.float32), want)
    assert got[1] is None
    assert main([*args, "--column", "t", "--model", prompted, "--prompt", "nope"]) == 2
