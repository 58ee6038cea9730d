"""The UDF behind ``embed_fuzzy_join``: typo-tolerant matches of two tables' string columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.udfs.duckdb.macros import fingerprint_sql, quote_ident, sql_literal
from embed_sql.udfs.duckdb.read import Context, check_columns, constant, reader
from embed_sql.udfs.duckdb.results import Arrays, lists, repeat, struct

if TYPE_CHECKING:
    import duckdb

    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["FUZZY", "make_fuzzy_join"]


FUZZY = pa.list_(
    pa.struct(
        [
            ("left_text", pa.string()),
            ("right_text", pa.string()),
            ("char_score", pa.float32()),
            ("semantic_score", pa.float32()),
            ("score", pa.float32()),
            ("rank", pa.int32()),
        ]
    )
)


def make_fuzzy_join(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_fuzzy_join``: typo-tolerant matches of two tables' string columns."""
    from embed_sql.pipelines.fuzzy import fuzzy_join

    def run(
        lefts: Arrays,
        rights: Arrays,
        texts: Arrays,
        right_texts: Arrays,
        ks: Arrays,
        keys: Arrays,
        right_keys: Arrays,
        scorers: Arrays,
        semantics: Arrays,
        thresholds: Arrays,
        contexts: Arrays,
        left_fps: Arrays,
        right_fps: Arrays,
    ) -> pa.Array:
        context = Context.from_sql(constant(contexts, "the context"))
        sides = []
        with reader(state, context) as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                for tables, col, key, fps, side in (
                    (lefts, texts, keys, left_fps, "left"),
                    (rights, right_texts, right_keys, right_fps, "right"),
                ):
                    sides.append(
                        _read_pair(
                            cur,
                            str(constant(tables, f"the {side} table")),
                            str(constant(key, f"the {side} key")),
                            str(constant(col, f"the {side} text column")),
                            context,
                            constant(fps, "the fingerprint", allow_null=True),
                        )
                    )
            finally:
                cur.execute("COMMIT")
        semantic = float(constant(semantics, "semantic"))
        found = fuzzy_join(
            sides[0],
            sides[1],
            k=constant(ks, "k"),
            text="text",
            key="key",
            scorer=str(constant(scorers, "scorer")),
            semantic=semantic,
            threshold=constant(thresholds, "threshold", allow_null=True),
            model=state.default,
        )
        children = struct(
            {
                "left_text": found.column("left_key").combine_chunks(),
                "right_text": found.column("right_key").combine_chunks(),
                **{c: found.column(c).combine_chunks() for c in FUZZY.value_type.names[2:]},
            }
        )
        return repeat(lefts, lists(np.array([found.num_rows]), children, FUZZY))

    return run


def _read_pair(
    cur: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    text: str,
    context: Context | None,
    expected: str | None,
) -> pa.Table:
    """Read a table's key and text columns as ``key`` (as text) and ``text``."""
    if context is not None:
        context.check_not_temp(table, "embed_fuzzy_join")
    types = check_columns(cur, table, {})
    for column, role in ((key, "key"), (text, "text")):
        if column not in types:
            msg = (
                f"{role} column {column!r} is not in table {table!r}; its columns are {list(types)}"
            )
            raise ColumnNotFoundError(msg)
    if not types[text].startswith("VARCHAR"):
        msg = (
            f"column {text!r} of {table!r} is {types[text]}, not VARCHAR; fuzzy_join matches "
            "strings: cast it in a view (CAST(x AS VARCHAR))"
        )
        raise InputTypeError(msg)
    source = f"query_table({sql_literal(table)})"
    (now,) = cur.execute(fingerprint_sql(source, key, text)).fetchall()[0]
    if expected is not None and expected != now:
        msg = (
            f"embed_fuzzy_join: table {table!r} differs between your transaction and "
            "committed data; COMMIT first, so embed_sql reads the rows you see"
        )
        raise InvalidParameterError(msg)
    return cur.sql(
        f"SELECT {quote_ident(key)}::VARCHAR AS key, {quote_ident(text)} AS text FROM {source}"
    ).to_arrow_table()
