"""Strategies and checks shared by the property tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from embed_sql.exceptions import EmbedSQLError

ERROR_NAMES = (
    "ColumnNotFoundError",
    "DimensionMismatchError",
    "EmbedSQLError",
    "ExportError",
    "IndexFileError",
    "InputTypeError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
)


def prop(max_examples: int = 40) -> Callable[[Any], Any]:
    """Hypothesis settings for one property: modest, no deadline (a shared 2-core machine)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        # the same cases in every run, so CI is reproducible; HYPOTHESIS_EXPLORE=1 explores
        derandomize=not os.environ.get("HYPOTHESIS_EXPLORE"),
    )


# text: any unicode (surrogates excluded: they cannot be encoded to UTF-8 for DuckDB),
# with NULLs and empty strings mixed in
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
TEXTS = st.lists(st.one_of(st.none(), st.just(""), TEXT), max_size=12)
ODD_NAME = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\x00"),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and s != "")
FINITE = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)
ODD_FLOAT = st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e6, 1e-30])


@st.composite
def vectors(
    draw: st.DrawFn,
    *,
    min_rows: int = 0,
    max_rows: int = 8,
    dim: int | None = None,
    odd: bool = True,
) -> np.ndarray:
    """A (rows, dim) float32 matrix: random, with repeated and zero rows, and (if ``odd``)
    NaN/Inf entries."""
    d = dim if dim is not None else draw(st.integers(1, 6))
    n = draw(st.integers(min_rows, max_rows))
    base = draw(st.lists(st.lists(FINITE, min_size=d, max_size=d), min_size=n, max_size=n))
    mat = np.array(base, dtype=np.float32).reshape(n, d)
    for i in range(n):
        kind = draw(st.sampled_from(["keep", "keep", "keep", "zero", "repeat", "odd"]))
        if kind == "zero":
            mat[i] = 0.0
        elif kind == "repeat" and i > 0:
            mat[i] = mat[draw(st.integers(0, i - 1))]
        elif kind == "odd" and odd:
            mat[i, draw(st.integers(0, d - 1))] = draw(ODD_FLOAT)
    return mat


def is_embed_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a refusal of ours: an EmbedSQLError, or DuckDB's wrapping of one."""
    if isinstance(exc, EmbedSQLError):
        return True
    if isinstance(exc, duckdb.Error):
        return any(name in str(exc) for name in ERROR_NAMES)
    return False


@contextmanager
def refusals() -> Iterator[list[BaseException]]:
    """Let an EmbedSQLError (or DuckDB's wrapping of one) through as a refusal; fail others."""
    caught: list[BaseException] = []
    try:
        yield caught
    except Exception as exc:
        if not is_embed_error(exc):
            msg = f"not an EmbedSQLError: {type(exc).__name__}: {exc}"
            raise AssertionError(msg) from exc
        _log(exc)
        caught.append(exc)


def _log(exc: BaseException) -> None:
    """With PROPERTY_MESSAGES=file, append each refusal's message there, to read them all."""
    path = os.environ.get("PROPERTY_MESSAGES")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(" ".join(str(exc).split()) + "\n")


def error_name(exc: BaseException) -> str | None:
    """The EmbedSQLError subclass an exception is or wraps (DuckDB's message), else None."""
    _log(exc)
    if isinstance(exc, EmbedSQLError):
        return type(exc).__name__
    if isinstance(exc, duckdb.Error):
        found = [name for name in ERROR_NAMES if name in str(exc)]
        return max(found, key=len) if found else None
    return None


def outcome(call: Callable[[], Any]) -> Any:
    """``call()``'s answer, or the name of the EmbedSQLError it raised; anything else fails."""
    try:
        return call()
    except Exception as exc:  # the point is to classify every exception
        name = error_name(exc)
        if name is None:
            msg = f"not an EmbedSQLError: {type(exc).__name__}: {exc}"
            raise AssertionError(msg) from exc
        return name


def usable_norms(mat: np.ndarray, metric: str = "cos") -> bool:
    """Whether every row is finite with a norm float32 distances can use.

    The documented rule, computed apart in float64: norms up to 1.8e19, and under cos a
    non-zero norm of at least 1.08e-19 (whose square float32 still holds).
    """
    mat = np.asarray(mat, dtype=np.float64)
    if not np.isfinite(mat).all():
        return False
    sq = (mat * mat).sum(axis=-1)
    if (sq > float(np.finfo(np.float32).max)).any():
        return False
    return not (metric == "cos" and ((sq > 0) & (sq < np.finfo(np.float32).tiny)).any())
