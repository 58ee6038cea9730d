"""Real photographs for the image examples, tests and benchmark, and edited copies of them.

Sources (nothing is downloaded): scikit-learn's two sample photos and matplotlib's Grace
Hopper (installed packages), and scikit-image's sample photographs, read from its wheel that
``make data`` fetches into ``.data/`` (never installed; skipped when absent).

:func:`edits` makes the near-duplicates a photo collection really holds: a crop, a smaller
copy saved as a low-quality JPEG, a slight rotation, a heavy JPEG re-encode, a brighter
copy. Deterministic: the same bytes in every run.
"""

from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / ".data"
#: scikit-image's colour and grey photographs (not its synthetic or binary images; only one
#: of the two near-identical motorcycle stereo views).
SKIMAGE = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
)


def _site_file(module: str, *parts: str) -> bytes:
    import importlib

    base = Path(importlib.import_module(module).__file__ or "").parent
    return base.joinpath(*parts).read_bytes()


@functools.cache
def photos(*, skimage: bool = True) -> dict[str, bytes]:
    """Return every photo as ``{name: encoded file bytes}``, in a fixed order.

    ``skimage=True`` requires scikit-image's photos (``make data``); ``False`` takes them
    only when the wheel is there.
    """
    out = {
        "china.jpg": _site_file("sklearn.datasets", "images", "china.jpg"),
        "flower.jpg": _site_file("sklearn.datasets", "images", "flower.jpg"),
        "grace_hopper.jpg": _site_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
    }
    wheels = sorted(DATA.glob("scikit_image-*.whl"))
    if not wheels:
        if not skimage:
            return out
        msg = f"no scikit-image wheel in {DATA}; run `make data`"
        raise FileNotFoundError(msg)
    with zipfile.ZipFile(wheels[-1]) as z:
        for name in SKIMAGE:
            out[name] = z.read(f"skimage/data/{name}")
    return out


def edits(data: bytes) -> dict[str, bytes]:
    """Return near-duplicate copies of one photo: ``{edit name: encoded bytes}``."""
    from PIL import Image, ImageEnhance

    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size

    def jpeg(image: Image.Image, quality: int) -> bytes:
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality)
        return buf.getvalue()

    return {
        "crop": jpeg(im.crop((w // 10, h // 10, w - w // 20, h - h // 20)), 85),
        "small": jpeg(im.resize((w // 2, h // 2), Image.Resampling.LANCZOS), 40),
        "rotate": jpeg(im.rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(0, 0, 0)), 85),
        "jpeg": jpeg(im, 15),
        "bright": jpeg(ImageEnhance.Brightness(im).enhance(1.3), 85),
    }
