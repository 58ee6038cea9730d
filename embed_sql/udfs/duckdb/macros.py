"""SQL text of the DuckDB macros, and the identifiers they use (no duckdb import here).

Every macro is ``embed_``-prefixed and takes table, index and column names as strings; none
is spliced into SQL: tables are read with ``query_table(name)`` in the caller's own context
(so ``USE``, ``search_path`` and TEMP tables resolve as in the SQL around the call) and
columns are picked with ``COLUMNS(lambda c: c = name)``.

Three helper macros carry the caller's context to the Python functions, which read through
a connection of their own:

- ``embed_sql_ctx()``: the caller's database, schema, ``search_path`` and TEMP names, so a
  table name resolves to the same table (a TEMP table cannot be seen from another
  connection: it is refused by name);
- ``embed_sql_fp(tbl, key, vec)``: the table's fingerprint, row count and the sum of
  ``hash(key, vector)`` over the rows, computed by DuckDB in one scan of the caller's
  snapshot. A build compares it with its own read (so an uncommitted change cannot slip
  between the two) and every query compares it with the index's (so a stale index refuses
  to answer instead of returning deleted rows);
- ``embed_sql_fp_of(idx)``: the same for an index's source table;
- ``embed_sql_fp_rows(idx, wanted)``: the sum of ``hash`` of whole rows of an index's
  table, for the operators that read more of it than the key and vector (``"0:0"`` when
  not ``wanted``).

Vector arguments are cast to ``FLOAT[]`` in the macros, so a ``DOUBLE[d]`` column works (and
a column that is no vector fails with DuckDB's cast error, naming its type). Index results
carry row labels; keys come back in their own type by joining the index's
key table in the in-memory catalog :data:`STATE_CATALOG`, attached beside the user's
databases and shared by every connection to them.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "MACROS",
    "STATE_CATALOG",
    "check_index_name",
    "fingerprint_of",
    "fingerprint_sql",
    "keys_table",
    "quote_ident",
    "row_hash_sql",
    "split_name",
    "sql_literal",
]

STATE_CATALOG = "embed_sql"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_name(name: str) -> list[str]:
    """Split a possibly qualified, possibly quoted SQL name into its parts.

    Examples
    --------
    >>> split_name('"my db".main."a.b"')
    ['my db', 'main', 'a.b']
    """
    parts: list[str] = []
    i, n = 0, len(name)
    while i <= n:
        if i < n and name[i] == '"':
            j, buf = i + 1, []
            while j < n:
                if name[j] == '"' and j + 1 < n and name[j + 1] == '"':
                    buf.append('"')
                    j += 2
                elif name[j] == '"':
                    break
                else:
                    buf.append(name[j])
                    j += 1
            parts.append("".join(buf))
            i = j + 1
        else:
            j = name.find(".", i)
            j = n if j < 0 else j
            parts.append(name[i:j].strip())
            i = j
        if i < n and name[i] == ".":
            i += 1
            continue
        break
    return parts


def quote_ident(*parts: str) -> str:
    """Quote name parts as one qualified SQL identifier.

    Examples
    --------
    >>> print(quote_ident("main", "docs"), quote_ident('a"b'))
    "main"."docs" "a""b"
    """
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def check_index_name(name: object) -> str:
    """Return ``name`` in lower case if it can name an index, else raise ValueError.

    Index names are SQL identifiers, so, like DuckDB's, they ignore case: ``'IX'`` and
    ``'ix'`` name the same index.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        msg = (
            f"index name {name!r} is not allowed; use letters, digits and underscores, "
            "not starting with a digit (e.g. 'docs_index')"
        )
        raise ValueError(msg)
    return name.lower()


def keys_table(index: str) -> str:
    """Return the table mapping an index's row labels to the user's keys, quoted."""
    return quote_ident(STATE_CATALOG, "main", f"keys_{index}")


def row_hash_sql(key: str, vec: str) -> str:
    """Return the per-row hash the fingerprint sums: ``hash(key, vector)`` in table order."""
    return f"hash(*COLUMNS(lambda c: c = {sql_literal(key)} OR c = {sql_literal(vec)}))"


def fingerprint_sql(table: str, key: str, vec: str) -> str:
    """Return the SELECT computing a table's fingerprint (as ``embed_sql_fp`` does)."""
    return (
        "SELECT count(*)::VARCHAR || ':' || "
        f"coalesce(sum({row_hash_sql(key, vec)}), 0)::VARCHAR FROM {table}"
    )


def fingerprint_of(hashes: np.ndarray) -> str:
    """Return the fingerprint of a read from its per-row hashes (as ``embed_sql_fp`` would).

    DuckDB sums the unsigned 64-bit hashes exactly (as HUGEINT); so does this, by halves.

    Examples
    --------
    >>> fingerprint_of(np.array([2**64 - 1, 2], dtype=np.uint64))
    '2:18446744073709551617'
    """
    h = np.asarray(hashes, dtype=np.uint64)
    high = int((h >> np.uint64(32)).sum(dtype=np.uint64))
    low = int((h & np.uint64(0xFFFFFFFF)).sum(dtype=np.uint64))
    return f"{len(h)}:{(high << 32) + low}"


def sql_literal(text: str) -> str:
    """Quote ``text`` as a SQL string literal.

    Examples
    --------
    >>> print(sql_literal("it's"))
    'it''s'
    """
    return "'" + text.replace("'", "''") + "'"


_CTX = """
    [current_database(), current_schema(), current_setting('search_path'),
     coalesce((SELECT string_agg(lower(n), chr(31)) FROM (
         SELECT table_name AS n FROM duckdb_tables() WHERE temporary
         UNION ALL SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal)), '')]
"""

MACROS = (
    # -- context helpers ------------------------------------------------------------------
    f"MACRO embed_sql_ctx() AS {_CTX}",
    """
    MACRO embed_sql_fp(tbl, key, vec) AS (
        SELECT count(*)::VARCHAR || ':' ||
               coalesce(sum(hash(*COLUMNS(lambda c: c = key OR c = vec))), 0)::VARCHAR
        FROM query_table(tbl))
    """,
    """
    MACRO embed_sql_fp_rows(idx, wanted) AS (
        SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(*COLUMNS(*))), 0)::VARCHAR
        FROM query_table(embed_sql_index_source(idx)) WHERE wanted)
    """,
    """
    MACRO embed_sql_fp_of(idx) AS
        embed_sql_fp(embed_sql_index_source(idx), embed_sql_index_key(idx),
                     embed_sql_index_vec(idx))
    """,
    # -- named indexes; each returns the number of vectors indexed ------------------------
    """
    MACRO embed_create_index(idx, tbl, vec := 'v', key := 'id', metric := 'cos',
                             exact := false, path := NULL, M := NULL,
                             ef_construction := NULL, ef_search := NULL,
                             preset := 'default', dtype := 'f16', rescore := NULL) AS
        embed_sql_create_index(idx, tbl, vec, key, metric, exact, path, M, ef_construction,
                               ef_search, preset, dtype, rescore, embed_sql_ctx(),
                               embed_sql_fp(tbl, key, vec))
    """,
    """
    MACRO embed_load_index(idx, path, verify := true) AS
        embed_sql_load_index(idx, path, verify, embed_sql_ctx())
    """,
    """
    MACRO embed_refresh_index(idx) AS embed_sql_refresh_index(idx, embed_sql_fp_of(idx))
    """,
    """
    MACRO embed_drop_index(idx) AS embed_sql_drop_index(idx)
    """,
    # -- k nearest neighbours of one vector, keys in their own type -----------------------
    # (NULL for a NULL vector; an empty list, not the NULL of an aggregate over no rows,
    # for a vector with no neighbours, as over an empty index)
    """
    MACRO embed_knn(vec, idx, k := 10) AS CASE WHEN vec IS NULL THEN NULL ELSE coalesce((
        SELECT list({'rank': t.m.rank, 'key': kk.key, 'distance': t.m.distance}
                    ORDER BY t.m.rank)
        FROM (SELECT unnest(embed_sql_knn(vec::FLOAT[], idx, embed_sql_int(k, 'k'), NULL, NULL,
                                          embed_sql_fp_of(idx), embed_sql_ctx(), NULL)) AS m) AS t
        JOIN query_table(embed_sql_index_keys(idx) || embed_sql_check('k', k, NULL)) AS kk
            ON kk.label = t.m.label
    ), []) END
    """,
    # the UDF's lists are materialized before they are unnested: unnesting them in the UDF's
    # own pipeline cost ~6 % more at 100k x 100k (benchmarks/sql_profile.py)
    """
    MACRO embed_knn_join(tbl, idx, k := 10, vec := 'v', key := 'id', allowed := NULL,
                         allowed_key := 'id', allow_models := NULL) AS TABLE
        WITH m AS MATERIALIZED (
            SELECT COLUMNS(lambda c: c = key) AS left_key,
                   embed_sql_knn(COLUMNS(lambda c: c = vec)::FLOAT[], idx, embed_sql_int(k, 'k'),
                                 allowed, allowed_key, embed_sql_fp_of(idx), embed_sql_ctx(),
                                 allow_models) AS matches
            FROM query_table(tbl)
        ),
        u AS (SELECT left_key, unnest(matches, recursive := true) FROM m)
        SELECT u.left_key, kk.key AS right_key, u.distance AS distance, u.rank AS rank
        FROM u JOIN query_table(embed_sql_index_keys(idx) || embed_sql_check('k', k, NULL)) AS kk
            ON kk.label = u.label
        ORDER BY u.left_key, u.rank
    """,
    """
    MACRO embed_range_join(tbl, idx, threshold, vec := 'v', key := 'id',
                           allow_models := NULL) AS TABLE
        WITH m AS MATERIALIZED (
            SELECT COLUMNS(lambda c: c = key) AS left_key,
                   embed_sql_range(COLUMNS(lambda c: c = vec)::FLOAT[], idx, threshold,
                                   embed_sql_fp_of(idx), allow_models) AS matches
            FROM query_table(tbl)
        ),
        u AS (SELECT left_key, unnest(matches, recursive := true) FROM m)
        SELECT u.left_key, kk.key AS right_key, u.distance AS distance
        FROM u JOIN query_table(embed_sql_index_keys(idx)
                                || embed_sql_check('threshold', threshold, NULL)) AS kk
            ON kk.label = u.label
        ORDER BY u.left_key, u.distance, kk.key
    """,
    # a text query: by vectors, or hybrid (BM25 over a text column of the index's table,
    # fused by reciprocal rank); the whole-row fingerprint is only computed when that
    # column is read (for hybrid := true or document := ...)
    """
    MACRO embed_search(idx, query, k := 10, hybrid := false, text := NULL, weight := 0.5,
                       document := NULL) AS TABLE
        SELECT kk.key AS key, t.m.distance AS distance, t.m.rank AS rank,
               t.m.score AS score, t.m.bm25 AS bm25
        FROM (SELECT unnest(embed_sql_search(
                  idx, query, embed_sql_int(k, 'k'), hybrid, text, weight, document,
                  embed_sql_ctx(), embed_sql_fp_of(idx),
                  embed_sql_fp_rows(idx, hybrid OR document IS NOT NULL))) AS m) AS t
        JOIN query_table(embed_sql_index_keys(idx)) AS kk ON kk.label = t.m.label
        ORDER BY rank
    """,
    # -- whole-table operators: keys come back by value from the same read ----------------
    # (LEFT joins: an inner join with no key to match, as over an empty table or only NULL
    # keys, lets DuckDB skip the UDF, and with it the checks that refuse bad input)
    """
    MACRO embed_dedup(tbl, threshold, vec := 'v', key := 'id', metric := 'cos') AS TABLE
        WITH g AS (
            SELECT unnest(embed_sql_dedup(tbl, vec, key, threshold, metric, embed_sql_ctx(),
                                          embed_sql_fp(tbl, key, vec))) AS s
        ),
        src AS (
            SELECT COLUMNS(lambda c: c = key) AS key,
                   COLUMNS(lambda c: c = key)::VARCHAR AS key_text
            FROM query_table(tbl)
        )
        SELECT src.key AS key, g.s.group_id AS group_id, rep.key AS representative,
               g.s.keep AS keep
        FROM g LEFT JOIN src ON src.key_text = g.s.key_text
        LEFT JOIN src AS rep ON rep.key_text = g.s.representative_text
        ORDER BY g.s.row
    """,
    """
    MACRO embed_cluster(tbl, k := NULL, threshold := NULL, vec := 'v', key := 'id',
                        metric := 'cos', seed := 0) AS TABLE
        WITH g AS (
            SELECT unnest(embed_sql_cluster(tbl, vec, key, embed_sql_int(k, 'k'), threshold, metric,
                                            embed_sql_int(seed, 'seed'),
                                            embed_sql_ctx(), embed_sql_fp(tbl, key, vec))) AS s
        ),
        src AS (
            SELECT COLUMNS(lambda c: c = key) AS key,
                   COLUMNS(lambda c: c = key)::VARCHAR AS key_text
            FROM query_table(tbl)
        )
        SELECT src.key AS key, g.s.cluster AS cluster
        FROM g LEFT JOIN src ON src.key_text = g.s.key_text
        ORDER BY g.s.row
    """,
    """
    MACRO embed_clean(text, repair := false, strip_html := true, lowercase := false) AS
        embed_sql_clean(text, repair, strip_html, lowercase)
    """,
    """
    MACRO embed_chunks(tbl, col, max_tokens := 256, overlap := 32, key := 'id') AS TABLE
        SELECT COLUMNS(lambda c: c = key) AS key,
               unnest(embed_sql_chunks(COLUMNS(lambda c: c = col),
                                       embed_sql_int(max_tokens, 'max_tokens'),
                                       embed_sql_int(overlap, 'overlap')),
                      recursive := true)
        FROM query_table(tbl || embed_sql_check('chunks', max_tokens, overlap))
    """,
    """
    MACRO embed_drift(ref, cur, vec := 'v', alpha := 0.05, seed := 0, min_votes := NULL) AS TABLE
        SELECT unnest(embed_sql_drift(ref, cur, vec, alpha, seed, min_votes, embed_sql_ctx()),
                      recursive := true)
    """,
    # -- recommendations: items for each user of an interactions table ------------------
    # (a LEFT join to the users, as in embed_dedup: an inner one with no user to match
    # would skip the UDF and its checks)
    """
    MACRO embed_recommend(tbl, idx, user_key := 'user_id', item_key := 'item_id', k := 10,
                          weight := NULL, time := NULL, half_life := NULL,
                          diversity := 0.0) AS TABLE
        WITH r AS (
            SELECT unnest(embed_sql_recommend(tbl, idx, user_key, item_key,
                                              embed_sql_int(k, 'k'), weight, time,
                                              half_life, diversity, embed_sql_ctx(),
                                              embed_sql_fp(tbl, user_key, item_key),
                                              embed_sql_fp_of(idx)), recursive := true)
        ),
        users AS (
            SELECT DISTINCT COLUMNS(lambda c: c = user_key) AS user_key,
                   COLUMNS(lambda c: c = user_key)::VARCHAR AS user_text
            FROM query_table(tbl)
        )
        SELECT users.user_key, kk.key AS item_key, r.score AS score, r.rank AS rank
        FROM r LEFT JOIN users ON users.user_text = r.user_text
        JOIN query_table(embed_sql_index_keys(idx)) AS kk ON kk.label = r.item_label
        ORDER BY users.user_key, r.rank
    """,
    # -- fuzzy matching: typo-tolerant matches of two string columns -------------------
    # (LEFT joins, as in embed_dedup: an inner join with no key to match skips the UDF)
    """
    MACRO embed_fuzzy_join(left_tbl, right_tbl, text, right_text, k := 5, key := 'id',
                           right_key := NULL, scorer := 'ratio', semantic := 0.0,
                           threshold := NULL) AS TABLE
        WITH m AS (
            SELECT unnest(embed_sql_fuzzy_join(
                       left_tbl, right_tbl, text, right_text, embed_sql_int(k, 'k'), key,
                       coalesce(right_key, key), scorer, semantic, threshold, embed_sql_ctx(),
                       embed_sql_fp(left_tbl, key, text),
                       embed_sql_fp(right_tbl, coalesce(right_key, key), right_text)),
                   recursive := true)
        ),
        lk AS (
            SELECT DISTINCT COLUMNS(lambda c: c = key) AS key,
                   COLUMNS(lambda c: c = key)::VARCHAR AS key_text
            FROM query_table(left_tbl)
        ),
        rk AS (
            SELECT DISTINCT COLUMNS(lambda c: c = coalesce(right_key, key)) AS key,
                   COLUMNS(lambda c: c = coalesce(right_key, key))::VARCHAR AS key_text
            FROM query_table(right_tbl)
        )
        SELECT lk.key AS left_key, rk.key AS right_key, m.char_score AS char_score,
               m.semantic_score AS semantic_score, m.score AS score, m.rank AS rank
        FROM m LEFT JOIN lk ON lk.key_text = m.left_text
        LEFT JOIN rk ON rk.key_text = m.right_text
        ORDER BY lk.key, m.rank
    """,
    # -- zero-shot labels: the closest label per text, with the database's embed model ----
    """
    MACRO embed_classify(text, labels, template := 'This text is about {}.', model := NULL) AS
        embed_sql_classify(text, labels, template, model)
    """,
    # -- analogies: a is to b as c is to ? (word vectors) ---------------------------------
    """
    MACRO embed_analogy(a, b, c, k := 5, model := 'glove-6b-50d') AS TABLE
        SELECT unnest(embed_sql_analogy(a, b, c, embed_sql_int(k, 'k'), model), recursive := true)
    """,
    # -- novelty: distance to the k-th nearest row of a reference index, and its cut ------
    """
    MACRO embed_outlier_score(vec, idx, k := 5) AS
        embed_sql_outlier_score(vec::FLOAT[], idx, embed_sql_int(k, 'k'), embed_sql_fp_of(idx))
    """,
    """
    MACRO embed_outlier_threshold(idx, k := 5, quantile := 0.99) AS
        embed_sql_outlier_threshold(idx, embed_sql_int(k, 'k'), quantile, embed_sql_fp_of(idx))
    """,
    """
    MACRO embed_is_outlier(vec, idx, k := 5, quantile := 0.99) AS
        embed_sql_outlier_score(vec::FLOAT[], idx, embed_sql_int(k, 'k'), embed_sql_fp_of(idx))
        > embed_sql_outlier_threshold(idx, embed_sql_int(k, 'k'), quantile, embed_sql_fp_of(idx))
    """,
)
