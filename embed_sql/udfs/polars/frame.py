"""The vector operator on Polars frames: ``df.embed.knn_join(other, k=5)`` and friends.

Each operation is written once, on the LazyFrame: it declares its result schema and runs
the host-neutral Arrow operation (:mod:`embed_sql.vectors`) when collected. The eager
DataFrame form calls the lazy one and collects, as polars' own ``join_where`` does. Result
columns and parameter names are the SQL macros' (``vec``, ``key``, ``left_key``,
``right_key``, ``distance``, ``rank``, ``group_id``, ...).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors.arrow import fixed_vectors, to_numpy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EmbedFrame", "EmbedLazyFrame"]

ModelRef = str | ModelSpec | os.PathLike[str]
_ROW = "__embed_sql_row"  # a row-position column no frame has


def _arrow(
    df: pl.DataFrame, columns: list[str], what: str = "frame", *, vec: str | None = None
) -> pa.Table:
    missing = [c for c in dict.fromkeys(columns) if c not in df.columns]
    if missing:
        msg = (
            f"column(s) {missing} not in the {what}; its columns are {df.columns}; name the "
            "right ones with vec= / key="
        )
        raise ColumnNotFoundError(msg)
    table = df.select(list(dict.fromkeys(columns))).to_arrow()
    if vec is None:
        return table
    # List(Float32 | Float64) columns (from ibis, jupysql) pass when every vector has one length
    i = table.column_names.index(vec)
    vectors = fixed_vectors(table.column(i), vec, f"the {what}")
    return table.set_column(i, table.field(i).with_type(vectors.type), pa.chunked_array([vectors]))


def _frame(table: pa.Table) -> pl.DataFrame:
    return pl.from_arrow(table)  # type: ignore[return-value]


def _sides(vec: str, key: str, right_vec: str | None, right_key: str | None) -> tuple[str, str]:
    return (vec if right_vec is None else right_vec), (key if right_key is None else right_key)


@pl.api.register_lazyframe_namespace("embed")
class EmbedLazyFrame:
    """The ``embed`` namespace on LazyFrames: vector joins, dedup, clustering, search."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _defer(
        self, schema: dict[str, pl.DataType], run: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.LazyFrame:
        return self._lf.map_batches(
            run,
            schema=pl.Schema(schema),
            predicate_pushdown=False,
            projection_pushdown=False,
            streamable=False,
        )

    def _key_type(self, lf: pl.LazyFrame, key: str, what: str) -> pl.DataType:
        schema = lf.collect_schema()
        if key not in schema:
            msg = f"key column {key!r} not in the {what}; its columns are {list(schema)}; use key="
            raise ColumnNotFoundError(msg)
        return schema[key]

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

    def fuzzy_join(
        self,
        other: pl.LazyFrame | pl.DataFrame,
        *,
        text: str = "text",
        k: int = 5,
        key: str = "id",
        right_text: str | None = None,
        right_key: str | None = None,
        scorer: str = "ratio",
        semantic: float = 0.0,
        threshold: float | None = None,
        model: ModelRef | None = None,
    ) -> pl.LazyFrame:
        """Match each row's string ``text`` to the ``k`` most similar of ``other``'s.

        Typo-tolerant: candidates by character n-gram vectors, scored by rapidfuzz
        (``scorer``) and, with ``semantic > 0``, the sentence model. Returns
        ``left_key``, ``right_key``, ``char_score``, ``semantic_score``, ``score``, ``rank``
        (as SQL's ``embed_fuzzy_join``); see :func:`embed_sql.pipelines.fuzzy.fuzzy_join`.
        """
        from embed_sql.pipelines.fuzzy import fuzzy_join
        from embed_sql.vectors.join import check_k

        check_k(k)
        right = other.lazy()
        rtext, rkey = _sides(text, key, right_text, right_key)
        schema = {
            "left_key": self._key_type(self._lf, key, "frame"),
            "right_key": self._key_type(right, rkey, "other frame"),
            "char_score": pl.Float32(),
            "semantic_score": pl.Float32(),
            "score": pl.Float32(),
            "rank": pl.Int32(),
        }

        def run(df: pl.DataFrame) -> pl.DataFrame:
            return _frame(
                fuzzy_join(
                    _arrow(df, [key, text]),
                    _arrow(right.collect(), [rkey, rtext], "other frame"),
                    k,
                    text=text,
                    key=key,
                    right_text=rtext,
                    right_key=rkey,
                    scorer=scorer,
                    semantic=semantic,
                    threshold=threshold,
                    model=model,
                )
            )

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

    def recommend(
        self,
        items: pl.LazyFrame | pl.DataFrame,
        *,
        k: int = 10,
        user_key: str = "user_id",
        item_key: str = "item_id",
        weight: str | None = None,
        time: str | None = None,
        half_life: float | None = None,
        exclude_seen: bool = True,
        diversity: float = 0.0,
        vec: str = "v",
        key: str = "id",
    ) -> pl.LazyFrame:
        """Items for each user of these interactions: ``user_key, item_key, score, rank``.

        As SQL's ``embed_recommend``; ``items`` holds the item vectors (``key``, ``vec``).
        See :func:`embed_sql.pipelines.recommend.recommend`.
        """
        from embed_sql.pipelines.recommend import recommend

        catalog = items.lazy()
        schema = {
            "user_key": self._key_type(self._lf, user_key, "interactions"),
            "item_key": self._key_type(catalog, key, "items"),
            "score": pl.Float32(),
            "rank": pl.Int32(),
        }
        wanted = [c for c in (user_key, item_key, weight, time) if c is not None]

        def run(df: pl.DataFrame) -> pl.DataFrame:
            table = recommend(
                _arrow(df, wanted, "interactions"),
                _arrow(catalog.collect(), [key, vec], "items", vec=vec),
                k=k,
                user_key=user_key,
                item_key=item_key,
                weight=weight,
                time=time,
                half_life=half_life,
                exclude_seen=exclude_seen,
                diversity=diversity,
                vec=vec,
                key=key,
            )
            return _frame(table)

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

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        vec: str = "v",
        model: ModelRef | None = None,
        metric: str = "cos",
        hybrid: bool = False,
        text: str | None = None,
        weight: float = 0.5,
        document: str | None = None,
    ) -> pl.LazyFrame:
        """Return the ``k`` rows closest to ``query`` (embedded with ``model``).

        Adds ``distance``, ``rank``, ``score`` and ``bm25`` (as SQL's ``embed_search``),
        best first. ``hybrid=True`` fuses BM25 over the ``text`` column with the vector
        ranking (``weight``: the vector side's share); ``document=`` keeps each document's
        best row only. See :func:`embed_sql.pipelines.search.search`.
        """
        from embed_sql.pipelines.search import check_weight, search
        from embed_sql.vectors.join import check_k

        if not isinstance(query, str):
            msg = f"search() takes the query as a str, got {type(query).__name__}"
            raise InputTypeError(msg)
        check_k(k)
        check_weight(weight)
        shared_encoder(model)  # resolve now: an unknown model fails here
        schema = dict(self._lf.collect_schema())
        for column, role in ((vec, "vec"), (text, "text"), (document, "document")):
            if column is not None and column not in schema:
                msg = (
                    f"{role} column {column!r} not in the frame; its columns are "
                    f"{list(schema)}; use {role}="
                )
                raise ColumnNotFoundError(msg)
        if hybrid and text is None:
            msg = "hybrid=True ranks by BM25 too: name the text column, e.g. text='body'"
            raise InvalidParameterError(msg)
        added = {"distance": pl.Float32(), "rank": pl.Int32(), "score": pl.Float32()}
        schema.update(added, bm25=pl.Float32())

        def run(df: pl.DataFrame) -> pl.DataFrame:
            rows = pa.array(np.arange(df.height, dtype=np.int64))
            columns = [c for c in (vec, text, document) if c is not None]
            table = _arrow(df, columns, vec=vec).append_column(_ROW, rows)
            found = search(
                table,
                query,
                k=k,
                vec=vec,
                key=_ROW,
                text=text,
                hybrid=hybrid,
                weight=weight,
                document=document,
                model=model,
                metric=metric,
            )
            picked = df[found.column("key").to_pylist()] if found.num_rows else df.clear()
            return picked.with_columns(
                pl.Series(name, found.column(name), dtype=dtype)  # NULLs stay NULL
                for name, dtype in (*added.items(), ("bm25", pl.Float32()))
            )

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
