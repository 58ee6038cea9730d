"""The UDFs over a named index: k-NN, range, text queries, index lookups, outliers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.udfs.duckdb import indexes
from embed_sql.udfs.duckdb.read import (
    Context,
    constant,
    reader,
    vector_matrix,
)
from embed_sql.udfs.duckdb.results import VEC, Arrays, lists, struct
from embed_sql.vectors.arrow import column_model
from embed_sql.vectors.join import check_k, check_models

if TYPE_CHECKING:
    from embed_sql.models.encoder import TextEncoder
    from embed_sql.udfs.duckdb.indexes import NamedIndex
    from embed_sql.udfs.duckdb.state import DatabaseState


# -- k-NN and range search over a named index ------------------------------------------------

KNN = pa.list_(pa.struct([("rank", pa.int32()), ("label", pa.int64()), ("distance", pa.float32())]))
RANGE = pa.list_(pa.struct([("label", pa.int64()), ("distance", pa.float32())]))


def _check_query_model(queries: np.ndarray, named: NamedIndex, allows: Arrays) -> None:
    """Refuse query vectors of another model than the index's (unless allow_models names both)."""
    check_models(
        column_model(queries, what="the query vectors"),
        named.index.model_key,
        f"the query vectors and index {named.name!r}",
        allow=constant(allows, "allow_models", allow_null=True),
    )


def make_knn(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_knn``: the k nearest rows of a named index per query vector."""

    def knn(
        vectors: Arrays,
        names: Arrays,
        ks: Arrays,
        allowed_tables: Arrays,
        allowed_keys: Arrays,
        fingerprints: Arrays,
        contexts: Arrays,
        allows: Arrays,
    ) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
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
        _check_query_model(queries, named, allows)
        res = named.index.search(queries, k, allowed=allowed)
        rows, cols = np.nonzero(res.labels >= 0)
        children = struct(
            {
                "rank": pa.array(cols + 1, pa.int32()),
                "label": pa.array(res.labels[rows, cols], pa.int64()),
                "distance": pa.array(res.distances[rows, cols], pa.float32()),
            }
        )
        counts = np.zeros(len(valid), dtype=np.int64)
        counts[valid] = res.counts
        return lists(counts, children, KNN)

    return knn


def make_range(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_range``: every indexed row within a distance per query vector."""

    def within(
        vectors: Arrays, names: Arrays, ts: Arrays, fingerprints: Arrays, allows: Arrays
    ) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
        threshold = float(constant(ts, "threshold"))
        arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
        valid = np.asarray(arr.is_valid(), dtype=bool)
        queries = vector_matrix(arr, named.index.dim, "query")
        _check_query_model(queries, named, allows)
        qrows, labels, dist = named.index.range_search(queries, threshold)
        counts = np.zeros(len(valid), dtype=np.int64)
        counts[valid] = np.bincount(qrows, minlength=int(valid.sum()))
        children = struct(
            {"label": pa.array(labels, pa.int64()), "distance": pa.array(dist, pa.float32())}
        )
        return lists(counts, children, RANGE)

    return within


def make_query_vector(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_query_vector``: a text query embedded with the index's model."""

    def query_vector(names: Arrays, texts: Arrays) -> pa.Array:
        name = str(constant(names, "the index name"))
        named = state.index(name)
        constant(texts, "the query")  # a NULL query is refused, not silently empty
        out = query_encoder(state, named).encode(texts)
        out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
        return out.cast(VEC)

    return query_vector


def query_encoder(state: DatabaseState, named: NamedIndex) -> TextEncoder:
    """Return the encoder of the model an index's vectors were made with, for text queries."""
    if not named.index.model:
        msg = (
            f"index {named.name!r} was built without a model, so it cannot embed a text "
            "query; pass a vector instead: FROM embed_knn_join(...) or embed_knn(vec, idx, k)"
        )
        raise InvalidParameterError(msg)
    # the database's own encoder of that model first: the name the index recorded may
    # be one this process no longer resolves (a model added, then removed)
    same = [e for e in state.encoders.values() if e.key == named.index.model_key]
    return same[0] if same else shared_encoder(named.index.model)


def index_lookup(state: DatabaseState, what: str) -> Callable[..., pa.Array]:
    """Make a lookup of a named index's source table, key or vector column, or key table."""

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


# -- outliers ---------------------------------------------------------------------------------


def make_outlier_score(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_outlier_score``: the distance to the k-th nearest indexed row."""
    from embed_sql.pipelines.outliers import kth_distance

    def score(vectors: Arrays, names: Arrays, ks: Arrays, fingerprints: Arrays) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
        k = check_k(constant(ks, "k"), most=len(named.index))
        arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
        valid = np.asarray(arr.is_valid(), dtype=bool)
        out = np.full(len(arr), np.nan, dtype=np.float32)
        out[valid] = kth_distance(named.index, vector_matrix(arr, named.index.dim, "scored"), k)
        return pa.array(out, pa.float32(), mask=np.isnan(out))

    return score


def make_outlier_threshold(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_outlier_threshold``: the score above which a row is an outlier."""
    from embed_sql.pipelines.outliers import OutlierScorer

    fitted: dict[tuple[str, int, float, str | None], tuple[object, float]] = {}

    def threshold(names: Arrays, ks: Arrays, qs: Arrays, fingerprints: Arrays) -> pa.Array:
        named = indexes.fresh_index(state, names, fingerprints)
        k = check_k(constant(ks, "k"), most=len(named.index))
        q = float(constant(qs, "quantile"))
        key = (named.name, k, q, named.fingerprint)  # calibrate once per index state, k, q
        got = fitted.get(key)
        if got is None or got[0] is not named.index:
            got = (named.index, OutlierScorer(named.index, k=k, quantile=q).threshold)
            fitted[key] = got
        return pa.array(np.full(len(names), got[1]), pa.float64())

    return threshold
