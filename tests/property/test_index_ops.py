"""VectorIndex under random add/remove, save/load, allowed masks; the embedding cache.

After any sequence of adds and removes (NULL and zero vectors, keys re-added after removal)
an index answers as one built from the surviving rows; saved and loaded (or viewed) it
answers the same; with an ``allowed`` mask it returns min(k, allowed) rows, all allowed.
A cached ``embed`` gives bit-identical vectors to the uncached one, NULL for NULL.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

import embed_sql
from embed_sql.vectors import VectorIndex, from_numpy
from tests.property.helpers import FINITE, TEXTS, outcome, prop

VEC = st.one_of(st.none(), st.just([0.0, 0.0, 0.0]), st.lists(FINITE, min_size=3, max_size=3))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 12), max_size=4, unique=True), st.data()),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 15), max_size=4), st.none()),
    ),
    max_size=6,
)


def _search(index: VectorIndex, queries: np.ndarray, k: int) -> list[list[tuple]]:
    res = index.search(queries, k)
    out = []
    for labels, dists, n in zip(res.labels, res.distances, res.counts, strict=True):
        keys = index.key_of(labels[:n]).to_pylist() if n else []
        out.append([(key, round(float(d), 4)) for key, d in zip(keys, dists[:n], strict=True)])
    return out


@prop(40)
@given(ops=OPS, exact=st.booleans(), k=st.integers(1, 6))
def test_adds_and_removes_answer_as_a_build_of_the_survivors(
    ops: list, exact: bool, k: int
) -> None:
    index = VectorIndex(3, exact=exact)
    alive: dict[int, list[float]] = {}
    for op, keys, data in ops:
        if op == "add":
            vecs = [data.draw(VEC) for _ in keys]
            arr = pa.array(vecs, pa.list_(pa.float32(), 3))
            got = outcome(lambda: index.add(keys, arr))  # noqa: B023 - called right here
            if any(key in alive for key, v in zip(keys, vecs, strict=True) if v is not None):
                assert got == "InvalidParameterError"  # a live key again: refused
                continue
            assert isinstance(got, int), got
            alive.update({key: v for key, v in zip(keys, vecs, strict=True) if v is not None})
        else:
            removed = index.remove(keys)
            assert removed == len(set(keys) & set(alive))
            for key in keys:
                alive.pop(key, None)
    assert len(index) == len(alive)
    queries = np.array([[1, 0, 0], [0, 0, 0], [0.3, -2, 1]], np.float32)
    if not alive:
        assert index.search(queries, k).counts.tolist() == [0, 0, 0]
        return
    fresh = VectorIndex.build(
        from_numpy(np.array(list(alive.values()), np.float32)), list(alive), exact=True
    )
    got, want = _search(index, queries, k), _search(fresh, queries, k)
    if exact:
        assert got == want
    else:
        assert [len(g) for g in got] == [len(w) for w in want]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ix.index"
        index.save(path)
        assert _search(VectorIndex.load(path), queries, k) == got
        assert _search(VectorIndex.view(path), queries, k) == got


@prop(40)
@given(
    n=st.integers(1, 10),
    allowed=st.lists(st.booleans(), min_size=10, max_size=10),
    k=st.integers(1, 12),
    exact=st.booleans(),
)
def test_an_allowed_mask_gives_min_k_allowed_rows_all_allowed(
    n: int, allowed: list[bool], k: int, exact: bool
) -> None:
    mat = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
    index = VectorIndex.build(from_numpy(mat), list(range(n)), exact=exact)
    mask = np.array(allowed[:n])
    res = index.search(mat[:2], k, allowed=mask)
    want = min(k, int(mask.sum()))
    assert res.counts.tolist() == [want] * len(res.counts)
    for labels, count in zip(res.labels, res.counts, strict=True):
        keys = index.key_of(labels[:count]).to_pylist()
        assert all(mask[key] for key in keys)


@prop(20)
@given(texts=TEXTS)
def test_a_cached_embed_is_bit_identical_to_an_uncached_one(
    tiny_model: str, texts: list[str | None]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plain, cached = duckdb.connect(), duckdb.connect()
        embed_sql.register(plain, model=tiny_model)
        embed_sql.register(cached, model=tiny_model, cache=str(Path(tmp) / "c.sqlite"))
        src = pa.table({"i": range(len(texts)), "s": pa.array(texts, pa.string())})
        answers = []
        for con in (plain, cached, cached):  # the second cached run reads the cache
            con.register("src", src)
            answers.append(con.sql("SELECT embed(s) FROM src ORDER BY i").fetchall())
        plain.close()
        cached.close()
    assert answers[0] == answers[1] == answers[2]
    assert [r[0] is None for r in answers[0]] == [t is None for t in texts]
