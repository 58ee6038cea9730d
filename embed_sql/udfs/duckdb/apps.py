"""The UDFs behind the applications' SQL: recommendations, zero-shot labels, analogies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.macros import fingerprint_sql, quote_ident
from embed_sql.udfs.duckdb.read import Context, check_columns, constant, reader
from embed_sql.udfs.duckdb.results import Arrays, lists, repeat, struct

if TYPE_CHECKING:
    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["RECOMMEND", "make_analogy", "make_classify", "make_recommend"]


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
                    fingerprint_sql(f"query_table({_sql_literal(table)})", user, item)
                ).fetchall()[0]
                picked = ", ".join(
                    f"{quote_ident(c)}::VARCHAR AS user_text"
                    if role == "user_key"
                    else f"{quote_ident(c)} AS {role}"
                    for c, role in wanted.items()
                )
                found = cur.sql(f"SELECT {picked} FROM query_table({_sql_literal(table)})")
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


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def make_classify(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_classify``: each text's closest label, with the database's model."""
    from embed_sql.pipelines.classify import classify_vectors, label_vectors

    def run(texts: Arrays, labels: Arrays, templates: Arrays) -> pa.Array:
        names = constant(labels, "labels")
        template = constant(templates, "template")
        encoder = state.default
        matrix = label_vectors(encoder, names, template)
        vectors = state.cache.encode(encoder, texts) if state.cache else encoder.encode(texts)
        return classify_vectors(vectors, list(names), matrix)

    return run


def make_analogy(_: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_analogy``: the words nearest to b - a + c (word vectors)."""
    from embed_sql.pipelines.analogy import RESULT, analogy

    def run(a: Arrays, b: Arrays, c: Arrays, ks: Arrays, models: Arrays) -> pa.Array:
        words = [str(constant(x, name)) for x, name in ((a, "a"), (b, "b"), (c, "c"))]
        found = analogy(*words, k=constant(ks, "k"), model=str(constant(models, "model")))
        one = pa.array([found.to_struct_array().to_pylist()], pa.list_(RESULT))
        return repeat(a, one)

    return run
