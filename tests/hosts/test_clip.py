"""CLIP-style dual encoders: one entry, two towers, one space, in Python, SQL and Polars.

No real CLIP weights can be had offline, so a tiny random CLIP (tests/tiny_clip.py) is
built and exported here; what is checked is the plumbing: each tower equals the same model
run by transformers, the towers share a key (their vectors may meet in joins), SQL ranks
images by a text and captions by an image exactly as transformers' logits do, and the hub
path exports from a local Hugging Face cache.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from PIL import Image

import embed_sql
import embed_sql.polars
from embed_sql import ImageEncoder, ModelSpec, TextEncoder, models
from embed_sql.exceptions import InvalidParameterError, ModelNotFoundError
from tests.tiny_clip import DIM, build_tiny_clip

CAPTIONS = ["a photo of a red square", "a green circle", "blue", "a cat on a white background"]
COLOURS = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (250, 250, 250), (10, 10, 10)]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def clip(clip_dir: Path, registered: list[str]) -> str:
    spec = models.add_model(
        ModelSpec(name="tiny-clip", dim=DIM, modality="dual", path=str(clip_dir))
    )
    registered.append(spec.name)
    return spec.name


def _images() -> list[bytes]:
    out = []
    for i, colour in enumerate(COLOURS):
        im = Image.new("RGB", (48 + 8 * i, 40), colour)
        im.paste((255 - colour[0], 128, colour[2]), (4, 4, 20, 20))  # not all flat
        buf = io.BytesIO()
        im.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _reference(
    clip_dir: Path, texts: list[str], images: list[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from transformers' CLIPModel on the same tokens and pixels."""
    import torch
    from tokenizers import Tokenizer
    from transformers import CLIPModel

    from embed_sql.models.pixels import Preprocessing, prepare

    model = CLIPModel.from_pretrained(str(clip_dir)).eval()
    pre = Preprocessing.from_file(clip_dir / "preprocessor_config.json")
    pixels = torch.from_numpy(np.stack([prepare(b, pre)[0] for b in images]))
    tok = Tokenizer.from_file(str(clip_dir / "tokenizer.json"))
    with torch.no_grad():
        iv = model.get_image_features(pixel_values=pixels).numpy()
        tv = np.concatenate(
            [
                model.get_text_features(input_ids=torch.tensor([tok.encode(t).ids])).numpy()
                for t in texts
            ]
        )
    return (
        tv / np.linalg.norm(tv, axis=1, keepdims=True),
        iv / np.linalg.norm(iv, axis=1, keepdims=True),
    )


def test_each_tower_equals_transformers_and_both_share_one_key(clip: str, clip_dir: Path) -> None:
    text, image = TextEncoder(clip), ImageEncoder(clip)
    assert text.key == image.key
    assert (text.dim, image.dim) == (DIM, DIM)
    want_t, want_i = _reference(clip_dir, CAPTIONS, _images())
    np.testing.assert_allclose(text.encode_numpy(CAPTIONS), want_t, atol=1e-5)  # padded batch
    np.testing.assert_allclose(image.encode_numpy(_images()), want_i, atol=1e-5)
    assert text.encode([None, "blue"]).is_null().to_pylist() == [True, False]
    with pytest.raises(InvalidParameterError, match="no int8 variant"):
        TextEncoder(clip, quantize="int8")


def test_sql_ranks_images_by_a_text_and_captions_by_an_image(clip: str, clip_dir: Path) -> None:
    con = duckdb.connect()
    reg = embed_sql.register(con, models={"clip": clip})
    assert {"embed_clip", "embed_clip_image"} <= set(reg.functions)
    images = _images()
    con.register("files", pa.table({"id": list(range(len(images))), "img": images}))
    con.register("caps", pa.table({"id": list(range(len(CAPTIONS))), "caption": CAPTIONS}))
    con.execute("CREATE TABLE photos AS SELECT id, embed_clip_image(img) AS v FROM files")
    con.execute("CREATE TABLE captions AS SELECT id, embed_clip(caption) AS v FROM caps")
    want_t, want_i = _reference(clip_dir, CAPTIONS, images)
    for q, caption in enumerate(CAPTIONS):
        got = con.execute(
            "SELECT id FROM photos ORDER BY array_cosine_similarity(v, embed_clip(?)) DESC",
            [caption],
        ).fetchall()
        assert [i for (i,) in got] == list(np.argsort(-(want_i @ want_t[q]), kind="stable"))
    got = con.sql(
        "SELECT c.id FROM captions c, photos p WHERE p.id = 0 "
        "ORDER BY array_cosine_similarity(c.v, p.v) DESC"
    ).fetchall()
    assert [i for (i,) in got] == list(np.argsort(-(want_t @ want_i[0]), kind="stable"))
    # the towers share a key, so a join of text queries against an image index is allowed
    con.execute("SELECT embed_create_index('photo_ix', 'photos')").fetchall()
    hits = con.sql("SELECT left_key, right_key FROM embed_knn_join('captions', 'photo_ix', k := 1)")
    best = {q: int(np.argmax(want_i @ want_t[q])) for q in range(len(CAPTIONS))}
    assert dict(hits.fetchall()) == best


def test_polars_gives_the_sql_vectors(clip: str) -> None:
    con = duckdb.connect()
    embed_sql.register(con, models={"clip": clip})
    frame = pl.DataFrame({"caption": CAPTIONS, "img": _images()[: len(CAPTIONS)]})
    con.register("f", frame.to_arrow())
    sql = con.sql("SELECT embed_clip(caption) AS t, embed_clip_image(img) AS i FROM f").pl()
    out = frame.select(t=pl.col("caption").embed.text(clip), i=pl.col("img").embed.image(clip))
    for c in ("t", "i"):
        np.testing.assert_array_equal(out[c].to_numpy(), sql[c].to_numpy())


def test_the_hub_path_exports_from_the_local_hugging_face_cache(
    clip_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    registered: list[str],
    fresh_cache: Path,
) -> None:
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-clip"
    shutil.copytree(clip_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = models.add_model(
        ModelSpec(name="tiny-org/tiny-clip", dim=DIM, modality="dual", hub_id="tiny-org/tiny-clip")
    )
    registered.append(spec.name)
    image = ImageEncoder(spec.name)
    assert image.files.source == "hub"
    assert list(fresh_cache.glob("models/*/image-*/text_model.onnx"))
    again = ImageEncoder(spec.name)  # now from the cache
    assert again.files.source == "cache"
    assert again.key == image.key == TextEncoder(spec.name).key
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    other = models.add_model(
        ModelSpec(name="org/absent-clip", dim=DIM, modality="dual", hub_id="org/absent-clip")
    )
    registered.append(other.name)
    with pytest.raises(ModelNotFoundError, match="absent-clip"):
        ImageEncoder(other.name)
