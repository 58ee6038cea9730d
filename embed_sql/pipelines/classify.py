"""Zero-shot classification: each text gets the label whose description it is closest to.

Every label is put in a template (``"This text is about {}."`` by default) and embedded once
with the same model as the texts; a text's scores are the cosine similarities of its vector
to each label's. The result per row is the best ``label``, its ``score`` and the ``margin``
to the runner-up (a small margin: an uncertain call), and on request every ``scores``.
NULL texts give NULL rows. Host-agnostic (Arrow in, Arrow out): SQL's ``embed_classify``
and Polars' ``.embed.classify`` call :func:`classify_vectors`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.encoder import TextEncoder, shared_encoder
from embed_sql.vectors.arrow import to_numpy

__all__ = ["DEFAULT_TEMPLATE", "classify", "classify_vectors", "label_vectors", "result_type"]

DEFAULT_TEMPLATE = "This text is about {}."

_label_cache: dict[tuple[str, tuple[str, ...], str], np.ndarray] = {}
_label_lock = threading.Lock()


def result_type(scores: bool = False) -> pa.DataType:
    """Return the Arrow type of one result row: label, score, margin (and every score)."""
    fields = [("label", pa.string()), ("score", pa.float32()), ("margin", pa.float32())]
    if scores:
        fields.append(("scores", pa.list_(pa.float32())))
    return pa.struct(fields)


def _check_labels(labels: object, template: object) -> tuple[tuple[str, ...], str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        msg = f"labels must be a list of strings, got {type(labels).__name__} {labels!r}"
        raise InvalidParameterError(msg)
    found = tuple(labels)
    if len(found) < 2 or not all(isinstance(x, str) and x.strip() for x in found):
        msg = (
            f"labels {list(found)!r}: give at least two non-empty strings, "
            "e.g. ['sport', 'politics']"
        )
        raise InvalidParameterError(msg)
    if len(set(found)) != len(found):
        msg = f"labels {list(found)!r} repeat a label; each label must be given once"
        raise InvalidParameterError(msg)
    if not isinstance(template, str) or template.count("{}") != 1:
        msg = (
            f"template {template!r} must be a string with one '{{}}' where the label goes, "
            f"e.g. {DEFAULT_TEMPLATE!r}"
        )
        raise InvalidParameterError(msg)
    return found, template


def label_vectors(encoder: TextEncoder, labels: Sequence[str], template: str) -> np.ndarray:
    """Return the labels' unit vectors, in their template; embedded once per model."""
    found, template = _check_labels(labels, template)
    key = (encoder.key, found, template)
    with _label_lock:
        hit = _label_cache.get(key)
    if hit is None:
        vecs = encoder.encode_numpy([template.format(label) for label in found]).astype(np.float64)
        hit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        with _label_lock:
            _label_cache[key] = hit
    return hit


def classify_vectors(
    vectors: pa.Array | pa.ChunkedArray | np.ndarray,
    labels: Sequence[str],
    label_matrix: np.ndarray,
    *,
    scores: bool = False,
) -> pa.StructArray:
    """Classify text vectors against label vectors (rows of ``label_matrix``)."""
    mat = to_numpy(vectors) if isinstance(vectors, pa.Array | pa.ChunkedArray) else vectors
    mat = np.asarray(mat, dtype=np.float64)
    valid = ~np.isnan(mat).any(axis=1)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    sims = np.where(valid[:, None], np.nan_to_num(mat) / np.maximum(norms, 1e-12), 0.0)
    sims = sims @ label_matrix.T  # (n, labels)
    order = np.argsort(-sims, axis=1, kind="stable")  # ties: the label given first
    rows = np.arange(len(mat))
    best, second = sims[rows, order[:, 0]], sims[rows, order[:, 1]]
    mask = pa.array(~valid)
    children = [
        pa.array(np.asarray(labels, dtype=object)[order[:, 0]], pa.string()),
        pa.array(best.astype(np.float32)),
        pa.array((best - second).astype(np.float32)),
    ]
    names = ["label", "score", "margin"]
    if scores:
        flat = pa.array(sims.astype(np.float32).ravel())
        offsets = pa.array(np.arange(0, sims.size + 1, sims.shape[1], dtype=np.int32))
        children.append(pa.ListArray.from_arrays(offsets, flat))
        names.append("scores")
    return pa.StructArray.from_arrays(children, names=names, mask=mask)


def classify(
    texts: object,
    labels: Sequence[str],
    *,
    template: str = DEFAULT_TEMPLATE,
    model: object = None,
    scores: bool = False,
) -> pa.StructArray:
    """Give each text the label it is closest to: ``label``, ``score``, ``margin``.

    Parameters
    ----------
    texts
        Strings (a list, or an Arrow string array); None gives a NULL row.
    labels
        The candidate labels, at least two, as words or short phrases.
    template
        How a label is put in words before it is embedded; one ``{}`` for the label.
    model
        The model for texts and labels alike (default all-MiniLM-L6-v2).
    scores
        Also return every label's score, in the order of ``labels``.

    Examples
    --------
    >>> out = classify(["Arsenal won 2-0", None], ["sport", "politics"])
    >>> out[0]["label"].as_py(), out[1].as_py()
    ('sport', None)
    """
    encoder = shared_encoder(model)  # type: ignore[arg-type]
    matrix = label_vectors(encoder, labels, template)
    return classify_vectors(encoder.encode(texts), list(labels), matrix, scores=scores)
