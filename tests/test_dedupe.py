"""The native row-selection kernels against their pure-Python twins in tests/reference.py."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecore._native import dedupe
from tests import reference

pytestmark = pytest.mark.native
codes = st.lists(st.integers(-1, 5))


@given(codes)
def test_last_occurrences(values):
    arr = np.array(values, np.int64)
    arr.setflags(write=False)
    assert dedupe.last_occurrences(arr, 6).tolist() == reference.last_occurrences(values)


@given(codes, codes)
def test_isin(values, other):
    got = dedupe.isin(np.array(values, np.int64), np.array(other, np.int64), 6).tolist()
    assert got == reference.isin(values, other)
