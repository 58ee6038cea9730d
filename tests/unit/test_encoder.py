from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embed_sql import TextEncoder
from embed_sql.exceptions import InputTypeError, InvalidParameterError
from embed_sql.models.encoder import plan_batches
from embed_sql.vectors import to_numpy
from tests.tiny_model import HIDDEN

MIXED = [
    "food",
    "the burrito restaurant in the city was great food for the team",
    "",
    "rain",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3,
    "storm flood",
    "inflation",
]


def test_output_is_fixed_size_float32_list_of_model_dim(tiny_encoder: TextEncoder) -> None:
    out = tiny_encoder.encode(MIXED)
    assert out.type == pa.list_(pa.float32(), HIDDEN)
    assert len(out) == len(MIXED)
    assert tiny_encoder.dim == HIDDEN


def test_vectors_are_unit_length_when_the_spec_normalises(tiny_encoder: TextEncoder) -> None:
    mat = tiny_encoder.encode_numpy(MIXED)
    np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, rtol=1e-5)


def test_null_in_null_out_at_the_same_positions(tiny_encoder: TextEncoder) -> None:
    out = tiny_encoder.encode([None, "food", None, "rain", None])
    assert out.is_valid().to_pylist() == [False, True, False, True, False]
    only = tiny_encoder.encode(["food", "rain"])
    np.testing.assert_array_equal(to_numpy(out)[[1, 3]], to_numpy(only))


def test_all_null_and_empty_inputs(tiny_encoder: TextEncoder) -> None:
    assert tiny_encoder.encode([None, None]).null_count == 2
    assert len(tiny_encoder.encode([])) == 0
    assert len(tiny_encoder.encode(pa.array([], pa.string()))) == 0
    assert tiny_encoder.encode(pa.nulls(3)).null_count == 3


def test_empty_string_gives_a_valid_vector(tiny_encoder: TextEncoder) -> None:
    out = tiny_encoder.encode([""])
    assert out.null_count == 0
    assert np.isfinite(to_numpy(out)).all()


def test_text_past_the_token_limit_is_truncated_not_refused(tiny_encoder: TextEncoder) -> None:
    head = "food " * 40
    a, b = to_numpy(tiny_encoder.encode([head + "rain storm", head + "bank market price"]))
    np.testing.assert_array_equal(a, b)  # everything after the limit is cut away


def test_batching_and_sorting_do_not_change_vectors_or_order(tiny_source: Path) -> None:
    together = TextEncoder(tiny_source, batch_size=2, max_batch_tokens=40).encode_numpy(MIXED)
    alone = np.vstack([TextEncoder(tiny_source).encode_numpy([t]) for t in MIXED])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_single_string_and_arrow_inputs_agree(tiny_encoder: TextEncoder) -> None:
    ref = tiny_encoder.encode_numpy(MIXED)
    np.testing.assert_array_equal(tiny_encoder.encode_numpy("food"), ref[:1])
    np.testing.assert_array_equal(to_numpy(tiny_encoder.encode(pa.array(MIXED))), ref)
    large = pa.array(MIXED, pa.large_string())
    np.testing.assert_array_equal(to_numpy(tiny_encoder.encode(large)), ref)
    view = pa.array(MIXED, pa.string_view())
    np.testing.assert_array_equal(to_numpy(tiny_encoder.encode(view)), ref)


def test_sliced_arrow_input_respects_the_offset(tiny_encoder: TextEncoder) -> None:
    ref = tiny_encoder.encode_numpy(MIXED)
    out = tiny_encoder.encode(pa.array(MIXED).slice(2, 3))
    np.testing.assert_array_equal(to_numpy(out), ref[2:5])


def test_chunked_input_keeps_its_chunking(tiny_encoder: TextEncoder) -> None:
    chunked = pa.chunked_array([MIXED[:3], MIXED[3:]], pa.string())
    out = tiny_encoder.encode(chunked)
    assert isinstance(out, pa.ChunkedArray)
    assert [len(c) for c in out.chunks] == [3, len(MIXED) - 3]
    np.testing.assert_array_equal(to_numpy(out), tiny_encoder.encode_numpy(MIXED))


def test_encode_batches_streams_one_array_per_batch(tiny_encoder: TextEncoder) -> None:
    stream = (MIXED[i : i + 2] for i in range(0, len(MIXED), 2))
    parts = list(tiny_encoder.encode_batches(stream))
    assert [len(p) for p in parts] == [2, 2, 2, 1]
    np.testing.assert_array_equal(
        np.vstack([to_numpy(p) for p in parts]), tiny_encoder.encode_numpy(MIXED)
    )


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1, 2], r"item 0 of type int"),
        (["ok", b"bytes"], r"item 1 of type bytes"),
        (b"raw bytes", r"cannot embed bytes"),
        (3.5, r"cannot embed float"),
        (pa.array([1, 2]), r"type int64; only string columns"),
    ],
)
def test_non_text_input_is_refused_with_what_was_given(
    tiny_encoder: TextEncoder, bad: object, match: str
) -> None:
    with pytest.raises(InputTypeError, match=match):
        tiny_encoder.encode(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"batch_size": -3}, {"threads": 0}, {"max_batch_tokens": 1.5}]
)
def test_non_positive_sizes_are_refused(tiny_source: Path, kwargs: dict[str, object]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(InvalidParameterError, match=rf"{name}=.*positive integer"):
        TextEncoder(tiny_source, **kwargs)  # type: ignore[arg-type]


def test_lone_surrogates_and_control_characters_are_embedded(tiny_encoder: TextEncoder) -> None:
    out = tiny_encoder.encode(["\ud800 food", "\x00\x1b[31m", "\u200b", "🌮🌯"])
    assert out.null_count == 0
    assert np.isfinite(to_numpy(out)).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=200)), max_size=12))
def test_any_unicode_gives_one_finite_vector_per_non_null_row(
    tiny_encoder: TextEncoder, texts: list[str | None]
) -> None:
    out = tiny_encoder.encode(texts)
    assert len(out) == len(texts)
    assert out.is_valid().to_pylist() == [t is not None for t in texts]
    valid = to_numpy(out)[[t is not None for t in texts]]
    assert np.isfinite(valid).all()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 300), max_size=200),
    st.integers(1, 50),
    st.integers(1, 5000),
)
def test_batch_plan_covers_every_row_once_within_both_limits(
    lengths: list[int], batch_size: int, budget: int
) -> None:
    arr = np.array(lengths, dtype=np.int64)
    batches = plan_batches(arr, batch_size, budget)
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert sorted(seen.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert len(b) == 1 or len(b) * arr[b].max() <= budget


def test_concurrent_callers_get_the_same_vectors(tiny_encoder: TextEncoder) -> None:
    expected = tiny_encoder.encode_numpy(MIXED * 20)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(tiny_encoder.encode_numpy(MIXED * 20))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_field_metadata_records_model_and_metric(tiny_encoder: TextEncoder) -> None:
    field = tiny_encoder.field("v")
    assert field.type == tiny_encoder.type
    assert field.metadata[b"embed_sql.model"] == tiny_encoder.name.encode()
    assert field.metadata[b"embed_sql.model_key"] == tiny_encoder.key.encode()
    assert field.metadata[b"embed_sql.metric"] == b"cos"


def test_int8_encoder_is_close_to_fp32(tiny_source: Path) -> None:
    fp32 = TextEncoder(tiny_source).encode_numpy(MIXED)
    int8 = TextEncoder(tiny_source, quantize="int8").encode_numpy(MIXED)
    assert ((fp32 * int8).sum(axis=1) > 0.9).all()


def test_progress_bar_counts_every_row_when_asked(
    tiny_encoder: TextEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = ["food"] * 20 + [None] * 5
    out = tiny_encoder.encode(pa.chunked_array([texts[:10], texts[10:]]), progress=True)
    assert len(out) == 25
    err = capsys.readouterr().err
    assert "embedding" in err
    assert "/25 [" in err  # the total is every row, NULLs included


def test_no_progress_bar_by_default_when_not_interactive(
    tiny_encoder: TextEncoder, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_encoder.encode(["food"] * 20_000)
    assert capsys.readouterr().err == ""


def test_repeated_texts_are_encoded_once_and_copied(tiny_encoder: TextEncoder) -> None:
    calls: list[int] = []
    embed = tiny_encoder._embed

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return embed(texts)

    tiny_encoder._embed = counting  # type: ignore[method-assign]
    try:
        texts = ["a cat", "", None, "a cat", "dog", "", ""] * 50
        got = tiny_encoder.encode_numpy(texts)
    finally:
        del tiny_encoder._embed
    assert calls == [3]  # "a cat", "", "dog": one encoding each
    want = tiny_encoder.encode_numpy(["a cat", "", "dog"])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[5], want[1])
    np.testing.assert_array_equal(got[4], want[2])
    assert np.isnan(got[2]).all()
