"""SQL text of the DuckDB table macros (no duckdb import here; see :mod:`.duckdb`).

Every macro takes table, index and column names as strings and never splices them into
SQL: tables are read with ``query_table(name)`` and columns are picked with
``COLUMNS(lambda c: c = name)``. Index results carry row labels; keys come back in their
own type by joining the index's key table, ``embed_sql_indexes.conn_<n>.<index>``: an
in-memory database attached beside the user's, one schema per registered connection. (Not
TEMP tables: a UDF must work on a cursor, and only an attached database is shared with the
cursors, which lets ``embed_create_index`` run from SQL.)
"""

from __future__ import annotations

import re

__all__ = ["KEYS_CATALOG", "check_index_name", "keys_schema", "keys_table", "macros", "quote_ident"]

KEYS_CATALOG = "embed_sql_indexes"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_ident(name: str) -> str:
    """Quote a (possibly schema-qualified) name as SQL identifiers.

    Examples
    --------
    >>> print(quote_ident('main.docs'), quote_ident('a"b'))
    "main"."docs" "a""b"
    """
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def check_index_name(name: object) -> str:
    """Return ``name`` if it can name an index (a plain SQL identifier), else raise ValueError."""
    if not isinstance(name, str) or not _NAME.match(name):
        msg = (
            f"index name {name!r} is not allowed; use letters, digits and underscores, "
            "not starting with a digit (e.g. 'docs_index')"
        )
        raise ValueError(msg)
    return name


def keys_schema(token: int) -> str:
    """Return the schema (in :data:`KEYS_CATALOG`) of one connection's key tables, quoted."""
    return f"{quote_ident(KEYS_CATALOG)}.{quote_ident(f'conn_{token}')}"


def keys_table(token: int, index: str) -> str:
    """Return the table mapping an index's row labels to the user's keys, quoted."""
    return f"{keys_schema(token)}.{quote_ident(index)}"


def macros(token: int) -> tuple[str, ...]:
    """Return the macros of one registered connection (its key tables in its own schema)."""
    keys = f"'{KEYS_CATALOG}.conn_{token}.' || idx"
    return tuple(m.replace("__KEYS_OF_IDX__", keys) for m in _MACROS)


_MACROS = (
    # named indexes from SQL; each returns the number of vectors indexed
    """
    CREATE OR REPLACE TEMP MACRO embed_create_index(idx, tbl, vec := 'v', key := 'id',
                                                    metric := 'cos', exact := false,
                                                    path := NULL) AS
        embed_sql_create_index(idx, tbl, vec, key, metric, exact, path)
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_load_index(idx, path) AS embed_sql_load_index(idx, path)
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_drop_index(idx) AS embed_sql_drop_index(idx)
    """,
    # k nearest neighbours of one vector, keys in their own type
    """
    CREATE OR REPLACE TEMP MACRO knn(vec, idx, k) AS (
        SELECT list({'rank': t.m.rank, 'key': kk.key, 'distance': t.m.distance}
                    ORDER BY t.m.rank)
        FROM (SELECT unnest(embed_sql_knn(vec, idx, k)) AS m) AS t
        JOIN query_table(__KEYS_OF_IDX__) AS kk ON kk.label = t.m.label
    )
    """,
    """
    CREATE OR REPLACE TEMP MACRO knn_join(tbl, idx, k := 10, vec := 'v', key := 'id',
                                          allowed := NULL, allowed_key := 'id') AS TABLE
        WITH m AS (
            SELECT COLUMNS(lambda c: c = key) AS left_key,
                   unnest(embed_sql_knn_where(COLUMNS(lambda c: c = vec), idx, k,
                                              allowed, allowed_key)) AS s
            FROM query_table(tbl)
        )
        SELECT m.left_key, kk.key AS right_key, m.s.distance AS distance, m.s.rank AS rank
        FROM m JOIN query_table(__KEYS_OF_IDX__) AS kk ON kk.label = m.s.label
        ORDER BY m.left_key, m.s.rank
    """,
    """
    CREATE OR REPLACE TEMP MACRO range_join(tbl, idx, threshold, vec := 'v', key := 'id')
    AS TABLE
        WITH m AS (
            SELECT COLUMNS(lambda c: c = key) AS left_key,
                   unnest(embed_sql_range(COLUMNS(lambda c: c = vec), idx, threshold)) AS s
            FROM query_table(tbl)
        )
        SELECT m.left_key, kk.key AS right_key, m.s.distance AS distance
        FROM m JOIN query_table(__KEYS_OF_IDX__) AS kk ON kk.label = m.s.label
        ORDER BY m.left_key, m.s.distance, kk.key
    """,
    """
    CREATE OR REPLACE TEMP MACRO semantic_search(idx, query, k := 10) AS TABLE
        SELECT kk.key AS key, t.m.distance AS distance, t.m.rank AS rank
        FROM (SELECT unnest(embed_sql_knn(embed_sql_query_vector(idx, query), idx, k)) AS m) AS t
        JOIN query_table(__KEYS_OF_IDX__) AS kk ON kk.label = t.m.label
        ORDER BY rank
    """,
    """
    CREATE OR REPLACE TEMP MACRO dedup(tbl, threshold, vec := 'v', key := 'id',
                                       metric := 'cos') AS TABLE
        WITH g AS (
            SELECT unnest(embed_sql_dedup(tbl, vec, key, threshold, metric)) AS s
        ),
        src AS (
            SELECT COLUMNS(lambda c: c = key) AS key,
                   row_number() OVER (ORDER BY COLUMNS(lambda c: c = key)) - 1 AS pos
            FROM query_table(tbl)
        )
        SELECT src.key AS key, g.s.grp AS "group", rep.key AS representative, g.s.keep AS keep
        FROM g JOIN src ON src.pos = g.s.pos JOIN src AS rep ON rep.pos = g.s.grp
        ORDER BY src.pos
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_chunks(tbl, col, max_tokens := 256, overlap := 32,
                                              key := 'id') AS TABLE
        SELECT COLUMNS(lambda c: c = key) AS key,
               unnest(embed_sql_chunks(COLUMNS(lambda c: c = col), max_tokens, overlap),
                      recursive := true)
        FROM query_table(tbl)
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_drift(ref, cur, vec := 'v', min_votes := 2, seed := 0)
    AS TABLE
        SELECT unnest(embed_sql_drift(ref, cur, vec, min_votes, seed), recursive := true)
    """,
    # novelty: distance to the k-th nearest row of a reference index, and its calibrated cut
    """
    CREATE OR REPLACE TEMP MACRO embed_outlier_score(vec, idx, k := 5) AS
        embed_sql_outlier_score(vec, idx, k)
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_outlier_threshold(idx, k := 5, quantile := 0.99) AS
        embed_sql_outlier_threshold(idx, k, quantile)
    """,
    """
    CREATE OR REPLACE TEMP MACRO embed_is_outlier(vec, idx, k := 5, quantile := 0.99) AS
        embed_sql_outlier_score(vec, idx, k) > embed_sql_outlier_threshold(idx, k, quantile)
    """,
    """
    CREATE OR REPLACE TEMP MACRO cluster(tbl, k := NULL, threshold := NULL, vec := 'v',
                                         key := 'id', metric := 'cos', seed := 0) AS TABLE
        WITH g AS (
            SELECT unnest(embed_sql_cluster(tbl, vec, key, k, threshold, metric, seed)) AS s
        ),
        src AS (
            SELECT COLUMNS(lambda c: c = key) AS key,
                   row_number() OVER (ORDER BY COLUMNS(lambda c: c = key)) - 1 AS pos
            FROM query_table(tbl)
        )
        SELECT src.key AS key, g.s.cluster AS cluster
        FROM g JOIN src ON src.pos = g.s.pos
        ORDER BY src.pos
    """,
)
