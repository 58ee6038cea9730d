"""Text inputs as the encoders take them: one Arrow string array, or a clear refusal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TypeAlias

import pyarrow as pa

from embed_sql.exceptions import InputTypeError

__all__ = ["TextInput", "as_text_array", "check_arrow_text", "with_prefix"]

TextInput: TypeAlias = "str | Sequence[str | None] | pa.Array | pa.ChunkedArray"
_STRING_TYPES = (pa.string(), pa.large_string())


def as_text_array(texts: TextInput) -> pa.Array:
    """Return the input as one Arrow string array, or raise :class:`InputTypeError`."""
    if isinstance(texts, pa.ChunkedArray):
        check_arrow_text(texts.type)
        return texts.combine_chunks()
    if isinstance(texts, pa.Array):
        check_arrow_text(texts.type)
        return texts
    if isinstance(texts, str):
        return pa.array([texts], pa.string())
    return _to_arrow(texts)


def check_arrow_text(dtype: pa.DataType) -> None:
    """Refuse an Arrow type that is not text, saying how to cast it."""
    if dtype in _STRING_TYPES or pa.types.is_string_view(dtype) or pa.types.is_null(dtype):
        return
    msg = (
        f"cannot embed an Arrow column of type {dtype}; only string columns can be embedded. "
        "Cast it first, e.g. CAST(col AS VARCHAR) or pl.col(...).cast(pl.String)."
    )
    raise InputTypeError(msg)


def _to_arrow(texts: object) -> pa.Array:
    if isinstance(texts, Mapping | AbstractSet):  # a dict iterates its keys, a set has no order
        msg = (
            f"cannot embed a {type(texts).__name__}: its items have no row order (a dict would "
            "give its keys); pass a list of str, e.g. list(d.values())"
        )
        raise InputTypeError(msg)
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, Iterable):
        msg = (
            f"cannot embed {type(texts).__name__} {texts!r:.80}; "
            "pass a str, a list of str (None allowed), or an Arrow string array"
        )
        raise InputTypeError(msg)
    items = list(texts)
    for i, t in enumerate(items):
        if t is not None and not isinstance(t, str):
            msg = (
                f"cannot embed item {i} of type {type(t).__name__} ({t!r:.80}); "
                "every item must be a str or None. Convert with str(x) first if intended."
            )
            raise InputTypeError(msg)
    try:
        return pa.array(items, type=pa.large_string())
    except UnicodeEncodeError:
        # lone surrogates cannot be UTF-8: replace them, as any UTF-8 store would have to
        fixed = [t if t is None else t.encode("utf-8", "replace").decode("utf-8") for t in items]
        return pa.array(fixed, type=pa.large_string())


def with_prefix(texts: pa.Array | pa.ChunkedArray, prefix: str) -> pa.Array | pa.ChunkedArray:
    """Return the texts with ``prefix`` prepended (a prompt); NULL stays NULL."""
    import pyarrow.compute as pc

    if not prefix:
        return texts
    if pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.large_string())
    return pc.binary_join_element_wise(
        pa.scalar(prefix, texts.type), texts, pa.scalar("", texts.type)
    )
