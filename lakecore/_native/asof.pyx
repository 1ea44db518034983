# distutils: language = c++
"""As-of matching: for each left row, the index of the right row it joins, or -1.

Rows carry a dense key code (from ``factorize``; negative means "never matches") and a time.
With n left rows, m right rows and k key codes, the join is radix-partitioned so that every
step after the first works inside the CPU caches:

1. Partition both sides by the high bits of the key code (a stable counting sort with a fan-out
   of at most a few thousand, so every write stream stays cached): O(n + m).
2. Per partition, in parallel: bucket each side by the low bits of the code (stable), sort each
   right bucket by time unless already sorted, keep one entry per run of equal times (the tie's
   winner: the run's last row for backward, its first for forward; for nearest an entry for its
   first row followed, when it differs, by one for its last), and binary-search every left row in
   its key's bucket: O(m log b + n log b) for buckets of b rows.

Ties follow pandas ``merge_asof``: of right rows with equal code and time, backward takes the one
that comes last and forward the one that comes first; nearest takes the last when it picks the
backward side (which it does on an exact match or a tie in distance) and the first when it picks
the forward side. NaN times never match, on either side (they are dropped while partitioning).

The left side is never sorted by time and results are written straight to the left row's slot,
so the output is in left order. Extra memory: 16 bytes per row of each side (a time and a row
number).
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

from lakecore._native.memory import empty

from lakecore._native._types cimport LAKECORE_HAS_OPENMP, TimedRow, sort_timed_rows, time_t

cpdef enum Direction:
    BACKWARD = 0
    FORWARD = 1
    NEAREST = 2

cdef enum Keep:
    # Which row of a run of equal right times a bucket keeps.
    KEEP_LAST = 0    # backward: ``row`` is the run's last row
    KEEP_FIRST = 1   # forward: ``row`` is the run's first row
    KEEP_BOTH = 2    # nearest: an entry for the run's first row, then one for its last

cdef enum:
    # Rows (of both sides) a partition should hold: a few hundred KiB, well inside L2.
    PARTITION_ROWS = 16384
    # Most partitions the first pass writes to at once.
    MAX_PARTITIONS = 4096
    # Between the two passes a row's number carries its low code bits below this many bits.
    LOW_BITS = 24


def has_openmp():
    """Whether the native core was compiled with OpenMP (else every kernel uses one thread)."""
    return bool(LAKECORE_HAS_OPENMP)


cdef inline bint within(time_t later, time_t earlier, time_t tolerance) noexcept nogil:
    """``later - earlier <= tolerance`` for ``later >= earlier``, without int64 overflow."""
    if time_t is int64_t:
        return <uint64_t>later - <uint64_t>earlier <= <uint64_t>tolerance
    else:
        return later == earlier or later - earlier <= tolerance


cdef inline bint backward_is_closer(time_t t, time_t before, time_t after) noexcept nogil:
    """For ``before <= t <= after``: is ``before`` at least as close to ``t`` as ``after``?"""
    if time_t is int64_t:
        return <uint64_t>t - <uint64_t>before <= <uint64_t>after - <uint64_t>t
    else:
        if t == before:
            return True
        if t == after:
            return False
        return t - before <= after - t


cdef inline int64_t lower_bound(const TimedRow[time_t] *rows, int64_t n, time_t t) noexcept nogil:
    """First position whose time is >= t (branch-free halving)."""
    cdef int64_t base = 0, half
    if n == 0:
        return 0
    while n > 1:
        half = n >> 1
        base = base + half if rows[base + half - 1].t < t else base
        n -= half
    return base + (rows[base].t < t)


cdef inline int64_t match_in_bucket(
    const TimedRow[time_t] *rows, int64_t n, time_t t, int direction, bint strict,
    bint has_tolerance, time_t tolerance,
) noexcept nogil:
    """The row matched by time ``t`` in a bucket deduplicated by ``sort_and_dedupe``, or -1.

    For backward and forward every time has one entry, its tie winner. For nearest a time has an
    entry for the first row of its run and, when that is not also the last, one for the last:
    the entry just before a time's first one is the previous time's last row (the backward
    candidate), the entry just after its last one the next time's first row (the forward
    candidate), and an exact match, which nearest counts as backward, is the last row.
    """
    cdef int64_t pos, last, before, after
    cdef bint exact
    if n == 0:
        return -1
    pos = lower_bound(rows, n, t)
    exact = pos < n and rows[pos].t == t
    last = pos
    if exact and direction == NEAREST and pos + 1 < n and rows[pos + 1].t == t:
        last = pos + 1
    if exact and not strict:
        return rows[last].row
    before = pos - 1
    after = last + 1 if exact else pos
    if direction == BACKWARD or (direction == NEAREST and after >= n):
        if before < 0 or (has_tolerance and not within(t, rows[before].t, tolerance)):
            return -1
        return rows[before].row
    if direction == FORWARD or before < 0:
        if after >= n or (has_tolerance and not within(rows[after].t, t, tolerance)):
            return -1
        return rows[after].row
    # nearest with candidates on both sides; the backward one wins a tie
    if backward_is_closer(t, rows[before].t, rows[after].t):
        if has_tolerance and not within(t, rows[before].t, tolerance):
            return -1
        return rows[before].row
    if has_tolerance and not within(rows[after].t, t, tolerance):
        return -1
    return rows[after].row


cdef inline int64_t sort_and_dedupe(TimedRow[time_t] *rows, int64_t n, int keep) noexcept nogil:
    """Sort a bucket by time and keep, of each run of equal times, with KEEP_LAST only the row
    that came last in the input (the largest row number, whatever order the sort left the run
    in), with KEEP_FIRST only the one that came first (the smallest), with KEEP_BOTH the first
    and then, if it is another row, the last. Returns the entries kept."""
    cdef int64_t r, s, w = 0, lo, hi
    cdef time_t t
    for r in range(1, n):
        if rows[r].t < rows[r - 1].t:
            sort_timed_rows(rows, rows + n)
            break
    if keep == KEEP_LAST:
        for r in range(n):
            if w > 0 and rows[w - 1].t == rows[r].t:
                if rows[r].row > rows[w - 1].row:
                    rows[w - 1].row = rows[r].row
                continue
            rows[w] = rows[r]
            w += 1
    elif keep == KEEP_FIRST:
        for r in range(n):
            if w > 0 and rows[w - 1].t == rows[r].t:
                if rows[r].row < rows[w - 1].row:
                    rows[w - 1].row = rows[r].row
                continue
            rows[w] = rows[r]
            w += 1
    else:
        r = 0
        while r < n:
            t = rows[r].t
            lo = hi = rows[r].row
            s = r + 1
            while s < n and rows[s].t == t:
                lo = min(lo, rows[s].row)
                hi = max(hi, rows[s].row)
                s += 1
            # w <= r, and a second entry only for runs of two rows or more: w + 1 < s
            rows[w].t = t
            rows[w].row = lo
            w += 1
            if hi != lo:
                rows[w].t = t
                rows[w].row = hi
                w += 1
            r = s
    return w


cdef void bucket_by_low_code(
    const TimedRow[time_t] *rows, int64_t n, int64_t n_low,
    TimedRow[time_t] *out, int64_t *starts, int64_t *fill,
) noexcept nogil:
    """Stable counting sort of one partition's rows by the low code bits packed into their row
    numbers; the output rows carry plain row numbers."""
    cdef int64_t i, p, low, mask = (<int64_t>1 << LOW_BITS) - 1
    memset(starts, 0, (n_low + 1) * sizeof(int64_t))
    for i in range(n):
        starts[(rows[i].row & mask) + 1] += 1
    for i in range(n_low):
        starts[i + 1] += starts[i]
        fill[i] = starts[i]
    for i in range(n):
        low = rows[i].row & mask
        p = fill[low]
        fill[low] = p + 1
        out[p].t = rows[i].t
        out[p].row = rows[i].row >> LOW_BITS


cdef int join_partition(
    const TimedRow[time_t] *right, int64_t n_right,
    const TimedRow[time_t] *left, int64_t n_left,
    int64_t n_low, int64_t *matched,
    int direction, bint strict, bint has_tolerance, time_t tolerance,
) noexcept nogil:
    """Match every left row of one partition; returns -1 when out of memory."""
    cdef int64_t b, j, n_bucket
    cdef int keep = KEEP_LAST if direction == BACKWARD else (
        KEEP_FIRST if direction == FORWARD else KEEP_BOTH)
    cdef TimedRow[time_t] *rbuckets
    cdef TimedRow[time_t] *lbuckets
    cdef int64_t *bounds
    cdef int64_t *rstarts
    cdef int64_t *lstarts
    cdef int64_t *rends
    cdef int64_t *fill
    if n_left == 0:
        return 0
    rbuckets = <TimedRow[time_t] *> malloc((n_right + n_left + 1) * sizeof(TimedRow[time_t]))
    bounds = <int64_t *> malloc((4 * n_low + 2) * sizeof(int64_t))
    if rbuckets == NULL or bounds == NULL:
        free(rbuckets)
        free(bounds)
        return -1
    lbuckets = rbuckets + n_right
    rstarts = bounds
    lstarts = bounds + n_low + 1
    rends = bounds + 2 * n_low + 2
    fill = bounds + 3 * n_low + 2

    bucket_by_low_code(right, n_right, n_low, rbuckets, rstarts, fill)
    for b in range(n_low):
        rends[b] = rstarts[b] + sort_and_dedupe(
            rbuckets + rstarts[b], rstarts[b + 1] - rstarts[b], keep)
    bucket_by_low_code(left, n_left, n_low, lbuckets, lstarts, fill)
    for b in range(n_low):
        n_bucket = rends[b] - rstarts[b]
        for j in range(lstarts[b], lstarts[b + 1]):
            matched[lbuckets[j].row] = match_in_bucket(
                rbuckets + rstarts[b], n_bucket, lbuckets[j].t, direction, strict,
                has_tolerance, tolerance)
    free(rbuckets)
    free(bounds)
    return 0


cdef int64_t partition_by_high_code(
    const int64_t[::1] codes, const time_t[::1] times, int64_t n_codes, int shift,
    int64_t n_parts, TimedRow[time_t] *out, int64_t *part_starts,
    int64_t *matched, int num_threads,
) noexcept nogil:
    """Stable scatter of rows with a valid code (and a time that is not NaN) into partitions
    ``code >> shift``.

    Each thread counts and scatters one contiguous slice of rows; slices are laid out in order
    inside every partition, so the result is the same for any thread count. Rows with an invalid
    code or a NaN time get ``matched[row] = -1`` when ``matched`` is given. Returns the rows kept.
    """
    cdef int64_t n = codes.shape[0]
    cdef int64_t low_mask = (<int64_t>1 << shift) - 1
    cdef int64_t *counts = <int64_t *> malloc((num_threads * n_parts + 1) * sizeof(int64_t))
    cdef int tid
    cdef int64_t i, c, p, lo, hi, total = 0, slice_len = (n + num_threads - 1) // num_threads
    if counts == NULL:
        return -1
    memset(counts, 0, num_threads * n_parts * sizeof(int64_t))
    for tid in prange(num_threads, schedule="static", chunksize=1, num_threads=num_threads,
                  use_threads_if=num_threads > 1):
        lo = tid * slice_len
        hi = min(lo + slice_len, n)
        for i in range(lo, hi):
            c = codes[i]
            if time_t is double:
                if times[i] != times[i]:  # NaN never matches
                    c = -1
            if 0 <= c < n_codes:
                counts[tid * n_parts + (c >> shift)] += 1
            elif matched != NULL:
                matched[i] = -1
    # exclusive prefix over (partition, thread) so slices stay in row order within a partition
    for p in range(n_parts):
        part_starts[p] = total
        for tid in range(num_threads):
            c = counts[tid * n_parts + p]
            counts[tid * n_parts + p] = total
            total += c
    part_starts[n_parts] = total
    for tid in prange(num_threads, schedule="static", chunksize=1, num_threads=num_threads,
                  use_threads_if=num_threads > 1):
        lo = tid * slice_len
        hi = min(lo + slice_len, n)
        for i in range(lo, hi):
            c = codes[i]
            if time_t is double:
                if times[i] != times[i]:
                    c = -1
            if 0 <= c < n_codes:
                p = counts[tid * n_parts + (c >> shift)]
                counts[tid * n_parts + (c >> shift)] = p + 1
                out[p].t = times[i]
                out[p].row = (i << LOW_BITS) | (c & low_mask)
    free(counts)
    return total


cdef int partition_shift(int64_t n_rows, int64_t n_codes, int64_t partition_rows) noexcept nogil:
    """Low code bits per partition: about ``partition_rows`` rows each, at most MAX_PARTITIONS
    partitions (more only when that would need more than LOW_BITS bits)."""
    cdef int shift = 0
    while shift < LOW_BITS and (
        (n_codes >> shift) > MAX_PARTITIONS
        or (n_rows * (<int64_t>2 << shift)) // max(n_codes, 1) <= partition_rows
    ):
        shift += 1
    return shift


def asof_indices(
    const int64_t[::1] left_codes,
    const time_t[::1] left_times,
    const int64_t[::1] right_codes,
    const time_t[::1] right_times,
    int64_t n_codes,
    int direction=BACKWARD,
    bint strict=False,
    bint has_tolerance=False,
    time_t tolerance=0,
    int num_threads=1,
    int64_t partition_rows=PARTITION_ROWS,
):
    """Index of the matching right row for every left row (-1: no match).

    Codes must lie in ``[0, n_codes)`` or be negative (never matches); NaN times never match.
    Among right rows with equal code and time, backward takes the last one and forward the first
    one; nearest takes the last one when it picks the backward side (an exact match, or a tie in
    distance) and the first one when it picks the forward side (as pandas ``merge_asof``).
    ``strict`` excludes equal times; ``tolerance`` bounds the distance, inclusive (for int64
    times it is read as an unsigned 64-bit distance: a negative value stands for itself plus
    2**64, so every distance up to 2**64 - 1 can be bounded). ``partition_rows`` only tunes
    speed (tests shrink it to exercise many partitions with little data).
    """
    cdef Py_ssize_t n_left = left_codes.shape[0], n_right = right_codes.shape[0]
    if left_times.shape[0] != n_left or right_times.shape[0] != n_right:
        raise ValueError("codes and times must have the same length on each side")
    if max(n_left, n_right) >= (<int64_t>1 << (63 - LOW_BITS)):
        raise ValueError("too many rows for one as-of join")
    if direction not in (BACKWARD, FORWARD, NEAREST):
        raise ValueError(f"unknown direction {direction}")
    num_threads = max(num_threads, 1)
    if not LAKECORE_HAS_OPENMP:
        num_threads = 1

    out = empty(n_left, np.int64)
    cdef int64_t[::1] matched = out
    cdef int64_t *matched_ptr = &matched[0] if n_left > 0 else NULL
    cdef int shift = partition_shift(n_left + n_right, n_codes, partition_rows)
    cdef int64_t n_parts = max((n_codes + (<int64_t>1 << shift) - 1) >> shift, 1)
    cdef int64_t n_low = <int64_t>1 << shift
    cdef int64_t p, status = 0
    cdef int failed = 0
    # (time, row) pairs of both sides, laid out by partition
    cdef uint8_t[::1] right_scratch = empty(n_right * sizeof(TimedRow[time_t]) + 1, np.uint8)
    cdef uint8_t[::1] left_scratch = empty(n_left * sizeof(TimedRow[time_t]) + 1, np.uint8)
    cdef TimedRow[time_t] *right_rows = <TimedRow[time_t] *> &right_scratch[0]
    cdef TimedRow[time_t] *left_rows = <TimedRow[time_t] *> &left_scratch[0]
    cdef int64_t *right_parts = <int64_t *> malloc((n_parts + 1) * sizeof(int64_t))
    cdef int64_t *left_parts = <int64_t *> malloc((n_parts + 1) * sizeof(int64_t))
    try:
        if right_parts == NULL or left_parts == NULL:
            raise MemoryError()
        with nogil:
            status = partition_by_high_code(right_codes, right_times, n_codes, shift, n_parts,
                                            right_rows, right_parts, NULL, num_threads)
            if status >= 0:
                status = partition_by_high_code(left_codes, left_times, n_codes, shift, n_parts,
                                                left_rows, left_parts, matched_ptr, num_threads)
            if status >= 0:
                for p in prange(n_parts, schedule="dynamic", chunksize=1, num_threads=num_threads,
                  use_threads_if=num_threads > 1):
                    if join_partition(
                        right_rows + right_parts[p], right_parts[p + 1] - right_parts[p],
                        left_rows + left_parts[p], left_parts[p + 1] - left_parts[p],
                        n_low, matched_ptr, direction, strict, has_tolerance, tolerance,
                    ) != 0:
                        failed = 1
        if status < 0 or failed:
            raise MemoryError()
    finally:
        free(right_parts)
        free(left_parts)
    return out
