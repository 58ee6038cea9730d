"""Encoders as DuckDB functions: ``embed(text)`` → ``FLOAT[dim]``.

The only module that imports duckdb. Functions are vectorised Arrow UDFs (DuckDB hands
over up to 2,048 rows per call and drops NULL rows before the call, so NULL gives NULL).
The result is a DuckDB ARRAY, so ``array_cosine_similarity``, ``array_distance``,
``array_inner_product`` and the vss extension work on it directly.

>>> import duckdb, embed_sql
>>> con = duckdb.connect()
>>> embed_sql.register(con)
>>> con.sql("SELECT array_cosine_similarity(embed('burrito'), embed('taco')) > 0.5").fetchall()
[(True,)]
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import (
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
    MissingDependencyError,
)
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import TextEncoder, shared_encoder
from embed_sql.models.registry import DEFAULT_MODEL, ModelSpec
from embed_sql.udfs.duckdb_sql import (
    KEYS_CATALOG,
    check_index_name,
    keys_schema,
    keys_table,
    macros,
    quote_ident,
)
from embed_sql.vectors.index import VectorIndex

if TYPE_CHECKING:
    import duckdb

__all__ = ["Registration", "create_index", "drop_index", "load_index", "register"]

ModelRef = str | ModelSpec | os.PathLike[str]
_ALIAS = re.compile(r"^[a-z_][a-z0-9_]*$")


def _duckdb() -> object:
    try:
        import duckdb
    except ImportError as exc:
        msg = "the DuckDB functions need duckdb; install the extra: pip install 'embed-sql[duckdb]'"
        raise MissingDependencyError(msg) from exc
    return duckdb


@dataclass(frozen=True)
class Registration:
    """What :func:`register` added to a connection: SQL function name → encoder."""

    functions: dict[str, TextEncoder] = field(default_factory=dict)
    cache: EmbeddingCache | None = None

    def __repr__(self) -> str:
        names = ", ".join(f"{n}() → FLOAT[{e.dim}] ({e.name})" for n, e in self.functions.items())
        return f"Registration({names})"


def _check_connection(con: object) -> None:
    duckdb = _duckdb()
    if not isinstance(con, duckdb.DuckDBPyConnection):  # type: ignore[attr-defined]
        msg = (
            f"register() needs a DuckDB connection, got {type(con).__name__}; "
            "pass duckdb.connect(...) or a cursor of one"
        )
        raise InvalidParameterError(msg)
    try:
        con.execute("SELECT 1").fetchall()  # type: ignore[attr-defined]
    except duckdb.ConnectionException as exc:  # type: ignore[attr-defined]
        msg = f"the DuckDB connection is closed ({exc}); open a new one with duckdb.connect()"
        raise InvalidParameterError(msg) from exc


def _make_udf(encoder: TextEncoder, cache: EmbeddingCache | None) -> object:
    def udf(texts: pa.ChunkedArray | pa.Array) -> pa.Array:
        if cache is not None:
            return cache.encode(encoder, texts)
        out = encoder.encode(texts)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    return udf


def _create(con: duckdb.DuckDBPyConnection, name: str, encoder: TextEncoder, cache: object) -> None:
    duckdb = _duckdb()
    from duckdb.sqltypes import FLOAT, VARCHAR

    with contextlib.suppress(duckdb.InvalidInputException):  # type: ignore[attr-defined]
        con.remove_function(name)  # idempotent: replace what an earlier register() made
    con.create_function(
        name,
        _make_udf(encoder, cache),  # type: ignore[arg-type]
        [VARCHAR],
        duckdb.array_type(FLOAT, encoder.dim),  # type: ignore[attr-defined]
        type="arrow",
        side_effects=False,
    )


def register(
    con: duckdb.DuckDBPyConnection,
    model: ModelRef | None = None,
    models: Mapping[str, ModelRef] | None = None,
    *,
    cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> Registration:
    """Add ``embed(text)`` (and ``embed_<alias>(text)`` per extra model) to a connection.

    Parameters
    ----------
    con
        A DuckDB connection. Registering again replaces the functions (safe to repeat).
    model
        The model behind ``embed``: a name, alias (``"all-MiniLM-L6-v2:int8"``), spec or
        local path; default all-MiniLM-L6-v2.
    models
        Extra models as ``{"alias": model}``; each becomes ``embed_<alias>(text)``. Aliases
        are lower-case SQL identifiers.
    cache
        An :class:`EmbeddingCache` or a path for one: texts already embedded with the same
        model are looked up instead of recomputed.
    progress
        Show DuckDB's progress bar for long statements; default only when stderr is a
        terminal.

    Returns
    -------
    Registration
        The function names and their encoders.

    Raises
    ------
    ModelNotFoundError, InvalidParameterError
        At registration, for an unknown model, a bad alias or a closed connection.

    Examples
    --------
    >>> import duckdb, embed_sql
    >>> con = duckdb.connect()
    >>> embed_sql.register(con, models={"q8": "all-MiniLM-L6-v2:int8"})
    Registration(embed() → FLOAT[384] (...), embed_q8() → FLOAT[384] (...:int8))
    >>> con.sql("SELECT typeof(embed('x'))").fetchall()
    [('FLOAT[384]',)]
    """
    _check_connection(con)
    wanted: dict[str, ModelRef] = {"embed": model if model is not None else DEFAULT_MODEL}
    for alias, ref in (models or {}).items():
        if not isinstance(alias, str) or not _ALIAS.match(alias):
            msg = (
                f"model alias {alias!r} is not allowed; use a lower-case SQL identifier "
                "such as 'multi' or 'q8' (it becomes embed_<alias>)"
            )
            raise InvalidParameterError(msg)
        wanted[f"embed_{alias}"] = ref
    encoders = {name: shared_encoder(ref) for name, ref in wanted.items()}  # validates all
    store = cache if isinstance(cache, EmbeddingCache) or cache is None else EmbeddingCache(cache)
    try:
        for name, encoder in encoders.items():
            _create(con, name, encoder, store)
        _register_operators(con, encoders["embed"])
    except _duckdb().CatalogException as exc:  # type: ignore[attr-defined]
        if "already exists" not in str(exc):
            raise
        msg = (
            "another connection to this database in this process has registered embed_sql "
            "already, and DuckDB shares Python functions between connections to one database "
            f"({exc}). Use that connection (or its .cursor() for embed()), or close it first."
        )
        raise InvalidParameterError(msg) from exc
    _REGISTERED[con] = encoders["embed"]
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        con.execute("SET enable_progress_bar = true").fetchall()
    return Registration(encoders, store)


# -- the vector operator: named indexes, k-NN and range joins, search, dedup, clustering ------

_STATES: weakref.WeakKeyDictionary[object, dict[str, VectorIndex]] = weakref.WeakKeyDictionary()
_KNN_TYPE = pa.list_(
    pa.struct([("rank", pa.int32()), ("label", pa.int64()), ("distance", pa.float32())])
)
_RANGE_TYPE = pa.list_(pa.struct([("label", pa.int64()), ("distance", pa.float32())]))
_DEDUP_TYPE = pa.list_(pa.struct([("pos", pa.int64()), ("grp", pa.int64()), ("keep", pa.bool_())]))
_CLUSTER_TYPE = pa.list_(pa.struct([("pos", pa.int64()), ("cluster", pa.int64())]))
_DRIFT_TYPE = pa.list_(
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
_CHUNK_TYPE = pa.list_(
    pa.struct(
        [
            ("chunk", pa.int32()),
            ("text", pa.string()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("tokens", pa.int32()),
        ]
    )
)


_TOKENS: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
_NEXT_TOKEN = itertools.count(1)


def _indexes(con: object) -> dict[str, VectorIndex]:
    return _STATES.setdefault(con, {})


def _token(con: object) -> int:
    """Return this connection's number: its key tables live in schema ``conn_<n>``."""
    if con not in _TOKENS:
        _TOKENS[con] = next(_NEXT_TOKEN)
    return _TOKENS[con]


def _index(indexes: dict[str, VectorIndex], name: str) -> VectorIndex:
    found = indexes.get(name)
    if found is None:
        known = ", ".join(sorted(indexes)) or "none yet"
        msg = (
            f"no vector index named {name!r} on this connection (known: {known}); "
            "create one with embed_sql.create_index(con, name, table, column=..., key=...)"
        )
        raise InvalidParameterError(msg)
    return found


def _constant(values: pa.ChunkedArray | pa.Array, what: str) -> object:
    distinct = pc.unique(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    if len(distinct) != 1:
        msg = f"{what} must be the same for every row of a call, got {distinct.to_pylist()[:5]}"
        raise InvalidParameterError(msg)
    return distinct[0].as_py()


def _matrix(vectors: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    arr = vectors.combine_chunks() if isinstance(vectors, pa.ChunkedArray) else vectors
    lengths = np.asarray(pc.list_value_length(arr))
    if len(lengths) and (lengths != dim).any():
        bad = int(lengths[lengths != dim][0])
        msg = f"query vector has {bad} dimensions but the index has {dim}; use the same model"
        raise DimensionMismatchError(msg)
    flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(len(arr), dim)


def _lists(counts: np.ndarray, children: pa.StructArray, list_type: pa.DataType) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), children).cast(list_type)


def _knn_lists(
    index: VectorIndex, vectors: pa.ChunkedArray, k: object, allowed: np.ndarray | None = None
) -> pa.Array:
    """Search ``index`` for each vector; one ``STRUCT(rank, label, distance)[]`` per row."""
    if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
        msg = f"k={k!r} must be a positive integer"
        raise InvalidParameterError(msg)
    valid = np.asarray(pc.is_valid(vectors), dtype=bool)  # NULL vectors: an empty list
    res = index.search(_matrix(vectors.filter(pa.array(valid)), index.dim), k, allowed=allowed)
    rows, cols = np.nonzero(res.labels >= 0)
    children = pa.StructArray.from_arrays(
        [
            pa.array(cols + 1, pa.int32()),
            pa.array(res.labels[rows, cols], pa.int64()),
            pa.array(res.distances[rows, cols], pa.float32()),
        ],
        names=["rank", "label", "distance"],
    )
    counts = np.zeros(len(valid), dtype=np.int64)
    counts[valid] = res.counts
    return _lists(counts, children, _KNN_TYPE)


def _make_knn(indexes: dict[str, VectorIndex]) -> object:
    def knn(vectors: pa.ChunkedArray, names: pa.ChunkedArray, ks: pa.ChunkedArray) -> pa.Array:
        index = _index(indexes, str(_constant(names, "the index name")))
        return _knn_lists(index, vectors, _constant(ks, "k"))

    return knn


def _allowed_labels(
    con: duckdb.DuckDBPyConnection, index: VectorIndex, table: str, column: str
) -> np.ndarray:
    """Return a mask over an index's labels: True where the key is in ``table.column``."""
    cursor = con.cursor()  # a UDF must not query its own connection
    try:
        sql = f"SELECT DISTINCT {quote_ident(column)} AS k FROM {quote_ident(table)}"
        wanted = cursor.sql(sql).to_arrow_table().column("k").combine_chunks()
    finally:
        cursor.close()
    return index.mask_for(wanted)


def _make_knn_where(con: duckdb.DuckDBPyConnection, indexes: dict[str, VectorIndex]) -> object:
    def knn(
        vectors: pa.ChunkedArray,
        names: pa.ChunkedArray,
        ks: pa.ChunkedArray,
        tables: pa.ChunkedArray,
        columns: pa.ChunkedArray,
    ) -> pa.Array:
        index = _index(indexes, str(_constant(names, "the index name")))
        table = _constant(tables, "allowed")
        allowed = None
        if table is not None:  # keys outside the allowed table are filtered before the top-k
            column = str(_constant(columns, "allowed_key"))
            allowed = _allowed_labels(con, index, str(table), column)
        return _knn_lists(index, vectors, _constant(ks, "k"), allowed)

    return knn


def _make_range(indexes: dict[str, VectorIndex]) -> object:
    def within(vectors: pa.ChunkedArray, names: pa.ChunkedArray, ts: pa.ChunkedArray) -> pa.Array:
        index = _index(indexes, str(_constant(names, "the index name")))
        threshold = float(_constant(ts, "threshold"))  # type: ignore[arg-type]
        qrows, labels, dist = index.range_search(_matrix(vectors, index.dim), threshold)
        counts = np.bincount(qrows, minlength=len(vectors))
        children = pa.StructArray.from_arrays(
            [pa.array(labels, pa.int64()), pa.array(dist, pa.float32())],
            names=["label", "distance"],
        )
        return _lists(counts, children, _RANGE_TYPE)

    return within


def _make_query_vector(indexes: dict[str, VectorIndex]) -> object:
    def query_vector(names: pa.ChunkedArray, texts: pa.ChunkedArray) -> pa.Array:
        index = _index(indexes, str(_constant(names, "the index name")))
        if not index.model:
            msg = (
                f"index {str(_constant(names, 'the index name'))!r} was built without a model, "
                "so it cannot embed a text query; pass model= to create_index"
            )
            raise InvalidParameterError(msg)
        out = shared_encoder(index.model).encode(texts)
        out = out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
        return out.cast(pa.list_(pa.float32()))

    return query_vector


def _read_table(con: duckdb.DuckDBPyConnection, table: str, column: str, key: str) -> pa.Table:
    sql = (
        f"SELECT {quote_ident(key)} AS id, {quote_ident(column)}::FLOAT[] AS v "
        f"FROM {quote_ident(table)} ORDER BY 1"
    )
    cursor = con.cursor()  # a UDF must not query its own connection
    try:
        _check_columns(cursor, table, {column: "vector", key: "key"})
        data = cursor.sql(sql).to_arrow_table()
    finally:
        cursor.close()
    return pa.table({"id": data.column("id"), "v": _fixed(data.column("v"), column, table)})


def _check_columns(cursor: duckdb.DuckDBPyConnection, table: str, wanted: dict[str, str]) -> None:
    """Refuse a missing column, or a vector column that is not a list, naming what there is."""
    rel = cursor.sql(f"SELECT * FROM {quote_ident(table)} LIMIT 0")
    types = dict(zip(rel.columns, (str(t) for t in rel.types), strict=True))
    for name, role in wanted.items():
        if name not in types:
            msg = (
                f"{role} column {name!r} is not in table {table!r}; its columns are "
                f"{list(types)}; name it with "
                + ("vec := '...' (column= in Python)" if role == "vector" else "key := '...'")
            )
            raise InvalidParameterError(msg)
        if role == "vector" and not types[name].endswith("]"):
            msg = (
                f"column {name!r} of {table!r} is {types[name]}, not a vector (FLOAT[d]); "
                f"embed it first, e.g. CREATE TABLE ... AS SELECT *, embed({name}) AS v"
            )
            raise InputTypeError(msg)


def _fixed(vectors: pa.ChunkedArray, column: str, table: str) -> pa.Array:
    """Cast a variable-length list column to ``fixed_size_list<float32>[d]``, or refuse."""
    vectors = vectors.combine_chunks()
    lengths = pc.unique(pc.list_value_length(vectors).drop_null()).to_pylist()
    if len(lengths) > 1:
        msg = f"column {column!r} of {table!r} mixes vector lengths {lengths}"
        raise DimensionMismatchError(msg)
    return vectors.cast(pa.list_(pa.float32(), lengths[0] if lengths else 1))


def _read_named(
    con: duckdb.DuckDBPyConnection,
    tables: pa.ChunkedArray,
    columns: pa.ChunkedArray,
    keys: pa.ChunkedArray,
) -> pa.Table:
    """Read the table, vector column and key column a table-function UDF was given."""
    return _read_table(
        con,
        str(_constant(tables, "the table")),
        str(_constant(columns, "vec")),
        str(_constant(keys, "key")),
    )


def _make_dedup(con: duckdb.DuckDBPyConnection) -> object:
    from embed_sql.vectors.cluster import dedup

    def run(
        tables: pa.ChunkedArray,
        columns: pa.ChunkedArray,
        keys: pa.ChunkedArray,
        thresholds: pa.ChunkedArray,
        metrics: pa.ChunkedArray,
    ) -> pa.Array:
        table = _read_named(con, tables, columns, keys)
        flags = dedup(
            table,
            float(_constant(thresholds, "threshold")),  # type: ignore[arg-type]
            metric=str(_constant(metrics, "metric")),
        )
        n = table.num_rows
        children = pa.StructArray.from_arrays(
            [
                pa.array(np.arange(n), pa.int64()),
                flags.column("group").combine_chunks(),
                flags.column("keep").combine_chunks(),
            ],
            names=["pos", "grp", "keep"],
        )
        return _repeat_for(tables, _lists(np.array([n]), children, _DEDUP_TYPE))

    return run


def _make_cluster(con: duckdb.DuckDBPyConnection) -> object:
    from embed_sql.vectors.cluster import cluster

    def run(
        tables: pa.ChunkedArray,
        columns: pa.ChunkedArray,
        keys: pa.ChunkedArray,
        ks: pa.ChunkedArray,
        thresholds: pa.ChunkedArray,
        metrics: pa.ChunkedArray,
        seeds: pa.ChunkedArray,
    ) -> pa.Array:
        table = _read_named(con, tables, columns, keys)
        k, threshold = _constant(ks, "k"), _constant(thresholds, "threshold")
        res = cluster(
            table,
            k=k,
            threshold=threshold,  # type: ignore[arg-type]
            metric=str(_constant(metrics, "metric")),
            seed=int(_constant(seeds, "seed")),
        )  # type: ignore[arg-type]
        n = table.num_rows
        children = pa.StructArray.from_arrays(
            [pa.array(np.arange(n), pa.int64()), res.table.column("cluster").combine_chunks()],
            names=["pos", "cluster"],
        )
        return _repeat_for(tables, _lists(np.array([n]), children, _CLUSTER_TYPE))

    return run


_DRIFT_SAMPLE = 50_000  # rows per side: the most any drift test uses (see pipelines.drift)


def _read_vectors(
    con: duckdb.DuckDBPyConnection, table: str, column: str, encoder: TextEncoder, seed: int
) -> pa.Table:
    """Read one vector column (or a text column, embedded with ``encoder``) of a table.

    Large tables are reservoir-sampled (seeded) before anything is read or embedded.
    """
    cursor = con.cursor()  # a UDF must not query its own connection
    try:
        (rows,) = cursor.sql(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0]
        sample = (
            f" USING SAMPLE reservoir({_DRIFT_SAMPLE} ROWS) REPEATABLE ({int(seed)})"
            if rows > _DRIFT_SAMPLE
            else ""  # small tables in table order, so SQL and Python give the same report
        )
        data = cursor.sql(f"SELECT {quote_ident(column)} AS v FROM {quote_ident(table)}{sample}")
        column_data = data.to_arrow_table().column("v")
    finally:
        cursor.close()
    if pa.types.is_string(column_data.type) or pa.types.is_large_string(column_data.type):
        return pa.table([encoder.encode(column_data)], schema=pa.schema([encoder.field("v")]))
    if pa.types.is_fixed_size_list(column_data.type):
        return pa.table({"v": column_data})
    if pa.types.is_list(column_data.type):
        return pa.table({"v": _fixed(column_data, column, table)})
    msg = (
        f"column {column!r} of {table!r} has type {column_data.type}; a drift check needs a "
        "vector column (FLOAT[d]) or a text column to embed"
    )
    raise InputTypeError(msg)


def _make_drift(con: duckdb.DuckDBPyConnection, encoder: TextEncoder) -> object:
    from embed_sql.pipelines.drift import DriftCheck

    def run(
        refs: pa.ChunkedArray,
        curs: pa.ChunkedArray,
        columns: pa.ChunkedArray,
        votes: pa.ChunkedArray,
        seeds: pa.ChunkedArray,
    ) -> pa.Array:
        column = str(_constant(columns, "vec"))
        seed = int(_constant(seeds, "seed"))  # type: ignore[arg-type]
        ref_name, cur_name = (str(_constant(t, "the table")) for t in (refs, curs))
        ref = _read_vectors(con, ref_name, column, encoder, seed)
        cur = _read_vectors(con, cur_name, column, encoder, seed)
        report = DriftCheck(
            ref,
            min_votes=int(_constant(votes, "min_votes")),  # type: ignore[arg-type]
            seed=seed,
        ).check(cur)
        rows = report.to_arrow()
        children = pa.StructArray.from_arrays(
            [c.combine_chunks() for c in rows.columns], names=rows.column_names
        )
        return _repeat_for(refs, _lists(np.array([rows.num_rows]), children, _DRIFT_TYPE))

    return run


def _make_outlier_score(indexes: dict[str, VectorIndex]) -> object:
    from embed_sql.pipelines.outliers import kth_distance

    def score(vectors: pa.ChunkedArray, names: pa.ChunkedArray, ks: pa.ChunkedArray) -> pa.Array:
        index = _index(indexes, str(_constant(names, "the index name")))
        k = _outlier_k(_constant(ks, "k"), index)
        out = kth_distance(index, _matrix(vectors, index.dim), k)
        return pa.array(out, pa.float32(), mask=np.isnan(out))

    return score


def _outlier_k(k: object, index: VectorIndex) -> int:
    if not isinstance(k, int) or k <= 0 or k > len(index):
        msg = f"k={k!r} must be a positive integer no larger than the index's {len(index)} rows"
        raise InvalidParameterError(msg)
    return k


def _make_outlier_threshold(indexes: dict[str, VectorIndex]) -> object:
    from embed_sql.pipelines.outliers import OutlierScorer

    fitted: dict[tuple[str, int, float], tuple[VectorIndex, float]] = {}

    def threshold(names: pa.ChunkedArray, ks: pa.ChunkedArray, qs: pa.ChunkedArray) -> pa.Array:
        name = str(_constant(names, "the index name"))
        index = _index(indexes, name)
        k = _outlier_k(_constant(ks, "k"), index)
        q = float(_constant(qs, "quantile"))  # type: ignore[arg-type]
        got = fitted.get((name, k, q))
        if got is None or got[0] is not index:  # calibrate once per index, k and quantile
            got = (index, OutlierScorer(index, k=k, quantile=q).threshold)
            fitted[name, k, q] = got
        return pa.array(np.full(len(names), got[1]), pa.float64())

    return threshold


def _repeat_for(template: pa.ChunkedArray, one: pa.Array) -> pa.Array:
    """One result per input row (DuckDB calls with as many rows as it has)."""
    return one.take(pa.array(np.zeros(len(template), dtype=np.int64)))


def _make_clean() -> object:
    from embed_sql.pipelines.preprocess import clean

    def run(texts: pa.ChunkedArray) -> pa.Array:
        return clean(texts)

    return run


def _make_chunks(encoder: TextEncoder) -> object:
    from embed_sql.pipelines.preprocess import chunk

    def run(
        texts: pa.ChunkedArray, max_tokens: pa.ChunkedArray, overlap: pa.ChunkedArray
    ) -> pa.Array:
        column = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        pieces = chunk(
            column,
            max_tokens=int(_constant(max_tokens, "max_tokens")),  # type: ignore[arg-type]
            overlap=int(_constant(overlap, "overlap")),  # type: ignore[arg-type]
            model=encoder.spec,  # the tokenizer is the same for every variant
        )
        counts = np.bincount(np.asarray(pieces.column("key")), minlength=len(column))
        children = pa.StructArray.from_arrays(
            [
                pieces.column(c).combine_chunks()
                for c in ("chunk", "text", "start", "end", "tokens")
            ],
            names=["chunk", "text", "start", "end", "tokens"],
        )
        return _lists(counts, children, _CHUNK_TYPE)

    return run


def _make_index_admin(con: duckdb.DuckDBPyConnection) -> tuple[object, object, object]:
    """Make the UDFs behind ``embed_create_index``, ``embed_load_index``, ``embed_drop_index``."""

    def given(values: pa.ChunkedArray, what: str) -> str:
        value = _constant(values, what)
        if value is None:
            msg = f"{what} is NULL; give a name"
            raise InvalidParameterError(msg)
        return str(value)

    def create(
        names: pa.ChunkedArray,
        tables: pa.ChunkedArray,
        columns: pa.ChunkedArray,
        keys: pa.ChunkedArray,
        metrics: pa.ChunkedArray,
        exacts: pa.ChunkedArray,
        paths: pa.ChunkedArray,
    ) -> pa.Array:
        path = _constant(paths, "path")
        exact = _constant(exacts, "exact")
        if exact is None:
            msg = "exact is NULL; give true or false"
            raise InvalidParameterError(msg)
        index = _build_named(
            con,
            given(names, "the index name"),
            given(tables, "the table"),
            column=given(columns, "vec"),
            key=given(keys, "key"),
            metric=given(metrics, "metric"),
            exact=bool(exact),
            path=None if path is None else str(path),
        )
        return pa.array(np.full(len(names), len(index)), pa.int64())

    def load(names: pa.ChunkedArray, paths: pa.ChunkedArray) -> pa.Array:
        index = VectorIndex.view(given(paths, "path"))
        _attach(con, given(names, "the index name"), index)
        return pa.array(np.full(len(names), len(index)), pa.int64())

    def drop(names: pa.ChunkedArray) -> pa.Array:
        found = drop_index(con, given(names, "the index name"))
        return pa.array(np.full(len(names), found), pa.bool_())

    return create, load, drop


def _sql_type(t: pa.DataType) -> object:
    """Return the DuckDB type of a UDF result declared as an Arrow type (one declaration)."""
    duckdb = _duckdb()
    if pa.types.is_list(t):
        return duckdb.list_type(_sql_type(t.value_type))  # type: ignore[attr-defined]
    if pa.types.is_struct(t):
        fields = {t.field(i).name: _sql_type(t.field(i).type) for i in range(t.num_fields)}
        return duckdb.struct_type(fields)  # type: ignore[attr-defined]
    names = {"int32": "INTEGER", "int64": "BIGINT", "float": "FLOAT", "double": "DOUBLE"}
    names |= {"string": "VARCHAR", "bool": "BOOLEAN"}
    return getattr(duckdb.sqltypes, names[str(t)])  # type: ignore[attr-defined]


def _register_operators(con: duckdb.DuckDBPyConnection, encoder: TextEncoder | None = None) -> None:
    duckdb = _duckdb()
    from duckdb.sqltypes import BIGINT, DOUBLE, FLOAT, INTEGER, VARCHAR

    indexes = _indexes(con)
    vec = duckdb.list_type(FLOAT)  # type: ignore[attr-defined]

    knn_t, range_t, dedup_t, cluster_t, chunk_t, drift_t = (
        _sql_type(t)
        for t in (_KNN_TYPE, _RANGE_TYPE, _DEDUP_TYPE, _CLUSTER_TYPE, _CHUNK_TYPE, _DRIFT_TYPE)
    )
    encoder = encoder or shared_encoder(DEFAULT_MODEL)
    create, load, drop = _make_index_admin(con)
    functions = {
        "embed_sql_create_index": (
            create,
            [VARCHAR, VARCHAR, VARCHAR, VARCHAR, VARCHAR, duckdb.sqltypes.BOOLEAN, VARCHAR],  # type: ignore[attr-defined]
            BIGINT,
        ),
        "embed_sql_load_index": (load, [VARCHAR, VARCHAR], BIGINT),
        "embed_sql_drop_index": (drop, [VARCHAR], duckdb.sqltypes.BOOLEAN),  # type: ignore[attr-defined]
        "embed_clean": (_make_clean(), [VARCHAR], VARCHAR),
        "embed_sql_chunks": (_make_chunks(encoder), [VARCHAR, INTEGER, INTEGER], chunk_t),
        "embed_sql_knn": (_make_knn(indexes), [vec, VARCHAR, INTEGER], knn_t),
        "embed_sql_knn_where": (
            _make_knn_where(con, indexes),
            [vec, VARCHAR, INTEGER, VARCHAR, VARCHAR],
            knn_t,
        ),
        "embed_sql_range": (_make_range(indexes), [vec, VARCHAR, DOUBLE], range_t),
        "embed_sql_query_vector": (_make_query_vector(indexes), [VARCHAR, VARCHAR], vec),
        "embed_sql_dedup": (
            _make_dedup(con),
            [VARCHAR, VARCHAR, VARCHAR, DOUBLE, VARCHAR],
            dedup_t,
        ),
        "embed_sql_cluster": (
            _make_cluster(con),
            [VARCHAR, VARCHAR, VARCHAR, INTEGER, DOUBLE, VARCHAR, INTEGER],
            cluster_t,
        ),
        "embed_sql_drift": (
            _make_drift(con, encoder),
            [VARCHAR, VARCHAR, VARCHAR, INTEGER, INTEGER],
            drift_t,
        ),
        "embed_sql_outlier_score": (_make_outlier_score(indexes), [vec, VARCHAR, INTEGER], FLOAT),
        "embed_sql_outlier_threshold": (
            _make_outlier_threshold(indexes),
            [VARCHAR, INTEGER, DOUBLE],
            DOUBLE,
        ),
    }
    for name, (fn, params, ret) in functions.items():
        with contextlib.suppress(duckdb.InvalidInputException):  # type: ignore[attr-defined]
            con.remove_function(name)
        special = name in ("embed_sql_cluster", "embed_sql_knn_where", "embed_sql_create_index")
        con.create_function(
            name,
            fn,
            params,
            ret,
            type="arrow",  # type: ignore[arg-type]
            null_handling="special" if special else "default",
            side_effects=name in _SIDE_EFFECTS,
        )
    # key tables: an in-memory database shared with cursors (READ_WRITE: also on read-only files)
    con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {quote_ident(KEYS_CATALOG)} (READ_WRITE)")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {keys_schema(_token(con))}").fetchall()
    for macro in macros(_token(con)):
        con.execute(macro).fetchall()


_SIDE_EFFECTS = {
    "embed_sql_dedup",
    "embed_sql_cluster",
    "embed_sql_drift",
    "embed_sql_create_index",
    "embed_sql_load_index",
    "embed_sql_drop_index",
}


def create_index(
    con: duckdb.DuckDBPyConnection,
    name: str,
    table: str,
    *,
    column: str = "v",
    key: str = "id",
    metric: str = "cos",
    exact: bool = False,
    dtype: str = "f16",
    rescore: bool | None = None,
    model: str | None = None,
    path: str | os.PathLike[str] | None = None,
    **hnsw: int,
) -> VectorIndex:
    """Build a named vector index over ``table`` for the SQL operators.

    Parameters
    ----------
    name
        How SQL refers to it: ``knn(v, 'name', k)``, ``FROM knn_join('queries', 'name')``.
    table, column, key
        The table, its vector column (``FLOAT[d]``) and its key column (integer or string).
    metric, exact, dtype, rescore, hnsw
        As for :class:`~embed_sql.vectors.VectorIndex`: an f16 graph with exact float32
        distances by default.
    model
        The model that made the vectors (default: the connection's ``embed`` model), so
        ``semantic_search`` can embed text queries the same way.
    path
        Also save the index there (atomically), to reopen with :func:`load_index`.

    Examples
    --------
    >>> embed_sql.create_index(con, "docs", "news", column="v", key="id")   # doctest: +SKIP
    >>> con.sql("FROM semantic_search('docs', 'food', k := 3)")             # doctest: +SKIP
    """
    _check_connection(con)
    _ensure_registered(con)
    return _build_named(
        con,
        name,
        table,
        column=column,
        key=key,
        metric=metric,
        exact=exact,
        dtype=dtype,
        rescore=rescore,
        model=model,
        path=path,
        **hnsw,
    )


def _build_named(
    con: duckdb.DuckDBPyConnection,
    name: str,
    table: str,
    *,
    column: str,
    key: str,
    metric: str,
    exact: bool,
    dtype: str = "f16",
    rescore: bool | None = None,
    model: str | None = None,
    path: str | os.PathLike[str] | None = None,
    **hnsw: int,
) -> VectorIndex:
    """Read ``table``, build the index, save it if asked, and attach it under ``name``."""
    _index_name(name)
    data = _read_table(con, table, column, key)
    default = _REGISTERED.get(con)
    index = VectorIndex.build(
        data.column("v"),
        data.column("id"),
        metric=metric,
        exact=exact,
        dtype=dtype,
        rescore=rescore,
        model=model or (default.name if default else None),
        model_key=shared_encoder(model).key if model else (default.key if default else None),
        **hnsw,
    )
    if path is not None:
        index.save(path)
    _attach(con, name, index)
    return index


def load_index(
    con: duckdb.DuckDBPyConnection, name: str, path: str | os.PathLike[str], *, mmap: bool = True
) -> VectorIndex:
    """Open an index saved by :func:`create_index` (memory-mapped by default) under ``name``."""
    _check_connection(con)
    _ensure_registered(con)
    index = VectorIndex.view(path) if mmap else VectorIndex.load(path)
    _attach(con, name, index)
    return index


def drop_index(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Forget a named index and its key table; return whether it existed."""
    found = _indexes(con).pop(_index_name(name), None) is not None
    cursor = con.cursor()  # also runs inside a UDF, which must not query its own connection
    try:
        cursor.execute(f"DROP TABLE IF EXISTS {keys_table(_token(con), name)}").fetchall()
    finally:
        cursor.close()
    return found


def _index_name(name: object) -> str:
    try:
        return check_index_name(name)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None


def _attach(con: duckdb.DuckDBPyConnection, name: str, index: VectorIndex) -> None:
    _index_name(name)
    labels = np.arange(_label_count(index), dtype=np.int64)
    keys = pa.table({"label": labels, "key": index.key_of(labels)})
    view = f"__embed_sql_keys_{name}"
    cursor = con.cursor()  # also runs inside a UDF, which must not query its own connection
    try:
        cursor.register(view, keys)
        cursor.execute(
            f"CREATE OR REPLACE TABLE {keys_table(_token(con), name)} AS "
            f"SELECT * FROM {quote_ident(view)}"
        ).fetchall()
    finally:
        cursor.close()
    _indexes(con)[name] = index


def _label_count(index: VectorIndex) -> int:
    labels = index.labels()
    return int(labels[-1]) + 1 if len(labels) else 0


_REGISTERED: weakref.WeakKeyDictionary[object, TextEncoder] = weakref.WeakKeyDictionary()


def _ensure_registered(con: duckdb.DuckDBPyConnection) -> None:
    if con not in _STATES:
        _register_operators(con, _REGISTERED.get(con))
