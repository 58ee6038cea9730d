"""Image models on disk: where their files are found, and how a cache entry is built.

An image model is a folder with ``model.onnx`` and ``preprocessor_config.json`` (a dual,
CLIP-style model also ``text_model.onnx`` and ``tokenizer.json``). :func:`resolve_image`
finds it: a local folder (``spec.path``); the cache, ``<cache>/models/<slug>/image-<key16>/``;
for a dual model, a Hugging Face CLIP folder (local, or from the hub when online) exported
once into the cache. :func:`fetch` builds the default image model's entry at setup. Every
entry is built in a temporary folder and renamed into place; a killed build's leftovers are
removed by the next one. One content key covers every file, so both towers of a dual model
share it. :func:`text_tower` is how :class:`~embed_sql.models.encoder.TextEncoder` runs a
dual model's text side.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from embed_sql._io import clean_stale_dirs, publish_dir, temp_dir
from embed_sql._progress import stage
from embed_sql.config import get_settings
from embed_sql.exceptions import InvalidParameterError, ModelLoadError, ModelNotFoundError
from embed_sql.models import registry
from embed_sql.models.registry import ModelSpec
from embed_sql.models.resolve import ResolvedModel
from embed_sql.models.wheels import sha256_of

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "ImageFiles",
    "fetch",
    "image_spec",
    "resolve_image",
    "text_tower",
]

DEFAULT_IMAGE_MODEL = "efficientnet-lite0"
#: What an image vector is: a change to pixels.py or the export changes every key.
RECIPE = "pixels-v1"
_FILES = ("model.onnx", "preprocessor_config.json")
_TEXT_FILES = ("text_model.onnx", "tokenizer.json")  # a dual model's text tower
_SOURCE_GLOBS = ("config.json", "*.safetensors", "pytorch_model*.bin", "tokenizer.json")


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


def image_spec(model: str | ModelSpec | os.PathLike[str]) -> ModelSpec:
    """Return the spec of an image or dual model, or refuse a text model by name."""
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
    clean_stale_dirs(parent, ".tmp-image-")
    with temp_dir(parent, ".tmp-image-") as tmp:
        with stage(f"exporting {spec.name} to ONNX (once, into the cache)"):
            facts = make(tmp)
        key = _key_of(tmp, spec)
        meta = {"name": spec.name, "key": key, "recipe": RECIPE, "source": source, **facts}
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            publish_dir(tmp, final)
        except OSError:
            if not _complete(final, spec):  # not a lost race with another process: a failure
                raise
        return ImageFiles(spec, final, _manifest(final).get("key", key), source)


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
    spec = image_spec(model)
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

    spec = image_spec(model)
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
