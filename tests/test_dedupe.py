"""The native row-selection kernels against plain Python."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecore._native import dedupe

pytestmark = pytest.mark.native
codes = st.lists(st.integers(-1, 5))


@given(codes)
def test_last_occurrences(values):
    arr = np.array(values, np.int64)
    arr.setflags(write=False)
    got = dedupe.last_occurrences(arr, 6).tolist()
    expected = [i for i, c in enumerate(values)
                if c < 0 or all(values[j] != c for j in range(i + 1, len(values)))]
    assert got == expected


@given(codes, codes)
def test_isin(values, other):
    got = dedupe.isin(np.array(values, np.int64), np.array(other, np.int64), 6).tolist()
    assert got == [c >= 0 and c in other for c in values]
