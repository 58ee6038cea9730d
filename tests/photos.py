"""The photos of ``examples/photos.py`` (one source for the examples, tests and benchmark)."""

from __future__ import annotations

from tests.examples import load_script

_module = load_script("photos.py")
photos = _module.photos
edits = _module.edits
SKIMAGE = _module.SKIMAGE

__all__ = ["SKIMAGE", "edits", "photos"]
