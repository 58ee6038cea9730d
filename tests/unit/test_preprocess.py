from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embed_sql.exceptions import DimensionMismatchError, InputTypeError, InvalidParameterError
from embed_sql.models.encoder import shared_encoder
from embed_sql.pipelines import aggregate, chunk, clean, clean_text
from embed_sql.vectors import from_numpy, to_numpy
from tests.tiny_model import MAX_TOKENS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Caf\u00e9&nbsp;<b>\ufb01ne</b></p>", "Café fine"),
        ("<script>alert(1)</script>Hi <!-- hidden --> there", "Hi there"),
        ("line\none<br>two</li><li>three", "line one two three"),
        ("tab\tand\x00nul\u200bzero-width", "tab and nul zero-width"),
        ("  \uff26\uff35\uff2c\uff2c\u3000\uff57\uff49\uff44\uff54\uff48  ", "FULL width"),
        ("a < b and c > d", "a < b and c > d"),
    ],
)
def test_clean_text_defaults(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_switches_compose() -> None:
    assert clean_text("<b>Hello</b>  World", strip_html=False) == "<b>Hello</b> World"
    assert clean_text("Hello World", lowercase=True) == "hello world"
    assert clean_text("ﬁ", normalize=None) == "ﬁ"
    assert clean_text("a \n b", collapse_whitespace=False) == "a \n b"


def test_clean_keeps_nulls_and_length() -> None:
    out = clean(pa.array(["<i>x</i>", None, ""]))
    assert out.to_pylist() == ["x", None, ""]
    with pytest.raises(InvalidParameterError, match="normal form"):
        clean(["x"], normalize="NFX")
    with pytest.raises(InputTypeError):
        clean([1, 2])  # type: ignore[list-item]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_clean_is_idempotent_and_never_fails(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


def _doc(words: int) -> str:
    return " ".join(["food", "rain", "bank", "cup"][i % 4] for i in range(words))


def test_chunks_respect_the_token_limit_and_overlap(tiny_source: Path) -> None:
    model = str(tiny_source)
    enc = shared_encoder(model)
    doc = _doc(100)
    out = chunk([doc], ["d1"], max_tokens=12, overlap=3, model=model)
    assert out.column_names == ["key", "chunk", "text", "char_start", "char_end", "tokens"]
    assert set(out.column("key").to_pylist()) == {"d1"}
    assert out.column("chunk").to_pylist() == list(range(out.num_rows))
    assert max(out.column("tokens").to_pylist()) <= 12
    texts = out.column("text").to_pylist()
    for t in texts:  # every chunk fits the model without truncation
        assert len(enc.token_offsets([t])[0]) + enc.special_tokens <= 12
    starts, ends = out.column("char_start").to_pylist(), out.column("char_end").to_pylist()
    assert starts[0] == 0
    assert ends[-1] == len(doc)  # nothing silently cut away
    assert all(s2 < e1 for e1, s2 in zip(ends, starts[1:], strict=False))  # they overlap
    assert all(doc[s:e] == t for s, e, t in zip(starts, ends, texts, strict=True))


def test_short_empty_and_null_documents(tiny_source: Path) -> None:
    out = chunk(["food", "", None], max_tokens=MAX_TOKENS, overlap=2, model=str(tiny_source))
    assert out.column("key").to_pylist() == [0, 1]
    assert out.column("text").to_pylist() == ["food", ""]


def test_chunk_arguments_are_checked(tiny_source: Path) -> None:
    model = str(tiny_source)
    with pytest.raises(InvalidParameterError, match=rf"max_tokens=999 .*limit {MAX_TOKENS}"):
        chunk(["x"], max_tokens=999, model=model)
    with pytest.raises(InvalidParameterError, match="overlap=10"):
        chunk(["x"], max_tokens=12, overlap=10, model=model)
    with pytest.raises(DimensionMismatchError, match="2 keys for 1 documents"):
        chunk(["x"], ["a", "b"], max_tokens=12, overlap=2, model=model)


def test_aggregate_is_the_renormalised_mean_per_key() -> None:
    v = np.array([[1, 0], [0, 1], [3, 4], [9, 9]], np.float32)
    arr = from_numpy(v, valid=np.array([True, True, True, False]))
    out = aggregate(pa.array(["a", "a", "b", "c"]), arr)
    assert out.column("key").to_pylist() == ["a", "b", "c"]
    got = to_numpy(out.column("v"))
    np.testing.assert_allclose(got[0], [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_allclose(got[1], [0.6, 0.8], rtol=1e-6)
    assert out.column("v").null_count == 1  # a key whose every chunk was NULL


@pytest.mark.parametrize(
    "html",
    [
        "<section>a</section><section>b</section>",
        "<article>a</article><aside>b</aside>",
        "<blockquote>a</blockquote>b",
        "<ul><li>a</li><li>b</li></ul>",
        "a<hr>b",
        "a<br/>b",
        "<dl><dt>a</dt><dd>b</dd></dl>",
        "<header>a</header><main>b</main>",
        "<figure>a<figcaption>b</figcaption></figure>",
        "<table><tr><td>a</td><td>b</td></tr></table>",
    ],
)
def test_every_block_element_is_a_word_break(html: str) -> None:
    assert clean_text(html) == "a b"
    assert clean_text("<span>a</span><b>b</b>") == "ab"  # inline elements join


def test_repair_undoes_mojibake_that_nfkc_makes_worse() -> None:
    broken = "naÃ¯ve cafÃ© â€œquotedâ€\x9d"
    assert clean_text(broken) != "naïve café “quoted”"
    assert clean_text(broken, repair=True) == "naïve café “quoted”"
    out = clean([broken, None, "fine"], repair=True)
    assert out.to_pylist() == ["naïve café “quoted”", None, "fine"]
    assert clean_text("already fine: naïve", repair=True) == "already fine: naïve"


def test_polars_clean_takes_repair() -> None:
    import polars as pl

    import embed_sql.polars  # noqa: F401 - registers the namespace

    frame = pl.DataFrame({"t": ["<p>naÃ¯ve</p><div>x</div>", None]})
    out = frame.select(pl.col("t").embed.clean(repair=True))["t"].to_list()
    assert out == ["naïve x", None]
