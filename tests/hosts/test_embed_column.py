"""The same contract in every host: type, NULLs, identical vectors, clear errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from embed_sql import TextEncoder
from embed_sql.exceptions import ModelNotFoundError
from embed_sql.vectors import to_numpy
from tests.hosts.conftest import Host
from tests.tiny_model import HIDDEN

TEXTS = ["food", None, "", "the burrito restaurant", "rain " * 50, "🌮 naïve", None, "cup"]


def test_column_type_is_a_float32_array_of_the_model_dim(host: Host, tiny_model: str) -> None:
    out = host.embed(TEXTS, tiny_model)
    assert out.type == pa.list_(pa.float32(), HIDDEN)
    assert len(out) == len(TEXTS)


def test_null_rows_stay_null_and_others_are_valid(host: Host, tiny_model: str) -> None:
    out = host.embed(TEXTS, tiny_model)
    assert out.is_valid().to_pylist() == [t is not None for t in TEXTS]


def test_vectors_are_bit_identical_to_the_python_encoder(
    host: Host, tiny_model: str, tiny_encoder: TextEncoder
) -> None:
    out = to_numpy(host.embed(TEXTS, tiny_model))
    ref = to_numpy(tiny_encoder.encode(TEXTS))
    valid = [t is not None for t in TEXTS]
    np.testing.assert_array_equal(out[valid], ref[valid])


def test_empty_input_gives_an_empty_column(host: Host, tiny_model: str) -> None:
    assert len(host.embed([], tiny_model)) == 0


def test_all_null_input_gives_all_null(host: Host, tiny_model: str) -> None:
    assert host.embed([None, None], tiny_model).null_count == 2


def test_unknown_model_fails_before_any_row_is_read(host: Host) -> None:
    with pytest.raises(ModelNotFoundError, match="unknown model 'no-such-model'"):
        host.embed(["x"], "no-such-model")
