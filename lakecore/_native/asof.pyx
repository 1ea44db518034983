# distutils: language = c++
"""As-of matching: for each left row, the index of the right row it joins, or -1.

Rows carry a dense key code (from ``factorize``; negative means "never matches") and a time.
With n left rows, m right rows and k key codes, the join is radix-partitioned so that every
step after the first works inside the CPU caches:

1. Count, on both sides, the rows of every partition (the high bits of the key code): O(n + m).
2. Group consecutive partitions into passes of at most ``pass_rows`` rows and 4096 partitions.
   Each pass reads every code again (64 at a time against the pass's range of codes, without a
   branch) and scatters the rows of its partitions into two buffers laid out by partition (a
   stable counting sort with at most 4096 write streams): O(n + m) per pass.
3. Per partition of the pass, in parallel: bucket the right rows by the low bits of the code
   (stable), sort each bucket by time unless already sorted, keep one entry per run of equal
   times (the tie's winner: the run's last row for backward, its first for forward; for nearest
   an entry for its first row followed, when it differs, by one for its last), and
   binary-search every left row, in row order, in its key's bucket (the partition's buckets are
   in cache): O(m log b + n log b) for buckets of b rows.

Ties follow pandas ``merge_asof``: of right rows with equal code and time, backward takes the one
that comes last and forward the one that comes first; nearest takes the last when it picks the
backward side (which it does on an exact match or a tie in distance) and the first when it picks
the forward side. NaN times never match, on either side (they are dropped while partitioning).

The left side is never sorted by time and results are written straight to the left row's slot,
so the output is in left order. Extra memory: the output (4 bytes per left row, 8 when the right
side has 2**31 rows or more; none when the left codes may be overwritten) and 16 bytes per row of
the largest pass (256 MiB by default) instead of per row of both sides. Fresh pages are the
dearest part of a big join: the operating system zeroes each one on first touch (1 to 3 s per
GB on the VM of ``benchmarks/README.md``), while reading the codes again costs about 0.05 s per
GB; so a few passes over small buffers beat one pass over buffers as big as the inputs.
"""
from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from libcpp.vector cimport vector

import numpy as np

from lakecore._native.memory import empty

from lakecore._native._types cimport (
    LAKECORE_HAS_OPENMP,
    TimedRow,
    code_t,
    codes_in_range,
    lowest_bit,
    sort_timed_rows,
    time_t,
)

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
    # Most partitions one pass writes to at once (its write streams stay cached).
    MAX_PARTITIONS = 4096
    # Between the two passes a row's number carries its low code bits below this many bits.
    LOW_BITS = 24
    # Rows (of both sides) a pass scatters at most, unless one partition holds more: 256 MiB of
    # buffers, a twelfth of what one pass over 1e8 x 1e8 rows would need. Another pass costs a
    # read of the codes (4 or 8 bytes a row), far less than the fresh pages it saves.
    PASS_ROWS = 1 << 24


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


cdef struct Output:
    void *data
    bint wide       # int64 entries, else int32
    # The left codes' own buffer: a match m is stored as -(m + 2) (-1 stays -1), negative like
    # an invalid code, so that later passes skip the row; one last loop decodes them.
    bint in_place


cdef inline void store_match(const Output *out, int64_t row, int64_t value) noexcept nogil:
    """``out[row] = value`` in the output's width and encoding."""
    if out.in_place:
        value = -value - 2
    if out.wide:
        (<int64_t *>out.data)[row] = value
    else:
        (<int32_t *>out.data)[row] = <int32_t>value


cdef struct Workspace:
    # One thread's buffers for ``join_partition``, grown as needed and kept between partitions
    # (fresh pages for every partition cost more than the work).
    void *rows          # TimedRow[time_t] entries
    int64_t capacity    # entries in rows
    int64_t *bounds     # 2 * n_low + 1 entries


cdef int join_partition(
    const TimedRow[time_t] *right, int64_t n_right,
    const TimedRow[time_t] *left, int64_t n_left,
    int64_t n_low, Workspace *work, const Output *matched,
    int direction, bint strict, bint has_tolerance, time_t tolerance,
) noexcept nogil:
    """Match every left row of one partition; returns -1 when out of memory.

    The right rows are bucketed by key and deduplicated; the left rows are then matched in the
    order they come (row order), as the partition's buckets are in cache whatever their order.
    """
    cdef int64_t b, j, low, mask = (<int64_t>1 << LOW_BITS) - 1
    cdef int keep = KEEP_LAST if direction == BACKWARD else (
        KEEP_FIRST if direction == FORWARD else KEEP_BOTH)
    cdef TimedRow[time_t] *buckets
    cdef int64_t *starts
    cdef int64_t *ends
    if n_left == 0:
        return 0
    if work.capacity < n_right + 1:
        free(work.rows)
        work.capacity = 2 * (n_right + 1)
        work.rows = malloc(work.capacity * sizeof(TimedRow[time_t]))
        if work.rows == NULL:
            work.capacity = 0
            return -1
    if work.bounds == NULL:
        work.bounds = <int64_t *> malloc((2 * n_low + 1) * sizeof(int64_t))
        if work.bounds == NULL:
            return -1
    buckets = <TimedRow[time_t] *> work.rows
    starts = work.bounds
    ends = work.bounds + n_low + 1

    bucket_by_low_code(right, n_right, n_low, buckets, starts, ends)
    for b in range(n_low):
        ends[b] = starts[b] + sort_and_dedupe(buckets + starts[b], starts[b + 1] - starts[b], keep)
    for j in range(n_left):
        low = left[j].row & mask
        store_match(matched, left[j].row >> LOW_BITS, match_in_bucket(
            buckets + starts[low], ends[low] - starts[low], left[j].t, direction, strict,
            has_tolerance, tolerance))
    return 0


cdef inline bint is_valid(code_t c, time_t t, int64_t n_codes) noexcept nogil:
    """A row can match: its code lies in ``[0, n_codes)`` and its time is not NaN."""
    if time_t is double:
        return <uint64_t>c < <uint64_t>n_codes and t == t
    else:
        return <uint64_t>c < <uint64_t>n_codes


cdef void count_slice(
    const code_t *codes, const time_t *times, int64_t lo, int64_t hi, int64_t n_codes,
    int shift, int64_t *counts, const Output *matched,
) noexcept nogil:
    """Add the valid rows ``[lo, hi)`` of each partition to ``counts``; invalid rows get
    ``matched[row] = -1`` when ``matched`` is given."""
    cdef int64_t i
    for i in range(lo, hi):
        if is_valid(codes[i], times[i], n_codes):
            counts[codes[i] >> shift] += 1
        elif matched != NULL:
            store_match(matched, i, -1)


cdef void count_partitions(
    const code_t[::1] codes, const time_t[::1] times, int64_t n_codes, int shift,
    int64_t n_parts, int64_t *counts, const Output *matched, int num_threads,
) noexcept nogil:
    """``counts[tid * n_parts + p]``: the valid rows of partition ``p`` in thread ``tid``'s slice
    of rows (the slices ``scatter_pass`` uses)."""
    cdef int64_t n = codes.shape[0], slice_len = (n + num_threads - 1) // num_threads
    cdef int tid
    if n == 0:
        return
    memset(counts, 0, num_threads * n_parts * sizeof(int64_t))
    for tid in prange(num_threads, schedule="static", chunksize=1, num_threads=num_threads,
                      use_threads_if=num_threads > 1):
        count_slice(&codes[0], &times[0], tid * slice_len, min((tid + 1) * slice_len, n),
                    n_codes, shift, counts + tid * n_parts, matched)


cdef void scatter_slice(
    const code_t *codes, const time_t *times, int64_t lo, int64_t hi, int64_t n_codes,
    int shift, int64_t first, int64_t n_pass, int64_t *offsets, TimedRow[time_t] *out,
) noexcept nogil:
    """Stable scatter of the valid rows ``[lo, hi)`` of partitions ``[first, first + n_pass)``
    into ``out`` at ``offsets[partition - first]``; a row's number carries its low code bits.

    Most rows belong to other passes: a pass's codes are one range, so 64 rows at a time are
    tested against it without a branch (four at a time for int32 codes), and only the rows kept
    are visited, lowest bit first, in order.
    """
    cdef int64_t i, j, end, p, low_mask = (<int64_t>1 << shift) - 1
    cdef int64_t first_code = first << shift
    cdef int64_t end_code = min((first + n_pass) << shift, n_codes)
    cdef uint64_t keep
    cdef int64_t q
    cdef code_t c
    i = lo
    while i < hi:
        end = min(i + 64, hi)
        keep = codes_in_range(codes + i, <int>(end - i), first_code, end_code)
        while keep != 0:
            j = i + lowest_bit(keep)
            keep &= keep - 1
            if time_t is double:
                if times[j] != times[j]:    # NaN never matches (not counted either)
                    continue
            c = codes[j]
            q = (<int64_t>c >> shift) - first
            p = offsets[q]
            offsets[q] = p + 1
            out[p].t = times[j]
            out[p].row = (j << LOW_BITS) | (<int64_t>c & low_mask)
        i = end


cdef void scatter_pass(
    const code_t[::1] codes, const time_t[::1] times, int64_t n_codes, int shift,
    int64_t first, int64_t n_pass, int64_t *offsets, TimedRow[time_t] *out, int num_threads,
) noexcept nogil:
    """Scatter the valid rows of partitions ``[first, first + n_pass)``: thread ``tid`` takes
    its slice of rows to ``offsets[tid * n_pass + q]`` onwards for partition ``first + q``."""
    cdef int64_t n = codes.shape[0], slice_len = (n + num_threads - 1) // num_threads
    cdef int tid
    if n == 0:
        return
    for tid in prange(num_threads, schedule="static", chunksize=1, num_threads=num_threads,
                      use_threads_if=num_threads > 1):
        scatter_slice(&codes[0], &times[0], tid * slice_len, min((tid + 1) * slice_len, n),
                      n_codes, shift, first, n_pass, offsets + tid * n_pass, out)


cdef void pass_offsets(
    const int64_t *counts, int64_t n_parts, int64_t first, int64_t n_pass, int num_threads,
    int64_t *starts, int64_t *offsets,
) noexcept nogil:
    """Where each partition of a pass starts in its buffer (``starts``, n_pass + 1 entries) and
    where each thread's slice of it starts (``offsets``, as ``scatter_pass`` reads them): slices
    in thread order, so every partition keeps its rows in row order."""
    cdef int64_t q, total = 0
    cdef int tid
    for q in range(n_pass):
        starts[q] = total
        for tid in range(num_threads):
            offsets[tid * n_pass + q] = total
            total += counts[tid * n_parts + first + q]
    starts[n_pass] = total


cdef int partition_shift(int64_t n_rows, int64_t n_codes, int64_t partition_rows) noexcept nogil:
    """Low code bits per partition: about ``partition_rows`` rows each (at most LOW_BITS bits)."""
    cdef int shift = 0
    while shift < LOW_BITS and (
            (n_rows * (<int64_t>2 << shift)) // max(n_codes, 1) <= partition_rows):
        shift += 1
    return shift


def asof_indices(
    const code_t[::1] left_codes,
    const time_t[::1] left_times,
    const code_t[::1] right_codes,
    const time_t[::1] right_times,
    int64_t n_codes,
    int direction=BACKWARD,
    bint strict=False,
    bint has_tolerance=False,
    time_t tolerance=0,
    int num_threads=1,
    int64_t partition_rows=PARTITION_ROWS,
    int64_t pass_rows=PASS_ROWS,
    bint overwrite_left_codes=False,
):
    """Index of the matching right row for every left row (-1: no match), as int32 when the right
    side has fewer than 2**31 rows, else int64.

    With ``overwrite_left_codes`` the left codes' array (which must be writable) is the result
    when its width can hold the right side's row numbers: no new memory for it, and the codes
    are lost. Otherwise, or when it cannot, the result is a new array.

    Codes (int32 or int64, the same on both sides) must lie in ``[0, n_codes)`` or be negative
    (never matches); NaN times never match. Among right rows with equal code and time, backward
    takes the last one and forward the first one; nearest takes the last one when it picks the
    backward side (an exact match, or a tie in distance) and the first one when it picks the
    forward side (as pandas ``merge_asof``). ``strict`` excludes equal times; ``tolerance``
    bounds the distance, inclusive (for int64 times it is read as an unsigned 64-bit distance: a
    negative value stands for itself plus 2**64, so every distance up to 2**64 - 1 can be
    bounded). ``partition_rows`` and ``pass_rows`` only tune speed and memory (tests shrink them
    to exercise many partitions and passes with little data).
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

    cdef Output output
    output.wide = n_right >= (<int64_t>1 << 31)
    output.in_place = overwrite_left_codes and n_left > 0 and (
        code_t is int64_t or not output.wide)
    if output.in_place:
        out = left_codes.base
        if not out.flags.writeable:
            raise ValueError("overwrite_left_codes needs writable left codes")
        output.wide = code_t is int64_t
        output.data = <void *>&left_codes[0]
    else:
        out = empty(n_left, np.int64 if output.wide else np.int32)
    if n_left == 0:
        return out
    cdef uint8_t[::1] out_bytes
    if not output.in_place:
        out_bytes = out.view(np.uint8)
        output.data = &out_bytes[0]
    cdef const Output *matched = &output
    cdef int shift = partition_shift(n_left + n_right, n_codes, partition_rows)
    cdef int64_t n_parts = max((n_codes + (<int64_t>1 << shift) - 1) >> shift, 1)
    cdef int64_t n_low = <int64_t>1 << shift
    cdef int64_t p, q, first, n_pass, rows, right_rows, left_rows
    cdef int64_t right_cap = 0, left_cap = 0
    cdef int failed = 0
    cdef size_t j
    # valid rows of every partition in each thread's slice, for each side
    cdef vector[int64_t] right_counts = vector[int64_t](num_threads * n_parts)
    cdef vector[int64_t] left_counts = vector[int64_t](num_threads * n_parts)
    cdef vector[int64_t] right_sizes = vector[int64_t](n_parts, 0)
    cdef vector[int64_t] left_sizes = vector[int64_t](n_parts, 0)
    # pass j takes partitions [bounds[j], bounds[j + 1])
    cdef vector[int64_t] bounds
    with nogil:
        count_partitions(right_codes, right_times, n_codes, shift, n_parts, right_counts.data(),
                         NULL, num_threads)
        count_partitions(left_codes, left_times, n_codes, shift, n_parts, left_counts.data(),
                         matched, num_threads)
    for p in range(n_parts):
        for q in range(num_threads):
            right_sizes[p] += right_counts[q * n_parts + p]
            left_sizes[p] += left_counts[q * n_parts + p]
    # a pass: at most pass_rows rows (or one partition) and MAX_PARTITIONS write streams
    p = 0
    while p < n_parts:
        bounds.push_back(p)
        rows = right_rows = left_rows = 0
        while p < n_parts and p - bounds.back() < MAX_PARTITIONS and (
                rows == 0 or rows + right_sizes[p] + left_sizes[p] <= pass_rows):
            rows += right_sizes[p] + left_sizes[p]
            right_rows += right_sizes[p]
            left_rows += left_sizes[p]
            p += 1
        right_cap = max(right_cap, right_rows)
        left_cap = max(left_cap, left_rows)
    bounds.push_back(n_parts)

    cdef uint8_t[::1] right_scratch = empty((right_cap + 1) * sizeof(TimedRow[time_t]), np.uint8)
    cdef uint8_t[::1] left_scratch = empty((left_cap + 1) * sizeof(TimedRow[time_t]), np.uint8)
    cdef TimedRow[time_t] *right_buf = <TimedRow[time_t] *> &right_scratch[0]
    cdef TimedRow[time_t] *left_buf = <TimedRow[time_t] *> &left_scratch[0]
    cdef vector[int64_t] right_starts = vector[int64_t](min(n_parts, MAX_PARTITIONS) + 1)
    cdef vector[int64_t] left_starts = vector[int64_t](min(n_parts, MAX_PARTITIONS) + 1)
    cdef vector[int64_t] offsets = vector[int64_t](num_threads * min(n_parts, MAX_PARTITIONS))
    cdef vector[Workspace] work = vector[Workspace](num_threads)
    try:
        with nogil:
            for j in range(bounds.size() - 1):
                first = bounds[j]
                n_pass = bounds[j + 1] - first
                pass_offsets(right_counts.data(), n_parts, first, n_pass, num_threads,
                             right_starts.data(), offsets.data())
                scatter_pass(right_codes, right_times, n_codes, shift, first, n_pass,
                             offsets.data(), right_buf, num_threads)
                pass_offsets(left_counts.data(), n_parts, first, n_pass, num_threads,
                             left_starts.data(), offsets.data())
                scatter_pass(left_codes, left_times, n_codes, shift, first, n_pass,
                             offsets.data(), left_buf, num_threads)
                for q in prange(n_pass, schedule="dynamic", chunksize=1, num_threads=num_threads,
                                use_threads_if=num_threads > 1):
                    if join_partition(
                        right_buf + right_starts[q], right_starts[q + 1] - right_starts[q],
                        left_buf + left_starts[q], left_starts[q + 1] - left_starts[q],
                        n_low, &work[threadid()], matched, direction, strict,
                        has_tolerance, tolerance,
                    ) != 0:
                        failed = 1
                if failed:
                    break
    finally:
        for j in range(work.size()):
            free(work[j].rows)
            free(work[j].bounds)
    if failed:
        raise MemoryError()
    if output.in_place:
        with nogil:
            decode_in_place(&output, n_left, num_threads)
    return out


cdef void decode_in_place(const Output *out, int64_t n, int num_threads) noexcept nogil:
    """Undo ``store_match``'s encoding: every entry is then a match or -1."""
    cdef int64_t i
    cdef int64_t *wide = <int64_t *>out.data
    cdef int32_t *narrow = <int32_t *>out.data
    if out.wide:
        for i in prange(n, schedule="static", num_threads=num_threads,
                        use_threads_if=num_threads > 1):
            wide[i] = -wide[i] - 2
    else:
        for i in prange(n, schedule="static", num_threads=num_threads,
                        use_threads_if=num_threads > 1):
            narrow[i] = -narrow[i] - 2
