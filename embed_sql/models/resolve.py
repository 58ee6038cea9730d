"""Turn a model reference into a local ONNX file and tokenizer, offline first.

Order: an explicit path → the cache (``EMBED_SQL_CACHE``) → an installed package that ships
the weights → the Hugging Face hub (only when online). Weights found without an ONNX graph
are exported once with optimum into the cache, under a key that hashes the weights, the
tokenizer and the export recipe; int8 variants are quantised from the fp32 graph and cached
the same way. Every cache entry is written into a temporary directory and renamed into
place, so a crash or a concurrent export never leaves a half-written model behind; the next
look into the same folder (a resolve or an export of the model) removes the temporary
directory of an export that was killed (:func:`embed_sql._io.clean_stale_dirs` says when).

Cache layout::

    <cache>/models/<slug>/<variant>-<key16>/model.onnx
                                           /tokenizer.json
                                           /manifest.json
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from embed_sql._io import clean_stale_dirs, publish_dir, temp_dir
from embed_sql._progress import stage
from embed_sql.config import get_settings
from embed_sql.exceptions import InvalidParameterError, ModelLoadError, ModelNotFoundError
from embed_sql.models import export as _export
from embed_sql.models import registry
from embed_sql.models.registry import ModelSpec

__all__ = ["ResolvedModel", "resolve"]

log = logging.getLogger(__name__)

_RECIPES = {"fp32": _export.EXPORT_RECIPE, "int8": _export.INT8_RECIPE}
# What the hub download fetches: configs, tokenizer and one weights format; no ONNX/TF/Flax.
_HUB_PATTERNS = [
    "*.json",
    "vocab.txt",
    "*.model",
    "merges.txt",
    "*.safetensors",
    "1_Pooling/*",
]
_SOURCE_FILES = (
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to run: its spec, ONNX graph, tokenizer and identity.

    ``key`` is a content hash of what produced the vectors (weights, tokenizer, export
    recipe, variant): two encoders with the same key give the same vectors.
    """

    spec: ModelSpec
    variant: str
    onnx_path: Path
    tokenizer_path: Path
    key: str
    source: str

    @property
    def ref(self) -> str:
        """The name as users write it, with ``:int8`` for the int8 variant."""
        return self.spec.name if self.variant == "fp32" else f"{self.spec.name}:{self.variant}"


_hash_memo: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def _file_digest(path: Path) -> str:
    st = path.stat()
    memo_key = (str(path), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if memo_key in _hash_memo:
            return _hash_memo[memo_key]
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_memo[memo_key] = digest
    return digest


def _content_key(files: list[Path], *parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    for f in sorted(files, key=lambda p: p.name):
        h.update(f.name.encode())
        h.update(_file_digest(f).encode())
    return h.hexdigest()


def _source_files(src: Path) -> list[Path]:
    files = [src / name for name in _SOURCE_FILES if (src / name).is_file()]
    weights = [w for g in _WEIGHT_GLOBS for w in sorted(src.glob(g))]
    if not weights:
        msg = (
            f"model directory {src} has no weights (*.safetensors or pytorch_model.bin) "
            "and no model.onnx; it cannot be loaded"
        )
        raise ModelLoadError(msg)
    return files + weights


class _Cache:
    def __init__(self, root: Path) -> None:
        self.root = root / "models"

    def entry(self, spec: ModelSpec, variant: str, key: str) -> Path:
        return self.root / spec.slug / f"{variant}-{key[:16]}"

    def find(self, spec: ModelSpec, variant: str) -> ResolvedModel | None:
        """Return the newest complete entry for this spec, variant and current recipe."""
        folder = self.root / spec.slug
        if not folder.is_dir():
            return None
        clean_stale_dirs(folder, ".tmp-")  # left by an export that was killed
        best: tuple[float, ResolvedModel] | None = None
        for entry in folder.glob(f"{variant}-*"):
            found = self.load(entry, spec)
            if found is None:
                continue
            created = (entry / "manifest.json").stat().st_mtime
            if best is None or created > best[0]:
                best = (created, found)
        return best[1] if best else None

    def load(self, entry: Path, spec: ModelSpec) -> ResolvedModel | None:
        manifest = entry / "manifest.json"
        if not (manifest.is_file() and (entry / "model.onnx").is_file()):
            return None
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("recipe") != _RECIPES.get(meta.get("variant", "")):
            return None
        return ResolvedModel(
            spec=spec,
            variant=meta["variant"],
            onnx_path=entry / "model.onnx",
            tokenizer_path=entry / "tokenizer.json",
            key=meta["key"],
            source="cache",
        )

    def build(self, spec: ModelSpec, variant: str, key: str, make: object) -> ResolvedModel:
        """Create an entry with ``make(tmpdir)`` unless it exists; atomic via rename."""
        final = self.entry(spec, variant, key)
        clean_stale_dirs(final.parent, ".tmp-")  # left by an export that was killed
        existing = self.load(final, spec)
        if existing is not None:
            return existing
        with temp_dir(final.parent, f".tmp-{variant}-") as tmp:
            make(tmp)  # type: ignore[operator]
            meta = {
                "name": spec.name,
                "variant": variant,
                "key": key,
                "recipe": _RECIPES[variant],
                "created": time.time(),
                "spec": {k: v for k, v in asdict(spec).items() if k != "extra"},
            }
            (tmp / "manifest.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            try:
                publish_dir(tmp, final)
            except OSError:
                if self.load(final, spec) is None:  # not a lost race: a real failure
                    raise
        built = self.load(final, spec)
        if built is None:  # pragma: no cover - rename succeeded, files must be there
            msg = f"cache entry {final} is incomplete after export"
            raise ModelLoadError(msg)
        return built


def _package_dir(spec: ModelSpec) -> Path | None:
    if not spec.package:
        return None
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    base = Path(next(iter(found.submodule_search_locations)))
    path = base / spec.package_subdir if spec.package_subdir else base
    return path if (path / "config.json").is_file() else None


def _hub_dir(spec: ModelSpec, *, offline: bool, why: list[str]) -> Path | None:
    if not spec.hub_id:
        return None
    from huggingface_hub import snapshot_download

    # read at call time: huggingface_hub freezes its own env constants at import
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    try:
        path = snapshot_download(
            spec.hub_id,
            allow_patterns=_HUB_PATTERNS,
            local_files_only=offline,
            cache_dir=cache_dir,
        )
    except Exception as exc:  # offline miss, network error, gated repo, ...
        where = "the local Hugging Face cache" if offline else "the Hugging Face hub"
        why.append(f"{where} ({spec.hub_id}): {type(exc).__name__}: {exc}".strip())
        return None
    return Path(path)


def _onnx_in_dir(src: Path) -> Path | None:
    for candidate in (src / "model.onnx", src / "onnx" / "model.onnx"):
        if candidate.is_file() and (src / "tokenizer.json").is_file():
            return candidate
    return None


def _from_onnx(spec: ModelSpec, onnx_path: Path, tokenizer: Path, source: str) -> ResolvedModel:
    if not tokenizer.is_file():
        msg = f"tokenizer {tokenizer} for {onnx_path} does not exist"
        raise ModelLoadError(msg)
    key = _content_key([onnx_path, tokenizer], "onnx-file")
    return ResolvedModel(spec, "fp32", onnx_path, tokenizer, key, source)


def _exported(spec: ModelSpec, src: Path, cache: _Cache, source: str) -> ResolvedModel:
    ready = _onnx_in_dir(src)
    if ready is not None:
        return _from_onnx(spec, ready, src / "tokenizer.json", source)
    key = _content_key(_source_files(src), _RECIPES["fp32"])

    def make(tmp: Path) -> None:
        with stage(f"exporting {spec.name} to ONNX (once, into the cache)"):
            _export.export_onnx(src, tmp)
        if (src / "tokenizer.json").is_file():  # the model's own tokenizer, not a re-save
            shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
        if not (tmp / "tokenizer.json").is_file():
            msg = f"{src} has no tokenizer.json and the export did not produce one"
            raise ModelLoadError(msg)
        for extra in tmp.iterdir():  # keep the entry small: graph, tokenizer, manifest
            if extra.name not in ("model.onnx", "model.onnx_data", "tokenizer.json"):
                shutil.rmtree(extra) if extra.is_dir() else extra.unlink()

    built = cache.build(spec, "fp32", key, make)
    return ResolvedModel(spec, "fp32", built.onnx_path, built.tokenizer_path, key, source)


def _quantized(base: ResolvedModel, cache: _Cache) -> ResolvedModel:
    key = hashlib.sha256(f"{base.key}\0{_RECIPES['int8']}".encode()).hexdigest()

    def make(tmp: Path) -> None:
        with stage(f"quantising {base.spec.name} to int8 (once, into the cache)"):
            _export.quantize_int8(base.onnx_path, tmp / "model.onnx")
        shutil.copyfile(base.tokenizer_path, tmp / "tokenizer.json")

    built = cache.build(base.spec, "int8", key, make)
    return ResolvedModel(base.spec, "int8", built.onnx_path, built.tokenizer_path, key, base.source)


def variant_of(model: str | ModelSpec | os.PathLike[str], quantize: str | None) -> str:
    """Return the variant asked for by a ``:suffix`` or by ``quantize`` (``fp32`` if neither)."""
    suffix = registry.parse_ref(os.fspath(model))[1] if not isinstance(model, ModelSpec) else None
    asked = (quantize or "").lower() or None
    if asked is not None and asked not in registry.VARIANTS:
        msg = f"quantize={quantize!r} is not supported; use one of {registry.VARIANTS} or None"
        raise InvalidParameterError(msg)
    if suffix and suffix != "fp32" and asked and asked != suffix:
        msg = f"model {model!r} asks for {suffix} but quantize={quantize!r}; give only one"
        raise InvalidParameterError(msg)
    return asked or suffix or "fp32"


def resolve(
    model: str | ModelSpec | os.PathLike[str] = registry.DEFAULT_MODEL,
    *,
    quantize: str | None = None,
    offline: bool | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ResolvedModel:
    """Find or build the ONNX graph for a model, exporting it once if needed.

    Parameters
    ----------
    model
        A registered name or alias (optionally with ``:int8``), a :class:`ModelSpec`, or a
        local Hugging Face model directory or ONNX file.
    quantize
        ``"int8"`` for the quantised variant; ``None`` or ``"fp32"`` for full precision.
    offline
        Never contact the hub; defaults to ``EMBED_SQL_OFFLINE`` / ``HF_HUB_OFFLINE``.
    cache_dir
        Overrides ``EMBED_SQL_CACHE``.

    Raises
    ------
    ModelNotFoundError
        When the model is in none of the places searched; the message lists each place.

    Examples
    --------
    >>> from embed_sql.models import resolve
    >>> resolve("all-MiniLM-L6-v2").onnx_path.name
    'model.onnx'
    """
    settings = get_settings()
    spec = model if isinstance(model, ModelSpec) else registry.get(os.fspath(model))
    variant = variant_of(model, quantize)
    if spec.modality == "dual":  # the text tower of a CLIP-style model
        if variant != "fp32":
            msg = f"{spec.name!r} is a dual (CLIP-style) model: it has no {variant} variant"
            raise InvalidParameterError(msg)
        from embed_sql.models.image_files import text_tower

        return text_tower(spec, offline=offline, cache_dir=cache_dir)
    offline = settings.offline if offline is None else offline
    cache = _Cache(Path(cache_dir).expanduser() if cache_dir else settings.cache_dir)

    if spec.path:
        path = Path(spec.path).expanduser()
        if not path.exists():
            msg = f"model path {path} of {spec.name!r} does not exist"
            raise ModelLoadError(msg)
        if path.is_file():
            tok = Path(spec.tokenizer) if spec.tokenizer else path.parent / "tokenizer.json"
            base = _from_onnx(spec, path, tok, "path")
        else:
            base = _exported(spec, path, cache, "path")
        return base if variant == "fp32" else _quantized(base, cache)

    hit = cache.find(spec, variant)
    if hit is not None:
        return hit
    if variant != "fp32":
        cached_base = cache.find(spec, "fp32")
        if cached_base is not None:
            return _quantized(cached_base, cache)

    why: list[str] = []
    src = _package_dir(spec)
    source = "package"
    if src is None:
        if spec.package:
            pip_name = spec.package.replace("_", "-")
            why.append(f"package {spec.package!r}: not installed (pip install {pip_name})")
        src = _hub_dir(spec, offline=offline, why=why)
        source = "hub"
    if src is None:
        places = "; ".join([f"cache {cache.root / spec.slug}: no entry", *why])
        msg = (
            f"model {spec.name!r} ({variant}) could not be found offline or online. "
            f"Searched: {places}. Fix: install a package that ships it, put it in the cache "
            "with `embed-sql models export`, or pass a local model directory."
        )
        raise ModelNotFoundError(msg)
    base = _exported(spec, src, cache, source)
    return base if variant == "fp32" else _quantized(base, cache)
