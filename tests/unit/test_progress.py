"""Long operations show progress with their rate on a terminal, and nothing otherwise."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from embed_sql import _progress
from embed_sql.pipelines.drift import DriftCheck
from embed_sql.vectors import VectorIndex, from_numpy
from embed_sql.vectors.cluster import cluster, dedup
from embed_sql.vectors.join import knn_join

N = 12_000  # above PROGRESS_MIN_ROWS


@pytest.fixture(scope="module")
def table() -> pa.Table:
    mat = np.random.default_rng(0).normal(size=(N, 8)).astype(np.float32)
    return pa.table({"id": np.arange(N), "v": from_numpy(mat)})


def _run_all(table: pa.Table) -> None:
    VectorIndex.build(table.column("v"), table.column("id"))
    knn_join(table.slice(0, N), table, 2, exact=True)
    dedup(table, 0.001, exact=True)
    cluster(table, k=3)
    mat = table.column("v").combine_chunks().flatten().to_numpy().reshape(N, 8)
    DriftCheck(mat[: N // 2], tests=("centroid",)).check(mat[N // 2 :])


def test_a_terminal_sees_each_step_with_its_rate(
    table: pa.Table, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_progress, "_interactive", lambda: True)
    _run_all(table)
    err = capsys.readouterr().err
    for step in ("indexing", "k-NN join", "pairs within the threshold", "k-means", "drift tests"):
        assert step in err, step
    assert "rows/s" in err


def test_logs_and_ci_see_nothing(table: pa.Table, capsys: pytest.CaptureFixture[str]) -> None:
    _run_all(table)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_a_stage_prints_its_time_only_when_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with _progress.stage("exporting m to ONNX", progress=True):
        pass
    assert capsys.readouterr().err.startswith("exporting m to ONNX ... 0 s")
    with _progress.stage("quiet"):
        pass
    assert capsys.readouterr().err == ""
