"""The native key factorization against its pure-Python twin in tests/reference.py."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lakecore._native import factorize as kernel
from tests import reference

pytestmark = pytest.mark.native
EMPTY = np.empty(0, np.uint8)


def check_codes(left_values, right_values, left_codes, right_codes, n):
    """The kernel's codes partition the values exactly as the twin's do (the numbering may
    differ: the direct table numbers integers in value order), densely, with -1 for nulls."""
    want_left, want_right, want_n = reference.factorize(left_values, right_values)
    got = left_codes.tolist() + right_codes.tolist()
    assert n == want_n
    assert all(-1 <= c < n for c in got)
    assert reference.in_first_appearance_order(got) == want_left + want_right


def int_side(values):
    valid = np.array([v is not None for v in values], dtype=np.uint8)
    arr = np.array([0 if v is None else v for v in values], dtype=np.int64)
    arr.setflags(write=False)
    return arr, (valid if not valid.all() else EMPTY)


int64s = st.one_of(
    st.integers(-3, 3),
    st.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max),
)


@given(st.lists(st.one_of(st.none(), int64s)), st.lists(st.one_of(st.none(), int64s)),
       st.sampled_from([1, 2]))
def test_int64_codes(left, right, threads):
    lv, lm = int_side(left)
    rv, rm = int_side(right)
    lc, rc, n = kernel.factorize_int64(lv, lm, rv, rm, threads)
    check_codes(left, right, lc, rc, n)


def test_int64_table_and_hash_paths_agree_on_equality():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 1000, 50_000)            # direct table
    wide = small * 10**12                            # hash table
    for values in (small, wide):
        lc, rc, n = kernel.factorize_int64(values[:30_000], EMPTY, values[30_000:], EMPTY)
        codes = np.concatenate([lc, rc])
        assert n == len(np.unique(values))
        # same value <-> same code
        pairs = set(zip(values.tolist(), codes.tolist()))
        assert len(pairs) == n


def bytes_side(values):
    data = b"".join(v for v in values if v is not None)
    offsets = [0]
    for v in values:
        offsets.append(offsets[-1] + (len(v) if v is not None else 0))
    valid = np.array([v is not None for v in values], dtype=np.uint8)
    return (np.array(offsets, np.int64), np.frombuffer(data, np.uint8) if data else EMPTY,
            valid if not valid.all() else EMPTY)


@given(st.lists(st.one_of(st.none(), st.binary(max_size=20))),
       st.lists(st.one_of(st.none(), st.binary(max_size=20))))
def test_bytes_codes(left, right):
    lc, rc, n = kernel.factorize_bytes(*bytes_side(left), *bytes_side(right))
    check_codes(left, right, lc, rc, n)


def test_bytes_many_distinct_keys_grow_the_table():
    keys = [str(i).encode() * (i % 5 + 1) for i in range(20_000)]
    lc, rc, n = kernel.factorize_bytes(*bytes_side(keys), *bytes_side(keys[::-1]))
    assert n == len(set(keys))
    np.testing.assert_array_equal(lc, rc[::-1])


@given(st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3))))
def test_combine_codes(pairs):
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    assert kernel.combine_codes(a, b, 4).tolist() == \
        reference.combine_codes(a.tolist(), b.tolist(), 4)


@given(st.lists(st.one_of(st.none(), int64s)), st.lists(st.one_of(st.none(), int64s)),
       st.sampled_from([1, 2]))
def test_int64_codes_as_int32_are_the_same(left, right, threads):
    lv, lm = int_side(left)
    rv, rm = int_side(right)
    wide = kernel.factorize_int64(lv, lm, rv, rm, threads)
    narrow = kernel.factorize_int64(lv, lm, rv, rm, threads, np.int32)
    assert narrow[0].dtype == narrow[1].dtype == np.int32
    assert (narrow[0].tolist(), narrow[1].tolist(), narrow[2]) == \
        (wide[0].tolist(), wide[1].tolist(), wide[2])


@given(st.lists(st.one_of(st.none(), st.binary(max_size=20))),
       st.lists(st.one_of(st.none(), st.binary(max_size=20))))
def test_bytes_codes_as_int32_are_the_same(left, right):
    wide = kernel.factorize_bytes(*bytes_side(left), *bytes_side(right))
    narrow = kernel.factorize_bytes(*bytes_side(left), *bytes_side(right), np.int32)
    assert narrow[0].dtype == narrow[1].dtype == np.int32
    assert (narrow[0].tolist(), narrow[1].tolist(), narrow[2]) == \
        (wide[0].tolist(), wide[1].tolist(), wide[2])


def test_code_dtype_must_be_int32_or_int64():
    values = np.arange(3)
    with pytest.raises(ValueError, match="int32 or int64"):
        kernel.factorize_int64(values, EMPTY, values, EMPTY, 1, np.int16)
