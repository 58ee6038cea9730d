from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from embed_sql.exceptions import DimensionMismatchError, InputTypeError
from embed_sql.vectors import from_numpy, to_numpy


def test_round_trip_is_zero_copy_without_nulls() -> None:
    mat = np.arange(12, dtype=np.float32).reshape(4, 3)
    arr = from_numpy(mat)
    back = to_numpy(arr)
    np.testing.assert_array_equal(back, mat)
    assert np.shares_memory(back, to_numpy(arr))


def test_slices_are_offset_safe() -> None:
    arr = from_numpy(np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(to_numpy(arr.slice(1, 2)), [[3, 4, 5], [6, 7, 8]])


def test_nulls_become_nan_rows() -> None:
    arr = from_numpy(np.ones((3, 2)), valid=np.array([True, False, True]))
    assert arr.null_count == 1
    out = to_numpy(arr)
    assert np.isnan(out[1]).all()
    assert (out[[0, 2]] == 1).all()


def test_chunked_arrays_are_combined() -> None:
    a = from_numpy(np.ones((2, 2)))
    out = to_numpy(pa.chunked_array([a, a]))
    assert out.shape == (4, 2)


def test_non_vector_types_are_refused_with_the_type() -> None:
    with pytest.raises(InputTypeError, match="got int64"):
        to_numpy(pa.array([1, 2]))
    with pytest.raises(DimensionMismatchError, match=r"shape \(3,\)"):
        from_numpy(np.ones(3))


def test_null_children_under_null_rows_are_accepted() -> None:
    values = pa.array([1.0, 2.0, None, None], pa.float32())
    arr = pa.FixedSizeListArray.from_arrays(values, 2, mask=pa.array([False, True]))
    out = to_numpy(arr)
    assert out[0].tolist() == [1.0, 2.0]
    assert np.isnan(out[1]).all()


def test_null_children_inside_valid_rows_are_refused() -> None:
    values = pa.array([1.0, None, 3.0, 4.0], pa.float32())
    arr = pa.FixedSizeListArray.from_arrays(values, 2)
    with pytest.raises(InputTypeError, match="NULL elements inside non-NULL vectors"):
        to_numpy(arr)


def test_zero_vectors_tell_no_model() -> None:
    from embed_sql.vectors import provenance

    zeros = np.zeros((2, 5), dtype=np.float32)
    provenance.record("key-zero-model", "zero-model", zeros)  # e.g. empty texts, static model
    assert provenance.identify(np.zeros((3, 5), dtype=np.float32)) == set()
    assert provenance.identify(np.zeros((1, 2), dtype=np.float32)) == set()  # any dimension
