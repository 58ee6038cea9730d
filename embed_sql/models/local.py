"""What a local model folder or ONNX file is, read from its own config files.

A Hugging Face or sentence-transformers directory (``config.json``, ``1_Pooling``,
``modules.json``, ``sentence_bert_config.json``), an ONNX file with its tokenizer, or a
model2vec folder (a static model) is described as a :class:`ModelSpec` without loading
any weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from embed_sql.exceptions import ModelLoadError
from embed_sql.models.registry import ModelSpec, Pooling

__all__ = ["describe"]


def _read_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}. Is this a complete Hugging Face model directory?"
        raise ModelLoadError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path} does not hold a JSON object"
        raise ModelLoadError(msg)
    return data


def _onnx_output_dim(onnx_path: Path) -> int | None:
    try:
        import onnx  # optional; present with the export extra
    except ImportError:
        return None
    if onnx is not None:
        try:
            model = onnx.load(str(onnx_path), load_external_data=False)
        except Exception as exc:
            msg = f"{onnx_path} is not a readable ONNX model: {exc}"
            raise ModelLoadError(msg) from exc
        dims = model.graph.output[0].type.tensor_type.shape.dim
        last = dims[-1].dim_value if dims else 0
        return int(last) or None
    from embed_sql import _native

    try:
        session = _native.onnxruntime().InferenceSession(
            str(onnx_path), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        msg = f"{onnx_path} is not a readable ONNX model: {exc}"
        raise ModelLoadError(msg) from exc
    last = session.get_outputs()[0].shape[-1]
    return last if isinstance(last, int) else None


def describe(
    path: str | os.PathLike[str], *, tokenizer: str | os.PathLike[str] | None = None
) -> ModelSpec:
    """Describe a local model directory or ONNX file from its own config files.

    Reads ``config.json`` (``hidden_size``), and for sentence-transformers directories
    ``1_Pooling/config.json``, ``modules.json`` (normalisation) and
    ``sentence_bert_config.json`` (``max_seq_length``).

    Raises
    ------
    ModelLoadError
        When the path is missing or lacks the files needed to describe it.
    """
    p = Path(path).expanduser().resolve()
    if not p.exists():
        msg = f"model path {os.fspath(path)!r} does not exist"
        raise ModelLoadError(msg)
    if p.is_file():
        if p.suffix != ".onnx":
            msg = f"model file {p} is not an .onnx file; pass an ONNX file or a model directory"
            raise ModelLoadError(msg)
        tok = Path(tokenizer) if tokenizer else p.parent / "tokenizer.json"
        if not tok.is_file():
            msg = (
                f"no tokenizer for ONNX file {p}: expected {tok}. "
                "Pass tokenizer='path/to/tokenizer.json'."
            )
            raise ModelLoadError(msg)
        config_dir = p.parent if (p.parent / "config.json").is_file() else None
        base = _spec_from_dir(config_dir, p.stem) if config_dir else None
        dim = base.dim if base else _onnx_output_dim(p)
        if dim is None:
            msg = f"cannot tell the output dimension of {p}; register it with dim=..."
            raise ModelLoadError(msg)
        pooling = base.pooling if base else "mean"
        return ModelSpec(
            name=str(p),
            dim=dim,
            pooling=pooling,
            normalize=base.normalize if base else True,
            max_tokens=base.max_tokens if base else 512,
            path=str(p),
            tokenizer=str(tok),
            description=f"local ONNX file {p.name}",
        )
    if (p / "config.json").is_file() and (p / "model.safetensors").is_file():
        config = _read_json(p / "config.json")
        if config.get("model_type") == "model2vec":  # a static model: a lookup table
            dim = config.get("hidden_dim")
            if not isinstance(dim, int):
                msg = f"{p / 'config.json'}: a model2vec config needs an integer hidden_dim"
                raise ModelLoadError(msg)
            return ModelSpec(
                name=str(p),
                dim=dim,
                kind="static",
                path=str(p),
                description=f"local static model {p.name} (model2vec)",
            )
    if not (p / "config.json").is_file():
        msg = (
            f"model directory {p} has no config.json; "
            "expected a Hugging Face model directory (config.json, tokenizer.json, weights)"
        )
        raise ModelLoadError(msg)
    spec = _spec_from_dir(p, str(p))
    return replace(spec, path=str(p), tokenizer=os.fspath(tokenizer) if tokenizer else None)


def _spec_from_dir(p: Path, name: str) -> ModelSpec:
    config = _read_json(p / "config.json")
    dim = config.get("hidden_size") or config.get("d_model") or config.get("dim")
    if not isinstance(dim, int):
        msg = f"{p / 'config.json'} has no integer hidden_size; cannot tell the vector dimension"
        raise ModelLoadError(msg)
    limits = [
        v
        for v in (config.get("max_position_embeddings"), _tokenizer_limit(p))
        if isinstance(v, int) and v > 0
    ]
    max_tokens = min([*limits, 512])
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        max_tokens = min(max_tokens, 514 - 2)  # positions offset by the padding index
    pooling: Pooling = "mean"
    normalize = True
    st_config = p / "sentence_bert_config.json"
    if st_config.is_file():
        seq = _read_json(st_config).get("max_seq_length")
        if isinstance(seq, int) and seq > 0:
            max_tokens = min(max_tokens, seq)
    modules = p / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except ValueError as exc:
            msg = f"cannot read {modules}: {exc}"
            raise ModelLoadError(msg) from exc
        normalize = any(str(m.get("type", "")).endswith(".Normalize") for m in entries)
        for m in entries:
            if str(m.get("type", "")).endswith(".Pooling"):
                pooling = _pooling_from(p / m.get("path", "") / "config.json")
    st_prompts = p / "config_sentence_transformers.json"
    prompts = _read_json(st_prompts).get("prompts") if st_prompts.is_file() else None
    if not isinstance(prompts, dict):
        prompts = {}
    return ModelSpec(
        name=name,
        dim=dim,
        pooling=pooling,
        normalize=normalize,
        max_tokens=max_tokens,
        description=f"local model {p.name} ({config.get('model_type', 'unknown type')})",
        prompts=tuple((str(k), str(v)) for k, v in prompts.items() if v),
    )


def _tokenizer_limit(p: Path) -> int | None:
    cfg = p / "tokenizer_config.json"
    if not cfg.is_file():
        return None
    value = _read_json(cfg).get("model_max_length")
    return value if isinstance(value, int) and value < 100_000 else None


def _pooling_from(config_path: Path) -> Pooling:
    if not config_path.is_file():
        return "mean"
    cfg = _read_json(config_path)
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_max_tokens"):
        return "max"
    if cfg.get("pooling_mode_mean_tokens", True):
        return "mean"
    msg = (
        f"{config_path}: only mean, cls and max pooling are supported; "
        f"got {cfg}. Register the model with pooling='mean' to override."
    )
    raise ModelLoadError(msg)
