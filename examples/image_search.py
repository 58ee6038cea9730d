"""Search photos by photo and find near-duplicates, in SQL over a folder of image files.

.venv/bin/python examples/image_search.py [FOLDER]

Without a folder, one is made: the sample photos of scikit-learn, matplotlib and (after
``make data``) scikit-image, each with five edited copies (a crop, a small low-quality JPEG,
a slight rotation, a heavy JPEG re-encode, a brighter copy), as a photo library holds them.
Every image is embedded with EfficientNet-Lite0 straight from the files (``read_blob``);
then ``embed_dedup`` groups the near-duplicates, and a photo not in the folder finds its
relatives with ``embed_knn``. Polars gives the same vectors.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from photos import edits, photos

import embed_sql
import embed_sql.polars

#: Cosine distance under which two photos count as the same picture (see the README).
THRESHOLD = 0.4


def make_album(folder: Path) -> None:
    """Write every sample photo and its edited copies into ``folder``."""
    for name, data in photos(skimage=False).items():
        (folder / name).write_bytes(data)
        for edit, copy in edits(data).items():
            (folder / f"{name.rsplit('.', 1)[0]}--{edit}.jpg").write_bytes(copy)


def _middle() -> bytes:
    """Return the central half of china.jpg as a new JPEG: a photo the folder does not hold."""
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(photos(skimage=False)["china.jpg"]))
    w, h = im.size
    buf = io.BytesIO()
    im.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def main(folder: str | None = None) -> None:
    """Embed a folder of images in SQL, group the near-duplicates, search by a photo."""
    with tempfile.TemporaryDirectory() as tmp:
        album = Path(folder) if folder else Path(tmp)
        if folder is None:
            make_album(album)
        con = duckdb.connect()
        embed_sql.register(con, image_model="efficientnet-lite0")
        con.execute(
            # the largest file first: dedup keeps the first of each group
            "CREATE TABLE photos AS SELECT parse_filename(filename) AS id, "
            "embed_image(content) AS v FROM read_blob(?) ORDER BY size DESC, filename",
            [str(album / "*")],
        )
        n = con.sql("SELECT count(*), count(v) FROM photos").fetchall()[0]
        print(f"{n[0]} files, {n[1]} embedded (1280-d), from {album}")

        groups = con.sql(
            f"SELECT representative, list(key ORDER BY key) FILTER (NOT keep) AS copies "
            f"FROM embed_dedup('photos', {THRESHOLD}) GROUP BY representative "
            "ORDER BY representative"
        ).fetchall()
        print(f"\n{len(groups)} distinct pictures (near-duplicates within {THRESHOLD}):")
        for keep, copies in groups:
            print(f"  {keep:26} {len(copies or [])} copies")
        if folder is None:  # the truth is known: report precision and recall of the pairs
            truth = {
                k: k.split("--")[0].split(".")[0] for k, _ in con.sql("FROM photos").fetchall()
            }
            found = con.sql(f"SELECT key, group_id FROM embed_dedup('photos', {THRESHOLD})")
            group = dict(found.fetchall())
            keys = sorted(group)
            same = np.array([[truth[a] == truth[b] for b in keys] for a in keys])
            pred = np.array([[group[a] == group[b] for b in keys] for a in keys])
            off = ~np.eye(len(keys), dtype=bool)
            tp = (pred & same & off).sum()
            precision, recall = tp / (pred & off).sum(), tp / (same & off).sum()
            print(f"pairs: precision {precision:.3f}, recall {recall:.3f}")

        # search by a photo that is not in the folder: the middle of one that is
        con.execute("SELECT embed_create_index('photo_ix', 'photos')").fetchall()
        con.execute("CREATE TABLE probe AS SELECT embed_image(?::BLOB) AS v", [_middle()])
        hits = con.sql(
            "SELECT h.key, round(h.distance::DOUBLE, 3) FROM probe, "
            "unnest(embed_knn(probe.v, 'photo_ix', 3)) AS t(h) ORDER BY h.rank"
        ).fetchall()
        print("\nthe closest files to the middle of china.jpg, a new file:")
        for key, distance in hits:
            print(f"  {key:26} {distance}")

        # the same encoder in Polars: a column of paths gives the SQL vectors
        paths = sorted(str(p) for p in album.iterdir())[:3]
        frame = pl.DataFrame({"path": paths}).with_columns(v=pl.col("path").embed.image())
        sql = con.sql(
            "SELECT v FROM photos WHERE id IN (SELECT parse_filename(unnest(?)))", params=[paths]
        ).fetchall()
        same_vectors = sorted(map(tuple, frame["v"].to_list())) == sorted(tuple(r[0]) for r in sql)
        print(f"\nPolars vectors equal SQL's: {same_vectors}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
