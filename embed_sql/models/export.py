"""Export Hugging Face weights to ONNX (optimum) and quantise ONNX graphs to int8.

Both need the ``export`` extra (optimum-onnx, onnx and torch); nothing here is imported
unless a model has to be built. The exported graph is the plain encoder
(``input_ids``, ``attention_mask``[, ``token_type_ids``] → ``last_hidden_state``); pooling
and normalisation happen in :mod:`embed_sql.models.encoder`, so one graph serves every
pooling a spec can ask for.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from embed_sql.exceptions import ExportError, MissingDependencyError

__all__ = ["EXPORT_RECIPE", "INT8_RECIPE", "export_onnx", "quantize_int8"]

log = logging.getLogger(__name__)

#: Bumped whenever the export changes the graph, so older cache entries are not reused.
EXPORT_RECIPE = "optimum-feature-extraction-v1"
#: Dynamic int8, per output channel, with each FFN down-projection kept in fp32 (see README).
INT8_RECIPE = "dynamic-s8-per-channel-fp32-ffn-out-v1"

_INSTALL_HINT = (
    "install the export extra: pip install torch==2.13.0 'embed-sql[export]' "
    "(torch first and pinned, or pip pulls a multi-GB CUDA build)"
)


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        msg = f"exporting a model to ONNX needs {module!r}, which is not installed; {_INSTALL_HINT}"
        raise MissingDependencyError(msg) from exc


def export_onnx(src_dir: Path, out_dir: Path) -> Path:
    """Export the transformer in ``src_dir`` to ``out_dir/model.onnx`` and return that path.

    Parameters
    ----------
    src_dir
        A Hugging Face model directory (``config.json`` plus safetensors or bin weights).
    out_dir
        An empty directory to write into; the caller moves it into place atomically.

    Raises
    ------
    MissingDependencyError
        Without optimum-onnx or torch.
    ExportError
        When optimum cannot export this architecture.
    """
    _require("torch")
    _require("optimum.exporters.onnx")
    from optimum.exporters.onnx import main_export

    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("exporting %s to ONNX in %s", src_dir, out_dir)
    try:
        with warnings.catch_warnings():
            # the tracer's warnings are about the export, not about the user's data
            warnings.simplefilter("ignore")
            main_export(
                str(src_dir),
                output=str(out_dir),
                task="feature-extraction",
                library_name="transformers",
                do_validation=False,
            )
    except Exception as exc:
        msg = (
            f"optimum could not export {src_dir} to ONNX: {exc}. "
            "Only encoder models that optimum supports for 'feature-extraction' can be exported; "
            "you can also pass a ready ONNX file with its tokenizer.json."
        )
        raise ExportError(msg) from exc
    onnx_path = out_dir / "model.onnx"
    if not onnx_path.is_file():
        msg = f"optimum finished without writing {onnx_path}; files: {sorted(os.listdir(out_dir))}"
        raise ExportError(msg)
    return onnx_path


def _ffn_down_projections(model: object) -> list[str]:
    """Names of the MatMuls that project the FFN back down (weight shape [inner, hidden]).

    These are the layers whose inputs (after GELU) have the widest range, where per-tensor
    activation quantisation loses most; keeping them in fp32 costs little speed.
    """
    from onnx import numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    shapes = {init.name: numpy_helper.to_array(init).shape for init in graph.initializer}
    matmuls = [(n.name, shapes.get(n.input[1])) for n in graph.node if n.op_type == "MatMul"]
    square = [s for _, s in matmuls if s is not None and len(s) == 2 and s[0] == s[1]]
    if not square:
        return []
    hidden = square[0][0]
    return [
        name
        for name, s in matmuls
        if s is not None and len(s) == 2 and s[1] == hidden and s[0] > hidden
    ]


def quantize_int8(src: Path, dst: Path) -> Path:
    """Write an int8 (dynamic, per-channel) copy of the ONNX graph ``src`` to ``dst``.

    Raises
    ------
    MissingDependencyError
        Without the ``onnx`` package.
    ExportError
        When onnxruntime's quantiser fails on this graph.
    """
    _require("onnx")
    import onnx

    from embed_sql import _native

    _native.onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = _ffn_down_projections(onnx.load(str(src)))
    log.info("quantising %s to int8, keeping %d FFN projections in fp32", src, len(keep_fp32))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the quantiser logs a generic "consider pre-processing" hint on the root logger
            logging.disable(logging.WARNING)
            quantize_dynamic(
                str(src),
                str(dst),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=keep_fp32,
            )
    except Exception as exc:
        msg = f"onnxruntime could not quantise {src} to int8: {exc}"
        raise ExportError(msg) from exc
    finally:
        logging.disable(logging.NOTSET)
    return dst
