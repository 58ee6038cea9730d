"""The vector operator on Polars frames: ``df.embed.knn_join(other, k=5)`` and friends.

Each operation is written once, on the LazyFrame: it declares its result schema and runs
the host-neutral Arrow operation (:mod:`embed_sql.vectors`) when collected. The eager
DataFrame form calls the lazy one and collects, as polars' own ``join_where`` does. Result
columns and parameter names are the SQL macros' (``vec``, ``key``, ``left_key``,
``right_key``, ``distance``, ``rank``, ``group_id``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from embed_sql.exceptions import InputTypeError
from embed_sql.udfs.polars.apps import LazyApps
from embed_sql.udfs.polars.common import ModelRef, _arrow, _frame, _sides
from embed_sql.vectors.arrow import to_numpy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EmbedFrame", "EmbedLazyFrame"]


@pl.api.register_lazyframe_namespace("embed")
class EmbedLazyFrame(LazyApps):
    """The ``embed`` namespace on LazyFrames: vector joins, dedup, clustering, search.

    The applications' methods (``fuzzy_join``, ``recommend``, ``search``) are in
    :mod:`.apps`; the shared plumbing (``_defer``, ``_key_type``) in :mod:`.common`.
    """

    def knn_join(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        *,
        k: int,
        vec: str = "v",
        key: str = "id",
        right_vec: str | None = None,
        right_key: str | None = None,
        metric: str = "cos",
        exact: bool = False,
        where: pl.Expr | None = None,
        allow_models: Collection[str] | None = None,
    ) -> pl.LazyFrame:
        """Join each row to its ``k`` nearest rows of ``other``.

        Returns ``left_key``, ``right_key``, ``distance``, ``rank`` (as SQL's
        ``embed_knn_join``). ``where`` is a boolean expression on ``other``, applied before
        the top-k, so ``k`` rows come back whenever ``k`` rows pass it. ``allow_models``
        names two models trained as a pair (two towers) whose vectors may meet.
        """
        from embed_sql.vectors.join import check_k, knn_join

        check_k(k)
        rvec = vec if right_vec is None else right_vec

        def join(left: pa.Table, theirs: pl.DataFrame, right: pa.Table, sides: dict) -> pa.Table:
            mask = None
            if where is not None:  # a predicate on the right side, applied before the top-k
                flags = theirs.select(where.fill_null(value=False)).to_series()
                if flags.dtype != pl.Boolean:
                    msg = (
                        f"where= must be a boolean expression on the other frame, not {flags.dtype}"
                    )
                    raise InputTypeError(msg)
                mask = flags.to_numpy()[theirs[rvec].is_not_null().to_numpy()]
            return knn_join(
                left,
                right,
                k,
                metric=metric,
                exact=exact,
                where=mask,
                allow_models=allow_models,
                **sides,
            )

        extra = {"distance": pl.Float32(), "rank": pl.Int32()}
        return self._pair(other, vec, key, right_vec, right_key, extra, join)

    def range_join(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        *,
        threshold: float,
        vec: str = "v",
        key: str = "id",
        right_vec: str | None = None,
        right_key: str | None = None,
        metric: str = "cos",
        exact: bool = False,
        allow_models: Collection[str] | None = None,
    ) -> pl.LazyFrame:
        """Every pair within ``threshold``: ``left_key``, ``right_key``, ``distance``.

        With HNSW (``exact=False``) a pair the graph does not reach can be missed (0.1-1.6 %
        measured); ``exact=True`` returns every pair.
        """
        from embed_sql.vectors.join import range_join

        def join(left: pa.Table, _: pl.DataFrame, right: pa.Table, sides: dict) -> pa.Table:
            return range_join(
                left,
                right,
                threshold,
                metric=metric,
                exact=exact,
                allow_models=allow_models,
                **sides,
            )

        return self._pair(other, vec, key, right_vec, right_key, {"distance": pl.Float32()}, join)

    def _pair(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        vec: str,
        key: str,
        right_vec: str | None,
        right_key: str | None,
        extra: Mapping[str, pl.DataType],
        join: Callable[[pa.Table, pl.DataFrame, pa.Table, dict], pa.Table],
    ) -> pl.LazyFrame:
        """Join two frames into ``left_key``, ``right_key`` and the ``extra`` columns."""
        right = other.lazy()
        rvec, rkey = _sides(vec, key, right_vec, right_key)
        schema = {
            "left_key": self._key_type(self._lf, key, "frame"),
            "right_key": self._key_type(right, rkey, "other frame"),
            **extra,
        }
        sides = {"vec": vec, "key": key, "right_vec": rvec, "right_key": rkey}

        def run(df: pl.DataFrame) -> pl.DataFrame:
            theirs = right.collect()
            left = _arrow(df, [key, vec], vec=vec)
            other_table = _arrow(theirs, [rkey, rvec], "other frame", vec=rvec)
            return _frame(join(left, theirs, other_table, sides))

        return self._defer(schema, run)

    def dedup(
        self, *, threshold: float, vec: str = "v", key: str = "id", metric: str = "cos"
    ) -> pl.LazyFrame:
        """Add ``group_id``, ``representative`` and ``keep`` (near-duplicate groups)."""
        from embed_sql.vectors.cluster import dedup

        schema = dict(self._lf.collect_schema())
        schema.update(
            group_id=pl.Int64(),
            representative=self._key_type(self._lf, key, "frame"),
            keep=pl.Boolean(),
        )

        def run(df: pl.DataFrame) -> pl.DataFrame:
            flags = _frame(
                dedup(_arrow(df, [key, vec], vec=vec), threshold, vec=vec, key=key, metric=metric)
            )
            return df.with_columns(flags.drop("key"))

        return self._defer(schema, run)

    def cluster(
        self,
        *,
        k: int | None = None,
        threshold: float | None = None,
        vec: str = "v",
        key: str = "id",
        metric: str = "cos",
        seed: int = 0,
    ) -> pl.LazyFrame:
        """Add a ``cluster`` column: k-means (``k=``) or threshold components."""
        from embed_sql.vectors.cluster import cluster

        schema = dict(self._lf.collect_schema())
        schema["cluster"] = pl.Int64()

        def run(df: pl.DataFrame) -> pl.DataFrame:
            res = cluster(
                _arrow(df, [key, vec], vec=vec),
                k=k,
                threshold=threshold,
                vec=vec,
                key=key,
                metric=metric,
                seed=seed,
            )
            return df.with_columns(pl.Series("cluster", res.table.column("cluster")))

        return self._defer(schema, run)

    def chunk(
        self,
        col: str,
        *,
        key: str = "id",
        max_tokens: int | None = None,
        overlap: int = 32,
        model: ModelRef | None = None,
    ) -> pl.LazyFrame:
        """Split the text column ``col`` into pieces of at most ``max_tokens`` model tokens.

        Returns ``key``, ``chunk``, ``text``, ``char_start``, ``char_end``, ``tokens`` per
        piece (as SQL's ``embed_chunks``); see :func:`embed_sql.pipelines.preprocess.chunk`.
        """
        from embed_sql.pipelines.preprocess import chunk

        schema = {
            "key": self._key_type(self._lf, key, "frame"),
            "chunk": pl.Int32(),
            "text": pl.String(),
            "char_start": pl.Int64(),
            "char_end": pl.Int64(),
            "tokens": pl.Int32(),
        }

        def run(df: pl.DataFrame) -> pl.DataFrame:
            data = _arrow(df, [key, col])
            out = chunk(
                data.column(col).combine_chunks(),
                data.column(key).combine_chunks(),
                max_tokens=max_tokens,
                overlap=overlap,
                model=model,
            )
            return _frame(out)

        return self._defer(schema, run)


def _eager(name: str) -> Callable[..., pl.DataFrame]:
    """Return the DataFrame form of a LazyFrame operation: run it lazily and collect."""
    lazy = getattr(EmbedLazyFrame, name)

    def run(self: EmbedFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        return getattr(EmbedLazyFrame(self._df.lazy()), name)(*args, **kwargs).collect()

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"Eager form of :meth:`EmbedLazyFrame.{name}` (runs it and collects).\n\n" + (
        inspect.getdoc(lazy) or ""
    )
    run.__signature__ = inspect.signature(lazy).replace(  # type: ignore[attr-defined]
        return_annotation="pl.DataFrame"
    )
    return run


@pl.api.register_dataframe_namespace("embed")
class EmbedFrame:
    """The ``embed`` namespace on DataFrames: each call runs the LazyFrame form and collects.

    Examples
    --------
    >>> import polars as pl, embed_sql.polars
    >>> docs = pl.DataFrame({"id": [1, 2], "title": ["burrito", "rates"]})
    >>> docs = docs.with_columns(v=pl.col("title").embed.text())
    >>> docs.embed.search("food", k=1)["title"].to_list()
    ['burrito']
    """

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    knn_join = _eager("knn_join")
    range_join = _eager("range_join")
    fuzzy_join = _eager("fuzzy_join")
    dedup = _eager("dedup")
    cluster = _eager("cluster")
    recommend = _eager("recommend")
    search = _eager("search")
    chunk = _eager("chunk")

    def plot(
        self,
        vec: str = "v",
        *,
        color: str | None = None,
        labels: str | None = None,
        method: str = "pca",
        title: str | None = None,
        max_labels: int = 12,
    ) -> Figure:
        """Draw the vector column on a 2-D map (PCA, or UMAP), coloured by a column.

        Rows with a NULL vector are left out. ``labels`` names a text column written beside
        a few spread-out points. Returns a matplotlib Figure (inline in notebooks;
        ``.savefig("map.png")``); see :func:`embed_sql.plot.embedding_map`.
        """
        from embed_sql.plot import embedding_map

        wanted = [c for c in (vec, color, labels) if c is not None]
        table = _arrow(self._df, wanted, vec=vec)
        keep = table.column(vec).is_valid()
        table = table.filter(keep)
        vectors = to_numpy(table.column(vec))
        return embedding_map(
            vectors,
            table.column(color).to_pylist() if color else None,
            labels=table.column(labels).to_pylist() if labels else None,
            method=method,
            title=title,
            max_labels=max_labels,
        )
