# distutils: language = c++
"""Row selection by key code, for upserts and deletes: O(n + k) with k codes.

``last_occurrences`` keeps the last row of each code (within one insert the last duplicate
wins); ``isin`` marks the rows whose code also appears in another array (stored rows that an
insert replaces or a delete removes). ``hash_int64_into`` and ``hash_bytes_into`` fold one key
column into running 64-bit row hashes (keys compared across more rows than fit in memory).
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t

from lakecore._native._types cimport hash_bytes, mix64

import numpy as np

from lakecore._native.memory import empty


def last_occurrences(const int64_t[::1] codes, int64_t n_codes):
    """Indices, ascending, of the rows that are the last of their code. Rows with a negative
    code are all kept."""
    cdef Py_ssize_t i, n = codes.shape[0], kept = 0
    cdef int64_t c
    last_arr = np.full(max(n_codes, 1), -1, dtype=np.int64)
    out = empty(n, np.int64)
    cdef int64_t[::1] last = last_arr
    cdef int64_t[::1] keep = out
    if n_codes < 0:
        raise ValueError("n_codes must not be negative")
    with nogil:
        for i in range(n):
            c = codes[i]
            if 0 <= c < n_codes:
                last[c] = i
        for i in range(n):
            c = codes[i]
            if c < 0 or c >= n_codes or last[c] == i:
                keep[kept] = i
                kept += 1
    return out[:kept]


def isin(const int64_t[::1] codes, const int64_t[::1] other, int64_t n_codes):
    """A boolean mask: ``codes[i]`` appears in ``other``. Negative codes never do."""
    cdef Py_ssize_t i
    cdef int64_t c
    present_arr = np.zeros(max(n_codes, 1), dtype=np.uint8)
    out = np.empty(codes.shape[0], dtype=np.bool_)
    cdef uint8_t[::1] present = present_arr
    cdef uint8_t[::1] mask = out.view(np.uint8)
    with nogil:
        for i in range(other.shape[0]):
            c = other[i]
            if 0 <= c < n_codes:
                present[c] = 1
        for i in range(codes.shape[0]):
            c = codes[i]
            mask[i] = present[c] if 0 <= c < n_codes else 0
    return out


# Folding a column into a row's running hash: the running value is mixed again first, so
# the columns' order matters and (a, b) and (b, a) differ.
cdef inline uint64_t fold(uint64_t running, uint64_t value) noexcept nogil:
    return mix64(mix64(running) ^ value)


def hash_int64_into(uint64_t[::1] hashes, const int64_t[::1] values):
    """Fold an int64 key column into ``hashes`` (one per row), in place."""
    cdef Py_ssize_t i, n = hashes.shape[0]
    if values.shape[0] != n:
        raise ValueError("values and hashes differ in length")
    with nogil:
        for i in range(n):
            hashes[i] = fold(hashes[i], mix64(<uint64_t>values[i] ^ 0x9e3779b97f4a7c15ULL))


def hash_bytes_into(uint64_t[::1] hashes, const int64_t[::1] offsets, const uint8_t[::1] data):
    """Fold a binary key column (``offsets``: n + 1 of them, into ``data``) into ``hashes``."""
    cdef Py_ssize_t i, n = hashes.shape[0]
    cdef int64_t start, end
    if offsets.shape[0] != n + 1:
        raise ValueError("offsets must hold one more entry than hashes")
    with nogil:
        for i in range(n):
            start, end = offsets[i], offsets[i + 1]
            if start < 0 or end < start or end > data.shape[0]:
                with gil:
                    raise ValueError(f"row {i}: offsets {start}..{end} outside the data")
            hashes[i] = fold(hashes[i], hash_bytes(&data[0] + start if end > start else NULL,
                                                   end - start))
