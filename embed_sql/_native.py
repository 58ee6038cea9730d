"""Load the two native engines, onnxruntime and usearch, in the one order that works.

usearch's extension module links libstdc++ statically, and its process-wide (GNU unique)
locale symbols break onnxruntime's start-up when usearch is loaded first: a later
``import onnxruntime`` dies with SIGSEGV (usearch 2.26 with onnxruntime 1.32, x86-64
Linux). With onnxruntime loaded first both work. Every import of either engine in
embed_sql goes through here, so building an index before embedding text is safe; a process
that imported usearch itself before any embedding gets a clear error instead of a crash.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType

from embed_sql.exceptions import ModelLoadError

__all__ = ["onnxruntime", "usearch_index"]


def onnxruntime() -> ModuleType:
    """Return the ``onnxruntime`` module; refuse to load it after usearch.

    Raises
    ------
    ModelLoadError
        When usearch's extension is already loaded and onnxruntime is not: importing it now
        would crash the process.
    """
    if "onnxruntime" not in sys.modules and "usearch.compiled" in sys.modules:
        msg = (
            "usearch was imported before onnxruntime in this process, and loading onnxruntime "
            "after it crashes (usearch carries its own libstdc++). Put `import onnxruntime` "
            "before `import usearch` in your code and restart the process."
        )
        raise ModelLoadError(msg)
    return importlib.import_module("onnxruntime")


def usearch_index() -> type:
    """Return ``usearch.index.Index``, with onnxruntime loaded first when it is installed."""
    if "usearch.compiled" not in sys.modules:
        with contextlib.suppress(ImportError):  # no encoder installed: nothing to protect
            importlib.import_module("onnxruntime")
    from usearch.index import Index

    return Index
