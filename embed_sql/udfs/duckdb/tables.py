"""The UDFs over whole tables and texts: index admin, dedup, cluster, drift, chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InputTypeError
from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.read import (
    Context,
    constant,
    fixed_vectors,
    read_source,
    reader,
)
from embed_sql.udfs.duckdb.results import Arrays, lists, repeat, struct

if TYPE_CHECKING:
    from embed_sql.udfs.duckdb.state import DatabaseState


# -- named indexes -------------------------------------------------------------------------


def make_create_index(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_create_index``: read the caller's table, build, attach."""

    def create(
        names: Arrays,
        tables: Arrays,
        vecs: Arrays,
        keys: Arrays,
        metrics: Arrays,
        exacts: Arrays,
        paths: Arrays,
        ms: Arrays,
        efcs: Arrays,
        efss: Arrays,
        presets: Arrays,
        dtypes: Arrays,
        rescores: Arrays,
        contexts: Arrays,
        fingerprints: Arrays,
    ) -> pa.Array:
        context = Context.from_sql(constant(contexts, "the context"))
        rescore = constant(rescores, "rescore", allow_null=True)
        hnsw = {
            "M": constant(ms, "M", allow_null=True),
            "ef_construction": constant(efcs, "ef_construction", allow_null=True),
            "ef_search": constant(efss, "ef_search", allow_null=True),
        }
        with reader(state, context) as cur:
            named = indexes.build(
                state,
                cur,
                str(constant(names, "the index name")),
                str(constant(tables, "the table")),
                vec=str(constant(vecs, "vec")),
                key=str(constant(keys, "key")),
                context=context,
                expected=str(constant(fingerprints, "the fingerprint")),
                metric=str(constant(metrics, "metric")),
                exact=bool(constant(exacts, "exact")),
                preset=str(constant(presets, "preset")),
                dtype=str(constant(dtypes, "dtype")),
                rescore=None if rescore is None else bool(rescore),
                path=_optional_path(constant(paths, "path", allow_null=True)),
                **{k: v for k, v in hnsw.items() if v is not None},
            )
        return pa.array(np.full(len(names), len(named.index)), pa.int64())

    return create


def _optional_path(value: str | None) -> str | None:
    return None if value is None else str(value)


def make_load_index(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_load_index``: open a saved index under a name."""

    def load(names: Arrays, paths: Arrays, verifies: Arrays, contexts: Arrays) -> pa.Array:
        named = indexes.load(
            state,
            str(constant(names, "the index name")),
            str(constant(paths, "path")),
            context=Context.from_sql(constant(contexts, "the context")),
            verify=bool(constant(verifies, "verify")),
        )
        return pa.array(np.full(len(names), len(named.index)), pa.int64())

    return load


def make_refresh_index(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_refresh_index``: apply the table's changes to the index."""

    def refresh(names: Arrays, fingerprints: Arrays) -> pa.Array:
        removed, added = indexes.refresh(
            state,
            str(constant(names, "the index name")),
            constant(fingerprints, "the fingerprint", allow_null=True),
        )
        one = struct(
            {"removed": pa.array([removed], pa.int64()), "added": pa.array([added], pa.int64())}
        )
        return repeat(names, one)

    return refresh


def make_drop_index(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_drop_index``: forget a named index."""

    def drop(names: Arrays) -> pa.Array:
        found = indexes.drop(state, str(constant(names, "the index name")))
        return pa.array(np.full(len(names), found), pa.bool_())

    return drop


# -- whole-table operators ------------------------------------------------------------------

DEDUP = pa.list_(
    pa.struct(
        [
            ("row", pa.int64()),
            ("key_text", pa.string()),
            ("group_id", pa.int64()),
            ("representative_text", pa.string()),
            ("keep", pa.bool_()),
        ]
    )
)
CLUSTER = pa.list_(
    pa.struct([("row", pa.int64()), ("key_text", pa.string()), ("cluster", pa.int64())])
)


def _read_for(
    state: DatabaseState,
    operation: str,
    tables: Arrays,
    vecs: Arrays,
    keys: Arrays,
    contexts: Arrays,
    fingerprints: Arrays,
) -> pa.Table:
    context = Context.from_sql(constant(contexts, "the context"))
    with reader(state, context) as cur:
        src = read_source(
            cur,
            str(constant(tables, "the table")),
            str(constant(vecs, "vec")),
            str(constant(keys, "key")),
            operation=operation,
            context=context,
            expected=str(constant(fingerprints, "the fingerprint")),
        )
    return pa.table({"id": src.keys, "v": src.vectors})


def make_dedup(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_dedup``: near-duplicate groups of a table's rows."""
    from embed_sql.vectors.cluster import dedup

    def run(
        tables: Arrays,
        vecs: Arrays,
        keys: Arrays,
        thresholds: Arrays,
        metrics: Arrays,
        contexts: Arrays,
        fingerprints: Arrays,
    ) -> pa.Array:
        threshold = constant(thresholds, "threshold")
        metric = str(constant(metrics, "metric"))
        table = _read_for(state, "embed_dedup", tables, vecs, keys, contexts, fingerprints)
        flags = dedup(table, float(threshold), vec="v", key="id", metric=metric)
        text = table.column("id").cast(pa.string()).combine_chunks()
        group = flags.column("group_id").combine_chunks()
        children = struct(
            {
                "row": pa.array(np.arange(table.num_rows), pa.int64()),
                "key_text": text,
                "group_id": group,
                "representative_text": text.take(group),
                "keep": flags.column("keep").combine_chunks(),
            }
        )
        return repeat(tables, lists(np.array([table.num_rows]), children, DEDUP))

    return run


def make_cluster(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_cluster``: k-means or threshold clusters of a table's rows."""
    from embed_sql.vectors.cluster import cluster

    def run(
        tables: Arrays,
        vecs: Arrays,
        keys: Arrays,
        ks: Arrays,
        thresholds: Arrays,
        metrics: Arrays,
        seeds: Arrays,
        contexts: Arrays,
        fingerprints: Arrays,
    ) -> pa.Array:
        k = constant(ks, "k", allow_null=True)
        threshold = constant(thresholds, "threshold", allow_null=True)
        metric, seed = str(constant(metrics, "metric")), constant(seeds, "seed")
        table = _read_for(state, "embed_cluster", tables, vecs, keys, contexts, fingerprints)
        res = cluster(
            table, k=k, threshold=threshold, vec="v", key="id", metric=metric, seed=int(seed)
        )
        children = struct(
            {
                "row": pa.array(np.arange(table.num_rows), pa.int64()),
                "key_text": table.column("id").cast(pa.string()).combine_chunks(),
                "cluster": res.table.column("cluster").combine_chunks(),
            }
        )
        return repeat(tables, lists(np.array([table.num_rows]), children, CLUSTER))

    return run


DRIFT = pa.list_(
    pa.struct(
        [
            ("test", pa.string()),
            ("statistic", pa.float64()),
            ("p_value", pa.float64()),
            ("p_adjusted", pa.float64()),
            ("threshold", pa.string()),
            ("drift", pa.bool_()),
            ("detail", pa.string()),
        ]
    )
)
_DRIFT_SAMPLE = 50_000  # rows per side: the most any drift test uses (see pipelines.drift)


def _read_drift_side(
    state: DatabaseState, table: str, vec: str, seed: int, context: Context | None
) -> pa.Table:
    """Read one side's vector column (or text column, embedded), sampled when large."""
    if context is not None:
        context.check_not_temp(table, "embed_drift")
    lit = "'" + table.replace("'", "''") + "'"
    with reader(state, context) as cur:
        from embed_sql.udfs.duckdb.read import check_columns

        types = check_columns(cur, table, {vec: "column"})
        (rows,) = cur.sql(f"SELECT count(*) FROM query_table({lit})").fetchall()[0]
        sample = (
            f" USING SAMPLE reservoir({_DRIFT_SAMPLE} ROWS) REPEATABLE ({int(seed)})"
            if rows > _DRIFT_SAMPLE
            else ""  # small tables in table order, so SQL and Python give the same report
        )
        col = '"' + vec.replace('"', '""') + '"'
        data = cur.sql(f"SELECT {col} AS v FROM query_table({lit}){sample}").to_arrow_table()
    column = data.column("v")
    if types[vec] == "VARCHAR":
        encoder = state.default
        return pa.table([encoder.encode(column)], schema=pa.schema([encoder.field("v")]))
    if types[vec].endswith("]"):
        return pa.table({"v": fixed_vectors(column, vec, table)})
    msg = (
        f"column {vec!r} of {table!r} has type {types[vec]}; a drift check needs a vector "
        "column (FLOAT[d]) or a text column to embed"
    )
    raise InputTypeError(msg)


def make_drift(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_drift``: the drift report of two tables, one row per test."""

    def run(
        refs: Arrays,
        curs: Arrays,
        vecs: Arrays,
        alphas: Arrays,
        seeds: Arrays,
        votes: Arrays,
        contexts: Arrays,
    ) -> pa.Array:
        from embed_sql.pipelines.drift import DriftCheck
        from embed_sql.pipelines.drift.check import check_alpha, check_min_votes

        check_min_votes(constant(votes, "min_votes", allow_null=True))
        vec = str(constant(vecs, "vec"))
        seed = int(constant(seeds, "seed"))
        alpha = check_alpha(constant(alphas, "alpha"))
        context = Context.from_sql(constant(contexts, "the context"))
        ref, cur = (
            _read_drift_side(state, str(constant(t, "the table")), vec, seed, context)
            for t in (refs, curs)
        )
        rows = DriftCheck(ref, alpha=alpha, seed=seed).check(cur).to_arrow()
        children = struct(
            {n: c.combine_chunks() for n, c in zip(rows.column_names, rows.columns, strict=True)}
        )
        return repeat(refs, lists(np.array([rows.num_rows]), children, DRIFT))

    return run


# -- text ---------------------------------------------------------------------------------

CHUNKS = pa.list_(
    pa.struct(
        [
            ("chunk", pa.int32()),
            ("text", pa.string()),
            ("char_start", pa.int64()),
            ("char_end", pa.int64()),
            ("tokens", pa.int32()),
        ]
    )
)


def make_clean(_: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_clean``: texts cleaned of mojibake (optionally), markup, control characters."""
    from embed_sql.pipelines.preprocess import clean

    def run(texts: Arrays, repair: Arrays, strip_html: Arrays, lowercase: Arrays) -> pa.Array:
        return clean(
            texts,
            repair=bool(constant(repair, "repair")),
            strip_html=bool(constant(strip_html, "strip_html")),
            lowercase=bool(constant(lowercase, "lowercase")),
        )

    return run


def make_chunks(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_chunks``: token-bounded chunks of each text, with offsets."""
    from embed_sql.pipelines.preprocess import chunk

    def run(texts: Arrays, max_tokens: Arrays, overlap: Arrays) -> pa.Array:
        column = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        pieces = chunk(
            column,
            max_tokens=int(constant(max_tokens, "max_tokens")),
            overlap=int(constant(overlap, "overlap")),
            model=state.default.spec,  # the tokenizer is the same for every variant
        )
        counts = np.bincount(np.asarray(pieces.column("key")), minlength=len(column))
        names = [f.name for f in CHUNKS.value_type]
        children = struct({n: pieces.column(n).combine_chunks() for n in names})
        return lists(counts, children, CHUNKS)

    return run
