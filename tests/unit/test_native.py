"""Native engines: building an index before embedding text must not crash the process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from embed_sql import TextEncoder

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EMBED_SQL_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )


def test_index_first_then_encoder_works(
    tiny_encoder: TextEncoder, tiny_source: Path, session_cache: Path
) -> None:
    code = f"""
import numpy as np
from embed_sql.vectors import VectorIndex
idx = VectorIndex.build(np.eye(3, dtype=np.float32), [1, 2, 3])
from embed_sql import TextEncoder
print(TextEncoder({str(tiny_source)!r}).encode_numpy(["hello"]).shape)
"""
    done = _run(code, session_cache)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"(1, {tiny_encoder.dim})"


def test_usearch_imported_by_the_user_first_gives_a_clear_error(
    tiny_encoder: TextEncoder, tiny_source: Path, session_cache: Path
) -> None:
    code = f"""
import usearch.index
from embed_sql import TextEncoder
from embed_sql.exceptions import ModelLoadError
try:
    TextEncoder({str(tiny_source)!r}).encode_numpy(["hello"])
except ModelLoadError as exc:
    print("refused:", exc)
"""
    done = _run(code, session_cache)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: usearch was imported before onnxruntime" in done.stdout
