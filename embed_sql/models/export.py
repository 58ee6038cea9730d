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

__all__ = ["EXPORT_RECIPE", "INT8_RECIPE", "export_onnx", "fuse", "quantize_int8"]

log = logging.getLogger(__name__)

#: Bumped whenever the export changes the graph, so older cache entries are not reused.
#: v2: the graph is fused offline (onnxruntime's transformer optimizer) when that is exact.
EXPORT_RECIPE = "optimum-feature-extraction-v2"
#: The largest difference allowed between the fused and the plain graph's outputs.
FUSE_TOLERANCE = 1e-4
#: Dynamic int8, per output channel, with each FFN down-projection kept in fp32 (see README).
INT8_RECIPE = "dynamic-s8-per-channel-fp32-ffn-out-v2"

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
    fuse(onnx_path, src_dir / "config.json")
    return onnx_path


def fuse(onnx_path: Path, config_path: Path) -> bool:
    """Fuse a BERT-style graph in place (attention, SkipLayerNorm, BiasGelu, embeddings).

    onnxruntime's offline transformer optimizer does what its session cannot do on the fly;
    measured here, +5 % (short texts) to +13 % (long) for MiniLM. The fused graph replaces
    the plain one only if it gives the same outputs (within :data:`FUSE_TOLERANCE`) on
    sample inputs; for an architecture the optimizer does not know, the plain graph stays.
    Returns whether the graph was fused.
    """
    import json

    import numpy as np

    from embed_sql import _native

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        heads, hidden = int(config["num_attention_heads"]), int(config["hidden_size"])
        ort = _native.onnxruntime()
        from onnxruntime.transformers.optimizer import optimize_model

        logging.disable(logging.WARNING)  # the optimizer logs each fusion it tries
        fused = optimize_model(
            str(onnx_path), model_type="bert", num_heads=heads, hidden_size=hidden
        )
    except Exception as exc:  # an unknown architecture or config: keep the plain graph
        log.info("not fusing %s: %s", onnx_path, exc)
        return False
    finally:
        logging.disable(logging.NOTSET)
    candidate = onnx_path.with_name("model.fused.onnx")
    fused.save_model_to_file(str(candidate))
    plain = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    other = ort.InferenceSession(str(candidate), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    vocab = int(config.get("vocab_size", 1000))
    ids = rng.integers(5, vocab, size=(3, 17), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, as batches have
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    want, got = (
        session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0]
        for session in (plain, other)
    )
    valid = mask.astype(bool)
    error = float(np.abs(got[valid] - want[valid]).max()) if got.shape == want.shape else np.inf
    del plain, other
    if not error <= FUSE_TOLERANCE:
        log.info("not fusing %s: outputs differ by %s", onnx_path, error)
        candidate.unlink()
        return False
    os.replace(candidate, onnx_path)
    return True


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
                # the fused graph's contrib ops have no inferred output types
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    except Exception as exc:
        msg = f"onnxruntime could not quantise {src} to int8: {exc}"
        raise ExportError(msg) from exc
    finally:
        logging.disable(logging.NOTSET)
    return dst
