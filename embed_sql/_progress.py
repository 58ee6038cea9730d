"""Progress for long operations: shown on a terminal, silent in logs and CI.

Embedding, index builds, joins, dedup and clustering, drift checks and model exports report
here. A bar (tqdm, with its rate: rows/s) appears only when stderr is a terminal and the
work is large (``PROGRESS_MIN_ROWS`` rows or more), unless a caller asks with
``progress=True`` or forbids with ``False``; a one-line stage message (``stage``) the same
way for steps that have no count, such as an export.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Protocol

__all__ = ["PROGRESS_MIN_ROWS", "Bar", "NoBar", "progress_bar", "stage"]

PROGRESS_MIN_ROWS = 10_000


class Bar(Protocol):
    def update(self, n: int) -> object: ...


class NoBar:
    def update(self, n: int) -> None:
        return None


@contextlib.contextmanager
def progress_bar(
    total: int,
    progress: bool | None = None,
    *,
    desc: str = "embedding",
    unit: str = "rows",
    size: int | None = None,
) -> Iterator[Bar]:
    """Yield a bar over ``total`` units; ``size`` (rows, default ``total``) decides if it shows."""
    rows = total if size is None else size
    show = progress if progress is not None else rows >= PROGRESS_MIN_ROWS and _interactive()
    if not show:
        yield NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit=unit, desc=desc, leave=False) as bar:
        yield bar


@contextlib.contextmanager
def stage(message: str, progress: bool | None = None) -> Iterator[None]:
    """Say on a terminal that a long uncounted step runs (``message ...``), then its time."""
    show = progress if progress is not None else _interactive()
    start = time.perf_counter()
    if show:
        print(f"{message} ...", end="", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        if show:
            print(f" {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def _interactive() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()
