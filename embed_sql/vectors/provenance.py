"""Which model made a vector column, where the column itself cannot say.

Arrow fields carry the model in their metadata, but a DuckDB ``FLOAT[d]`` column or a
Polars ``Array`` column loses it. So every vector the encoder returns is fingerprinted (a
64-bit hash of its float32 bytes, vectorised) and recorded under its model's content key,
in this process: all of a model's first 4,096 vectors, then one in sixteen, at most two
million per model (16 MiB). A column's model is then the model whose record holds some of
its fingerprints. Two different models cannot give bit-identical vectors, so a match is
proof; no match means "unknown" (vectors made in another process, or not sampled), and
no check is made. A column holding vectors of two models is reported as such.

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
>>> record("key-a", "model-a", x)
>>> identify(x[1:])
{'key-a'}
>>> identify(x + 1)
set()
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["fingerprints", "identify", "model_name", "record", "same_model"]

_FIRST = 4_096  # every vector of a model up to here, then one in _EVERY
_EVERY = 16
_MOST = 2_000_000  # fingerprints kept per model
_BLOCK = 8_192
_SAMPLE = 20_000  # rows of a column looked up to identify it


class _Store:
    def __init__(self, name: str) -> None:
        self.name = name
        self.chunks: list[np.ndarray] = []
        self.count = 0
        self.seen = 0
        self.merged: np.ndarray | None = np.zeros(0, dtype=np.uint64)

    def add(self, fps: np.ndarray) -> None:
        if self.count >= _MOST or not len(fps):
            return
        head = max(0, min(len(fps), _FIRST - self.seen))
        keep = np.concatenate([fps[:head], fps[head:][fps[head:] % _EVERY == 0]])
        self.seen += len(fps)
        keep = keep[: _MOST - self.count]
        self.chunks.append(keep)
        self.count += len(keep)
        self.merged = None

    def sorted(self) -> np.ndarray:
        if self.merged is None:
            self.merged = (
                np.unique(np.concatenate(self.chunks)) if self.chunks else np.zeros(0, np.uint64)
            )
            self.chunks = [self.merged]
        return self.merged


_STORES: dict[str, _Store] = {}
_LOCK = threading.Lock()
_MULTIPLIERS: dict[int, np.ndarray] = {}


def _multipliers(dim: int) -> np.ndarray:
    if dim not in _MULTIPLIERS:
        rng = np.random.default_rng(0x0E5B)
        _MULTIPLIERS[dim] = rng.integers(1, 2**63, size=dim, dtype=np.uint64) | np.uint64(1)
    return _MULTIPLIERS[dim]


def fingerprints(mat: np.ndarray) -> np.ndarray:
    """Return one 64-bit fingerprint per row of a float32 ``(n, dim)`` matrix."""
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    out = np.empty(len(mat), dtype=np.uint64)
    mult = _multipliers(mat.shape[1]) if mat.ndim == 2 else np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        for s in range(0, len(mat), _BLOCK):
            bits = mat[s : s + _BLOCK].view(np.uint32).astype(np.uint64)
            out[s : s + _BLOCK] = (bits * mult).sum(axis=1, dtype=np.uint64)
    return out


def _telling(mat: np.ndarray) -> np.ndarray:
    """Return the rows that can tell a model: no NaN, not all zero.

    The zero vector (a static model's answer for a text with no known token) is the same in
    every model and every dimension (its fingerprint is 0), so it proves nothing.
    """
    bad = np.isnan(mat).any(axis=1) | ~mat.any(axis=1)
    return mat[~bad] if bad.any() else mat


def record(model_key: str, name: str, mat: np.ndarray) -> None:
    """Remember that ``model_key`` made the (non-NaN, non-zero) rows of ``mat``."""
    if not len(mat):
        return
    fps = fingerprints(_telling(mat))
    with _LOCK:
        _STORES.setdefault(model_key, _Store(name)).add(fps)


def identify(mat: np.ndarray) -> set[str]:
    """Return the keys of the models whose recorded vectors appear among ``mat``'s rows."""
    if not len(mat) or not _STORES:
        return set()
    if len(mat) > _SAMPLE:  # a spread of rows is enough to tell
        mat = mat[np.linspace(0, len(mat) - 1, _SAMPLE).astype(np.int64)]
    fps = fingerprints(_telling(mat))
    found = set()
    with _LOCK:
        stores = [(k, s.sorted()) for k, s in _STORES.items()]
    for key, known in stores:
        if len(known) and np.isin(fps, known, assume_unique=False).any():
            found.add(key)
    return found


def same_model(a: str, b: str) -> bool:
    """Whether two model keys name one model: equal, or recorded under one name.

    The same model exported twice (two caches) has two content keys and gives the same
    vectors; its name (with the variant, e.g. ``...:int8``) is what tells models apart.
    """
    if a == b:
        return True
    sa, sb = _STORES.get(a), _STORES.get(b)
    return sa is not None and sb is not None and sa.name == sb.name


def recorded() -> dict[str, str]:
    """Return every model key recorded in this process, with its model's name."""
    with _LOCK:
        return {key: store.name for key, store in _STORES.items()}


def model_name(model_key: str) -> str:
    """Return the name a recorded model key was recorded under (the key if unknown)."""
    store = _STORES.get(model_key)
    return store.name if store is not None else model_key[:12]
