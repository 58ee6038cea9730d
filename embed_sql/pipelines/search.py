"""Search: the top-k passages for a query, by vector similarity, BM25, or both fused.

Sentence embeddings find passages that *mean* the query; they are weak when the answer
hinges on a rare name or a number ("Ebbers", "3.5 %"), which BM25 finds by the word itself.
Hybrid search ranks both ways and fuses the two rankings by reciprocal rank fusion (RRF,
Cormack et al. 2009): a row's score is ``weight / (60 + vector_rank) + (1 - weight) /
(60 + bm25_rank)``, summed over the rankings it appears in (each side contributes its top
``depth`` rows). ``weight`` is the share of the vector side: 1 is vector search alone,
0 BM25 alone.

BM25 is :mod:`bm25s` (sparse matrices, English stop words and Snowball stemming by
PyStemmer, the ``search`` extra). Passages of chunked documents (``embed_chunks``) are
searched passage-wise and reported per document (``document=``): each document's best
passage, ``k`` documents.

Host-agnostic (Arrow in, Arrow out): SQL's ``embed_search`` and Polars' ``.embed.search``
call :class:`BM25Index` and :func:`fuse`.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import (
    ColumnNotFoundError,
    InputTypeError,
    InvalidParameterError,
    MissingDependencyError,
)
from embed_sql.models.encoder import shared_encoder
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors.arrow import column_model, fixed_vectors
from embed_sql.vectors.join import check_k, check_models

__all__ = ["RRF_K", "BM25Index", "Ranked", "check_weight", "document_groups", "fuse", "search"]

RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al.; Elasticsearch's default)


def _bm25s():  # type: ignore[no-untyped-def]
    try:
        with warnings.catch_warnings():  # bm25s imports tqdm.auto: no widgets is no matter
            warnings.filterwarnings("ignore", message="IProgress not found")
            import bm25s
        import Stemmer

        log = logging.getLogger("bm25s")
        if log.level == logging.DEBUG:  # bm25s sets its own logger to DEBUG on import; its
            log.setLevel(logging.WARNING)  # debug lines would reach any configured handler
    except ImportError as exc:
        msg = (
            "hybrid search needs bm25s and PyStemmer; install the extra: "
            "pip install 'embed-sql[search]'"
        )
        raise MissingDependencyError(msg) from exc
    return bm25s, Stemmer


class BM25Index:
    """BM25 over a column of texts (bm25s): English stop words, Snowball stemming.

    Parameters
    ----------
    texts
        One text per row; NULL is an empty text (found by nothing).
    language
        The Snowball stemmer's language (PyStemmer's names: ``"english"``, ``"german"``,
        ...); stop words are removed for English only. None: no stemming.

    Examples
    --------
    >>> bm25 = BM25Index(["the cat sat", "dogs run", None])
    >>> rows, scores = bm25.search(["cats"], 2)
    >>> rows.tolist()
    [[0, -1]]
    """

    def __init__(self, texts: Sequence[str | None] | pa.Array, *, language: str | None = "english"):
        bm25s, stemmer_module = _bm25s()
        from bm25s.tokenization import Tokenizer

        values = texts.to_pylist() if isinstance(texts, pa.Array | pa.ChunkedArray) else texts
        if not all(t is None or isinstance(t, str) for t in values):
            bad = next(t for t in values if t is not None and not isinstance(t, str))
            msg = f"BM25 indexes text; got a {type(bad).__name__} ({bad!r:.40}); cast it to text"
            raise InputTypeError(msg)
        stemmer = stemmer_module.Stemmer(language) if language else None
        self._tokenizer = Tokenizer(
            stemmer=stemmer, stopwords="en" if language == "english" else None
        )
        ids = self._tokenizer.tokenize(
            [t or "" for t in values], return_as="ids", show_progress=False
        )
        self._bm25 = bm25s.BM25()
        self._bm25.index(ids, show_progress=False)
        self._empty = self._tokenizer.get_vocab_dict().get("")
        self._lock = threading.Lock()  # the tokenizer is not thread-safe
        self.size = len(values)

    def __len__(self) -> int:
        return self.size

    def search(self, queries: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the rows (positions; -1 past the hits) and BM25 scores of the top ``n``.

        Rows that share no word with the query are not hits (a score of 0).
        """
        n = min(check_k(n), self.size)
        rows = np.full((len(queries), max(n, 0)), -1, dtype=np.int64)
        scores = np.zeros((len(queries), max(n, 0)), dtype=np.float32)
        if n == 0 or not len(queries):
            return rows, scores
        with self._lock:
            ids = self._tokenizer.tokenize(
                list(queries), update_vocab=False, return_as="ids", show_progress=False
            )
        known = [[t for t in q if t != self._empty] for q in ids]
        asked = [i for i, q in enumerate(known) if q]
        if asked:
            got, sc = self._bm25.retrieve(
                [known[i] for i in asked], k=n, show_progress=False, n_threads=1
            )
            hit = sc > 0
            rows[asked] = np.where(hit, got, -1)
            scores[asked] = np.where(hit, sc, 0)
        return rows, scores


def check_weight(weight: object) -> float:
    """Return the fusion weight as a float in [0, 1], or say what is allowed."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        msg = (
            f"weight={weight!r}: give the vector side's share of the fused score, a number "
            "from 0 (BM25 alone) to 1 (vectors alone); 0.5 weighs them equally"
        )
        raise InvalidParameterError(msg)
    return float(weight)


@dataclass
class Ranked:
    """Fused results, one row per hit: query position, row id, rank and the scores."""

    query: np.ndarray  # int64
    row: np.ndarray  # int64: the id both sides share (a row position or an index label)
    rank: np.ndarray  # int32, from 1
    score: np.ndarray  # float32: the fused RRF score
    distance: np.ndarray  # float32, NaN where the vector side did not find the row
    bm25: np.ndarray  # float32, NaN where BM25 did not find it (or was not asked)


def fuse(
    k: int,
    n_queries: int,
    *,
    vector: tuple[np.ndarray, np.ndarray] | None = None,
    lexical: tuple[np.ndarray, np.ndarray] | None = None,
    weight: float = 0.5,
    groups: np.ndarray | None = None,
) -> Ranked:
    """Fuse a vector ranking and a BM25 ranking by reciprocal rank fusion.

    Parameters
    ----------
    k
        Results per query.
    vector, lexical
        ``(rows, distances)`` and ``(rows, scores)``, each of shape ``(n_queries, depth)``,
        best first, -1 past the hits; rows are ids the two sides share. Either may be None.
    weight
        The vector side's share (see the module docs); without ``lexical`` it is 1.
    groups
        A group id per row id (e.g. its document): only each group's best row is kept.
    """
    w = check_weight(weight) if lexical is not None else 1.0
    out: dict[str, list[np.ndarray]] = {f: [] for f in ("q", "row", "score", "dist", "bm25")}
    for i in range(n_queries):
        found: dict[int, list[float]] = {}  # row → [score, distance, bm25, vector rank]
        if vector is not None and w > 0:
            for r, (row, d) in enumerate(zip(vector[0][i], vector[1][i], strict=True)):
                if row >= 0:
                    found[int(row)] = [w / (RRF_K + r + 1), float(d), np.nan, r]
        if lexical is not None and w < 1:
            for r, (row, s) in enumerate(zip(lexical[0][i], lexical[1][i], strict=True)):
                if row < 0:
                    continue
                got = found.setdefault(int(row), [0.0, np.nan, np.nan, np.inf])
                got[0] += (1 - w) / (RRF_K + r + 1)
                got[2] = float(s)
        # best score first; ties (equal ranks on both sides) by vector rank, then row
        order = sorted(found, key=lambda row: (-found[row][0], found[row][3], row))
        if groups is not None:  # the first (best) row of each group
            best: dict[object, int] = {}
            for r in order:
                best.setdefault(groups[r], r)
            order = list(best.values())
        order = order[:k]
        out["q"].append(np.full(len(order), i, dtype=np.int64))
        out["row"].append(np.array(order, dtype=np.int64))
        vals = np.array([found[r][:3] for r in order], dtype=np.float64).reshape(-1, 3)
        out["score"].append(vals[:, 0])
        out["dist"].append(vals[:, 1])
        out["bm25"].append(vals[:, 2])
    q = np.concatenate(out["q"]) if n_queries else np.zeros(0, np.int64)
    rank = np.concatenate([np.arange(1, len(r) + 1) for r in out["row"]]) if n_queries else q
    cat = (lambda f: np.concatenate(out[f]).astype(np.float32)) if n_queries else None
    empty = np.zeros(0, np.float32)
    return Ranked(
        query=q,
        row=np.concatenate(out["row"]) if n_queries else np.zeros(0, np.int64),
        rank=rank.astype(np.int32),
        score=cat("score") if cat else empty,
        distance=cat("dist") if cat else empty,
        bm25=cat("bm25") if cat else empty,
    )


def depth_for(k: int, grouped: bool) -> int:
    """How many rows each side ranks before fusion: enough for RRF to reorder the top k."""
    return max(50, 5 * k) * (4 if grouped else 1)


def document_groups(documents: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Return a group id per passage: one per document value, and one per NULL document.

    A passage without a document is a document of its own (as a NULL vector is its own
    group in dedup), never merged with the other NULL ones.

    Examples
    --------
    >>> document_groups(pa.array(["a", None, "a", None])).tolist()
    [0, 1, 0, 2]
    """
    arr = documents.combine_chunks() if isinstance(documents, pa.ChunkedArray) else documents
    encoded = pc.dictionary_encode(arr)
    codes = np.asarray(encoded.indices.fill_null(-1), dtype=np.int64)
    nulls = codes < 0
    codes[nulls] = len(encoded.dictionary) + np.arange(int(nulls.sum()))
    return codes


def search(
    table: pa.Table,
    queries: str | Sequence[str] | pa.Array,
    *,
    k: int = 10,
    vec: str = "v",
    key: str = "id",
    text: str | None = None,
    hybrid: bool = False,
    weight: float = 0.5,
    document: str | None = None,
    model: str | ModelSpec | os.PathLike[str] | None = None,
    metric: str = "cos",
    bm25: BM25Index | None = None,
) -> pa.Table:
    """Return the top ``k`` rows of ``table`` for each query: vector, BM25 or hybrid.

    Parameters
    ----------
    table
        The passages: a key, a vector and (for hybrid search) a text column.
    queries
        One query or several (texts).
    k
        Results per query (documents when ``document`` is given).
    vec, key, text
        Column names; ``text`` is needed for ``hybrid``.
    hybrid
        Fuse BM25 over ``text`` with the vector ranking (reciprocal rank fusion).
    weight
        The vector side's share of the fused score: 1 vectors alone, 0 BM25 alone.
    document
        A column naming each passage's document: each document's best passage only.
    model
        The model that embeds the queries (default all-MiniLM-L6-v2): the one that made
        the vectors; another is refused when the vectors' model is known.
    bm25
        A :class:`BM25Index` of ``table[text]`` built before, to search many times.

    Returns
    -------
    pyarrow.Table
        ``query``, ``key``, (``document``), ``rank`` (from 1), ``score`` (the fused RRF
        score; ``1 / (60 + rank)`` for vectors alone), ``distance`` (NULL where the vector
        side did not rank the row) and ``bm25`` (NULL where BM25 did not).

    Examples
    --------
    >>> hits = search(news, "Ebbers fraud trial", k=5, text="body", hybrid=True)  # doctest: +SKIP
    """
    texts = _queries(queries)
    k = check_k(k)
    w = check_weight(weight)
    wanted = [key, vec] + ([text] if text else []) + ([document] if document else [])
    missing = [c for c in dict.fromkeys(wanted) if c not in table.column_names]
    if missing:
        msg = (
            f"column(s) {missing} not in the table; its columns are {table.column_names}; "
            "name the right ones with key=, vec=, text=, document="
        )
        raise ColumnNotFoundError(msg)
    if hybrid and text is None:
        msg = "hybrid=True ranks by BM25 too: name the text column, e.g. text='body'"
        raise InvalidParameterError(msg)
    if bm25 is not None and len(bm25) != table.num_rows:
        msg = f"bm25 indexes {len(bm25)} rows but the table has {table.num_rows}; rebuild it"
        raise InvalidParameterError(msg)
    vectors = fixed_vectors(table.column(vec), vec, "the table")
    recorded = column_model(vectors, what=f"column {vec!r}")
    encoder = shared_encoder(model)
    check_models(encoder.key, recorded, f"the queries (model={model!r}) and column {vec!r}")

    from embed_sql.vectors.index import VectorIndex

    present = np.flatnonzero(np.asarray(vectors.is_valid(), dtype=bool))  # label → row
    index = VectorIndex.build(
        vectors.take(pa.array(present)), pa.array(present), metric=metric, exact=True
    )
    depth = depth_for(k, document is not None)
    found = index.search(encoder.encode_numpy(texts), depth if hybrid or document else k)
    hit = found.labels >= 0
    vector = (np.where(hit, present[np.where(hit, found.labels, 0)], -1), found.distances)
    lexical = None
    if hybrid:
        lex = bm25 if bm25 is not None else BM25Index(table.column(text).combine_chunks())
        lexical = lex.search(texts, depth)
    groups = None
    if document is not None:
        groups = document_groups(table.column(document))
    ranked = fuse(k, len(texts), vector=vector, lexical=lexical, weight=w, groups=groups)
    return _table(ranked, table, texts, key, document)


def _table(
    ranked: Ranked, table: pa.Table, texts: list[str], key: str, document: str | None
) -> pa.Table:
    take = pa.array(ranked.row)
    columns = {
        "query": pa.array(texts, pa.string()).take(pa.array(ranked.query)),
        "key": table.column(key).take(take),
    }
    if document is not None:
        columns["document"] = table.column(document).take(take)
    columns |= {
        "rank": pa.array(ranked.rank, pa.int32()),
        "score": pa.array(ranked.score, pa.float32()),
        "distance": pa.array(ranked.distance, pa.float32(), from_pandas=True),
        "bm25": pa.array(ranked.bm25, pa.float32(), from_pandas=True),
    }
    return pa.table(columns)


def _queries(queries: object) -> list[str]:
    if isinstance(queries, str):
        return [queries]
    values = queries.to_pylist() if isinstance(queries, pa.Array | pa.ChunkedArray) else queries
    if not isinstance(values, Sequence) or not all(isinstance(q, str) for q in values):
        msg = (
            f"queries must be a string or a list of strings, got {type(queries).__name__}"
            " (NULL queries have no answer: filter them out)"
        )
        raise InputTypeError(msg)
    return list(values)
