"""Analogies with word vectors: "a is to b as c is to ?" by the nearest words to b - a + c.

The classic 3CosAdd: the three words' vectors are combined, and the vocabulary's words
closest to the result by cosine similarity answer, the three inputs excluded. With GloVe,
``analogy("man", "king", "woman")`` gives "queen" first. Multi-word inputs are the mean of
their words; an input with no known word is refused, naming it.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.models.words import WordVectorEncoder, words_of
from embed_sql.vectors.join import check_k

__all__ = ["RESULT", "analogy"]

RESULT = pa.struct([("rank", pa.int32()), ("word", pa.string()), ("similarity", pa.float32())])

_unit: dict[str, np.ndarray] = {}
_unit_lock = threading.Lock()


def _unit_matrix(encoder: WordVectorEncoder) -> np.ndarray:
    """Return the vocabulary's rows at unit length, once per model (float32, in memory)."""
    with _unit_lock:
        hit = _unit.get(encoder.key)
    if hit is None:
        matrix, _, _ = encoder.vocabulary()
        hit = np.asarray(matrix, dtype=np.float32)
        norms = np.linalg.norm(hit, axis=1, keepdims=True)
        hit = hit / np.where(norms > 0, norms, 1.0)
        with _unit_lock:
            _unit[encoder.key] = hit
    return hit


def analogy(a: str, b: str, c: str, *, k: int = 5, model: object = "glove-6b-50d") -> pa.Table:
    """Answer "``a`` is to ``b`` as ``c`` is to ?": the ``k`` words nearest to b - a + c.

    Returns a table of ``rank``, ``word``, ``similarity`` (cosine to b - a + c), best
    first; the words of ``a``, ``b`` and ``c`` are never answers.

    Examples
    --------
    >>> analogy("man", "king", "woman", k=1).column("word").to_pylist()   # doctest: +SKIP
    ['queen']
    """
    k = check_k(k)
    encoder = shared_encoder(model)  # type: ignore[arg-type]
    if not isinstance(encoder, WordVectorEncoder):
        msg = f"analogy() needs word vectors (e.g. 'glove-6b-50d'); {encoder.name!r} is not one"
        raise InvalidParameterError(msg)
    unit = _unit_matrix(encoder)
    _, words, index = encoder.vocabulary()
    inputs = {"a": a, "b": b, "c": c}
    for name, text in inputs.items():
        if not isinstance(text, str) or not text.strip():
            msg = f"analogy {name}={text!r}: give a word or a short phrase"
            raise InvalidParameterError(msg)
    vectors = encoder.encode_numpy([a, b, c])
    missing = [
        f"{n}={t!r}"
        for (n, t), row in zip(inputs.items(), vectors, strict=True)
        if np.isnan(row).any()
    ]
    if missing:
        msg = f"no word of {', '.join(missing)} is in {encoder.name}'s vocabulary; check spelling"
        raise InvalidParameterError(msg)
    units = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    target = units[1] - units[0] + units[2]
    sims = unit @ (target / np.linalg.norm(target))
    excluded = {index[w] for t in inputs.values() for w in words_of(t) if w in index}
    take = min(k + len(excluded), len(sims))
    top = np.argpartition(-sims, take - 1)[:take]
    top = top[np.argsort(-sims[top], kind="stable")]
    top = np.array([i for i in top if i not in excluded][:k], dtype=np.int64)
    return pa.table(
        {
            "rank": pa.array(np.arange(1, len(top) + 1), pa.int32()),
            "word": pa.array([words[i] for i in top], pa.string()),
            "similarity": pa.array(sims[top].astype(np.float32)),
        }
    )
