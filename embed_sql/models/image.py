"""ImageEncoder: images (bytes, file paths, PIL images) → vectors, through an ONNX vision model.

The image twin of :class:`~embed_sql.models.encoder.TextEncoder`, with the same identity
(``name``, ``key``, ``dim``, ``field``) and the same output: a
``fixed_size_list<float32>[dim]`` Arrow array, one row per input, NULL where the input is
NULL or cannot be read (a counted :class:`~embed_sql.exceptions.EmbedSQLWarning` says how
many and why). Pixels are prepared by :mod:`embed_sql.models.pixels` as the model's
``preprocessor_config.json`` says; images are decoded by a background thread while the
previous batch runs, so memory holds two batches of model inputs at most.

Where the model's files come from: :mod:`embed_sql.models.image_files` (a local folder,
the cache; the default EfficientNet-Lite0 is put there at setup by ``embed-sql models fetch
efficientnet-lite0``, run by ``make models``; see :mod:`embed_sql.models.image_export`).
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa

from embed_sql import _cancel, _native
from embed_sql.config import get_settings, usable_cores
from embed_sql.exceptions import (
    EmbedSQLWarning,
    InputTypeError,
    InvalidParameterError,
    ModelLoadError,
)
from embed_sql.models.base import FilesIdentity, VectorsOut, check_providers
from embed_sql.models.image_files import (
    DEFAULT_IMAGE_MODEL,
    ImageFiles,
    fetch,
    image_spec,
    resolve_image,
    text_tower,
)
from embed_sql.models.pixels import Preprocessing, prepare
from embed_sql.models.registry import ModelSpec
from embed_sql.vectors import provenance
from embed_sql.vectors.arrow import from_numpy

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "ImageEncoder",
    "ImageFiles",
    "fetch",
    "resolve_image",
    "shared_image_encoder",
    "text_tower",
]

#: Images per inference batch. onnxruntime's activations for EfficientNet-Lite0 grow ~26 MiB
#: per image (850 MiB at 32, 210 MiB at 8), and batches past 8 gain nothing measurable here.
BATCH = 8


ImageInput: TypeAlias = pa.Array | pa.ChunkedArray | Sequence[Any] | bytes | str | os.PathLike[str]


class ImageEncoder(FilesIdentity, VectorsOut):
    """Embed images with an ONNX vision model; bytes, file paths and PIL images alike.

    Parameters
    ----------
    model
        A registered image model (``"efficientnet-lite0"``, the default) or its spec.
    threads
        onnxruntime intra-op threads; default all usable cores (``EMBED_SQL_THREADS``).
    batch_size
        Images per inference batch (default 8: bounded memory at full speed).
    providers
        onnxruntime execution providers; default CUDA when available, then CPU.

    Examples
    --------
    >>> from embed_sql import ImageEncoder
    >>> enc = ImageEncoder()                                          # doctest: +SKIP
    >>> enc.encode(["photos/cat.jpg", None]).type                     # doctest: +SKIP
    FixedSizeListType(fixed_size_list<item: float>[1280])
    """

    def __init__(
        self,
        model: str | ModelSpec | os.PathLike[str] = DEFAULT_IMAGE_MODEL,
        *,
        threads: int | None = None,
        batch_size: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        for name, value in (("threads", threads), ("batch_size", batch_size)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                msg = f"{name}={value!r} is not allowed; it must be a positive integer"
                raise InvalidParameterError(msg)
        self._providers = check_providers(providers)
        self.files = resolve_image(model)
        self.threads = threads or get_settings().threads
        self.batch_size = batch_size or BATCH
        self.pre = Preprocessing.from_file(self.files.path / "preprocessor_config.json")
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()
        self._run_slots = threading.BoundedSemaphore(max(1, usable_cores() // self.threads))

    # identity (spec, name, key: FilesIdentity) and output (dim, type, field: VectorsOut)
    def __repr__(self) -> str:
        return f"ImageEncoder({self.name!r}, dim={self.dim}, threads={self.threads})"

    def _load(self) -> ort.InferenceSession:
        with self._lock:
            if self._session is None:
                ort = _native.onnxruntime()
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                path = self.files.path / "model.onnx"
                providers = self._providers or [
                    p
                    for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                    if p in ort.get_available_providers()
                ]
                try:
                    session = ort.InferenceSession(str(path), opts, providers=providers)
                except Exception as exc:
                    msg = f"onnxruntime cannot load {path}: {exc}"
                    raise ModelLoadError(msg) from exc
                self._input = session.get_inputs()[0].name
                self._session = session
            return self._session

    # -- encoding -------------------------------------------------------------------------
    def encode(self, images: ImageInput) -> pa.Array | pa.ChunkedArray:
        """Embed images and return a ``fixed_size_list<float32>[dim]`` Arrow array.

        Parameters
        ----------
        images
            A binary array (encoded image files), a string array (file paths), or a
            sequence of bytes, paths, ``PIL.Image`` objects and None; or one of them.

        Returns
        -------
        pyarrow.FixedSizeListArray or pyarrow.ChunkedArray
            One vector per input, in order; NULL where the input is NULL or unreadable (one
            :class:`EmbedSQLWarning` per call counts those and names the first).
        """
        if isinstance(images, pa.ChunkedArray):
            return pa.chunked_array(
                [self._encode(list(_items(c))) for c in images.chunks], self.type
            )
        return self._encode(list(_items(images)))

    __call__ = encode

    def encode_numpy(self, images: ImageInput) -> np.ndarray:
        """Embed images into an ``(n, dim)`` float32 array; NULL rows become NaN."""
        from embed_sql.vectors.arrow import to_numpy

        return to_numpy(self.encode(images))

    def _encode(self, items: list[Any]) -> pa.Array:
        n = len(items)
        out = np.zeros((n, self.dim), dtype=np.float32)
        valid = np.zeros(n, dtype=bool)
        failed: list[tuple[int, str]] = []
        todo = [i for i, item in enumerate(items) if item is not None]
        batches = [todo[s : s + self.batch_size] for s in range(0, len(todo), self.batch_size)]
        for rows, pixels, reasons in self._decoded(items, batches):
            failed.extend(reasons)
            _cancel.check()
            if rows:
                out[rows] = self._run(pixels)
                valid[rows] = True
        if failed:
            row, why = failed[0]
            msg = (
                f"{len(failed)} of {n} images could not be read and are NULL "
                f"(the first, row {row}: {why})"
            )
            warnings.warn(msg, EmbedSQLWarning, stacklevel=3)
        if valid.any():
            provenance.record(self.key, self.name, out[valid])
        return from_numpy(out, valid=None if valid.all() else valid)

    def _decoded(
        self, items: list[Any], batches: list[list[int]]
    ) -> Iterator[tuple[list[int], np.ndarray, list[tuple[int, str]]]]:
        """Decode batch i+1 on a background thread while batch i runs (Pillow frees the GIL)."""
        if not batches:
            return
        pool = _decode_pool()
        pending = pool.submit(_decode_batch, items, batches[0], self.pre)
        for i in range(len(batches)):
            done = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(_decode_batch, items, batches[i + 1], self.pre)
            yield done

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        session = self._load()
        with self._run_slots, _cancel.run_options() as options:
            out = session.run(None, {self._input: pixels}, options)[0]
        if out.ndim == 4:  # feature maps: global average pool
            out = out.mean(axis=(2, 3))
        elif out.ndim == 3:  # tokens: the spec's pooling
            out = out[:, 0] if self.spec.pooling == "cls" else out.mean(axis=1)
        out = np.asarray(out, dtype=np.float32)
        if out.shape[1] != self.dim:
            path = self.files.path / "model.onnx"
            msg = f"{path} gives {out.shape[1]}-d vectors; the spec says {self.dim}"
            raise ModelLoadError(msg)
        if self.spec.normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


def _decode_batch(
    items: list[Any], rows: list[int], pre: Preprocessing
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    kept: list[int] = []
    arrays: list[np.ndarray] = []
    failed: list[tuple[int, str]] = []
    for i in rows:
        x, why = prepare(items[i], pre)
        if x is None:
            failed.append((i, why))
        else:
            kept.append(i)
            arrays.append(x)
    pixels = np.stack(arrays) if arrays else np.zeros((0, 3, pre.crop[1], pre.crop[0]), np.float32)
    return kept, pixels, failed


def _items(images: object) -> Iterator[Any]:
    """Yield the rows of any accepted input, as bytes, str paths, PIL images or None."""
    if isinstance(images, bytes | str | os.PathLike):
        yield images
        return
    if isinstance(images, pa.Array):
        t = images.type
        binary = pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
        text = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        if not (binary or text):
            msg = (
                f"images must be a binary column (encoded image files) or a string column (file "
                f"paths), got Arrow {t}; cast it: CAST(col AS BLOB), pl.col(c).cast(pl.Binary)"
            )
            raise InputTypeError(msg)
        yield from images.to_pylist()
        return
    if isinstance(images, Sequence) or hasattr(images, "__iter__"):
        yield from images
        return
    msg = f"images must be bytes, paths, PIL images or an Arrow array, got {type(images).__name__}"
    raise InputTypeError(msg)


@functools.cache
def _decode_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="embed_sql-image-decode")


_shared: dict[tuple[ModelSpec, tuple[str, ...] | None], ImageEncoder] = {}
_shared_lock = threading.Lock()


def shared_image_encoder(
    model: str | ModelSpec | os.PathLike[str] | None = None,
    *,
    providers: Sequence[str] | None = None,
) -> ImageEncoder:
    """Return the process-wide image encoder of a model (DuckDB and Polars share it)."""
    spec = image_spec(DEFAULT_IMAGE_MODEL if model is None else model)
    chosen = check_providers(providers)
    key = (spec, None if chosen is None else tuple(chosen))
    with _shared_lock:
        encoder = _shared.get(key)
        if encoder is None:
            encoder = _shared[key] = ImageEncoder(spec, providers=chosen)
        return encoder
