"""What every encoder shares: its output's type and field, its identity, its providers.

:class:`VectorsOut` gives ``dim``, the Arrow ``type`` and a ``field`` carrying the model's
name and content key (so joins and drift checks can refuse vectors of another model);
:class:`FilesIdentity` reads ``spec``, ``name`` and ``key`` from the files an encoder found
(static, word and image models); :func:`check_providers` refuses an onnxruntime execution
provider the installed build does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from embed_sql import _native
from embed_sql.exceptions import InvalidParameterError
from embed_sql.models.registry import ModelSpec

__all__ = ["FilesIdentity", "VectorsOut", "check_providers", "model_field"]


def model_field(name: str, dtype: pa.DataType, model: str, key: str, metric: str) -> pa.Field:
    """Return a vector field carrying its model's name and content key and its metric."""
    meta = {
        b"embed_sql.model": model.encode(),
        b"embed_sql.model_key": key.encode(),
        b"embed_sql.metric": metric.encode(),
    }
    return pa.field(name, dtype, nullable=True, metadata=meta)


class VectorsOut:
    """What every encoder's output is: ``dim``, the Arrow ``type`` and a ``field`` for it.

    Subclasses give ``spec``, ``name`` and ``key``.
    """

    @property
    def spec(self) -> ModelSpec:
        """The model's :class:`ModelSpec`."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The model's name."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        """Content hash of what made these vectors."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Length of the vectors this encoder returns."""
        return self.spec.dim

    @property
    def type(self) -> pa.DataType:
        """The Arrow type of the output: ``fixed_size_list<float32>[dim]``."""
        return pa.list_(pa.float32(), self.dim)

    def field(self, name: str = "embedding", metric: str = "cos") -> pa.Field:
        """Return an Arrow field for these vectors, with model and metric in its metadata."""
        return model_field(name, self.type, self.name, self.key, metric)


class FilesIdentity:
    """``spec``, ``name`` and ``key`` of an encoder whose found files carry them (``files``).

    Shared by the encoders that are not an exported transformer: static and word lookups,
    image models.
    """

    files: Any  # a dataclass with .spec and .key

    @property
    def spec(self) -> ModelSpec:
        """The model's :class:`ModelSpec`."""
        return self.files.spec

    @property
    def name(self) -> str:
        """The model's name."""
        return self.files.spec.name

    @property
    def key(self) -> str:
        """Content hash of the model's files and the recipe behind these vectors."""
        return self.files.key


def check_providers(providers: Sequence[str] | None) -> list[str] | None:
    """Return the providers as a list, or refuse one this onnxruntime build does not have."""
    if providers is None:
        return None
    if isinstance(providers, str) or not all(isinstance(p, str) for p in providers):
        msg = f"providers={providers!r}: give a list of names, e.g. ['CPUExecutionProvider']"
        raise InvalidParameterError(msg)
    available = _native.onnxruntime().get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing or not providers:
        msg = (
            f"providers={list(providers)!r}: {missing or 'none given'} not available in this "
            f"onnxruntime build (it has {available}). For CUDA install onnxruntime-gpu instead "
            "of onnxruntime (pip uninstall onnxruntime && pip install onnxruntime-gpu: the two "
            "wheels conflict, keep one)"
        )
        raise InvalidParameterError(msg)
    return list(providers)
