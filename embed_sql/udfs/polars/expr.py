"""Encoders as Polars expressions: ``pl.col("text").embed.text()`` → ``pl.Array(pl.Float32, dim)``.

``pl.col("photo").embed.image()`` does the same for images (bytes or file paths).

Importing :mod:`embed_sql.polars` registers the ``embed`` expression namespace. The
expression declares its ``return_dtype`` and is
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

from embed_sql.exceptions import InputTypeError, MissingDependencyError
from embed_sql.models.cache import EmbeddingCache
from embed_sql.models.encoder import shared_encoder
from embed_sql.models.registry import ModelSpec
from embed_sql.models.texts import with_prefix
from embed_sql.vectors.arrow import fixed_vectors, to_numpy
from embed_sql.vectors.join import check_k

try:
    import polars as pl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    msg = "the Polars expressions need polars; install the extra: pip install 'embed-sql[polars]'"
    raise MissingDependencyError(msg) from exc

__all__ = ["EmbedExpr", "vector_dtype", "vectors_to_numpy"]

ModelRef = str | ModelSpec | os.PathLike[str]


def vector_dtype(dim: int) -> pl.DataType:
    """Return the Polars type of a vector column: ``pl.Array(pl.Float32, dim)``."""
    return pl.Array(pl.Float32, dim)


def vectors_to_numpy(series: pl.Series) -> np.ndarray:
    """Return an ``(n, dim)`` float32 matrix for a vector column; NULL rows are NaN.

    An ``Array`` column goes through Arrow, offset-safe, without a copy when it has no
    NULLs; a ``List`` of floats is accepted when every vector has one length.
    """
    if isinstance(series.dtype, pl.List) and series.dtype.inner in (pl.Float32, pl.Float64):
        return to_numpy(fixed_vectors(series.to_arrow(), series.name, "the frame"))
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
        prompt: str | None = None,
        providers: list[str] | None = None,
    ) -> pl.Expr:
        """Embed a String column into ``pl.Array(pl.Float32, dim)``; null gives null.

        Parameters
        ----------
        model
            Name, alias (``"all-MiniLM-L6-v2:int8"``), spec or local path; default
            all-MiniLM-L6-v2. Resolved now, so an unknown model fails here, not mid-query.
        cache
            An :class:`~embed_sql.models.cache.EmbeddingCache` or a path for one.
        prompt
            One of the model's prompts (``"query"``, ``"document"``), prepended to each text.
        providers
            onnxruntime execution providers, e.g. ``["CUDAExecutionProvider"]``.

        Examples
        --------
        >>> import polars as pl, embed_sql.polars
        >>> pl.select(pl.lit("tacos").embed.text()).dtypes
        [Array(Float32, shape=(384,))]
        """
        encoder = shared_encoder(model, providers=providers)
        prefix = "" if prompt is None else encoder.spec.prompt_prefix(prompt)  # checked now
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
            texts = with_prefix(s.cast(pl.String).to_arrow(), prefix)
            out = encoder.encode(texts) if store is None else store.encode(encoder, texts)
            if isinstance(out, pa.ChunkedArray):
                out = out.combine_chunks()
            return pl.Series(s.name, out, dtype=dtype)

        return self._expr.map_batches(embed_batch, return_dtype=dtype, is_elementwise=True)

    def image(
        self, model: ModelRef | None = None, *, providers: list[str] | None = None
    ) -> pl.Expr:
        """Embed an image column into ``pl.Array(pl.Float32, dim)``; null gives null.

        A ``Binary`` column holds encoded image files (JPEG, PNG, WebP, ...), a ``String``
        column file paths. An unreadable image gives null and one counted warning per
        batch. Default model: EfficientNet-Lite0 (1280-d); see
        :class:`~embed_sql.models.image.ImageEncoder`.

        Examples
        --------
        >>> import polars as pl, embed_sql.polars
        >>> pl.select(pl.lit(None, pl.Binary).embed.image()).dtypes        # doctest: +SKIP
        [Array(Float32, shape=(1280,))]
        """
        from embed_sql.models.image import shared_image_encoder

        encoder = shared_image_encoder(model, providers=providers)
        dtype = vector_dtype(encoder.dim)

        def embed_batch(s: pl.Series) -> pl.Series:
            if s.dtype not in (pl.Binary, pl.String, pl.Null):
                msg = (
                    f"cannot embed column {s.name!r} of type {s.dtype} as images; give a Binary "
                    "column of image files or a String column of paths"
                )
                raise InputTypeError(msg)
            out = encoder.encode(s.cast(pl.Binary if s.dtype == pl.Null else s.dtype).to_arrow())
            if isinstance(out, pa.ChunkedArray):
                out = out.combine_chunks()
            return pl.Series(s.name, out, dtype=dtype)

        return self._expr.map_batches(embed_batch, return_dtype=dtype, is_elementwise=True)

    def classify(
        self,
        labels: list[str],
        *,
        template: str = "This text is about {}.",
        model: ModelRef | None = None,
        scores: bool = False,
    ) -> pl.Expr:
        """Zero-shot labels for a String column: ``Struct(label, score, margin)`` per row.

        As SQL's ``embed_classify``; see :func:`embed_sql.pipelines.classify.classify`.
        Labels are embedded once, here; ``scores=True`` adds every label's score.

        Examples
        --------
        >>> import polars as pl, embed_sql.polars
        >>> df = pl.DataFrame({"t": ["Arsenal won 2-0"]})
        >>> df.select(pl.col("t").embed.classify(["sport", "politics"])).item()["label"]
        'sport'
        """
        from embed_sql.pipelines.classify import classify_vectors, label_vectors, result_type

        encoder = shared_encoder(model)
        matrix = label_vectors(encoder, labels, template)  # validates labels and template now
        names = list(labels)
        dtype = pl.from_arrow(pa.array([], result_type(scores))).dtype  # type: ignore[union-attr]

        def classify_batch(s: pl.Series) -> pl.Series:
            if s.dtype not in (pl.String, pl.Null):
                msg = f"cannot classify column {s.name!r} of type {s.dtype}; cast it to pl.String"
                raise InputTypeError(msg)
            vectors = encoder.encode(s.cast(pl.String).to_arrow())
            out = classify_vectors(vectors, names, matrix, scores=scores)
            return pl.Series(s.name, out, dtype=dtype)

        return self._expr.map_batches(classify_batch, return_dtype=dtype, is_elementwise=True)

    def clean(
        self,
        *,
        repair: bool = False,
        strip_html: bool = True,
        normalize: str | None = "NFKC",
        remove_control: bool = True,
        collapse_whitespace: bool = True,
        lowercase: bool = False,
    ) -> pl.Expr:
        """Clean a String column: mojibake (``repair``), markup, NFKC, control characters, spaces.

        Options as :func:`embed_sql.pipelines.preprocess.clean`; null stays null.
        """
        from embed_sql.pipelines.preprocess import clean

        options = {
            "repair": repair,
            "strip_html": strip_html,
            "normalize": normalize,
            "remove_control": remove_control,
            "collapse_whitespace": collapse_whitespace,
            "lowercase": lowercase,
        }
        clean([], **options)  # type: ignore[arg-type]  # validates the options now

        def clean_batch(s: pl.Series) -> pl.Series:
            if s.dtype not in (pl.String, pl.Null):
                msg = f"cannot clean column {s.name!r} of type {s.dtype}; cast it to pl.String"
                raise InputTypeError(msg)
            out = clean(s.cast(pl.String).to_arrow(), **options)  # type: ignore[arg-type]
            return pl.Series(s.name, out, dtype=pl.String)

        return self._expr.map_batches(clean_batch, return_dtype=pl.String, is_elementwise=True)

    def knn(self, index: object, *, k: int = 10, vec: str = "v", metric: str = "cos") -> pl.Expr:
        """Return the ``k`` nearest rows of ``index`` for each vector, as SQL's ``embed_knn``.

        Returns ``List(Struct(rank, key, distance))`` per row, closest first (null for a null
        vector, as in SQL; a NaN or infinite vector is refused). ``index`` is a
        :class:`~embed_sql.vectors.VectorIndex`, or a DataFrame (``vec`` holds its vectors,
        keyed by its ``id`` column) indexed here, once.

        Examples
        --------
        >>> import polars as pl, embed_sql.polars
        >>> docs = pl.DataFrame({"id": [1, 2], "t": ["burrito", "rates"]})
        >>> docs = docs.with_columns(v=pl.col("t").embed.text())
        >>> docs.select(pl.col("v").embed.knn(docs, k=1)).item(0, 0)[0]["key"]
        1
        """
        from embed_sql.vectors.index import VectorIndex
        from embed_sql.vectors.join import index_for

        k = check_k(k)
        if not isinstance(index, VectorIndex):
            frame = index.collect() if isinstance(index, pl.LazyFrame) else index
            if not isinstance(frame, pl.DataFrame):
                msg = f"knn() takes a VectorIndex or a DataFrame, got {type(index).__name__}"
                raise InputTypeError(msg)
            index = index_for(frame.to_arrow(), vec=vec, key="id", metric=metric, exact=True)
        found: VectorIndex = index
        key_type = pl.from_arrow(pa.array([], found.keys().type)).dtype  # type: ignore[union-attr]
        dtype = pl.List(pl.Struct({"rank": pl.Int32, "key": key_type, "distance": pl.Float32}))

        def knn_batch(s: pl.Series) -> pl.Series:
            mat, valid = _queries(s)
            res = found.search(mat[valid], k)
            rows, cols = np.nonzero(res.labels >= 0)
            children = pa.StructArray.from_arrays(
                [
                    pa.array(cols + 1, pa.int32()),
                    found.key_of(res.labels[rows, cols]),
                    pa.array(res.distances[rows, cols], pa.float32()),
                ],
                names=["rank", "key", "distance"],
            )
            counts = np.zeros(len(s), dtype=np.int64)
            counts[valid] = res.counts
            offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
            lists = pa.ListArray.from_arrays(offsets, children, mask=pa.array(~valid))
            return pl.Series(s.name, lists, dtype=dtype)

        return self._expr.map_batches(knn_batch, return_dtype=dtype, is_elementwise=True)

    def outlier_score(
        self, reference: object, *, k: int = 5, vec: str = "v", metric: str = "cos"
    ) -> pl.Expr:
        """Novelty score of a vector column: distance to the ``k``-th nearest reference vector.

        ``reference`` is a :class:`~embed_sql.vectors.VectorIndex`, an
        :class:`~embed_sql.pipelines.outliers.OutlierScorer`, a DataFrame (``vec`` holds
        its vectors), a Series or a numpy matrix; it is indexed once, here. Null gives null.
        See :mod:`embed_sql.pipelines.outliers`.
        """
        from embed_sql.pipelines.outliers import OutlierScorer, kth_distance, reference_index

        if isinstance(reference, OutlierScorer):
            index = reference.index
        else:
            index = reference_index(reference, vec, metric)
        k = check_k(k, most=len(index))

        def score_batch(s: pl.Series) -> pl.Series:
            out = kth_distance(index, _queries(s)[0], k)
            return pl.Series(s.name, out, dtype=pl.Float32).fill_nan(None)

        return self._expr.map_batches(score_batch, return_dtype=pl.Float32, is_elementwise=True)

    def is_outlier(
        self,
        reference: object,
        *,
        k: int = 5,
        quantile: float = 0.99,
        vec: str = "v",
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
            reference = OutlierScorer(reference, k=k, quantile=quantile, vec=vec, metric=metric)
        scorer: OutlierScorer = reference

        def flag_batch(s: pl.Series) -> pl.Series:
            out = scorer.score(_queries(s)[0])
            flags = pa.array(out > scorer.threshold, pa.bool_(), mask=np.isnan(out))
            return pl.Series(s.name, flags, dtype=pl.Boolean)

        return self._expr.map_batches(flag_batch, return_dtype=pl.Boolean, is_elementwise=True)


def _queries(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return a vector column as (matrix, NaN rows for nulls; validity); refuse NaN/Inf.

    ``vectors_to_numpy`` marks a null row with NaN, so a NaN in a non-null row must be
    refused here, before it passes for a null (SQL's functions refuse it too).
    """
    mat = vectors_to_numpy(s)
    valid = s.is_not_null().to_numpy()
    bad = int((~np.isfinite(mat[valid]).all(axis=1)).sum())
    if bad:
        msg = (
            f"{bad} query vector(s) in column {s.name!r} contain NaN or Inf; a distance to "
            "them means nothing. Filter them out or fix the data"
        )
        raise InputTypeError(msg)  # the class the engine and SQL give NaN/Inf vectors
    return mat, valid
