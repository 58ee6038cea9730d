"""The UDFs behind the applications' SQL: search, recommendations, labels, analogies.

Fuzzy matching has its own module, :mod:`embed_sql.udfs.duckdb.fuzzy`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.macros import fingerprint_of, fingerprint_sql, quote_ident, sql_literal
from embed_sql.udfs.duckdb.read import Context, check_columns, constant, reader
from embed_sql.udfs.duckdb.results import Arrays, lists, repeat, struct
from embed_sql.vectors.join import check_k

if TYPE_CHECKING:
    from embed_sql.models.encoder import TextEncoder
    from embed_sql.pipelines.search import BM25Index
    from embed_sql.udfs.duckdb.indexes import NamedIndex
    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = [
    "RECOMMEND",
    "SEARCH",
    "make_analogy",
    "make_classify",
    "make_recommend",
    "make_search",
]

SEARCH = pa.list_(
    pa.struct(
        [
            ("label", pa.int64()),
            ("rank", pa.int32()),
            ("score", pa.float32()),
            ("distance", pa.float32()),
            ("bm25", pa.float32()),
        ]
    )
)


@dataclass
class _Rows:
    """What a search read of an index's table beyond its vectors, as of one fingerprint."""

    fingerprint: str
    labels: np.ndarray  # the index label of each row read (-1: a row not indexed)
    bm25: BM25Index | None  # over the text column (None: not asked for)
    groups: np.ndarray | None  # per label: its row's document, dictionary-encoded

    def hits(self, query: str, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """BM25's top rows for ``query`` as index labels (rows not indexed dropped)."""
        assert self.bm25 is not None
        rows, scores = self.bm25.search([query], depth)
        labels = np.where(rows >= 0, self.labels[np.maximum(rows, 0)], -1)
        keep = labels[0] >= 0
        return labels[:, keep], scores[:, keep]


def make_search(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_search``: a text query's top rows, by vectors or hybrid with BM25."""
    from embed_sql.pipelines.search import check_weight, depth_for, fuse
    from embed_sql.udfs.duckdb.search import query_encoder

    def run(
        names: Arrays,
        queries: Arrays,
        ks: Arrays,
        hybrids: Arrays,
        texts: Arrays,
        weights: Arrays,
        documents: Arrays,
        contexts: Arrays,
        fingerprints: Arrays,
        row_fingerprints: Arrays,
    ) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
        query = str(constant(queries, "the query"))
        k = check_k(constant(ks, "k"))
        hybrid = bool(constant(hybrids, "hybrid"))
        weight = check_weight(constant(weights, "weight"))
        text = constant(texts, "text", allow_null=True)
        document = constant(documents, "document", allow_null=True)
        rows = None
        if hybrid or document is not None:
            rows = _read_rows(
                state,
                named,
                text=text,
                document=document,
                hybrid=hybrid,
                context=Context.from_sql(constant(contexts, "the context")),
                expected=constant(row_fingerprints, "the table's fingerprint", allow_null=True),
            )
        depth = depth_for(k, document is not None)
        vectors = query_encoder(state, named).encode_numpy([query])
        found = named.index.search(vectors, depth if rows is not None else k)
        ranked = fuse(
            k,
            1,
            vector=(found.labels, found.distances),
            lexical=rows.hits(query, depth) if rows is not None and hybrid else None,
            weight=weight,
            groups=rows.groups if rows is not None else None,
        )
        children = struct(
            {
                "label": pa.array(ranked.row, pa.int64()),
                "rank": pa.array(ranked.rank, pa.int32()),
                "score": pa.array(ranked.score, pa.float32()),
                "distance": pa.array(ranked.distance, pa.float32(), from_pandas=True),
                "bm25": pa.array(ranked.bm25, pa.float32(), from_pandas=True),
            }
        )
        return repeat(names, lists(np.array([len(ranked.row)]), children, SEARCH))

    return run


def _read_rows(
    state: DatabaseState,
    named: NamedIndex,
    *,
    text: str | None,
    document: str | None,
    hybrid: bool,
    context: Context | None,
    expected: str | None,
) -> _Rows:
    """Read the text (and document) column of an index's table, or reuse the last read."""
    from embed_sql.pipelines.search import BM25Index, document_groups

    if named.source is None:
        msg = (
            f"index {named.name!r} answers for no table (it was loaded from a file without "
            "one), so there is no text to rank by BM25 or documents to group by; search it "
            "with hybrid := false, or create the index from its table"
        )
        raise InvalidParameterError(msg)
    with reader(state, context) as cur:
        types = check_columns(cur, named.source, {})
        if hybrid and text is None:
            text = _text_column(types, named, document)
        for column, role in ((text, "text"), (document, "document")):
            if column is not None and column not in types:
                msg = (
                    f"{role} column {column!r} is not in table {named.source}; its columns "
                    f"are {list(types)}; name the right one with {role} := '...'"
                )
                raise ColumnNotFoundError(msg)
        if hybrid and not types[str(text)].startswith("VARCHAR"):
            msg = (
                f"text column {text!r} of {named.source} is {types[str(text)]}, not VARCHAR; "
                "BM25 ranks text: name a text column with text := '...'"
            )
            raise InputTypeError(msg)
        cache_key = (text if hybrid else None, document)
        cached = named.searched.get(cache_key)
        if cached is not None and cached.fingerprint == expected:
            return cached
        picked = [f"{quote_ident(named.key)} AS key"]
        picked += [f"{quote_ident(str(text))} AS text"] if hybrid else []
        picked += [f"{quote_ident(str(document))}::VARCHAR AS document"] if document else []
        cur.execute("BEGIN TRANSACTION")
        try:
            read = cur.sql(
                f"SELECT {', '.join(picked)}, hash(*COLUMNS(*)) AS h "
                f"FROM query_table({sql_literal(named.source)})"
            ).to_arrow_table()
        finally:
            cur.execute("COMMIT")
    now = fingerprint_of(read.column("h").combine_chunks().cast(pa.uint64()).to_numpy())
    if expected is not None and expected != now:
        msg = (
            f"embed_search: table {named.source} differs between your transaction and "
            "committed data; COMMIT first, so embed_sql reads the rows you see"
        )
        raise InvalidParameterError(msg)
    pos = pc.index_in(read.column("key"), value_set=named.index.keys())
    alive = named.index.labels()
    labels = np.where(pos.is_valid(), alive[pos.fill_null(0)], -1).astype(np.int64)
    groups = None
    if document:
        codes = document_groups(read.column("document"))
        groups = np.full(named.index.label_count, -1, dtype=np.int64)
        groups[labels[labels >= 0]] = codes[labels >= 0]
    bm25 = BM25Index(read.column("text").combine_chunks()) if hybrid else None
    rows = _Rows(now, labels, bm25, groups)
    named.searched[cache_key] = rows
    return rows


def _text_column(types: dict[str, str], named: NamedIndex, document: str | None) -> str:
    """Return the one text column of an index's table, when ``text :=`` is not given."""
    found = [c for c, t in types.items() if t == "VARCHAR" and c not in (named.key, document)]
    if len(found) == 1:
        return found[0]
    msg = (
        f"hybrid := true ranks by BM25 over a text column of {named.source}; it has "
        f"{len(found) or 'no'} VARCHAR columns besides the key {found or ''}: name one with "
        "text := '...'"
    )
    raise InvalidParameterError(msg)


RECOMMEND = pa.list_(
    pa.struct(
        [
            ("user_text", pa.string()),
            ("item_label", pa.int64()),
            ("score", pa.float32()),
            ("rank", pa.int32()),
        ]
    )
)


def make_recommend(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_recommend``: items for each user of an interactions table."""
    from embed_sql.pipelines.recommend import recommend

    def run(
        tables: Arrays,
        names: Arrays,
        users: Arrays,
        items: Arrays,
        ks: Arrays,
        weights: Arrays,
        times: Arrays,
        half_lives: Arrays,
        diversities: Arrays,
        contexts: Arrays,
        table_fingerprints: Arrays,
        fingerprints: Arrays,
    ) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
        table = str(constant(tables, "the table"))
        expected = constant(table_fingerprints, "the table's fingerprint", allow_null=True)
        user, item = str(constant(users, "user_key")), str(constant(items, "item_key"))
        weight = constant(weights, "weight", allow_null=True)
        time = constant(times, "time", allow_null=True)
        wanted = {user: "user_key", item: "item_key"}
        wanted |= {str(c): role for c, role in ((weight, "weight"), (time, "time")) if c}
        context = Context.from_sql(constant(contexts, "the context"))
        with reader(state, context) as cur:
            if context is not None:
                context.check_not_temp(table, "embed_recommend")
            types = check_columns(cur, table, {})
            for column, role in wanted.items():
                if column not in types:
                    msg = (
                        f"{role} column {column!r} is not in table {table!r}; its columns are "
                        f"{list(types)}; name the right one with {role} := '...'"
                    )
                    raise ColumnNotFoundError(msg)
            cur.execute("BEGIN TRANSACTION")
            try:
                (now,) = cur.execute(
                    fingerprint_sql(f"query_table({sql_literal(table)})", user, item)
                ).fetchall()[0]
                picked = ", ".join(
                    f"{quote_ident(c)}::VARCHAR AS user_text"
                    if role == "user_key"
                    else f"{quote_ident(c)} AS {role}"
                    for c, role in wanted.items()
                )
                found = cur.sql(f"SELECT {picked} FROM query_table({sql_literal(table)})")
                read = found.to_arrow_table()
            finally:
                cur.execute("COMMIT")
        if expected is not None and expected != now:
            msg = (
                f"embed_recommend: table {table!r} differs between your transaction and "
                "committed data; COMMIT first, so embed_sql reads the rows you see"
            )
            raise InvalidParameterError(msg)
        out = recommend(
            read,
            named.index,
            k=constant(ks, "k"),
            user_key="user_text",
            item_key="item_key",
            weight="weight" if weight else None,
            time="time" if time else None,
            half_life=constant(half_lives, "half_life", allow_null=True),
            diversity=float(constant(diversities, "diversity")),
        )
        pos = np.asarray(pc.index_in(out.column("item_key"), value_set=named.index.keys()))
        children = struct(
            {
                "user_text": out.column("user_key").combine_chunks().cast(pa.string()),
                "item_label": pa.array(named.index.labels()[pos], pa.int64()),
                "score": out.column("score").combine_chunks(),
                "rank": out.column("rank").combine_chunks(),
            }
        )
        return repeat(tables, lists(np.array([out.num_rows]), children, RECOMMEND))

    return run


def make_classify(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_classify``: each text's closest label, with the database's model."""
    from embed_sql.pipelines.classify import classify_vectors, label_vectors

    def run(texts: Arrays, labels: Arrays, templates: Arrays, models: Arrays) -> pa.Array:
        names = constant(labels, "labels")
        template = constant(templates, "template")
        model = constant(models, "model", allow_null=True)
        encoder = state.default if model is None else _encoder_named(state, str(model))
        matrix = label_vectors(encoder, names, template)
        vectors = state.cache.encode(encoder, texts) if state.cache else encoder.encode(texts)
        return classify_vectors(vectors, list(names), matrix)

    return run


def _encoder_named(state: DatabaseState, model: str) -> TextEncoder:
    """Return the encoder ``model := '...'`` names.

    An alias registered on this database (``'fast'`` for ``embed_fast``) first, else a model
    name or path.
    """
    for sql_name in (f"embed_{model}", model):
        if sql_name in state.encoders:
            return state.encoders[sql_name]
    from embed_sql.models.encoder import shared_encoder

    return shared_encoder(model)


def make_analogy(_: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_analogy``: the words nearest to b - a + c (word vectors)."""
    from embed_sql.pipelines.analogy import RESULT, analogy

    def run(a: Arrays, b: Arrays, c: Arrays, ks: Arrays, models: Arrays) -> pa.Array:
        words = [str(constant(x, name)) for x, name in ((a, "a"), (b, "b"), (c, "c"))]
        found = analogy(*words, k=constant(ks, "k"), model=str(constant(models, "model")))
        one = pa.array([found.to_struct_array().to_pylist()], pa.list_(RESULT))
        return repeat(a, one)

    return run
