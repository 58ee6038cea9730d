"""Recommendations from embeddings: items like an item, and items for a user.

A user's taste is the mean of the vectors of the items they interacted with, optionally
weighted (a rating, a dwell time) and decayed with age (``half_life``: an interaction that
old counts half). Their recommendations are the items nearest to that vector, items they
already have excluded; ``diversity`` > 0 re-ranks the candidates by maximal marginal
relevance, trading similarity to the user for dissimilarity to what is already picked.
Host-agnostic (Arrow in, Arrow out); SQL's ``embed_recommend`` and Polars'
``.embed.recommend`` call :func:`recommend`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from embed_sql.exceptions import ColumnNotFoundError, InvalidParameterError
from embed_sql.vectors.index import VectorIndex
from embed_sql.vectors.join import check_k, index_for

__all__ = ["COLUMNS", "recommend", "similar_items"]

COLUMNS = ("user_key", "item_key", "score", "rank")


def _named(table: pa.Table, name: str, role: str) -> str:
    if name not in table.column_names:
        msg = (
            f"{role} column {name!r} is not in the interactions; its columns are "
            f"{table.column_names}; name the right one with {role}="
        )
        raise ColumnNotFoundError(msg)
    return name


def _seconds(values: pa.ChunkedArray) -> np.ndarray:
    """Return times as float seconds: timestamps, dates, or plain numbers (seconds)."""
    kind = values.type
    if pa.types.is_timestamp(kind):
        per = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind.unit]
        return np.asarray(values.cast(pa.int64()), dtype=np.float64) / per
    if pa.types.is_date(kind):
        return np.asarray(values.cast(pa.date32()).cast(pa.int32()), dtype=np.float64) * 86400
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return np.asarray(values.cast(pa.float64()), dtype=np.float64)
    msg = f"the time column is {kind}; give a timestamp, a date or a number of seconds"
    raise InvalidParameterError(msg)


def _half_life(value: object) -> float:
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        msg = f"half_life={value!r} must be a positive number of seconds or a timedelta"
        raise InvalidParameterError(msg)
    return float(seconds)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _mmr(user: np.ndarray, cands: np.ndarray, vecs: np.ndarray, k: int, lam: float) -> list[int]:
    """Greedy maximal marginal relevance: positions in ``cands``, best first."""
    relevance = vecs @ user
    picked: list[int] = []
    closest = np.full(len(cands), -np.inf)
    for _ in range(min(k, len(cands))):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        score = (1 - lam) * relevance - lam * redundancy
        score[picked] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        closest = np.maximum(closest, vecs @ vecs[best])
    return picked


def recommend(
    interactions: pa.Table,
    items: VectorIndex | pa.Table,
    *,
    k: int = 10,
    user_key: str = "user_id",
    item_key: str = "item_id",
    weight: str | None = None,
    time: str | None = None,
    half_life: float | dt.timedelta | None = None,
    exclude_seen: bool = True,
    diversity: float = 0.0,
    vec: str = "v",
    key: str = "id",
) -> pa.Table:
    """Recommend ``k`` items per user from their interactions: user, item, score, rank.

    Parameters
    ----------
    interactions
        One row per (user, item) interaction; ``weight`` and ``time`` columns optional.
    items
        A :class:`VectorIndex` of the items, or a table of them (``key``, ``vec``).
    half_life
        With ``time``: an interaction this old (seconds or a timedelta, before the newest
        interaction of the table) counts half.
    exclude_seen
        Leave out items the user already interacted with.
    diversity
        0 (default): nearest items first. Up to 1: maximal marginal relevance with that
        weight on novelty against the items already picked.

    Returns
    -------
    pyarrow.Table
        ``user_key``, ``item_key`` (the keys' own types), ``score`` (cosine similarity of
        the item to the user's taste), ``rank``; users sorted, best first. Interactions with
        items not in ``items`` are skipped.
    """
    k = check_k(k)
    if isinstance(diversity, bool) or not isinstance(diversity, int | float):
        diversity = float("nan")
    if not 0.0 <= diversity < 1.0:
        msg = f"diversity={diversity!r} must be in [0, 1): 0 ranks by similarity alone"
        raise InvalidParameterError(msg)
    if (time is None) != (half_life is None):
        msg = "give time= and half_life= together (recency decay needs both)"
        raise InvalidParameterError(msg)
    index = index_for(items, vec=vec, key=key, exact=True)
    users = interactions.column(_named(interactions, user_key, "user_key"))
    if users.null_count:
        msg = (
            f"user_key column {user_key!r} has {users.null_count} NULL(s); a recommendation "
            "needs a user to go to: filter those interactions out or fill the key first"
        )
        raise InvalidParameterError(msg)
    seen_items = interactions.column(_named(interactions, item_key, "item_key"))
    labels_now = index.labels()
    pos = np.asarray(pc.index_in(seen_items, value_set=index.keys()).fill_null(-1))
    known = pos >= 0
    weights = np.ones(len(pos))
    if weight is not None:
        wcol = interactions.column(_named(interactions, weight, "weight")).cast(pa.float64())
        weights = np.asarray(wcol.fill_null(0.0), dtype=np.float64)
    if time is not None:
        seconds = _seconds(interactions.column(_named(interactions, time, "time")))
        age = np.nanmax(seconds) - seconds
        weights = weights * 0.5 ** (age / _half_life(half_life))
    user_ids = users.filter(pa.array(known)).combine_chunks()
    labels = labels_now[pos[known]]
    weights = weights[known]
    if not len(labels):
        return _empty(users.type, index.keys().type)
    codes = pc.dictionary_encode(user_ids)
    order = np.asarray(pc.sort_indices(codes.dictionary))
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    group = rank_of[np.asarray(codes.indices)]  # users numbered in sorted order
    n_users = len(order)
    vecs = _unit(index.vectors(labels).astype(np.float64))
    taste = np.zeros((n_users, index.dim))
    np.add.at(taste, group, vecs * weights[:, None])
    seen: list[set[int]] = [set() for _ in range(n_users)]
    for g, lab in zip(group.tolist(), labels.tolist(), strict=True):
        seen[g].add(lab)
    pool = k * 3 if diversity > 0 else k
    extra = max(len(s) for s in seen) if exclude_seen else 0
    res = index.search(taste.astype(np.float32), pool + extra)
    out_user, out_item, out_score, out_rank = [], [], [], []
    for g in range(n_users):
        found = [int(x) for x in res.labels[g] if x >= 0]
        if exclude_seen:
            found = [x for x in found if x not in seen[g]]
        found = found[:pool]
        if not found:
            continue
        u = _unit(taste[g])
        cand = _unit(index.vectors(np.array(found)).astype(np.float64))
        pick = _mmr(u, np.array(found), cand, k, diversity) if diversity > 0 else range(len(found))
        chosen = [found[i] for i in pick][:k]
        scores = [float(cand[found.index(c)] @ u) for c in chosen]
        out_user += [int(order[g])] * len(chosen)
        out_item += chosen
        out_score += scores
        out_rank += list(range(1, len(chosen) + 1))
    user_values = codes.dictionary.take(pa.array(out_user, pa.int64()))
    return pa.table(
        {
            "user_key": user_values,
            "item_key": index.key_of(np.array(out_item, dtype=np.int64)),
            "score": pa.array(out_score, pa.float32()),
            "rank": pa.array(out_rank, pa.int32()),
        }
    )


def similar_items(
    items: VectorIndex | pa.Table, keys: object, *, k: int = 10, vec: str = "v", key: str = "id"
) -> pa.Table:
    """Return the ``k`` items nearest to each given item (``user_key``), itself excluded."""
    index = index_for(items, vec=vec, key=key, exact=True)
    wanted = pa.array(keys) if not isinstance(keys, pa.Array | pa.ChunkedArray) else keys
    one_each = pa.table({"user_key": wanted, "item_key": wanted})
    return recommend(one_each, index, k=k, user_key="user_key", item_key="item_key")


def _empty(user_type: pa.DataType, item_type: pa.DataType) -> pa.Table:
    return pa.table(
        {
            "user_key": pa.array([], user_type),
            "item_key": pa.array([], item_type),
            "score": pa.array([], pa.float32()),
            "rank": pa.array([], pa.int32()),
        }
    )
