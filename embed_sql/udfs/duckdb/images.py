"""``embed_image(blob_or_path)``: image models as DuckDB functions.

DuckDB's Python functions have one signature each, and a VARCHAR column does not cast to
BLOB implicitly; so ``embed_image`` is a macro over one function that takes the value as
bytes plus the SQL type it came as: a BLOB is an encoded image file, a VARCHAR a file path
(taken byte for byte with ``encode``, so no escape in a path is interpreted). Any other
type is refused by name. The function returns ``FLOAT[d]``, NULL for NULL input and for
images that cannot be read (with one counted warning per call).

``register(con, image_model=...)`` adds ``embed_image``; an image model in ``models=``
(``{"photo": "efficientnet-lite0"}``) adds ``embed_photo`` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa

from embed_sql.exceptions import InputTypeError
from embed_sql.udfs.duckdb.results import Arrays

if TYPE_CHECKING:
    from embed_sql.models.image import ImageEncoder
    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["image_function", "image_macro", "udf_name"]


def udf_name(name: str) -> str:
    """Return the function behind the macro ``name``: ``embed_sql_image_<alias>``."""
    return "embed_sql_image_" + name.removeprefix("embed_")


def image_macro(name: str) -> str:
    """Return the SQL text of the macro ``name(img)``: a BLOB or a VARCHAR in."""
    return (
        f"MACRO {name}(img) AS {udf_name(name)}(CASE WHEN typeof(img) = 'VARCHAR' "
        "THEN encode(img::VARCHAR) ELSE TRY_CAST(img AS BLOB) END, typeof(img))"
    )


def image_function(state: DatabaseState, name: str) -> Callable[[Arrays, Arrays], pa.Array]:
    """Return the function behind ``name``: it asks the state for its image encoder."""

    def run(blobs: Arrays, types: Arrays) -> pa.Array:
        if isinstance(blobs, pa.ChunkedArray):
            blobs = blobs.combine_chunks()
        kinds = {t for t in pa.compute.unique(types).to_pylist() if t is not None}
        kinds.discard('"NULL"')  # an untyped NULL literal: NULL out
        if kinds - {"BLOB", "VARCHAR"}:
            given = ", ".join(sorted(kinds - {"BLOB", "VARCHAR"}))
            msg = (
                f"{name}() takes a BLOB (the bytes of an image file) or a VARCHAR (a file "
                f"path), got {given}; read files with read_blob('photos/*.jpg') or pass paths"
            )
            raise InputTypeError(msg)
        encoder: ImageEncoder = state.image_encoders[name]
        if "VARCHAR" in kinds:
            paths = [
                None if b is None else b.decode("utf-8", "surrogateescape")
                for b in blobs.to_pylist()
            ]
            out = encoder.encode(paths)
        else:
            out = encoder.encode(blobs)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    return run
