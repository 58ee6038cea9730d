"""Images → model input: decode with Pillow, orient, crop, resize, normalise. One path.

Every image, from bytes (a BLOB / binary column), a file path (a VARCHAR / string column) or
a ``PIL.Image``, goes through :func:`prepare`:

1. open lazily; an image of more than ``MAX_PIXELS`` pixels (Pillow's own decompression
   bomb limit, 89.5 megapixels) is refused before anything is decoded;
2. a JPEG much larger than needed is decoded at 1/2, 1/4 or 1/8 scale (Pillow ``draft``,
   the decoder's own DCT scaling) so memory stays near the size the model needs; the short
   side is kept at twice the model's input or more, so what is lost is below what the
   resize would throw away anyway;
3. EXIF orientation is applied; transparency is laid on white; 16-bit and float images are
   scaled to 8 bits; every mode becomes RGB;
4. the central crop the model expects (e.g. 224 of a 256 short side) is resized in one
   bicubic step to the model's input size, then rescaled and normalised per channel, as
   the model's ``preprocessor_config.json`` (Hugging Face format) says.

An image that cannot be read (a missing file, bytes that are no image, a truncated file, a
bomb) gives ``None`` and a reason; the encoder turns those into NULL and one warning.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embed_sql.exceptions import InputTypeError, MissingDependencyError, ModelLoadError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MAX_PIXELS", "Preprocessing", "prepare"]

#: Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``), applied to every image.
MAX_PIXELS = 89_478_485
_RESAMPLE = {0: "NEAREST", 1: "LANCZOS", 2: "BILINEAR", 3: "BICUBIC", 4: "BOX", 5: "HAMMING"}


def pil() -> Any:
    """Return ``PIL.Image``, or say which extra installs it."""
    try:
        from PIL import Image, ImageFile
    except ImportError as exc:
        msg = (
            "embedding images needs Pillow; install the image extra: pip install 'embed-sql[image]'"
        )
        raise MissingDependencyError(msg) from exc
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never grey pixels
    return Image


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its pixels: read from a Hugging Face ``preprocessor_config.json``.

    ``shortest_edge`` (resize so the short side is that long, keep the aspect) or ``size``
    (resize to exactly width x height), then a central ``crop`` (width, height), then
    ``x * rescale`` and ``(x - mean) / std`` per channel.
    """

    crop: tuple[int, int]
    shortest_edge: int | None
    size: tuple[int, int] | None
    resample: int
    rescale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_file(cls, path: Path) -> Preprocessing:
        """Read ``preprocessor_config.json``; refuse one that does not say enough."""
        import json

        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_config(cfg)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            msg = f"cannot read the image preprocessing of {path}: {exc!r}"
            raise ModelLoadError(msg) from exc

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Preprocessing:
        """Build from the dict of a Hugging Face image processor config."""
        size = cfg.get("size", {}) if cfg.get("do_resize", True) else {}
        if isinstance(size, int):
            size = {"shortest_edge": size}
        crop = cfg.get("crop_size") if cfg.get("do_center_crop", False) else None
        if isinstance(crop, int):
            crop = {"height": crop, "width": crop}
        exact = (int(size["width"]), int(size["height"])) if "height" in size else None
        if crop is None and exact is None:
            msg = "the config gives neither size: {height, width} nor crop_size"
            raise KeyError(msg)
        out = (int(crop["width"]), int(crop["height"])) if crop else exact
        assert out is not None
        mean = cfg.get("image_mean", [0.0] * 3) if cfg.get("do_normalize", True) else [0.0] * 3
        std = cfg.get("image_std", [1.0] * 3) if cfg.get("do_normalize", True) else [1.0] * 3
        rescale = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1
        return cls(
            crop=out,
            shortest_edge=int(size["shortest_edge"]) if "shortest_edge" in size else None,
            size=exact,
            resample=int(cfg.get("resample", 3)),
            rescale=rescale,
            mean=(float(mean[0]), float(mean[1]), float(mean[2])),
            std=(float(std[0]), float(std[1]), float(std[2])),
        )

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """Return the region of a ``width x height`` image that becomes the model's input."""
        if self.size is not None:
            scale_x, scale_y = self.size[0] / width, self.size[1] / height
        else:
            edge = self.shortest_edge or min(self.crop)
            scale_x = scale_y = edge / min(width, height)
        w = min(width, self.crop[0] / scale_x)
        h = min(height, self.crop[1] / scale_y)
        left, top = (width - w) / 2, (height - h) / 2
        return left, top, left + w, top + h

    def to_array(self, image: Image.Image) -> np.ndarray:
        """Return the ``(3, height, width)`` float32 model input of an RGB image."""
        Image = pil()
        resample = getattr(Image.Resampling, _RESAMPLE.get(self.resample, "BICUBIC"))
        out = image.resize(self.crop, resample, box=self.box(*image.size))
        x = np.asarray(out, dtype=np.float32) * np.float32(self.rescale)
        y: np.ndarray = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(y.transpose(2, 0, 1), dtype=np.float32)


def prepare(item: object, pre: Preprocessing) -> tuple[np.ndarray | None, str]:  # noqa: PLR0911
    """Decode one image and make it the model's input; ``(None, reason)`` when it cannot."""
    Image = pil()
    if isinstance(item, Image.Image):
        return pre.to_array(_rgb(item)), ""
    if isinstance(item, bytes | bytearray | memoryview):
        source: Any = io.BytesIO(item)
    elif isinstance(item, str | os.PathLike):
        source = Path(item).expanduser()
        if not source.is_file():
            return None, f"no such file: {os.fspath(item)!r}"
    else:
        msg = f"an image must be bytes, a file path or a PIL image, got {type(item).__name__}"
        raise InputTypeError(msg)
    try:
        with Image.open(source) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                return None, f"{w}x{h} pixels is over the decompression-bomb limit {MAX_PIXELS}"
            _draft(im, pre)
            return pre.to_array(_rgb(im)), ""
    except Image.DecompressionBombError as exc:
        return None, f"decompression bomb: {exc}"
    except Image.UnidentifiedImageError:
        return None, "not an image in a format Pillow reads"
    except Exception as exc:  # every way Pillow says "not a readable image"
        return None, f"{type(exc).__name__}: {exc}"


def _draft(im: Image.Image, pre: Preprocessing) -> None:
    """Let a JPEG decoder skip detail the resize would drop (keeps 2x the input or more)."""
    if im.format != "JPEG":
        return
    w, h = im.size
    need = 2 * max(pre.crop)
    scale = need / min(w, h)
    if scale < 0.5:
        im.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))


def _rgb(im: Image.Image) -> Image.Image:
    """Orient by EXIF, lay transparency on white, bring any mode to 8-bit RGB."""
    Image = pil()
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")
