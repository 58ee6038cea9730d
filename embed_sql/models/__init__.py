"""Models: specs known without weights, offline-first resolution, and the text and image encoders.

>>> from embed_sql import models
>>> models.get("all-MiniLM-L6-v2").dim
384
"""

from __future__ import annotations

from embed_sql.models.encoder import TextEncoder
from embed_sql.models.image import ImageEncoder
from embed_sql.models.registry import (
    DEFAULT_MODEL,
    ModelSpec,
    add_model,
    get,
    list_models,
    parse_ref,
    remove_model,
    spec_from_path,
)
from embed_sql.models.resolve import ResolvedModel, resolve

__all__ = [
    "DEFAULT_MODEL",
    "ImageEncoder",
    "ModelSpec",
    "ResolvedModel",
    "TextEncoder",
    "add_model",
    "get",
    "list_models",
    "parse_ref",
    "remove_model",
    "resolve",
    "spec_from_path",
]
