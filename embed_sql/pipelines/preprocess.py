"""Text preprocessing before embedding: cleaning, chunking by model tokens, re-aggregation.

- :func:`clean`: optional mojibake repair (ftfy), HTML/markup stripping (every block
  element is a word break), entity unescaping, Unicode NFKC, control-character removal,
  whitespace collapsing and optional lower-casing, composable through keyword switches (the
  order is fixed: repair first, then markup, case last).
- :func:`chunk`: cut long documents into pieces of at most ``max_tokens`` *model* tokens
  (special tokens included) with ``overlap`` tokens shared between neighbours, using the
  model's own tokenizer, so nothing is silently truncated away. Chunks keep their source
  key, their position and their character span.
- :func:`aggregate`: one vector per document again: the mean of its chunk vectors,
  renormalised.

Arrow in, Arrow out; NULL stays NULL (a NULL document has no chunks).
"""

from __future__ import annotations

import os
import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import (
    DimensionMismatchError,
    InvalidParameterError,
    MissingDependencyError,
)
from embed_sql.models.encoder import TextInput, as_text_array, shared_encoder
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors.arrow import from_numpy, to_numpy

__all__ = ["aggregate", "chunk", "clean", "clean_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACE = re.compile(r"\s+")
# Every element that breaks the flow of text (HTML's block-level and table elements, line
# breaks, list items, options): its start and end are word boundaries.
_BLOCK_TAGS = frozenset(
    (
        "address article aside blockquote body br caption center col colgroup dd details "
        "dialog dir div dl dt fieldset figcaption figure footer form frameset h1 h2 h3 h4 h5 "
        "h6 header hgroup hr html legend li main menu nav noframes ol optgroup option p pre "
        "search section summary table tbody td tfoot th thead title tr ul"
    ).split()
)
_SKIP_TAGS = {"script", "style", "head", "noscript", "template"}


class _TextOnly(HTMLParser):
    """Collects the text of an HTML fragment; drops scripts, styles and comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _strip_html(text: str) -> str:
    if "<" not in text and "&" not in text:
        return text
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _repair(text: str) -> str:
    try:
        import ftfy
    except ImportError as exc:
        msg = "repair=True needs ftfy; install the extra: pip install 'embed-sql[repair]'"
        raise MissingDependencyError(msg) from exc
    # only the encoding repairs: quotes, ligatures, widths and the rest are left to the
    # other switches (NFKC), so repair=True changes nothing that is not mojibake
    return str(
        ftfy.fix_text(
            text,
            unescape_html=False,
            remove_terminal_escapes=False,
            uncurl_quotes=False,
            fix_latin_ligatures=False,
            fix_character_width=False,
            fix_line_breaks=False,
            remove_control_chars=False,
            normalization=None,
        )
    )


def clean_text(
    text: str,
    *,
    repair: bool = False,
    strip_html: bool = True,
    normalize: str | None = "NFKC",
    remove_control: bool = True,
    collapse_whitespace: bool = True,
    lowercase: bool = False,
) -> str:
    r"""Clean one string (see :func:`clean`).

    Examples
    --------
    >>> clean_text("<p>Caf\\u00e9&nbsp;<b>ﬁne</b></p>\\x00  food ")
    'Café fine food'
    """
    if repair:
        text = _repair(text)
    text = _strip_html(text) if strip_html else unescape(text)
    if normalize:
        text = unicodedata.normalize(normalize, text)  # type: ignore[arg-type]  # checked above
    if remove_control:
        text = _CONTROL.sub(" ", text)
    if collapse_whitespace:
        text = _SPACE.sub(" ", text).strip()
    if lowercase:
        text = text.lower()
    return text


def clean(
    texts: TextInput,
    *,
    repair: bool = False,
    strip_html: bool = True,
    normalize: str | None = "NFKC",
    remove_control: bool = True,
    collapse_whitespace: bool = True,
    lowercase: bool = False,
) -> pa.Array:
    """Clean a text column; returns an Arrow string array of the same length (NULL kept).

    Parameters
    ----------
    repair
        First undo mojibake with ``ftfy`` (``naÃ¯ve`` → ``naïve``: UTF-8 read as Latin-1 or
        Windows-1252), which NFKC alone cannot; needs the ``repair`` extra.
    strip_html
        Remove tags (keeping their text; dropping scripts, styles and comments) and
        unescape entities. Without it, entities are still unescaped.
    normalize
        Unicode normal form (``"NFKC"``, ``"NFC"``, ...) or None.
    remove_control
        Replace control and zero-width characters by spaces.
    collapse_whitespace
        Turn every run of whitespace into one space and trim the ends.
    lowercase
        Lower-case last (off by default: cased models care).
    """
    if normalize is not None and normalize not in ("NFC", "NFD", "NFKC", "NFKD"):
        msg = f"normalize={normalize!r} is not a Unicode normal form; use NFKC, NFC, NFKD or NFD"
        raise InvalidParameterError(msg)
    column = as_text_array(texts)
    if repair:
        _repair("")  # the dependency is checked once, before any row
    options = {
        "repair": repair,
        "strip_html": strip_html,
        "normalize": normalize,
        "remove_control": remove_control,
        "collapse_whitespace": collapse_whitespace,
        "lowercase": lowercase,
    }
    return pa.array(
        [None if t is None else clean_text(t, **options) for t in column.to_pylist()],  # type: ignore[arg-type]
        pa.large_string() if pa.types.is_large_string(column.type) else pa.string(),
    )


def chunk(
    texts: TextInput,
    keys: pa.Array | list[object] | None = None,
    *,
    max_tokens: int | None = None,
    overlap: int = 32,
    model: str | ModelSpec | os.PathLike[str] | None = None,
) -> pa.Table:
    """Split documents into overlapping pieces of at most ``max_tokens`` model tokens.

    Parameters
    ----------
    texts
        The documents.
    keys
        Their keys (default: row positions), carried to every chunk as ``key``.
    max_tokens
        Tokens per chunk, the model's special tokens included; default the model's limit.
    overlap
        Tokens shared by consecutive chunks of one document (``< max_tokens - 2``).
    model
        Whose tokenizer counts the tokens; default all-MiniLM-L6-v2.

    Returns
    -------
    pyarrow.Table
        ``key``, ``chunk`` (0-based position in the document), ``text``, ``char_start`` and
        ``char_end`` (character offsets into the document), ``tokens``. A short document is one
        chunk holding its whole text; an empty one is one empty chunk; NULL has none.
    """
    encoder = shared_encoder(model)
    limit = encoder.spec.max_tokens
    max_tokens = limit if max_tokens is None else max_tokens
    if not isinstance(max_tokens, int) or not 3 <= max_tokens <= limit:
        msg = f"max_tokens={max_tokens!r} must be an integer from 3 to the model's limit {limit}"
        raise InvalidParameterError(msg)
    window = max_tokens - encoder.special_tokens
    if not isinstance(overlap, int) or not 0 <= overlap < window:
        msg = f"overlap={overlap!r} must be an integer from 0 to {window - 1} (max_tokens - 3)"
        raise InvalidParameterError(msg)
    column = as_text_array(texts)
    if keys is None:
        key_arr = pa.array(np.arange(len(column)), pa.int64())
    else:
        key_arr = keys if isinstance(keys, pa.Array) else pa.array(keys)
        if len(key_arr) != len(column):
            msg = f"{len(key_arr)} keys for {len(column)} documents; give one key per document"
            raise DimensionMismatchError(msg)
    docs = column.to_pylist()
    present = [i for i, d in enumerate(docs) if d is not None]
    offsets = encoder.token_offsets([docs[i] for i in present])
    rows: dict[str, list[object]] = {
        k: [] for k in ("src", "chunk", "text", "char_start", "char_end")
    }
    tokens: list[int] = []
    step = window - overlap
    for i, spans in zip(present, offsets, strict=True):
        doc = docs[i]
        starts = range(0, max(len(spans) - overlap, 1), step) if len(spans) > window else [0]
        for n, first in enumerate(starts):
            piece = spans[first : first + window]
            lo, hi = (piece[0][0], piece[-1][1]) if piece else (0, len(doc))
            rows["src"].append(i)
            rows["chunk"].append(n)
            rows["text"].append(doc[lo:hi])
            rows["char_start"].append(lo)
            rows["char_end"].append(hi)
            tokens.append(len(piece) + encoder.special_tokens)
    return pa.table(
        {
            "key": key_arr.take(pa.array(rows["src"], pa.int64())),
            "chunk": pa.array(rows["chunk"], pa.int32()),
            "text": pa.array(rows["text"], pa.string()),
            "char_start": pa.array(rows["char_start"], pa.int64()),
            "char_end": pa.array(rows["char_end"], pa.int64()),
            "tokens": pa.array(tokens, pa.int32()),
        }
    )


def aggregate(keys: pa.Array | pa.ChunkedArray, vectors: pa.Array | pa.ChunkedArray) -> pa.Table:
    """One vector per key: the mean of its (non-NULL) chunk vectors, renormalised.

    Returns a table of ``key`` (first-appearance order) and ``v``.
    """
    key_arr = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    mat = to_numpy(vectors, null_value=0.0)
    if len(key_arr) != len(mat):
        msg = f"{len(key_arr)} keys for {len(mat)} vectors; give one key per chunk vector"
        raise DimensionMismatchError(msg)
    valid = np.asarray(
        (vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors).is_valid(),
        dtype=bool,
    )
    import pyarrow.compute as pc

    codes = pc.dictionary_encode(key_arr)
    inverse = np.asarray(codes.indices, dtype=np.int64)
    groups = len(codes.dictionary)
    sums = np.zeros((groups, mat.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse[valid], mat[valid])
    counts = np.bincount(inverse[valid], minlength=groups)
    means = sums / np.maximum(counts, 1)[:, None]
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    means = np.where(norms > 0, means / np.maximum(norms, 1e-12), means)
    return pa.table({"key": codes.dictionary, "v": from_numpy(means, valid=counts > 0)})
