"""Decoding and preparing images (embed_sql.models.pixels), on images made here with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from embed_sql.exceptions import InputTypeError, ModelLoadError
from embed_sql.models.image_export import PREPROCESSOR
from embed_sql.models.pixels import Preprocessing, prepare

LITE0 = Preprocessing.from_config(PREPROCESSOR)


def _png(im: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def _scene(w: int = 320, h: int = 240) -> Image.Image:
    """An asymmetric colour image: gradients and a block in one corner."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=-1).astype(np.uint8)
    a[: h // 4, : w // 4] = (250, 20, 20)
    return Image.fromarray(a, "RGB")


def test_lite0_takes_the_central_seven_eighths_in_one_resize() -> None:
    assert LITE0.crop == (224, 224)
    assert LITE0.box(400, 256) == (88.0, 16.0, 312.0, 240.0)  # 224 of a 256 short side
    x, why = prepare(_png(_scene()), LITE0)
    assert why == ""
    assert x is not None
    assert x.shape == (3, 224, 224)
    assert x.dtype == np.float32
    assert x.min() >= -1.0  # (v - 127) / 128 of 0..255
    assert x.max() <= 1.0


def test_other_processor_configs_clip_and_exact_size() -> None:
    clip = Preprocessing.from_config(
        {"size": {"shortest_edge": 224}, "crop_size": 224, "do_center_crop": True,
         "image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28]}
    )  # fmt: skip
    assert clip.box(448, 224) == (112.0, 0.0, 336.0, 224.0)
    vit = Preprocessing.from_config({"size": {"height": 64, "width": 96}, "do_center_crop": False})
    assert vit.box(300, 100) == (0.0, 0.0, 300.0, 100.0)
    x, _ = prepare(_png(_scene()), vit)
    assert x is not None
    assert x.shape == (3, 64, 96)


def test_a_processor_config_that_says_too_little_is_refused(tmp_path) -> None:
    (tmp_path / "preprocessor_config.json").write_text('{"do_center_crop": false, "size": {}}')
    with pytest.raises(ModelLoadError, match="preprocessing"):
        Preprocessing.from_file(tmp_path / "preprocessor_config.json")


def test_exif_orientation_is_applied() -> None:
    im = _scene()
    upright, _ = prepare(_png(im), LITE0)
    exif = Image.Exif()
    exif[0x0112] = 3  # stored upside down, "rotate 180 to view"
    turned, _ = prepare(_png(im.rotate(180), exif=exif), LITE0)
    assert upright is not None
    assert turned is not None
    np.testing.assert_allclose(turned, upright, atol=1e-6)


def test_transparency_lies_on_white_and_palettes_keep_it() -> None:
    rgba = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    x, _ = prepare(_png(rgba), LITE0)
    assert x is not None
    np.testing.assert_allclose(x, (255 - 127) / 128, atol=1e-6)
    pal = Image.new("P", (300, 300), 0)
    pal.putpalette([0, 0, 0] * 256)
    y, _ = prepare(_png(pal, transparency=0), LITE0)
    np.testing.assert_allclose(y, x)


def test_sixteen_bit_and_grey_images_become_the_same_rgb() -> None:
    grey = np.tile(np.arange(256, dtype=np.uint16), (256, 1))
    eight, _ = prepare(_png(Image.fromarray(grey.astype(np.uint8), "L")), LITE0)
    deep = Image.new("I;16", (256, 256))
    deep.frombytes((grey * 257).astype("<u2").tobytes(), "raw", "I;16")
    sixteen, _ = prepare(_png(deep), LITE0)
    assert eight is not None
    assert sixteen is not None
    np.testing.assert_allclose(sixteen, eight, atol=1e-6)
    np.testing.assert_array_equal(eight[0], eight[2])  # grey: three equal channels


def test_a_large_jpeg_is_decoded_reduced_to_nearly_the_same_input() -> None:
    big = _scene(3200, 2400)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=95)
    drafted, _ = prepare(buf.getvalue(), LITE0)  # decoded at 1/2 scale or less
    full, _ = prepare(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), LITE0)
    assert drafted is not None
    assert full is not None
    assert np.abs(drafted - full).mean() < 0.01  # in units of the (v - 127) / 128 scale


def _bomb() -> bytes:
    """A valid 1x1 PNG whose header claims 20000 x 20000 pixels (400 megapixels)."""
    data = bytearray(_png(Image.new("L", (1, 1))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 20000, 20000)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (b"", "not an image"),
        (b"GIF89a garbage", "not an image|Error"),
        (_png(_scene())[:400], "truncated|Error"),
        ("/no/such/file.png", "no such file"),
        (_bomb(), "decompression-bomb limit|decompression bomb"),
    ],
)
def test_unreadable_images_give_none_and_a_reason(item: object, reason: str) -> None:
    x, why = prepare(item, LITE0)
    assert x is None
    assert why
    import re

    assert re.search(reason, why), why


def test_a_value_that_is_no_image_at_all_is_a_type_error() -> None:
    with pytest.raises(InputTypeError, match="bytes, a file path or a PIL image, got int"):
        prepare(42, LITE0)
