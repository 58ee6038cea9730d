"""Models: specs known without weights, offline-first resolution, and the text encoder.

>>> from embed_sql import models
>>> models.get("all-MiniLM-L6-v2").dim
384
"""

from __future__ import annotations

from embed_sql.models.encoder import TextEncoder
from embed_sql.models.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    get,
    list,
    parse_ref,
    register,
    spec_from_path,
    unregister,
)
from embed_sql.models.resolve import ResolvedModel, resolve

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "ResolvedModel",
    "TextEncoder",
    "get",
    "list",
    "parse_ref",
    "register",
    "resolve",
    "spec_from_path",
    "unregister",
]
