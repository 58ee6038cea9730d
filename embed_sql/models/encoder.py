"""TextEncoder: a fast tokenizer and an onnxruntime session that turn text into vectors.

The one encode path of the project: DuckDB, Polars, the CLI and Ray all call
:meth:`TextEncoder.encode`, so the same text gives bit-identical vectors everywhere.

Inputs are processed in chunks (bounded memory for any input size). Inside a chunk the
texts are tokenised, sorted by token length and cut into batches that respect both a row cap
(``batch_size``) and a token budget (rows x padded length ≤ ``max_batch_tokens``), so padding
is minimal and peak memory does not depend on the mix of lengths. Results go back to the
input order. NULL in → NULL out; text longer than the model's limit is truncated.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql import _cancel, _native
from embed_sql._progress import Bar, progress_bar
from embed_sql.config import get_settings, usable_cores
from embed_sql.exceptions import InvalidParameterError, ModelLoadError
from embed_sql.models import registry
from embed_sql.models.base import VectorsOut, check_providers
from embed_sql.models.registry import DEFAULT_MODEL, ModelSpec
from embed_sql.models.resolve import ResolvedModel, resolve, variant_of
from embed_sql.models.texts import TextInput, as_text_array, check_arrow_text, with_prefix
from embed_sql.vectors import provenance
from embed_sql.vectors.arrow import from_numpy, to_numpy

if TYPE_CHECKING:
    import onnxruntime as ort
    from tokenizers import Tokenizer

__all__ = [
    "TextEncoder",
    "as_text_array",
    "plan_batches",
    "shared_encoder",
]

#: Characters of a long text read per allowed token (English WordPiece: ~4.5 per token).
CHARS_PER_TOKEN = 8
#: Texts tokenised at a time; bounds the memory held by token ids and the output buffer.
CHUNK_ROWS = 8192


def plan_batches(lengths: np.ndarray, batch_size: int, max_batch_tokens: int) -> list[np.ndarray]:
    """Group row indices into batches of similar length under a row cap and a token budget.

    Rows are sorted by length; a batch grows while ``rows * longest ≤ max_batch_tokens`` and
    ``rows ≤ batch_size``. A single row longer than the budget still forms its own batch.

    Examples
    --------
    >>> import numpy as np
    >>> [b.tolist() for b in plan_batches(np.array([5, 1, 3, 9]), 2, 100)]
    [[1, 2], [0, 3]]
    """
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start, n = 0, len(order)
    while start < n:
        end = start + 1
        while end < n and end - start < batch_size:
            if (end - start + 1) * int(lengths[order[end]]) > max_batch_tokens:
                break
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        msg = f"{name}={value!r} is not allowed; it must be a positive integer (e.g. 64)"
        raise InvalidParameterError(msg)
    return int(value)


class TextEncoder(VectorsOut):
    """Embed text with an ONNX transformer encoder.

    Parameters
    ----------
    model
        Registered name or alias (``"all-MiniLM-L6-v2"``, optionally ``":int8"``), a
        :class:`ModelSpec`, or a local model directory / ONNX file.
    quantize
        ``"int8"`` for the quantised variant.
    threads
        onnxruntime intra-op threads; default all usable cores (``EMBED_SQL_THREADS``).
    batch_size
        Maximum rows per inference batch (``EMBED_SQL_BATCH_SIZE``, default 64).
    max_batch_tokens
        Maximum rows x padded length per batch (``EMBED_SQL_BATCH_TOKENS``, default 4096).
    providers
        onnxruntime execution providers; default CUDA when available, then CPU.

    Examples
    --------
    >>> from embed_sql import TextEncoder
    >>> enc = TextEncoder()
    >>> vectors = enc.encode(["a burrito", None, "tacos"])
    >>> vectors.type, vectors.null_count
    (FixedSizeListType(fixed_size_list<item: float>[384]), 1)
    """

    def __new__(cls, model: object = DEFAULT_MODEL, **_: object) -> TextEncoder:
        """Return the encoder class a model's kind needs: static and word models have theirs."""
        kind = _kind_of(model) if cls is TextEncoder else "onnx"
        if kind == "image":
            msg = f"{model!r} is an image model: use ImageEncoder, or embed_image() in SQL"
            raise InvalidParameterError(msg)
        if kind == "static":
            from embed_sql.models.static import StaticEncoder

            return super().__new__(StaticEncoder)
        if kind == "words":
            from embed_sql.models.words import WordVectorEncoder

            return super().__new__(WordVectorEncoder)
        return super().__new__(cls)

    def __init__(
        self,
        model: str | ModelSpec | os.PathLike[str] = DEFAULT_MODEL,
        *,
        quantize: str | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        providers: Sequence[str] | None = None,
        offline: bool | None = None,
    ) -> None:
        settings = get_settings()
        self.threads = _positive("threads", threads, settings.threads)
        self.batch_size = _positive("batch_size", batch_size, settings.batch_size)
        self.max_batch_tokens = _positive(
            "max_batch_tokens", max_batch_tokens, settings.max_batch_tokens
        )
        self.resolved: ResolvedModel = resolve(model, quantize=quantize, offline=offline)
        self._providers = check_providers(providers)
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._full_tokenizer: Tokenizer | None = None
        self._input_names: tuple[str, ...] = ()
        self._lock = threading.Lock()
        # Concurrent callers (e.g. DuckDB threads) share the cores instead of multiplying them.
        self._run_slots = threading.BoundedSemaphore(max(1, usable_cores() // self.threads))

    # -- identity -------------------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """The model's :class:`ModelSpec`."""
        return self.resolved.spec

    @property
    def name(self) -> str:
        """Model name with its variant, e.g. ``sentence-transformers/all-MiniLM-L6-v2:int8``."""
        return self.resolved.ref

    @property
    def key(self) -> str:
        """Content hash of the weights, tokenizer and recipe behind these vectors."""
        return self.resolved.key

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, dim={self.dim}, threads={self.threads})"

    # -- lazy runtime -----------------------------------------------------------------------
    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                self._tokenizer = self._make_tokenizer()
                self._session = self._make_session()
            return self._session, self._tokenizer

    def _make_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        path = self.resolved.tokenizer_path
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:
            msg = f"cannot load tokenizer {path}: {exc}"
            raise ModelLoadError(msg) from exc
        tok.no_padding()  # pad per batch to the longest row, not to a fixed width
        tok.enable_truncation(max_length=self.spec.max_tokens)
        return tok

    def _make_session(self) -> ort.InferenceSession:
        ort = _native.onnxruntime()

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        providers = self._providers
        if providers is None:
            available = ort.get_available_providers()
            providers = [p for p in ("CUDAExecutionProvider",) if p in available]
            providers.append("CPUExecutionProvider")
        try:
            session = ort.InferenceSession(str(self.resolved.onnx_path), opts, providers=providers)
        except Exception as exc:
            msg = f"onnxruntime cannot load {self.resolved.onnx_path}: {exc}"
            if self.resolved.source == "cache":  # a damaged entry: say how to rebuild it
                entry = self.resolved.onnx_path.parent
                variant = " --int8" if self.resolved.variant == "int8" else ""
                msg += (
                    f". The cache entry is damaged: delete {entry} and rebuild it with "
                    f"`embed-sql models export {self.spec.name}{variant}` (make models does)"
                )
            raise ModelLoadError(msg) from exc
        names = tuple(i.name for i in session.get_inputs())
        if "input_ids" not in names:
            msg = (
                f"{self.resolved.onnx_path} takes inputs {names}; an encoder graph needs "
                "'input_ids' (and usually 'attention_mask')"
            )
            raise ModelLoadError(msg)
        out = session.get_outputs()[0].shape
        if isinstance(out[-1], int) and out[-1] != self.dim:
            msg = f"{self.resolved.onnx_path} gives {out[-1]}-d vectors; the spec says {self.dim}"
            raise ModelLoadError(msg)
        self._input_names = names
        return session

    # -- tokens ---------------------------------------------------------------------------
    @property
    def special_tokens(self) -> int:
        """How many special tokens (e.g. [CLS], [SEP]) the model adds to one text."""
        _, tokenizer = self._load()
        return len(tokenizer.encode("", add_special_tokens=True).ids)

    def token_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of every model token of each text (no truncation, no specials)."""
        with self._lock:
            if self._full_tokenizer is None:
                full = self._make_tokenizer()
                full.no_truncation()
                self._full_tokenizer = full
            full = self._full_tokenizer
        return [enc.offsets for enc in _tokenize(full, texts, add_special_tokens=False)]

    # -- encoding -------------------------------------------------------------------------
    def encode(
        self, texts: TextInput, *, prompt: str | None = None, progress: bool | None = None
    ) -> pa.Array | pa.ChunkedArray:
        """Embed texts and return a ``fixed_size_list<float32>[dim]`` Arrow array.

        Parameters
        ----------
        texts
            A str, a sequence of str/None, or an Arrow string array or chunked array.
        prompt
            The name of one of the model's prompts (``"query"``, ``"document"``: see
            ``spec.prompts``); its prefix is prepended to every text.
        progress
            Show a tqdm progress bar. Default: only for inputs of 10,000 rows or more when
            stderr is a terminal (so never in logs, CI or inside DuckDB's 2,048-row calls).

        Returns
        -------
        pyarrow.FixedSizeListArray or pyarrow.ChunkedArray
            One vector per input row, in order (a chunked array for chunked input, chunked
            the same way); NULL where the input is NULL.

        Raises
        ------
        InputTypeError
            For non-text input; the message names the first offending value.
        """
        if prompt is not None:
            prefix = self.spec.prompt_prefix(prompt)
            if not isinstance(texts, pa.ChunkedArray):
                texts = as_text_array(texts)
            texts = with_prefix(texts, prefix)
        if isinstance(texts, pa.ChunkedArray):
            check_arrow_text(texts.type)
            with progress_bar(len(texts), progress) as bar:
                return pa.chunked_array(
                    [self._encode_array(c, bar) for c in texts.chunks], self.type
                )
        arr = as_text_array(texts)
        with progress_bar(len(arr), progress) as bar:
            return self._encode_array(arr, bar)

    __call__ = encode

    def encode_batches(
        self, batches: Iterable[TextInput], *, prompt: str | None = None
    ) -> Iterator[pa.Array]:
        """Embed a stream of text batches, yielding one vector array per batch.

        Memory stays bounded by one batch, whatever the stream's length.
        """
        for batch in batches:
            out = self.encode(batch, prompt=prompt)
            yield out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def encode_numpy(self, texts: TextInput, *, prompt: str | None = None) -> np.ndarray:
        """Embed texts into an ``(n, dim)`` float32 array; NULL rows become NaN."""
        return to_numpy(self.encode(texts, prompt=prompt))

    def _encode_array(self, arr: pa.Array, bar: Bar) -> pa.Array:
        if pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.large_string())
        n = len(arr)
        out = np.zeros((n, self.dim), dtype=np.float32)
        valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
        for start in range(0, n, CHUNK_ROWS):
            _cancel.check()
            piece = arr.slice(start, CHUNK_ROWS)
            rows = np.arange(start, start + len(piece))
            texts = piece.to_pylist()
            if valid is not None:
                keep = valid[start : start + len(piece)]
                rows = rows[keep]
                texts = [t for t, k in zip(texts, keep, strict=True) if k]
            if texts:
                # each distinct text once: repeated values (empty strings, categories, the
                # same title in many rows) cost one encoding, then are copied
                first: dict[str, int] = {}
                inverse = np.fromiter(
                    (first.setdefault(t, len(first)) for t in texts), np.int64, len(texts)
                )
                unique = list(first) if len(first) < len(texts) else texts
                vectors = self._embed(unique)
                out[rows] = vectors[inverse] if unique is not texts else vectors
                provenance.record(self.key, self.name, vectors)
            bar.update(len(piece))
        return from_numpy(out, valid=valid)

    def _embed(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._load()
        encodings = self._tokenize_cut(tokenizer, texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        result = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in plan_batches(lengths, self.batch_size, self.max_batch_tokens):
            width = int(lengths[idx[-1]])
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            types = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                enc = encodings[i]
                k = len(enc.ids)
                ids[row, :k] = enc.ids
                mask[row, :k] = 1
                types[row, :k] = enc.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feeds = {k: v for k, v in feeds.items() if k in self._input_names}
            _cancel.check()
            with self._run_slots, _cancel.run_options() as options:
                hidden = session.run(None, feeds, options)[0]
            result[idx] = self._pool(hidden, mask)
        return result

    def _tokenize_cut(self, tokenizer: Tokenizer, texts: list[str]) -> list:
        """Tokenise, reading only a prefix of long texts when that gives the same tokens.

        A text longer than ``CHARS_PER_TOKEN x max_tokens`` characters is cut at the last
        whitespace before that budget: the model reads ``max_tokens`` tokens at most, and
        tokenisers split words at whitespace, so while the prefix alone fills the token
        limit its tokens are the whole text's. A prefix that does not fill it (very long
        "words": URLs, base64) is tokenised again in full. Saves the time and memory of
        tokenising what truncation throws away.
        """
        budget = CHARS_PER_TOKEN * self.spec.max_tokens
        cut: list[int] = []
        short = list(texts)
        for i, text in enumerate(texts):
            if len(text) > budget:
                space = max(text.rfind(" ", 0, budget), text.rfind("\n", 0, budget))
                if space > 0:
                    short[i] = text[:space]
                    cut.append(i)
        encodings = _tokenize(tokenizer, short)
        redo = [i for i in cut if len(encodings[i].ids) < self.spec.max_tokens]
        if redo:
            for i, enc in zip(redo, _tokenize(tokenizer, [texts[i] for i in redo]), strict=True):
                encodings[i] = enc
        return encodings

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if hidden.ndim == 2:  # the graph pools already
            pooled = hidden
        elif self.spec.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.spec.pooling == "max":
            pooled = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
        else:
            m = mask.astype(np.float32)
            pooled = np.einsum("bsd,bs->bd", hidden, m) / np.maximum(m.sum(1, keepdims=True), 1e-9)
        pooled = pooled.astype(np.float32, copy=False)
        if self.spec.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled = pooled / np.maximum(norms, 1e-12)
        return pooled


def _tokenize(tokenizer: Tokenizer, texts: list[str], *, add_special_tokens: bool = True) -> list:
    try:
        return tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
    except (TypeError, ValueError, UnicodeError):
        # lone surrogates and the like: replace what UTF-8 cannot carry, never fail a row
        cleaned = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
        return tokenizer.encode_batch(cleaned, add_special_tokens=add_special_tokens)


_shared: dict[tuple[object, str | None, tuple[str, ...] | None], TextEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(
    model: str | ModelSpec | os.PathLike[str] | None = None,
    *,
    quantize: str | None = None,
    providers: Sequence[str] | None = None,
) -> TextEncoder:
    """Return the process-wide encoder for a model, variant and providers, creating it once.

    Every host (DuckDB, Polars, the CLI) goes through here, so they share one onnxruntime
    session per model and give the same vectors.
    """
    ref = DEFAULT_MODEL if model is None else model
    spec = ref if isinstance(ref, ModelSpec) else registry.get(os.fspath(ref))
    chosen = check_providers(providers)
    key = (spec, variant_of(ref, quantize), None if chosen is None else tuple(chosen))
    with _shared_lock:
        encoder = _shared.get(key)
        if encoder is None:
            encoder = _shared[key] = TextEncoder(ref, quantize=quantize, providers=chosen)
        return encoder


def _kind_of(model: object) -> str:
    try:
        if isinstance(model, str | os.PathLike):
            model = registry.get(os.fspath(model))
    except Exception:  # unknown or unreadable: TextEncoder.__init__ says why
        return "onnx"
    if not isinstance(model, ModelSpec):
        return "onnx"
    return "image" if model.modality == "image" else model.kind
