"""The applications on Polars frames: ``fuzzy_join``, ``recommend``, ``search``.

Written once on the LazyFrame, as the vector operator in :mod:`.frame` is; the eager
DataFrame forms call them and collect.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from embed_sql.exceptions import ColumnNotFoundError, InputTypeError, InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.udfs.polars.common import _ROW, LazyBase, ModelRef, _arrow, _frame, _sides

__all__ = ["LazyApps"]


class LazyApps(LazyBase):
    """The applications' methods of the ``embed`` LazyFrame namespace."""

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
            msg = (
                f"search() takes the query as a str, got {type(query).__name__}: give the "
                "query text (a NULL query has no answer)"
            )
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
