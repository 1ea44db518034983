"""The native as-of matching kernel against the pure-Python reference."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lakecore._native import asof as kernel
from lakecore._native import validity
from tests.reference import asof_reference

pytestmark = pytest.mark.native

DIRECTIONS = {"backward": 0, "forward": 1, "nearest": 2}
INT64 = np.iinfo(np.int64)


@st.composite
def sides(draw, float_times: bool):
    n_codes = draw(st.integers(0, 6))
    code = st.integers(-1, max(n_codes - 1, -1))
    if float_times:
        time = st.one_of(
            st.integers(-5, 5).map(float),
            st.floats(allow_nan=True, allow_infinity=True),
        )
    else:
        time = st.one_of(st.integers(-5, 5), st.sampled_from([INT64.min, INT64.max, 0]))
    side = st.lists(st.tuples(code, time), max_size=25)
    return n_codes, draw(side), draw(side)


def run_kernel(n_codes, left, right, direction, tolerance, strict, threads, partition_rows, dtype,
               pass_rows, code_dtype, overwrite):
    def arrays(rows, writable=False):
        codes = np.array([c for c, _ in rows], dtype=code_dtype)
        times = np.array([t for _, t in rows], dtype=dtype)
        codes.setflags(write=writable)  # read-only inputs must work
        times.setflags(write=False)
        return codes, times

    lc, lt = arrays(left, writable=overwrite)
    rc, rt = arrays(right)
    got = kernel.asof_indices(
        lc, lt, rc, rt, n_codes, DIRECTIONS[direction], strict, tolerance is not None,
        0 if tolerance is None else tolerance, threads, partition_rows, pass_rows, overwrite,
    )
    # the left codes' array is the result when overwritten (and left alone otherwise)
    assert (got is lc) == (overwrite and len(lc) > 0)
    return got


def expected(left, right, direction, tolerance, strict):
    as_keys = lambda rows: [(c if c >= 0 else None, t) for c, t in rows]  # noqa: E731
    ref = asof_reference(as_keys(left), as_keys(right), direction, tolerance, strict)
    return [-1 if r is None else r for r in ref]


common = dict(
    direction=st.sampled_from(list(DIRECTIONS)),
    strict=st.booleans(),
    threads=st.sampled_from([1, 2]),
    partition_rows=st.sampled_from([1, 3, 16384]),
    # small passes: many passes, each scattering a few partitions
    pass_rows=st.sampled_from([1, 4, 1 << 25]),
    code_dtype=st.sampled_from([np.int64, np.int32]),
    overwrite=st.booleans(),
)


@given(data=sides(float_times=False), tolerance=st.one_of(st.none(), st.integers(0, 4),
                                                        st.just(int(INT64.max))), **common)
@example(data=(1, [(0, INT64.max)], [(0, INT64.min)]), tolerance=int(INT64.max),
         direction="backward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, 3)], [(0, 3), (0, 3), (0, 1)]), tolerance=None,
         direction="forward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
# ties: backward takes the last of equal right times, forward the first, nearest the one of
# the side it picks (an exact match is the backward one); sorted and unsorted buckets
@example(data=(1, [(0, 3), (0, 0)], [(0, 3), (0, 1), (0, 3), (0, 1)]), tolerance=None,
         direction="forward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, 3), (0, 0), (0, 2)], [(0, 1), (0, 1), (0, 3), (0, 3)]), tolerance=None,
         direction="forward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, 3), (0, 4)], [(0, 3), (0, 1), (0, 3), (0, 1)]), tolerance=None,
         direction="backward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(2, [(0, 0), (0, 1), (0, 4), (0, 8), (1, 4)],
               [(0, 5), (0, 1), (0, 9), (0, 1), (0, 5), (0, 1), (0, 9), (0, 5), (1, 5), (1, 5)]),
         tolerance=None, direction="nearest", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, 1), (0, 5)], [(0, 1), (0, 1), (0, 1), (0, 5), (0, 5), (0, 5), (0, 9)]),
         tolerance=None, direction="nearest", strict=True, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, 4)], [(0, 5), (0, 5), (0, 3), (0, 3)]), tolerance=1,
         direction="nearest", strict=False, threads=2, partition_rows=1,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
def test_int_times_match_reference(data, tolerance, direction, strict, threads, partition_rows,
                                   pass_rows, code_dtype, overwrite):
    n_codes, left, right = data
    got = run_kernel(n_codes, left, right, direction, tolerance, strict, threads, partition_rows,
                     np.int64, pass_rows, code_dtype, overwrite)
    assert got.tolist() == expected(left, right, direction, tolerance, strict)


@given(data=sides(float_times=True),
       tolerance=st.one_of(st.none(), st.floats(0, 4), st.just(float("inf"))), **common)
@example(data=(1, [(0, float("inf"))], [(0, float("inf"))]), tolerance=0.0,
         direction="nearest", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
def test_float_times_match_reference(data, tolerance, direction, strict, threads, partition_rows,
                                     pass_rows, code_dtype, overwrite):
    n_codes, left, right = data
    # The kernel receives NaN times as invalid codes (the Python layer does this).
    left = [(c if t == t else -1, t) for c, t in left]
    right = [(c if t == t else -1, t) for c, t in right]
    got = run_kernel(n_codes, left, right, direction, tolerance, strict, threads, partition_rows,
                     np.float64, pass_rows, code_dtype, overwrite)
    assert got.tolist() == expected(left, right, direction, tolerance, strict)


@given(data=sides(float_times=True),
       tolerance=st.one_of(st.none(), st.floats(0, 4), st.just(float("inf"))), **common)
@example(data=(1, [(0, float("nan")), (0, 1.0)], [(0, 2.0), (0, float("nan")), (0, 1.0)]),
         tolerance=None, direction="forward", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
@example(data=(1, [(0, float("nan"))], [(0, float("nan"))]), tolerance=float("inf"),
         direction="nearest", strict=False, threads=1, partition_rows=16384,
         pass_rows=1 << 25, code_dtype=np.int64,
         overwrite=False)
def test_nan_times_with_valid_codes_never_match(data, tolerance, direction, strict, threads,
                                                 partition_rows, pass_rows, code_dtype,
                                                 overwrite):
    """The kernel itself treats NaN times as never matching, on either side (and NaNs on the
    right do not disturb the sort of the other rows)."""
    n_codes, left, right = data
    got = run_kernel(n_codes, left, right, direction, tolerance, strict, threads, partition_rows,
                     np.float64, pass_rows, code_dtype, overwrite)
    assert got.tolist() == expected(left, right, direction, tolerance, strict)


def test_many_nan_right_times_with_valid_codes():
    rng = np.random.default_rng(9)
    n, k = 100_000, 50
    lc, rc = rng.integers(0, k, n), rng.integers(0, k, n)
    lt, rt = rng.integers(0, 1000, n) / 2, rng.integers(0, 1000, n) / 2
    nan = rng.random(n) < 0.3
    rt[nan] = np.nan
    lt[rng.random(n) < 0.1] = np.nan
    for d in DIRECTIONS.values():
        got = kernel.asof_indices(lc, lt, rc, rt, k, d)
        kept = np.flatnonzero(~nan)
        again = kernel.asof_indices(lc, lt, rc[kept], rt[kept], k, d)
        np.testing.assert_array_equal(got, np.where(again < 0, -1, kept[again]))
        assert (got[np.isnan(lt)] == -1).all()


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_large_random_same_for_every_partitioning_and_thread_count(direction):
    rng = np.random.default_rng(7)
    n, k = 200_000, 5_000
    lc, rc = rng.integers(-1, k, n), rng.integers(-1, k, n)
    lt, rt = rng.integers(0, 10_000, n), rng.integers(0, 10_000, n)
    d = DIRECTIONS[direction]
    base = kernel.asof_indices(lc, lt, rc, rt, k, d, False, True, 50, 1)
    lc32, rc32 = lc.astype(np.int32), rc.astype(np.int32)
    for threads, rows, pass_rows in [(2, 16384, 1 << 25), (1, 64, 1 << 25), (2, 1, 1 << 25),
                                     (2, 1 << 40, 1 << 25), (2, 64, 10_000), (1, 16384, 50_000),
                                     (2, 1, 50_000)]:
        again = kernel.asof_indices(lc, lt, rc, rt, k, d, False, True, 50, threads, rows,
                                    pass_rows)
        np.testing.assert_array_equal(base, again)
        again = kernel.asof_indices(lc32, lt, rc32, rt, k, d, False, True, 50, threads, rows,
                                    pass_rows)
        np.testing.assert_array_equal(base, again)
        codes = lc32.copy()
        again = kernel.asof_indices(codes, lt, rc32, rt, k, d, False, True, 50, threads, rows,
                                    pass_rows, True)
        assert again is codes
        np.testing.assert_array_equal(base, again)
    # spot-check against the reference on a sample of left rows
    sample = rng.choice(n, 200, replace=False)
    by_code = {}
    for j in range(n):
        by_code.setdefault(rc[j], []).append(j)
    for i in sample:
        if lc[i] < 0:
            assert base[i] == -1
            continue
        cand = by_code.get(lc[i], [])
        ref = expected([(0, lt[i])], [(0, rt[j]) for j in cand], direction, 50, False)[0]
        assert base[i] == (-1 if ref == -1 else cand[ref])


def test_output_is_int32_below_2_31_right_rows():
    codes, times = np.array([0, 0]), np.array([1, 2])
    assert kernel.asof_indices(codes, times, codes, times, 1).dtype == np.int32
    codes32 = codes.astype(np.int32)
    assert kernel.asof_indices(codes32, times, codes32, times, 1).tolist() == [0, 1]


def test_overwrite_needs_writable_codes():
    codes, times = np.array([0, 0]), np.array([1, 2])
    codes.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        kernel.asof_indices(codes, times, codes, times, 1, overwrite_left_codes=True)


def test_codes_beyond_n_codes_never_match():
    """Codes at or above ``n_codes`` (which the Python layer never passes) are skipped like
    negative ones, also in the last partition, whatever the code width."""
    for dtype in (np.int32, np.int64):
        lc = np.array([0, 1, 2, 3, -1], dtype)
        rc = np.array([0, 1, 2, 3, 1], dtype)
        times = np.arange(5)
        for rows in (1, 16384):
            got = kernel.asof_indices(lc, times, rc, times, 2, 0, False, False, 0, 1, rows, 1)
            assert got.tolist() == [0, 1, -1, -1, -1]


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_extreme_negative_and_large_codes_never_match_in_long_arrays(dtype):
    """Codes far outside ``[0, n_codes)`` (the smallest and largest of the type) are skipped by
    the 64-row range tests too."""
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    n, k = 1000, 7
    lc, rc = rng.integers(0, k, n).astype(dtype), rng.integers(0, k, n).astype(dtype)
    bad = [info.min, info.min + 1, -1, k, info.max]
    lc[::5] = np.resize(bad, len(lc[::5]))
    rc[::3] = np.resize(bad, len(rc[::3]))
    lt, rt = rng.integers(0, 100, n), rng.integers(0, 100, n)
    ok_l, ok_r = (lc >= 0) & (lc < k), (rc >= 0) & (rc < k)
    want = kernel.asof_indices(np.where(ok_l, lc, -1).astype(np.int64), lt,
                               np.where(ok_r, rc, -1).astype(np.int64), rt, k)
    for rows, pass_rows in [(16384, 1 << 25), (1, 100)]:
        got = kernel.asof_indices(lc, lt, rc, rt, k, 0, False, False, 0, 2, rows, pass_rows)
        np.testing.assert_array_equal(got, want)
    assert (want[~ok_l] == -1).all()


def test_empty_sides_and_no_codes():
    e = np.empty(0, np.int64)
    assert kernel.asof_indices(e, e, e, e, 0).tolist() == []
    out = kernel.asof_indices(np.array([0, -1]), np.array([1, 2]), e, e, 1)
    assert out.tolist() == [-1, -1]
    out = kernel.asof_indices(e, e, np.array([0]), np.array([1]), 1)
    assert out.tolist() == []


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError):
        kernel.asof_indices(np.array([0]), np.array([1, 2]), np.array([0]), np.array([1]), 1)


@given(st.lists(st.integers(-3, 5), max_size=40), st.sampled_from([np.int32, np.int64]),
       st.sampled_from([1, 2]))
def test_index_validity_zeroes_negatives_and_marks_them(values, dtype, threads):
    indices = np.array(values, dtype)
    bitmap, missing = validity.index_validity(indices, threads)
    assert missing == sum(v < 0 for v in values)
    assert indices.tolist() == [max(v, 0) for v in values]
    if missing == 0:
        assert bitmap is None
    else:
        bits = np.unpackbits(bitmap, bitorder="little")[:len(values)]
        assert bits.tolist() == [int(v >= 0) for v in values]
