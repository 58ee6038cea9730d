"""The Python functions behind the SQL surface, declared once as a table of specs.

Each is a vectorised Arrow UDF: DuckDB hands over up to 2,048 rows per call. Table-level
arguments (index names, ``k``, thresholds, the caller's context) are the same in every row
and are read once with :func:`~embed_sql.udfs.duckdb.read.constant`, which refuses NULL by
name: every function gets NULL arguments (``null_handling="special"``), so a NULL
threshold is an error instead of zero rows. Result types are declared once, as Arrow types;
the DuckDB types are derived from them in :mod:`.register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InputTypeError, InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.read import (
    Context,
    constant,
    fixed_vectors,
    read_source,
    reader,
    vector_matrix,
)
from embed_sql.vectors.arrow import column_model
from embed_sql.vectors.join import check_k, check_models

if TYPE_CHECKING:
    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["SPECS", "FunctionSpec", "embed_function"]

Arrays: TypeAlias = "pa.ChunkedArray | pa.Array"
VEC = pa.list_(pa.float32())  # a vector argument: FLOAT[d] is cast to FLOAT[] on the way in
CTX = pa.list_(pa.string())


@dataclass(frozen=True)
class FunctionSpec:
    """One SQL function: its name, argument and result types, and how to make it."""

    name: str
    params: tuple[pa.DataType, ...]
    result: pa.DataType
    make: Callable[[DatabaseState], Callable[..., pa.Array]]
    side_effects: bool = False
    null_in_null_out: bool = False  # else NULL arguments reach the function (and are refused)


def embed_function(state: DatabaseState, name: str) -> Callable[[Arrays], pa.Array]:
    """Return the UDF behind ``embed`` / ``embed_<alias>``: it asks the state for its encoder."""

    def embed(texts: Arrays) -> pa.Array:
        encoder = state.encoders[name]
        if state.cache is not None:
            return state.cache.encode(encoder, texts)
        out = encoder.encode(texts)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    return embed


def _lists(counts: np.ndarray, children: pa.StructArray, list_type: pa.DataType) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), children).cast(list_type)


def _repeat(template: Arrays, one: pa.Array) -> pa.Array:
    """One result per input row (DuckDB calls with as many rows as it has)."""
    return one.take(pa.array(np.zeros(len(template), dtype=np.int64)))


def _struct(arrays: dict[str, pa.Array]) -> pa.StructArray:
    return pa.StructArray.from_arrays(list(arrays.values()), names=list(arrays))


# -- k-NN and range search over a named index ------------------------------------------------

KNN = pa.list_(pa.struct([("rank", pa.int32()), ("label", pa.int64()), ("distance", pa.float32())]))
RANGE = pa.list_(pa.struct([("label", pa.int64()), ("distance", pa.float32())]))


def _make_knn(state: DatabaseState) -> Callable[..., pa.Array]:
    def knn(
        vectors: Arrays,
        names: Arrays,
        ks: Arrays,
        allowed_tables: Arrays,
        allowed_keys: Arrays,
        fingerprints: Arrays,
        contexts: Arrays,
    ) -> pa.Array:
        named = state.index(str(constant(names, "the index name")))
        named.check_fresh(constant(fingerprints, "the fingerprint", allow_null=True))
        k = check_k(constant(ks, "k"))
        allowed = None
        table = constant(allowed_tables, "allowed", allow_null=True)
        if table is not None:  # keys outside the allowed table are filtered before the top-k
            column = str(constant(allowed_keys, "allowed_key"))
            context = Context.from_sql(constant(contexts, "the context"))
            with reader(state, context) as cur:
                if context is not None:
                    context.check_not_temp(str(table), "allowed :=")
                col, tbl = (str(x).replace("'", "''") for x in (column, table))
                wanted = cur.sql(
                    f"SELECT DISTINCT COLUMNS(lambda c: c = '{col}') FROM query_table('{tbl}')"
                ).to_arrow_table()
            if wanted.num_columns != 1:
                msg = f"allowed_key column {column!r} is not in table {table!r}"
                raise InvalidParameterError(msg)
            allowed = named.index.mask_for(wanted.column(0).combine_chunks())
        arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
        valid = np.asarray(arr.is_valid(), dtype=bool)  # a NULL vector: an empty list
        queries = vector_matrix(arr, named.index.dim, "query")
        check_models(
            column_model(queries, what="the query vectors"),
            named.index.model_key,
            f"the query vectors and index {named.name!r}",
        )
        res = named.index.search(queries, k, allowed=allowed)
        rows, cols = np.nonzero(res.labels >= 0)
        children = _struct(
            {
                "rank": pa.array(cols + 1, pa.int32()),
                "label": pa.array(res.labels[rows, cols], pa.int64()),
                "distance": pa.array(res.distances[rows, cols], pa.float32()),
            }
        )
        counts = np.zeros(len(valid), dtype=np.int64)
        counts[valid] = res.counts
        return _lists(counts, children, KNN)

    return knn


def _make_range(state: DatabaseState) -> Callable[..., pa.Array]:
    def within(vectors: Arrays, names: Arrays, ts: Arrays, fingerprints: Arrays) -> pa.Array:
        named = state.index(str(constant(names, "the index name")))
        named.check_fresh(constant(fingerprints, "the fingerprint", allow_null=True))
        threshold = float(constant(ts, "threshold"))
        arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
        valid = np.asarray(arr.is_valid(), dtype=bool)
        qrows, labels, dist = named.index.range_search(
            vector_matrix(arr, named.index.dim, "query"), threshold
        )
        counts = np.zeros(len(valid), dtype=np.int64)
        counts[valid] = np.bincount(qrows, minlength=int(valid.sum()))
        children = _struct(
            {"label": pa.array(labels, pa.int64()), "distance": pa.array(dist, pa.float32())}
        )
        return _lists(counts, children, RANGE)

    return within


def _make_query_vector(state: DatabaseState) -> Callable[..., pa.Array]:
    def query_vector(names: Arrays, texts: Arrays) -> pa.Array:
        name = str(constant(names, "the index name"))
        named = state.index(name)
        constant(texts, "the query")  # a NULL query is refused, not silently empty
        if not named.index.model:
            msg = (
                f"index {name!r} was built without a model, so it cannot embed a text query; "
                "pass a vector instead: FROM embed_knn_join(...) or embed_knn(vec, idx, k)"
            )
            raise InvalidParameterError(msg)
        out = shared_encoder(named.index.model).encode(texts)
        out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
        return out.cast(VEC)

    return query_vector


def _index_lookup(state: DatabaseState, what: str) -> Callable[..., pa.Array]:
    def lookup(names: Arrays) -> pa.Array:
        named = state.index(str(constant(names, "the index name")))
        if what == "keys":
            from embed_sql.udfs.duckdb.macros import keys_table

            value = keys_table(named.name)
        elif named.source is None:  # answers for no table: fingerprint an empty stand-in
            value = indexes.DETACHED if what == "source" else "x"
        else:
            value = {"source": named.source, "key": named.key, "vec": named.vec}[what]
        return pa.array([value] * len(names), pa.string())

    return lookup


# -- named indexes -------------------------------------------------------------------------


def _make_create_index(state: DatabaseState) -> Callable[..., pa.Array]:
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
        contexts: Arrays,
        fingerprints: Arrays,
    ) -> pa.Array:
        context = Context.from_sql(constant(contexts, "the context"))
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
                path=_optional_path(constant(paths, "path", allow_null=True)),
                **{k: v for k, v in hnsw.items() if v is not None},
            )
        return pa.array(np.full(len(names), len(named.index)), pa.int64())

    return create


def _optional_path(value: str | None) -> str | None:
    return None if value is None else str(value)


def _make_load_index(state: DatabaseState) -> Callable[..., pa.Array]:
    def load(names: Arrays, paths: Arrays, contexts: Arrays) -> pa.Array:
        named = indexes.load(
            state,
            str(constant(names, "the index name")),
            str(constant(paths, "path")),
            context=Context.from_sql(constant(contexts, "the context")),
        )
        return pa.array(np.full(len(names), len(named.index)), pa.int64())

    return load


def _make_refresh_index(state: DatabaseState) -> Callable[..., pa.Array]:
    def refresh(names: Arrays, fingerprints: Arrays) -> pa.Array:
        removed, added = indexes.refresh(
            state,
            str(constant(names, "the index name")),
            constant(fingerprints, "the fingerprint", allow_null=True),
        )
        one = _struct(
            {"removed": pa.array([removed], pa.int64()), "added": pa.array([added], pa.int64())}
        )
        return _repeat(names, one)

    return refresh


def _make_drop_index(state: DatabaseState) -> Callable[..., pa.Array]:
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


def _make_dedup(state: DatabaseState) -> Callable[..., pa.Array]:
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
        children = _struct(
            {
                "row": pa.array(np.arange(table.num_rows), pa.int64()),
                "key_text": text,
                "group_id": group,
                "representative_text": text.take(group),
                "keep": flags.column("keep").combine_chunks(),
            }
        )
        return _repeat(tables, _lists(np.array([table.num_rows]), children, DEDUP))

    return run


def _make_cluster(state: DatabaseState) -> Callable[..., pa.Array]:
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
        children = _struct(
            {
                "row": pa.array(np.arange(table.num_rows), pa.int64()),
                "key_text": table.column("id").cast(pa.string()).combine_chunks(),
                "cluster": res.table.column("cluster").combine_chunks(),
            }
        )
        return _repeat(tables, _lists(np.array([table.num_rows]), children, CLUSTER))

    return run


DRIFT = pa.list_(
    pa.struct(
        [
            ("test", pa.string()),
            ("statistic", pa.float64()),
            ("p_value", pa.float64()),
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


def _make_drift(state: DatabaseState) -> Callable[..., pa.Array]:
    def run(
        refs: Arrays, curs: Arrays, vecs: Arrays, votes: Arrays, seeds: Arrays, contexts: Arrays
    ) -> pa.Array:
        from embed_sql.pipelines.drift import DriftCheck

        vec = str(constant(vecs, "vec"))
        seed = int(constant(seeds, "seed"))
        min_votes = int(constant(votes, "min_votes"))
        context = Context.from_sql(constant(contexts, "the context"))
        ref, cur = (
            _read_drift_side(state, str(constant(t, "the table")), vec, seed, context)
            for t in (refs, curs)
        )
        rows = DriftCheck(ref, min_votes=min_votes, seed=seed).check(cur).to_arrow()
        children = _struct(
            {n: c.combine_chunks() for n, c in zip(rows.column_names, rows.columns, strict=True)}
        )
        return _repeat(refs, _lists(np.array([rows.num_rows]), children, DRIFT))

    return run


# -- outliers ---------------------------------------------------------------------------------


def _make_outlier_score(state: DatabaseState) -> Callable[..., pa.Array]:
    from embed_sql.pipelines.outliers import kth_distance

    def score(vectors: Arrays, names: Arrays, ks: Arrays, fingerprints: Arrays) -> pa.Array:
        named = state.index(str(constant(names, "the index name")))
        named.check_fresh(constant(fingerprints, "the fingerprint", allow_null=True))
        k = check_k(constant(ks, "k"), most=len(named.index))
        arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
        valid = np.asarray(arr.is_valid(), dtype=bool)
        out = np.full(len(arr), np.nan, dtype=np.float32)
        out[valid] = kth_distance(named.index, vector_matrix(arr, named.index.dim, "scored"), k)
        return pa.array(out, pa.float32(), mask=np.isnan(out))

    return score


def _make_outlier_threshold(state: DatabaseState) -> Callable[..., pa.Array]:
    from embed_sql.pipelines.outliers import OutlierScorer

    fitted: dict[tuple[str, int, float, str | None], tuple[object, float]] = {}

    def threshold(names: Arrays, ks: Arrays, qs: Arrays, fingerprints: Arrays) -> pa.Array:
        named = state.index(str(constant(names, "the index name")))
        named.check_fresh(constant(fingerprints, "the fingerprint", allow_null=True))
        k = check_k(constant(ks, "k"), most=len(named.index))
        q = float(constant(qs, "quantile"))
        key = (named.name, k, q, named.fingerprint)  # calibrate once per index state, k, q
        got = fitted.get(key)
        if got is None or got[0] is not named.index:
            got = (named.index, OutlierScorer(named.index, k=k, quantile=q).threshold)
            fitted[key] = got
        return pa.array(np.full(len(names), got[1]), pa.float64())

    return threshold


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


def _make_clean(_: DatabaseState) -> Callable[..., pa.Array]:
    from embed_sql.pipelines.preprocess import clean

    def run(texts: Arrays) -> pa.Array:
        return clean(texts)

    return run


def _make_chunks(state: DatabaseState) -> Callable[..., pa.Array]:
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
        children = _struct({n: pieces.column(n).combine_chunks() for n in names})
        return _lists(counts, children, CHUNKS)

    return run


_S, _I, _D, _B, _L = pa.string(), pa.int32(), pa.float64(), pa.bool_(), pa.int64()

SPECS = (
    FunctionSpec("embed_clean", (_S,), _S, _make_clean, null_in_null_out=True),
    FunctionSpec("embed_sql_chunks", (_S, _I, _I), CHUNKS, _make_chunks),
    FunctionSpec("embed_sql_knn", (VEC, _S, _I, _S, _S, _S, CTX), KNN, _make_knn),
    FunctionSpec("embed_sql_range", (VEC, _S, _D, _S), RANGE, _make_range),
    FunctionSpec("embed_sql_query_vector", (_S, _S), VEC, _make_query_vector),
    FunctionSpec("embed_sql_index_source", (_S,), _S, lambda s: _index_lookup(s, "source")),
    FunctionSpec("embed_sql_index_key", (_S,), _S, lambda s: _index_lookup(s, "key")),
    FunctionSpec("embed_sql_index_vec", (_S,), _S, lambda s: _index_lookup(s, "vec")),
    FunctionSpec("embed_sql_index_keys", (_S,), _S, lambda s: _index_lookup(s, "keys")),
    FunctionSpec(
        "embed_sql_create_index",
        (_S, _S, _S, _S, _S, _B, _S, _I, _I, _I, CTX, _S),
        _L,
        _make_create_index,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_load_index", (_S, _S, CTX), _L, _make_load_index, side_effects=True),
    FunctionSpec(
        "embed_sql_refresh_index",
        (_S, _S),
        pa.struct([("removed", _L), ("added", _L)]),
        _make_refresh_index,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_drop_index", (_S,), _B, _make_drop_index, side_effects=True),
    FunctionSpec(
        "embed_sql_dedup", (_S, _S, _S, _D, _S, CTX, _S), DEDUP, _make_dedup, side_effects=True
    ),
    FunctionSpec(
        "embed_sql_cluster",
        (_S, _S, _S, _I, _D, _S, _I, CTX, _S),
        CLUSTER,
        _make_cluster,
        side_effects=True,
    ),
    FunctionSpec(
        "embed_sql_drift", (_S, _S, _S, _I, _I, CTX), DRIFT, _make_drift, side_effects=True
    ),
    FunctionSpec("embed_sql_outlier_score", (VEC, _S, _I, _S), pa.float32(), _make_outlier_score),
    FunctionSpec("embed_sql_outlier_threshold", (_S, _I, _D, _S), _D, _make_outlier_threshold),
)
