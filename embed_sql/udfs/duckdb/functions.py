"""The Python functions behind the SQL surface, declared once as a table of specs.

Each is a vectorised Arrow UDF: DuckDB hands over up to 2,048 rows per call. Table-level
arguments (index names, ``k``, thresholds, the caller's context) are the same in every row
and are read once with :func:`~embed_sql.udfs.duckdb.read.constant`, which refuses NULL by
name: every function gets NULL arguments (``null_handling="special"``), so a NULL
threshold is an error instead of zero rows. Result types are declared once, as Arrow types;
the DuckDB types are derived from them in :mod:`.register`. The functions live in
:mod:`.search` (over a named index) and :mod:`.tables` (over whole tables and texts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from embed_sql.pipelines.analogy import RESULT as ANALOGY
from embed_sql.pipelines.classify import result_type
from embed_sql.udfs.duckdb.apps import (
    RECOMMEND,
    SEARCH,
    make_analogy,
    make_classify,
    make_recommend,
    make_search,
)
from embed_sql.udfs.duckdb.fuzzy import FUZZY, make_fuzzy_join
from embed_sql.udfs.duckdb.results import CTX, VEC, Arrays
from embed_sql.udfs.duckdb.search import (
    KNN,
    RANGE,
    index_lookup,
    make_knn,
    make_outlier_score,
    make_outlier_threshold,
    make_query_vector,
    make_range,
)
from embed_sql.udfs.duckdb.tables import (
    CHUNKS,
    CLUSTER,
    DEDUP,
    DRIFT,
    make_chunks,
    make_clean,
    make_cluster,
    make_create_index,
    make_dedup,
    make_drift,
    make_drop_index,
    make_load_index,
    make_refresh_index,
)

if TYPE_CHECKING:
    from embed_sql.udfs.duckdb.state import DatabaseState

__all__ = ["SPECS", "FunctionSpec", "embed_function"]


@dataclass(frozen=True)
class FunctionSpec:
    """One SQL function: its name, argument and result types, and how to make it."""

    name: str
    params: tuple[pa.DataType, ...]
    result: pa.DataType
    make: Callable[[DatabaseState], Callable[..., pa.Array]]
    side_effects: bool = False
    null_in_null_out: bool = False  # else NULL arguments reach the function (and are refused)


def embed_function(
    state: DatabaseState, name: str, prompt: str | None = None
) -> Callable[[Arrays], pa.Array]:
    """Return the UDF behind ``embed`` / ``embed_<alias>``: it asks the state for its encoder.

    With ``prompt``, the function behind ``embed_<alias>_<prompt>``: the prompt's prefix is
    prepended to every text first.
    """
    from embed_sql.models.texts import with_prefix

    def embed(texts: Arrays) -> pa.Array:
        encoder = state.encoders[name]
        if prompt is not None:
            texts = with_prefix(texts, encoder.spec.prompt_prefix(prompt))
        if state.cache is not None:
            return state.cache.encode(encoder, texts)
        out = encoder.encode(texts)
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    return embed


_S, _I, _D, _B, _L = pa.string(), pa.int32(), pa.float64(), pa.bool_(), pa.int64()
CLASSIFY = result_type()


def make_int(_: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_int``: a whole-number argument (``k := 5``) as INTEGER, or refuse.

    The macros pass their integer arguments through it, so ``k := 2.5`` or ``k := 1e12``
    get an error naming the parameter instead of a binder error about an internal
    function's signature (DuckDB would otherwise find no ``embed_sql_*`` overload).
    """
    import numpy as np

    from embed_sql.udfs.duckdb.read import constant

    def run(values: Arrays, names: Arrays) -> pa.Array:
        arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        x = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        bad = np.isfinite(x) & ((x != np.round(x)) | (np.abs(x) > 2**31 - 1))
        bad |= np.isinf(x)
        if bad.any():
            name = str(constant(names, "the parameter name"))
            refuse_fraction(name, float(x[np.flatnonzero(bad)[0]]))
        return pa.array(
            np.where(np.isfinite(x), x, 0).astype(np.int32),
            pa.int32(),
            mask=~np.asarray(arr.is_valid()),
        )

    return run


def refuse_fraction(name: str, value: float) -> None:
    """Refuse a value that is not a whole INTEGER for the macro parameter ``name``."""
    from embed_sql.exceptions import InvalidParameterError

    shown = int(value) if value.is_integer() else value
    msg = f"{name} := {shown}: give a whole number (an INTEGER), e.g. {name} := 5"
    raise InvalidParameterError(msg)


def make_check(state: DatabaseState) -> Callable[..., pa.Array]:
    """Make ``embed_sql_check(what, a, b)``: refuse bad options even over a table with no rows.

    The macros check their options in the UDF that does the work, which DuckDB calls per
    batch of rows: over no rows nothing would be checked (``k := 0`` gave 0 rows where
    Python refuses). So they also pass the options here, inside the argument of a
    ``query_table(...)``, which DuckDB evaluates once while binding the statement; it
    answers ``''`` or raises what the Python API raises. ``what``: ``'k'`` (``a`` = k),
    ``'threshold'`` (``a``), ``'chunks'`` (``a`` = max_tokens, ``b`` = overlap).
    """
    import math

    from embed_sql.exceptions import InvalidParameterError
    from embed_sql.pipelines.preprocess import chunk
    from embed_sql.udfs.duckdb.read import constant
    from embed_sql.vectors.inputs import check_k, check_threshold

    def whole(name: str, value: float) -> int:
        if not math.isfinite(value) or value != round(value) or abs(value) > 2**31 - 1:
            refuse_fraction(name, value)
        return int(value)

    def run(what: Arrays, a: Arrays, b: Arrays) -> pa.Array:
        kind = str(constant(what, "the option checked"))
        if kind == "k":
            check_k(whole("k", float(constant(a, "k"))))
        elif kind == "threshold":
            check_threshold(constant(a, "threshold"))
        elif kind == "chunks":
            max_tokens = whole("max_tokens", float(constant(a, "max_tokens")))
            overlap = whole("overlap", float(constant(b, "overlap")))
            chunk([], max_tokens=max_tokens, overlap=overlap, model=state.default.spec)
        else:
            msg = f"embed_sql_check: unknown option {kind!r}; allowed: 'k', 'threshold', 'chunks'"
            raise InvalidParameterError(msg)
        return pa.array([""] * len(what), pa.string())

    return run


SPECS = (
    FunctionSpec("embed_sql_clean", (_S, _B, _B, _B), _S, make_clean),
    FunctionSpec("embed_sql_int", (_D, _S), _I, make_int),
    FunctionSpec("embed_sql_check", (_S, _D, _D), _S, make_check),
    FunctionSpec("embed_sql_classify", (_S, pa.list_(_S), _S, _S), CLASSIFY, make_classify),
    FunctionSpec("embed_sql_analogy", (_S, _S, _S, _I, _S), pa.list_(ANALOGY), make_analogy),
    FunctionSpec("embed_sql_chunks", (_S, _I, _I), CHUNKS, make_chunks),
    FunctionSpec("embed_sql_knn", (VEC, _S, _I, _S, _S, _S, CTX, pa.list_(_S)), KNN, make_knn),
    FunctionSpec("embed_sql_range", (VEC, _S, _D, _S, pa.list_(_S)), RANGE, make_range),
    FunctionSpec("embed_sql_query_vector", (_S, _S), VEC, make_query_vector),
    FunctionSpec(
        "embed_sql_search",
        (_S, _S, _I, _B, _S, _D, _S, CTX, _S, _S),
        SEARCH,
        make_search,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_index_source", (_S,), _S, lambda s: index_lookup(s, "source")),
    FunctionSpec("embed_sql_index_key", (_S,), _S, lambda s: index_lookup(s, "key")),
    FunctionSpec("embed_sql_index_vec", (_S,), _S, lambda s: index_lookup(s, "vec")),
    FunctionSpec("embed_sql_index_keys", (_S,), _S, lambda s: index_lookup(s, "keys")),
    FunctionSpec(
        "embed_sql_create_index",
        (_S, _S, _S, _S, _S, _B, _S, _I, _I, _I, _S, _S, _B, CTX, _S),
        _L,
        make_create_index,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_load_index", (_S, _S, _B, CTX), _L, make_load_index, side_effects=True),
    FunctionSpec(
        "embed_sql_refresh_index",
        (_S, _S),
        pa.struct([("removed", _L), ("added", _L)]),
        make_refresh_index,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_drop_index", (_S,), _B, make_drop_index, side_effects=True),
    FunctionSpec(
        "embed_sql_dedup", (_S, _S, _S, _D, _S, CTX, _S), DEDUP, make_dedup, side_effects=True
    ),
    FunctionSpec(
        "embed_sql_cluster",
        (_S, _S, _S, _I, _D, _S, _I, CTX, _S),
        CLUSTER,
        make_cluster,
        side_effects=True,
    ),
    FunctionSpec(
        "embed_sql_drift", (_S, _S, _S, _D, _I, _I, CTX), DRIFT, make_drift, side_effects=True
    ),
    FunctionSpec(
        "embed_sql_recommend",
        (_S, _S, _S, _S, _I, _S, _S, _D, _D, CTX, _S, _S),
        RECOMMEND,
        make_recommend,
        side_effects=True,
    ),
    FunctionSpec(
        "embed_sql_fuzzy_join",
        (_S, _S, _S, _S, _I, _S, _S, _S, _D, _D, CTX, _S, _S),
        FUZZY,
        make_fuzzy_join,
        side_effects=True,
    ),
    FunctionSpec("embed_sql_outlier_score", (VEC, _S, _I, _S), pa.float32(), make_outlier_score),
    FunctionSpec("embed_sql_outlier_threshold", (_S, _I, _D, _S), _D, make_outlier_threshold),
)
