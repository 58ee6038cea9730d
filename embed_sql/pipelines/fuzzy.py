"""Fuzzy matching: join two string columns on typo-tolerant similarity, past n² pairs.

Sentence embeddings are poor at typos (a misspelled word's nearest neighbours by meaning
rarely include the right word), and scoring every pair with an edit distance is n x m.
So the join has two steps:

1. **Candidates** from a vector index over *character n-gram* vectors: each string's
   character 2- and 3-grams (within word boundaries), hashed into ``dim`` buckets,
   TF-IDF weighted over both columns and L2-normalised (scikit-learn's
   ``HashingVectorizer`` and ``TfidfTransformer``). Strings that share many rare n-grams
   are close, whatever the typo. Each left string takes its ``candidates`` nearest right
   strings (exact search up to :data:`EXACT_UP_TO` string pairs, HNSW beyond).
2. **Scores** of the candidate pairs only, with :mod:`rapidfuzz` (``scorer``: an
   edit-distance-family similarity in [0, 1]) and, when ``semantic > 0``, the cosine
   similarity of the sentence model's vectors (for "IBM" ~ "International Business
   Machines", which no edit distance sees). ``score = (1 - semantic) * char_score +
   semantic * semantic_score``; the ``k`` best per left row are kept (those at least
   ``threshold``).

Host-agnostic (Arrow in, Arrow out): SQL's ``embed_fuzzy_join`` and Polars'
``.embed.fuzzy_join`` call :func:`fuzzy_join`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import (
    ColumnNotFoundError,
    InputTypeError,
    InvalidParameterError,
    MissingDependencyError,
)
from embed_sql.models.registry import ModelSpec

if TYPE_CHECKING:
    from embed_sql.models.encoder import TextEncoder
from embed_sql.vectors.join import check_k

__all__ = ["EXACT_UP_TO", "RESULT_COLUMNS", "SCORERS", "fuzzy_join", "ngram_vectors"]

EXACT_UP_TO = 20_000_000  # distinct string pairs up to which candidates are searched exactly
RESULT_COLUMNS = ("left_key", "right_key", "char_score", "semantic_score", "score", "rank")


def _rapidfuzz() -> tuple[Mapping[str, Callable[..., float]], object, Callable[..., np.ndarray]]:
    try:
        from rapidfuzz import fuzz, process, utils
        from rapidfuzz.distance import JaroWinkler, Levenshtein
    except ImportError as exc:
        msg = "fuzzy_join needs rapidfuzz; install the extra: pip install 'embed-sql[fuzzy]'"
        raise MissingDependencyError(msg) from exc
    scorers: dict[str, Callable[..., float]] = {
        "ratio": fuzz.ratio,  # normalised Indel similarity, 0-100
        "partial_ratio": fuzz.partial_ratio,
        "token_sort_ratio": fuzz.token_sort_ratio,
        "token_set_ratio": fuzz.token_set_ratio,
        "wratio": fuzz.WRatio,
        "levenshtein": Levenshtein.normalized_similarity,  # 0-1
        "jaro_winkler": JaroWinkler.normalized_similarity,  # 0-1
    }
    return scorers, utils.default_process, process.cpdist


SCORERS = (
    "ratio",
    "partial_ratio",
    "token_sort_ratio",
    "token_set_ratio",
    "wratio",
    "levenshtein",
    "jaro_winkler",
)
_PERCENT = frozenset(SCORERS[:5])  # rapidfuzz's fuzz.* scorers answer 0-100


def ngram_vectors(texts: list[str], *, dim: int = 256) -> np.ndarray:
    """Return L2-normalised, TF-IDF weighted character 2-3-gram vectors, ``(n, dim)``.

    The IDF weights are learnt from ``texts`` themselves. Case is ignored (n-grams of the
    lower-cased words, padded with a space at each end).
    """
    try:
        from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    except ImportError as exc:
        msg = "fuzzy_join needs scikit-learn; install the extra: pip install 'embed-sql[fuzzy]'"
        raise MissingDependencyError(msg) from exc
    hasher = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 3),
        n_features=dim,
        alternate_sign=False,
        norm=None,
        lowercase=True,
        dtype=np.float32,
    )
    counts = hasher.transform(texts)
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(counts)
    return weighted.toarray().astype(np.float32, copy=False)


def _check(
    table: pa.Table, text: str, key: str, side: str
) -> tuple[pa.Array, list[str], np.ndarray]:
    """Return the keys, texts and row positions of a side's non-NULL strings."""
    missing = [c for c in (key, text) if c not in table.column_names]
    if missing:
        hint = "text= / key=" if side == "left" else "right_text= / right_key="
        msg = (
            f"column(s) {missing} not in the {side} table; its columns are "
            f"{table.column_names}; name the right ones with {hint}"
        )
        raise ColumnNotFoundError(msg)
    col = table.column(text).combine_chunks()
    if not (
        pa.types.is_string(col.type)
        or pa.types.is_large_string(col.type)
        or pa.types.is_string_view(col.type)
    ):
        msg = (
            f"column {text!r} of the {side} table is {col.type}, not text; fuzzy_join "
            "matches strings: cast it (e.g. CAST(x AS VARCHAR))"
        )
        raise InputTypeError(msg)
    rows = np.flatnonzero(np.asarray(col.is_valid(), dtype=bool))
    keys = table.column(key).combine_chunks()
    if keys.null_count:
        msg = (
            f"key column {key!r} of the {side} table has {keys.null_count} NULL keys; keys "
            "identify rows: filter them out or fill them (e.g. coalesce) first"
        )
        raise InvalidParameterError(msg)
    return keys, col.cast(pa.string()).take(pa.array(rows)).to_pylist(), rows


def fuzzy_join(
    left: pa.Table,
    right: pa.Table,
    k: int = 5,
    *,
    text: str = "text",
    key: str = "id",
    right_text: str | None = None,
    right_key: str | None = None,
    scorer: str = "ratio",
    semantic: float = 0.0,
    threshold: float | None = None,
    candidates: int | None = None,
    dim: int = 256,
    exact: bool | None = None,
    model: str | ModelSpec | os.PathLike[str] | TextEncoder | None = None,
) -> pa.Table:
    """Match each left string to its ``k`` most similar right strings, typo-tolerant.

    Parameters
    ----------
    left, right
        Tables with a key column and a string column.
    k
        Matches kept per left row (the best by ``score``).
    text, key, right_text, right_key
        The string and key columns (the right side's default to the left's names).
    scorer
        The edit-distance-family similarity of the candidate pairs, one of
        :data:`SCORERS` (rapidfuzz's; ``"ratio"``: normalised Indel similarity). Strings
        are compared lower-cased, punctuation removed.
    semantic
        Weight of the sentence model's cosine similarity in ``score`` (0: not computed).
    threshold
        Keep only matches whose ``score`` is at least this (0-1).
    candidates
        Right strings scored per left string (default ``max(4 * k, 20)``).
    dim
        Buckets of the hashed n-gram vectors.
    exact
        Exact candidate search (default: up to :data:`EXACT_UP_TO` distinct string pairs;
        HNSW beyond, where a candidate can be missed).
    model
        The sentence model for ``semantic`` (default all-MiniLM-L6-v2).

    Returns
    -------
    pyarrow.Table
        ``left_key``, ``right_key``, ``char_score``, ``semantic_score`` (NULL unless
        ``semantic > 0``), ``score`` (all in [0, 1], float32) and ``rank`` (1 = best),
        by left row, then rank. NULL strings match nothing.

    Examples
    --------
    >>> import pyarrow as pa
    >>> people = pa.table({"id": [1, 2], "text": ["Jon Smith", "Mary Jones"]})
    >>> register = pa.table({"id": [7, 8, 9], "text": ["John Smith", "Marie Jones", "J. Smyth"]})
    >>> out = fuzzy_join(people, register, k=1)
    >>> out.column("right_key").to_pylist()
    [7, 8]
    """
    k = check_k(k)
    rtext = text if right_text is None else right_text
    rkey = key if right_key is None else right_key
    scorers, processor, cpdist = _rapidfuzz()
    if scorer not in scorers:
        msg = f"scorer={scorer!r} is not one of {list(SCORERS)}; 'ratio' is the default"
        raise InvalidParameterError(msg)
    if (
        isinstance(semantic, bool)
        or not isinstance(semantic, int | float)
        or not 0 <= semantic <= 1
    ):
        msg = f"semantic={semantic!r}: give the sentence model's weight in the score, 0 to 1"
        raise InvalidParameterError(msg)
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        msg = f"threshold={threshold!r}: give the lowest score kept, 0 to 1 (or None)"
        raise InvalidParameterError(msg)
    n_cand = check_k(candidates) if candidates is not None else max(4 * k, 20)
    lkeys, ltexts, lrows = _check(left, text, key, "left")
    rkeys, rtexts, rrows = _check(right, rtext, rkey, "right")
    if not ltexts or not rtexts:
        return _empty(lkeys.type, rkeys.type)

    from embed_sql.vectors.index import VectorIndex

    # candidates: nearest right strings by n-gram vectors (IDF over both sides' strings)
    ldistinct, linv = np.unique(np.array(ltexts, dtype=object), return_inverse=True)
    rdistinct, rinv = np.unique(np.array(rtexts, dtype=object), return_inverse=True)
    both = [*ldistinct.tolist(), *rdistinct.tolist()]
    grams = ngram_vectors(both, dim=dim)
    use_exact = len(ldistinct) * len(rdistinct) <= EXACT_UP_TO if exact is None else exact
    index = VectorIndex.build(
        grams[len(ldistinct) :], pa.array(np.arange(len(rdistinct))), exact=use_exact
    )
    found = index.search(grams[: len(ldistinct)], min(n_cand, len(rdistinct)))
    qi, col = np.nonzero(found.labels >= 0)
    ri = found.labels[qi, col]
    # scores of the distinct candidate pairs
    char = cpdist(
        ldistinct[qi].tolist(),
        rdistinct[ri].tolist(),
        scorer=scorers[scorer],
        processor=processor,
        workers=-1,
        dtype=np.float32,
    ).astype(np.float32)
    if scorer in _PERCENT:
        char /= 100
    sem = None
    if semantic > 0:
        from embed_sql.models.encoder import TextEncoder, shared_encoder

        encoder = model if isinstance(model, TextEncoder) else shared_encoder(model)
        lv, rv = encoder.encode_numpy(ldistinct.tolist()), encoder.encode_numpy(rdistinct.tolist())
        sem = np.einsum("ij,ij->i", _unit(lv)[qi], _unit(rv)[ri]).astype(np.float32)
    score = char if sem is None else (1 - semantic) * char + semantic * sem
    # expand to rows: every left row of a distinct string, every right row of a matched one
    return _rows(
        (qi, ri, char, sem, score.astype(np.float32)),
        (linv, rinv, lrows, rrows, lkeys, rkeys),
        k,
        threshold,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def _rows(
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray],
    sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pa.Array, pa.Array],
    k: int,
    threshold: float | None,
) -> pa.Table:
    """Turn scored distinct-string pairs into the k best right rows per left row.

    ``pairs``: (left string, right string, char score, semantic score, score) per pair;
    ``sides``: each side's string of every non-NULL row, the rows' positions, the keys.
    A right string held by several rows gives each of them, in table order.
    """
    qi, ri, char, sem, score = pairs
    linv, rinv, lrows, rrows, lkeys, rkeys = sides
    r_order = np.argsort(rinv, kind="stable")  # right rows grouped by their string
    r_starts = np.searchsorted(rinv[r_order], np.arange(rinv.max() + 2))
    per_string = np.diff(r_starts)
    # best first within each left string; ties by the right string's first row
    order = np.lexsort((rrows[r_order[r_starts[ri]]], -score, qi))
    if threshold is not None:
        order = order[score[order] >= threshold]
    # one entry per (pair, right row), then the first k per left string
    counts = per_string[ri[order]]
    pair = np.repeat(order, counts)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
    right_row = rrows[r_order[r_starts[ri[pair]] + within]]
    q = qi[pair]
    rank = np.arange(len(q)) - np.searchsorted(q, q, side="left")
    keep = rank < k
    pair, right_row, q, rank = pair[keep], right_row[keep], q[keep], rank[keep]
    # every left row takes its string's entries (left rows are in table order)
    starts = np.searchsorted(q, np.arange(linv.max() + 2))
    sizes = starts[linv + 1] - starts[linv]
    take = np.repeat(starts[linv], sizes) + (
        np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    )
    picked = pair[take]
    semantic = sem[picked] if sem is not None else np.full(len(picked), np.nan, np.float32)
    return pa.table(
        {
            "left_key": lkeys.take(pa.array(np.repeat(lrows, sizes))),
            "right_key": rkeys.take(pa.array(right_row[take])),
            "char_score": pa.array(char[picked], pa.float32()),
            "semantic_score": pa.array(semantic, pa.float32(), from_pandas=True),
            "score": pa.array(score[picked], pa.float32()),
            "rank": pa.array(rank[take] + 1, pa.int32()),
        }
    )


def _empty(left_type: pa.DataType, right_type: pa.DataType) -> pa.Table:
    types = (left_type, right_type, pa.float32(), pa.float32(), pa.float32(), pa.int32())
    return pa.table({n: pa.array([], t) for n, t in zip(RESULT_COLUMNS, types, strict=True)})
