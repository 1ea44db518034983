# distutils: language = c++
"""Row selection by key code, for upserts and deletes: O(n + k) with k codes.

``last_occurrences`` keeps the last row of each code (within one insert the last duplicate
wins); ``isin`` marks the rows whose code also appears in another array (stored rows that an
insert replaces or a delete removes).
"""
from libc.stdint cimport int64_t, uint8_t

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
