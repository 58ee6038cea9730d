"""Progress bars for long operations: shown on a terminal, silent in logs and CI."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Protocol

__all__ = ["PROGRESS_MIN_ROWS", "Bar", "NoBar", "progress_bar"]

PROGRESS_MIN_ROWS = 10_000


class Bar(Protocol):
    def update(self, n: int) -> object: ...


class NoBar:
    def update(self, n: int) -> None:
        return None


@contextlib.contextmanager
def progress_bar(total: int, progress: bool | None) -> Iterator[Bar]:
    show = progress if progress is not None else total >= PROGRESS_MIN_ROWS and _interactive()
    if not show:
        yield NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="rows", desc="embedding", leave=False) as bar:
        yield bar


def _interactive() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()
