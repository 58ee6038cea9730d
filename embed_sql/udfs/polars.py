"""Encoders as Polars expressions: ``pl.col("text").embed.text()`` → ``pl.Array(pl.Float32, dim)``.

The only module that imports polars. Importing it (or :mod:`embed_sql.polars`) registers the
``embed`` expression namespace. The expression declares its ``return_dtype`` and is
element-wise, so it works in ``select``, ``with_columns``, ``group_by().agg``, on LazyFrames
and with the streaming engine, which then hands it bounded morsels instead of whole columns.

>>> import polars as pl
>>> import embed_sql.polars
>>> df = pl.DataFrame({"title": ["a burrito", None]})
>>> df.with_columns(v=pl.col("title").embed.text()).schema["v"]
Array(Float32, shape=(384,))
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InputTypeError, InvalidParameterError, MissingDependencyError
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import shared_encoder
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors.arrow import to_numpy

try:
    import polars as pl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    msg = "the Polars expressions need polars; install the extra: pip install 'embed-sql[polars]'"
    raise MissingDependencyError(msg) from exc

__all__ = ["EmbedExpr", "EmbedFrame", "EmbedLazyFrame", "vector_dtype", "vectors_to_numpy"]

ModelRef = str | ModelSpec | os.PathLike[str]


def vector_dtype(dim: int) -> pl.DataType:
    """Return the Polars type of a vector column: ``pl.Array(pl.Float32, dim)``."""
    return pl.Array(pl.Float32, dim)


def vectors_to_numpy(series: pl.Series) -> np.ndarray:
    """Return an ``(n, dim)`` float32 matrix for an Array column; NULL rows are NaN.

    Goes through Arrow, offset-safe, without a copy when the column has no NULLs.
    """
    if not isinstance(series.dtype, pl.Array):
        msg = f"expected a pl.Array(pl.Float32, dim) column, got {series.dtype} in {series.name!r}"
        raise InputTypeError(msg)
    return to_numpy(series.to_arrow())


@pl.api.register_expr_namespace("embed")
class EmbedExpr:
    """The ``embed`` namespace on Polars expressions."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def text(
        self,
        model: ModelRef | None = None,
        *,
        cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    ) -> pl.Expr:
        """Embed a String column into ``pl.Array(pl.Float32, dim)``; null gives null.

        Parameters
        ----------
        model
            Name, alias (``"all-MiniLM-L6-v2:int8"``), spec or local path; default
            all-MiniLM-L6-v2. Resolved now, so an unknown model fails here, not mid-query.
        cache
            An :class:`~embed_sql.models.cache.EmbeddingCache` or a path for one.

        Examples
        --------
        >>> import polars as pl, embed_sql.polars
        >>> pl.select(pl.lit("tacos").embed.text()).dtypes
        [Array(Float32, shape=(384,))]
        """
        encoder = shared_encoder(model)
        store = (
            cache if isinstance(cache, EmbeddingCache) or cache is None else EmbeddingCache(cache)
        )
        dtype = vector_dtype(encoder.dim)

        def embed_batch(s: pl.Series) -> pl.Series:
            if s.dtype not in (pl.String, pl.Null):
                msg = (
                    f"cannot embed column {s.name!r} of type {s.dtype}; only String columns "
                    f"can be embedded. Cast it first: pl.col({s.name!r}).cast(pl.String)"
                )
                raise InputTypeError(msg)
            texts = s.cast(pl.String).to_arrow()
            out = encoder.encode(texts) if store is None else store.encode(encoder, texts)
            if isinstance(out, pa.ChunkedArray):
                out = out.combine_chunks()
            return pl.Series(s.name, out, dtype=dtype)

        return self._expr.map_batches(embed_batch, return_dtype=dtype, is_elementwise=True)

    def clean(
        self,
        *,
        strip_html: bool = True,
        normalize: str | None = "NFKC",
        remove_control: bool = True,
        collapse_whitespace: bool = True,
        lowercase: bool = False,
    ) -> pl.Expr:
        """Clean a String column: markup, NFKC, control characters, whitespace.

        Options as :func:`embed_sql.pipelines.preprocess.clean`; null stays null.
        """
        from embed_sql.pipelines.preprocess import clean

        options = {
            "strip_html": strip_html,
            "normalize": normalize,
            "remove_control": remove_control,
            "collapse_whitespace": collapse_whitespace,
            "lowercase": lowercase,
        }
        clean([], **options)  # type: ignore[arg-type] - validates the options now

        def clean_batch(s: pl.Series) -> pl.Series:
            if s.dtype not in (pl.String, pl.Null):
                msg = f"cannot clean column {s.name!r} of type {s.dtype}; cast it to pl.String"
                raise InputTypeError(msg)
            out = clean(s.cast(pl.String).to_arrow(), **options)  # type: ignore[arg-type]
            return pl.Series(s.name, out, dtype=pl.String)

        return self._expr.map_batches(clean_batch, return_dtype=pl.String, is_elementwise=True)

    def outlier_score(
        self, reference: object, *, k: int = 5, column: str = "v", metric: str = "cos"
    ) -> pl.Expr:
        """Novelty score of a vector column: distance to the ``k``-th nearest reference vector.

        ``reference`` is a :class:`~embed_sql.vectors.VectorIndex`, an
        :class:`~embed_sql.pipelines.outliers.OutlierScorer`, a DataFrame (``column`` holds
        its vectors), a Series or a numpy matrix; it is indexed once, here. Null gives null.
        See :mod:`embed_sql.pipelines.outliers`.
        """
        from embed_sql.pipelines.outliers import OutlierScorer, kth_distance, reference_index

        if isinstance(reference, OutlierScorer):
            index = reference.index
        else:
            index = reference_index(reference, column, metric)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 < k <= len(index):
            msg = (
                f"k={k!r} must be a positive integer no larger than the {len(index)} reference rows"
            )
            raise InvalidParameterError(msg)

        def score_batch(s: pl.Series) -> pl.Series:
            out = kth_distance(index, vectors_to_numpy(s), k)
            return pl.Series(s.name, out, dtype=pl.Float32).fill_nan(None)

        return self._expr.map_batches(score_batch, return_dtype=pl.Float32, is_elementwise=True)

    def is_outlier(
        self,
        reference: object,
        *,
        k: int = 5,
        quantile: float = 0.99,
        column: str = "v",
        metric: str = "cos",
    ) -> pl.Expr:
        """Flag rows whose outlier score exceeds the threshold calibrated on the reference.

        The threshold is the ``quantile`` of the reference's own leave-one-out scores; null
        gives null.

        ``reference`` as in :meth:`outlier_score`; an ``OutlierScorer`` brings its own ``k``
        and threshold.
        """
        from embed_sql.pipelines.outliers import OutlierScorer

        if not isinstance(reference, OutlierScorer):
            reference = OutlierScorer(
                reference, k=k, quantile=quantile, column=column, metric=metric
            )
        scorer: OutlierScorer = reference  # type: ignore[assignment]

        def flag_batch(s: pl.Series) -> pl.Series:
            out = scorer.score(vectors_to_numpy(s))
            flags = pa.array(out > scorer.threshold, pa.bool_(), mask=np.isnan(out))
            return pl.Series(s.name, flags, dtype=pl.Boolean)

        return self._expr.map_batches(flag_batch, return_dtype=pl.Boolean, is_elementwise=True)


def _arrow(df: pl.DataFrame, columns: list[str]) -> pa.Table:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = f"column(s) {missing} not in the frame; its columns are {df.columns}"
        raise InputTypeError(msg)
    return df.select(columns).to_arrow()


def _frame(table: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(table)  # type: ignore[return-value]


class _Ops:
    """The vector operators, on an eager DataFrame; LazyFrame defers to them."""

    @staticmethod
    def knn_join(
        df: pl.DataFrame,
        other: pl.DataFrame,
        *,
        where: pl.Expr | None = None,
        left_on: str,
        right_on: str,
        left_key: str,
        right_key: str,
        k: int,
        metric: str,
        exact: bool,
    ) -> pl.DataFrame:
        from embed_sql.vectors.join import knn_join

        left = _arrow(df, [left_key, left_on])
        right = _arrow(other, [right_key, right_on])
        mask = None
        if where is not None:  # a predicate on the right side, applied before the top-k
            flags = other.select(where.fill_null(value=False)).to_series()
            if flags.dtype != pl.Boolean:
                msg = f"where= must be a boolean expression on the right frame, got {flags.dtype}"
                raise InputTypeError(msg)
            valid = other[right_on].is_not_null().to_numpy()
            mask = flags.to_numpy()[valid]  # one flag per indexed (non-NULL) row
        return _frame(
            knn_join(
                left,
                right,
                k,
                left_on=left_on,
                right_on=right_on,
                left_key=left_key,
                right_key=right_key,
                metric=metric,
                exact=exact,
                where=mask,
            )
        )

    @staticmethod
    def range_join(
        df: pl.DataFrame,
        other: pl.DataFrame,
        *,
        left_on: str,
        right_on: str,
        left_key: str,
        right_key: str,
        threshold: float,
        metric: str,
        exact: bool,
    ) -> pl.DataFrame:
        from embed_sql.vectors.join import range_join

        left = _arrow(df, [left_key, left_on])
        right = _arrow(other, [right_key, right_on])
        return _frame(
            range_join(
                left,
                right,
                threshold,
                left_on=left_on,
                right_on=right_on,
                left_key=left_key,
                right_key=right_key,
                metric=metric,
                exact=exact,
            )
        )

    @staticmethod
    def dedup(
        df: pl.DataFrame, *, on: str, key: str, threshold: float, metric: str
    ) -> pl.DataFrame:
        from embed_sql.vectors.cluster import dedup

        flags = _frame(dedup(_arrow(df, [key, on]), threshold, on=on, key=key, metric=metric))
        return df.with_columns(flags.drop(key))

    @staticmethod
    def cluster(
        df: pl.DataFrame,
        *,
        on: str,
        key: str,
        k: int | None,
        threshold: float | None,
        metric: str,
        seed: int,
    ) -> pl.DataFrame:
        from embed_sql.vectors.cluster import cluster

        res = cluster(
            _arrow(df, [key, on]),
            k=k,
            threshold=threshold,
            on=on,
            key=key,
            metric=metric,
            seed=seed,
        )
        return df.with_columns(cluster=pl.from_arrow(res.table.column("cluster")))

    @staticmethod
    def search(
        df: pl.DataFrame,
        query: str,
        *,
        on: str,
        k: int,
        model: ModelRef | None,
        metric: str,
    ) -> pl.DataFrame:
        from embed_sql.vectors.index import VectorIndex

        if not isinstance(query, str):
            msg = f"search() takes the query as a str, got {type(query).__name__}"
            raise InputTypeError(msg)
        encoder = shared_encoder(model)
        if on not in df.columns:
            msg = f"vector column {on!r} not in the frame; its columns are {df.columns}"
            raise InputTypeError(msg)
        if df.height == 0:
            return df.with_columns(distance=pl.lit(None, pl.Float32)).head(0)
        index = VectorIndex.build(
            df[on].to_arrow(),
            pa.array(np.arange(df.height)),
            metric=metric,
            exact=True,
            allow_duplicates=False,
        )
        res = index.search(encoder.encode_numpy([query]), k)
        hit = res.labels[0] >= 0
        rows = res.labels[0][hit]
        return df[rows.tolist()].with_columns(
            distance=pl.Series(res.distances[0][hit], dtype=pl.Float32)
        )


@pl.api.register_dataframe_namespace("embed")
class EmbedFrame:
    """The ``embed`` namespace on DataFrames: vector joins, dedup, clustering, search.

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

    def knn_join(
        self,
        other: pl.DataFrame,
        *,
        k: int,
        left_on: str = "v",
        right_on: str = "v",
        left_key: str = "id",
        right_key: str = "id",
        metric: str = "cos",
        exact: bool = False,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Join each row to its ``k`` nearest rows of ``other`` (keys, distance, rank).

        ``where`` is a boolean expression on ``other``, applied before the top-k, so ``k``
        rows come back whenever ``k`` rows pass it.
        """
        return _Ops.knn_join(
            self._df,
            other,
            where=where,
            left_on=left_on,
            right_on=right_on,
            left_key=left_key,
            right_key=right_key,
            k=k,
            metric=metric,
            exact=exact,
        )

    def range_join(
        self,
        other: pl.DataFrame,
        *,
        threshold: float,
        left_on: str = "v",
        right_on: str = "v",
        left_key: str = "id",
        right_key: str = "id",
        metric: str = "cos",
        exact: bool = False,
    ) -> pl.DataFrame:
        """Return every pair within ``threshold``: ``left_<key>, right_<key>, distance``."""
        return _Ops.range_join(
            self._df,
            other,
            left_on=left_on,
            right_on=right_on,
            left_key=left_key,
            right_key=right_key,
            threshold=threshold,
            metric=metric,
            exact=exact,
        )

    def dedup(
        self, *, threshold: float, on: str = "v", key: str = "id", metric: str = "cos"
    ) -> pl.DataFrame:
        """Add ``group``, ``representative`` and ``keep`` columns (near-duplicate groups)."""
        return _Ops.dedup(self._df, on=on, key=key, threshold=threshold, metric=metric)

    def cluster(
        self,
        *,
        k: int | None = None,
        threshold: float | None = None,
        on: str = "v",
        key: str = "id",
        metric: str = "cos",
        seed: int = 0,
    ) -> pl.DataFrame:
        """Add a ``cluster`` column: k-means (``k=``) or threshold components."""
        return _Ops.cluster(
            self._df, on=on, key=key, k=k, threshold=threshold, metric=metric, seed=seed
        )

    def chunk(
        self,
        column: str,
        *,
        key: str = "id",
        max_tokens: int | None = None,
        overlap: int = 32,
        model: ModelRef | None = None,
    ) -> pl.DataFrame:
        """Split ``column`` into pieces of at most ``max_tokens`` model tokens.

        Returns ``key``, ``chunk``, ``text``, ``start``, ``end``, ``tokens`` per piece; see
        :func:`embed_sql.pipelines.preprocess.chunk`.
        """
        from embed_sql.pipelines.preprocess import chunk

        data = _arrow(self._df, [key, column])
        out = chunk(
            data.column(column).combine_chunks(),
            data.column(key).combine_chunks(),
            max_tokens=max_tokens,
            overlap=overlap,
            model=model,
        )
        return _frame(out.rename_columns([key, *out.column_names[1:]]))

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        on: str = "v",
        model: ModelRef | None = None,
        metric: str = "cos",
    ) -> pl.DataFrame:
        """Return the ``k`` rows closest to ``query`` (embedded with ``model``)."""
        return _Ops.search(self._df, query, on=on, k=k, model=model, metric=metric)


@pl.api.register_lazyframe_namespace("embed")
class EmbedLazyFrame:
    """The ``embed`` namespace on LazyFrames: the same operators, run when collected."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _defer(self, schema: dict[str, pl.DataType], run: object) -> pl.LazyFrame:
        return self._lf.map_batches(
            run,
            schema=pl.Schema(schema),  # type: ignore[arg-type]
            predicate_pushdown=False,
            projection_pushdown=False,
            streamable=False,
        )

    def knn_join(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        *,
        k: int,
        left_on: str = "v",
        right_on: str = "v",
        left_key: str = "id",
        right_key: str = "id",
        metric: str = "cos",
        exact: bool = False,
        where: pl.Expr | None = None,
    ) -> pl.LazyFrame:
        """Lazy form of :meth:`EmbedFrame.knn_join`."""
        right = other.lazy()
        schema = {
            f"left_{left_key}": self._lf.collect_schema()[left_key],
            f"right_{right_key}": right.collect_schema()[right_key],
            "distance": pl.Float32(),
            "rank": pl.Int32(),
        }
        return self._defer(
            schema,
            lambda df: _Ops.knn_join(
                df,
                right.collect(),
                where=where,
                left_on=left_on,
                right_on=right_on,
                left_key=left_key,
                right_key=right_key,
                k=k,
                metric=metric,
                exact=exact,
            ),
        )

    def range_join(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        *,
        threshold: float,
        left_on: str = "v",
        right_on: str = "v",
        left_key: str = "id",
        right_key: str = "id",
        metric: str = "cos",
        exact: bool = False,
    ) -> pl.LazyFrame:
        """Lazy form of :meth:`EmbedFrame.range_join`."""
        right = other.lazy()
        schema = {
            f"left_{left_key}": self._lf.collect_schema()[left_key],
            f"right_{right_key}": right.collect_schema()[right_key],
            "distance": pl.Float32(),
        }
        return self._defer(
            schema,
            lambda df: _Ops.range_join(
                df,
                right.collect(),
                left_on=left_on,
                right_on=right_on,
                left_key=left_key,
                right_key=right_key,
                threshold=threshold,
                metric=metric,
                exact=exact,
            ),
        )

    def dedup(
        self, *, threshold: float, on: str = "v", key: str = "id", metric: str = "cos"
    ) -> pl.LazyFrame:
        """Lazy form of :meth:`EmbedFrame.dedup`."""
        schema = dict(self._lf.collect_schema())
        schema.update(group=pl.Int64(), representative=schema[key], keep=pl.Boolean())
        return self._defer(
            schema, lambda df: _Ops.dedup(df, on=on, key=key, threshold=threshold, metric=metric)
        )

    def cluster(
        self,
        *,
        k: int | None = None,
        threshold: float | None = None,
        on: str = "v",
        key: str = "id",
        metric: str = "cos",
        seed: int = 0,
    ) -> pl.LazyFrame:
        """Lazy form of :meth:`EmbedFrame.cluster`."""
        schema = dict(self._lf.collect_schema())
        schema["cluster"] = pl.Int64()
        return self._defer(
            schema,
            lambda df: _Ops.cluster(
                df, on=on, key=key, k=k, threshold=threshold, metric=metric, seed=seed
            ),
        )

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        on: str = "v",
        model: ModelRef | None = None,
        metric: str = "cos",
    ) -> pl.LazyFrame:
        """Lazy form of :meth:`EmbedFrame.search`."""
        shared_encoder(model)  # resolve now: an unknown model fails here
        schema = dict(self._lf.collect_schema())
        schema["distance"] = pl.Float32()
        return self._defer(
            schema, lambda df: _Ops.search(df, query, on=on, k=k, model=model, metric=metric)
        )
