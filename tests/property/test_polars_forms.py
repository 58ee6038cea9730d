"""The Polars frame operations in every form a user may hold the data.

An ``Array(Float32, d)`` column, the same vectors as ``List(Float32)`` or ``List(Float64)``
(as ibis and jupysql return them), eager or lazy, collected in memory or streaming: the
same rows. A ragged list column is refused with an EmbedSQLError.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embed_sql.exceptions import EmbedSQLError
from tests.property.helpers import outcome, prop
from tests.property.test_ops import _same
from tests.property.test_vectors import tables

FORMS = ["array", "list32", "list64"]


def _form(df: pl.DataFrame, form: str) -> pl.DataFrame:
    if form == "array":
        return df
    inner = pl.Float32 if form == "list32" else pl.Float64
    return df.with_columns(pl.col("v").cast(pl.List(inner)))


def _ops(df: pl.DataFrame | pl.LazyFrame, streaming: bool) -> dict[str, object]:
    def run(make: object) -> object:
        def go() -> list[tuple]:
            out = make()  # type: ignore[operator]
            if isinstance(out, pl.LazyFrame):
                out = out.collect(engine="streaming" if streaming else "in-memory")
            return [
                tuple(round(x, 4) if isinstance(x, float) else x for x in r)
                for r in out.drop("v", strict=False).rows()
            ]

        return outcome(go)

    ns = df.embed
    return {
        "knn_join": run(lambda: ns.knn_join(df, k=2, exact=True)),
        "range_join": run(lambda: ns.range_join(df, threshold=0.5, exact=True)),
        "dedup": run(lambda: ns.dedup(threshold=0.1)),
        "cluster": run(lambda: ns.cluster(k=1)),
    }


@prop(30)
@given(table=tables(dim=3, odd=False, keys="unique"), lazy=st.booleans(), streaming=st.booleans())
def test_array_and_list_columns_eager_and_lazy_give_the_same_rows(
    table: pa.Table, lazy: bool, streaming: bool
) -> None:
    base: pl.DataFrame = pl.from_arrow(table)  # type: ignore[assignment]
    want = _ops(base, streaming=False)
    for form in FORMS:
        df = _form(base, form)
        got = _ops(df.lazy() if lazy else df, streaming=streaming)
        for name in want:
            _same(got[name], want[name])


@prop(25)
@given(
    lengths=st.lists(st.integers(0, 4), min_size=2, max_size=5).filter(lambda x: len(set(x)) > 1)
)
def test_a_ragged_list_column_is_refused(lengths: list[int]) -> None:
    df = pl.DataFrame(
        {"id": range(len(lengths)), "v": [[1.0] * n for n in lengths]},
        schema={"id": pl.Int64, "v": pl.List(pl.Float32)},
    )
    for call in (
        lambda: df.embed.knn_join(df, k=1),
        lambda: df.embed.dedup(threshold=0.1),
        lambda: df.embed.cluster(k=1),
    ):
        with pytest.raises(EmbedSQLError, match="cast"):
            call()
