"""Stopping a long embedding between model batches, from another thread.

DuckDB checks ``con.interrupt()`` only between the 2,048-row chunks it hands a Python
function, and one chunk of long texts takes the default model half a minute here. So a host
runs each call of its functions inside a :class:`Scope` (one per thread, found through a
thread-local), the encoders call :func:`check` before every model batch (tens of
milliseconds of work), and :meth:`Scope.cancel` makes the next check raise
:class:`~embed_sql.exceptions.OperationInterrupted`. Code that runs outside any scope
(plain Python, Polars) is never stopped this way; Ctrl-C (SIGINT) stops it as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from embed_sql.exceptions import OperationInterrupted

__all__ = ["Scope", "check", "run_options", "running"]

_LOCAL = threading.local()


class Scope:
    """One running call that :meth:`cancel` may stop at its next model batch."""

    __slots__ = ("_event", "_hooks", "_lock", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self._event = threading.Event()
        self._hooks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Make the call stop at its next :func:`check`, and end a model run under way."""
        with self._lock:
            self._event.set()
            hooks = list(self._hooks)
        for hook in hooks:
            hook()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    @contextmanager
    def on_cancel(self, hook: Callable[[], None]) -> Iterator[None]:
        """Call ``hook`` on :meth:`cancel` while the body runs (at once if cancelled already)."""
        with self._lock:
            self._hooks.append(hook)
            already = self.cancelled
        try:
            if already:
                hook()
            yield
        finally:
            with self._lock:
                self._hooks.remove(hook)


@contextmanager
def running(scope: Scope) -> Iterator[Scope]:
    """Run the body as ``scope``: :func:`check` in this thread answers to it."""
    outer = getattr(_LOCAL, "scope", None)
    _LOCAL.scope = scope
    try:
        yield scope
    finally:
        _LOCAL.scope = outer


def check() -> None:
    """Raise :class:`OperationInterrupted` when this thread's scope was cancelled."""
    scope = getattr(_LOCAL, "scope", None)
    if scope is not None and scope.cancelled:
        msg = (
            f"{scope.what} was stopped by embed_sql.interrupt() before it finished; "
            "nothing was written; run the statement again to finish it"
        )
        raise OperationInterrupted(msg)


@contextmanager
def run_options() -> Iterator[Any]:
    """Yield onnxruntime ``RunOptions`` that :meth:`Scope.cancel` terminates, or None.

    Outside a scope there is nothing to stop (None: onnxruntime's defaults). Inside one, a
    cancel sets ``terminate`` on the options, so a model batch under way ends at once; the
    error onnxruntime then raises becomes :class:`OperationInterrupted` (see :func:`check`).
    """
    scope = getattr(_LOCAL, "scope", None)
    if scope is None:
        yield None
        return
    import onnxruntime as ort  # loaded already: only encoders running a model get here

    options = ort.RunOptions()

    def terminate() -> None:
        options.terminate = True

    with scope.on_cancel(terminate):
        try:
            yield options
        except Exception:
            check()  # the model run was terminated by a cancel: say so
            raise
