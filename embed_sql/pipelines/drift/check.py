"""``DriftCheck``: a reference prepared once, current samples checked against it.

Also ``check`` (one call) and ``read_sample`` (Parquet files, bounded memory).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from embed_sql._progress import progress_bar
from embed_sql.exceptions import (
    DimensionMismatchError,
    InputTypeError,
    InvalidParameterError,
)
from embed_sql.pipelines.drift.report import DriftReport, DriftTest
from embed_sql.pipelines.drift.statistics import (
    FOLDS,
    Components,
    DriftParams,
    centroid_test,
    classifier_test,
    fit_pca,
    holm,
    mmd_test,
    pca_ks_test,
    sample,
)
from embed_sql.vectors.arrow import column_model, fixed_vectors, to_numpy, vector_input
from embed_sql.vectors.join import check_models

__all__ = ["TESTS", "DriftCheck", "check", "read_sample"]

TESTS = ("classifier", "mmd", "centroid", "pca")


def _as_vectors(data: object, column: str, side: str) -> tuple[np.ndarray, int, str | None]:
    """Return (matrix without NULL rows, NULL count, model key) for one side."""
    vectors, key = vector_input(data, column, side)
    if isinstance(vectors, np.ndarray):
        mat = np.asarray(vectors, dtype=np.float32)
    else:
        mat = to_numpy(vectors)
    if mat.ndim != 2:
        msg = f"{side} vectors must form a (rows, dim) matrix, got shape {mat.shape}"
        raise DimensionMismatchError(msg)
    ok = ~np.isnan(mat).any(axis=1)
    mat = np.ascontiguousarray(mat[ok])
    return mat, int((~ok).sum()), key or column_model(mat, what=f"the {side} vectors")


class DriftCheck:
    """A reference embedding sample, prepared once, that current samples are checked against.

    Parameters
    ----------
    reference
        Vectors: an Arrow table (``column`` picks the vector column), a Polars or pandas
        frame, an Arrow vector array or a numpy ``(rows, dim)`` matrix.
    column
        The vector column when ``reference`` is a table.
    tests
        Which of :data:`TESTS` to run.
    alpha
        The false-alarm rate: the verdict is ``"drift"`` when some test's Holm-adjusted
        p-value is below ``alpha``, which under no drift happens with probability at most
        ``alpha`` (every test's p-value is valid and Holm's procedure holds under any
        dependence between them).
    min_rows
        Fewer vectors than this on either side gives the verdict ``"insufficient data"``.
    seed
        Seed of every subsample and permutation: the same inputs give the same report.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.random.default_rng(1).normal(size=(300, 4))
    >>> DriftCheck(ref).check(ref[::-1] + 1.0).drift
    True
    """

    params = DriftParams()

    def __init__(
        self,
        reference: object,
        *,
        vec: str = "v",
        tests: Sequence[str] = TESTS,
        alpha: float = 0.05,
        min_rows: int = 30,
        seed: int = 0,
        min_votes: object = None,
    ) -> None:
        check_min_votes(min_votes)
        unknown = [t for t in tests if t not in TESTS]
        if unknown or not tests:
            msg = f"tests={list(tests)!r}: allowed are {list(TESTS)}"
            raise InvalidParameterError(msg)
        self.alpha = check_alpha(alpha)
        if min_rows < 2 * FOLDS:
            msg = f"min_rows={min_rows!r} must be at least {2 * FOLDS} (the classifier folds)"
            raise InvalidParameterError(msg)
        self.vec, self.tests = vec, tuple(tests)
        self.min_rows, self.seed = min_rows, seed
        self.reference, self.ref_nulls, self.model_key = _as_vectors(reference, vec, "reference")
        if len(self.reference) == 0:
            msg = "the reference has no (non-NULL) vectors; a drift check needs some to compare"
            raise InvalidParameterError(msg)
        self.dim = self.reference.shape[1]

    def check(self, current: object, *, vec: str | None = None) -> DriftReport:
        """Compare ``current`` (same forms as the reference) with the reference."""
        cur, cur_nulls, cur_key = _as_vectors(current, vec or self.vec, "current")
        if len(cur) == 0:
            msg = "the current sample has no (non-NULL) vectors; a drift check needs some"
            raise InvalidParameterError(msg)
        if cur.shape[1] != self.dim:
            msg = (
                f"reference vectors have {self.dim} dimensions but current ones have "
                f"{cur.shape[1]}; embed both with the same model"
            )
            raise DimensionMismatchError(msg)
        check_models(self.model_key, cur_key, "reference and current vectors")
        ref = self.reference
        notes = [
            f"{n:,} NULL {side} vectors skipped"
            for n, side in ((self.ref_nulls, "reference"), (cur_nulls, "current"))
            if n
        ]
        common = {
            "n_reference": len(ref),
            "n_current": len(cur),
            "dim": self.dim,
            "alpha": self.alpha,
            "seed": self.seed,
            "model": self.model_key,
        }
        if min(len(ref), len(cur)) < self.min_rows:
            notes.append(
                f"fewer than min_rows={self.min_rows} vectors on one side "
                f"({len(ref)} reference, {len(cur)} current): no test was run"
            )
            return DriftReport("insufficient data", (), notes=tuple(notes), **common)
        pca: list[Components] = []
        with progress_bar(
            len(self.tests), desc="drift tests", unit="tests", size=len(ref) + len(cur)
        ) as bar:
            done = []
            for i, name in enumerate(self.tests):
                rng = np.random.default_rng([self.seed, i])
                done.append(self._run(name, ref, cur, rng, pca))
                bar.update(1)
        notes.extend(
            f"{t.name} ran on a random subsample: {t.n_reference:,} reference and "
            f"{t.n_current:,} current rows"
            for t in done
            if (t.n_reference, t.n_current) != (len(ref), len(cur))
        )
        adjusted = holm([float(t.p_value) for t in done])  # type: ignore[arg-type]
        threshold = f"Holm-adjusted p < {self.alpha:g}"
        results = tuple(
            dataclasses.replace(t, p_adjusted=q, drift=q < self.alpha, threshold=threshold)
            for t, q in zip(done, adjusted, strict=True)
        )
        verdict = "drift" if min(adjusted) < self.alpha else "no drift"
        return DriftReport(
            verdict,
            results,
            notes=tuple(notes),
            projection=self._projection(ref, cur, pca[0]) if pca else None,
            **common,
        )

    def _run(
        self,
        name: str,
        ref: np.ndarray,
        cur: np.ndarray,
        rng: np.random.Generator,
        pca: list[Components],
    ) -> DriftTest:
        if name == "pca":
            pca.append(fit_pca(self.params, ref, cur, rng))
            return pca_ks_test(self.params, pca[0], ref, cur, rng, alpha=self.alpha)
        runner = {"classifier": classifier_test, "mmd": mmd_test, "centroid": centroid_test}
        return runner[name](self.params, ref, cur, rng)

    def _projection(
        self, ref: np.ndarray, cur: np.ndarray, model: Components
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 99])
        pick = [sample(x, 1_000, rng) for x in (ref, cur)]
        out = [model.transform(x)[:, :2].astype(np.float32) for x in pick]
        return out[0], out[1]


def check_alpha(alpha: object) -> float:
    """Return ``alpha`` as a float when it lies strictly between 0 and 1, else refuse it."""
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        value = float(alpha)
        if math.isfinite(value) and 0 < value < 1:
            return value
    msg = (
        f"alpha={alpha!r}: the false-alarm rate must be a number strictly between 0 and 1, "
        "e.g. alpha=0.05 (the default)"
    )
    raise InvalidParameterError(msg)


def check_min_votes(min_votes: object) -> None:
    """Refuse ``min_votes`` (removed), saying what replaced it."""
    if min_votes is None:
        return
    msg = (
        f"min_votes={min_votes!r} is no longer a drift check option: the verdict is now "
        "'drift' when the smallest Holm-adjusted p-value of the tests is below alpha "
        "(default 0.05), which bounds the false-alarm rate by alpha; drop min_votes and "
        "set alpha instead"
    )
    raise InvalidParameterError(msg)


def check(
    reference: object,
    current: object,
    vec: str = "v",
    **options: object,
) -> DriftReport:
    """Check ``current`` against ``reference`` in one call; see :class:`DriftCheck`.

    ``reference`` and ``current`` may be Arrow tables, Polars DataFrames or LazyFrames,
    pandas frames, Arrow vector arrays or numpy matrices; ``vec`` names the vector column
    of a table. ``options`` go to :class:`DriftCheck`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(2).normal(size=(200, 3))
    >>> check(x[:100], x[100:]).verdict
    'no drift'
    """
    return DriftCheck(reference, vec=vec, **options).check(current)  # type: ignore[arg-type]


def read_sample(
    path: str | os.PathLike[str],
    column: str,
    *,
    max_rows: int = 50_000,
    seed: int = 0,
    model: object = None,
) -> tuple[pa.Table, str | None]:
    """Read at most ``max_rows`` rows of one column of a Parquet file as a vector table.

    Rows are a uniform random sample when the file is larger (chosen before anything is
    read, then read batch by batch, so memory stays bounded). A text column is embedded with
    ``model`` (default all-MiniLM-L6-v2); a vector column is used as it is.

    Returns
    -------
    (pyarrow.Table, str | None)
        A table with the vector column ``v`` (model metadata kept), and a note when the
        file was sampled.
    """
    import pyarrow.parquet as pq

    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows <= 0:
        msg = f"max_rows={max_rows!r} must be a positive integer"
        raise InvalidParameterError(msg)
    try:
        source = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        msg = f"cannot read {os.fspath(path)!r} as Parquet: {exc}"
        raise InputTypeError(msg) from exc
    names = source.schema_arrow.names
    if column not in names:
        msg = f"{os.fspath(path)!r} has no column {column!r}; its columns are {names}"
        raise InputTypeError(msg)
    field_ = source.schema_arrow.field(column)
    text = pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type)
    # DuckDB writes FLOAT[d] to Parquet as a list: accepted when every vector has one length
    listed = (
        pa.types.is_fixed_size_list(field_.type)
        or pa.types.is_list(field_.type)
        or pa.types.is_large_list(field_.type)
    ) and pa.types.is_floating(field_.type.value_type)
    if not text and not listed:
        msg = (
            f"column {column!r} of {os.fspath(path)!r} has type {field_.type}; give a text "
            "column (it is embedded) or a vector column (a list of floats)"
        )
        raise InputTypeError(msg)
    n = source.metadata.num_rows
    keep = None
    note = None
    if n > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
        note = f"{os.fspath(path)}: a random sample of {max_rows:,} of its {n:,} rows was used"
    encoder = None
    if text:
        from embed_sql.models.encoder import shared_encoder

        encoder = shared_encoder(model)  # type: ignore[arg-type]
    from embed_sql.pipelines.files import parquet_batches

    parts, start = [], 0
    for batch in parquet_batches(path, [column], 8_192):  # undecodable data named, with the fix
        values = batch.column(0)
        if keep is not None:
            lo, hi = np.searchsorted(keep, [start, start + len(values)])
            values = values.take(pa.array(keep[lo:hi] - start))
        start += batch.num_rows
        if encoder is not None:
            parts.append(encoder.encode(values))
        elif len(values):
            parts.append(fixed_vectors(values, column, repr(os.fspath(path))))
    if encoder is not None:
        out_field = encoder.field("v")
    else:
        kind = _one_type(parts, field_.type, column, path)
        # a batch of NULLs only has no length of its own
        parts = [p if p.type == kind else pa.nulls(len(p), kind) for p in parts]
        out_field = pa.field("v", kind, metadata=field_.metadata)
    chunks = [c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])]
    return pa.table([pa.chunked_array(chunks, out_field.type)], schema=pa.schema([out_field])), note


def _one_type(
    parts: list[pa.Array], declared: pa.DataType, column: str, path: str | os.PathLike[str]
) -> pa.DataType:
    """Return the one fixed-size vector type of a file's batches (a list column's lengths agree)."""
    kinds = {p.type for p in parts if p.null_count < len(p)}
    if len(kinds) > 1:
        sizes = sorted(k.list_size for k in kinds)
        msg = (
            f"column {column!r} of {os.fspath(path)!r} mixes vector lengths {sizes}; every "
            "vector must have one length (one model): fix the file"
        )
        raise DimensionMismatchError(msg)
    if kinds:
        return kinds.pop()
    size = declared.list_size if pa.types.is_fixed_size_list(declared) else 1
    return pa.list_(pa.float32(), size)
