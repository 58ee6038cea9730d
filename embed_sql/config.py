"""Settings read from the environment, frozen once read.

``EMBED_SQL_CACHE``       cache directory (default ``~/.cache/embed_sql``)
``EMBED_SQL_THREADS``     threads for one encoder session (default: all usable cores)
``EMBED_SQL_BATCH_SIZE``  rows per inference batch (default 64)
``EMBED_SQL_BATCH_TOKENS`` token budget per batch, rows x padded length (default 4096)
``EMBED_SQL_OFFLINE``     ``1`` never contacts the Hugging Face hub (``HF_HUB_OFFLINE`` too)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embed_sql.exceptions import InvalidParameterError

__all__ = ["Settings", "get_settings", "usable_cores"]

_TRUE = {"1", "true", "yes", "on"}


def usable_cores() -> int:
    """Return the number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        msg = f"environment variable {name}={raw!r} must be a positive integer; unset it or fix it"
        raise InvalidParameterError(msg)
    return value


@dataclass(frozen=True)
class Settings:
    """Process-wide defaults; every call that takes the same parameter overrides them."""

    cache_dir: Path
    threads: int
    batch_size: int
    max_batch_tokens: int
    offline: bool


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; read on every call, never cached)."""
    cache = os.environ.get("EMBED_SQL_CACHE") or str(Path("~/.cache/embed_sql").expanduser())
    offline = (
        os.environ.get("EMBED_SQL_OFFLINE", "").lower() in _TRUE
        or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE
    )
    return Settings(
        cache_dir=Path(cache).expanduser(),
        threads=_env_int("EMBED_SQL_THREADS", usable_cores()),
        batch_size=_env_int("EMBED_SQL_BATCH_SIZE", 64),
        max_batch_tokens=_env_int("EMBED_SQL_BATCH_TOKENS", 4096),
        offline=offline,
    )
