# distutils: language = c++
"""Key factorization: map the key values of two arrays (the two sides of a join) to dense int64
codes shared by both, so that equal values get equal codes. Nulls get -1, which never matches.

Integers use a direct table when the range of values is at most a few times the row count
(codes follow value order; O(n + range)); otherwise an open-addressing hash table with linear
probing (codes follow first appearance, left then right; expected O(1) per row). Byte strings
use the same hash table over a copy of each distinct key.

Codes come out as int64, or as int32 on request (``code_dtype``): callers with fewer than 2**31
rows, which can have no more codes, halve the memory of the codes (0.8 GB at 1e8 + 1e8 rows).
"""
from cython.parallel cimport prange
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcmp
from libcpp.vector cimport vector

import numpy as np

from lakecore._native.memory import empty

from lakecore._native._types cimport code_t, hash_bytes, mix64

cdef enum:
    EMPTY = -1


cdef inline bint is_valid(const uint8_t[::1] valid, Py_ssize_t i) noexcept nogil:
    return valid.shape[0] == 0 or valid[i] != 0


cdef void value_range(const int64_t[::1] values, const uint8_t[::1] valid,
                      int64_t *lo, int64_t *hi) noexcept nogil:
    """Widen ``[lo, hi]`` to cover the valid values (a branch-free loop when all are valid)."""
    cdef Py_ssize_t i
    cdef int64_t a = lo[0], b = hi[0]
    if valid.shape[0] == 0:
        for i in range(values.shape[0]):
            a = min(a, values[i])
            b = max(b, values[i])
    else:
        for i in range(values.shape[0]):
            if valid[i]:
                a = min(a, values[i])
                b = max(b, values[i])
    lo[0] = a
    hi[0] = b


def _code_arrays(Py_ssize_t nl, Py_ssize_t nr, code_dtype):
    """Uninitialized left and right code arrays of ``code_dtype`` (int32 or int64)."""
    code_dtype = np.dtype(code_dtype)
    if code_dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ValueError(f"codes are int32 or int64, not {code_dtype}")
    if code_dtype == np.dtype(np.int32) and nl + nr >= (1 << 31):
        raise ValueError("int32 codes need fewer than 2**31 rows")
    return empty(nl, code_dtype), empty(nr, code_dtype)


def factorize_int64(
    const int64_t[::1] left, const uint8_t[::1] left_valid,
    const int64_t[::1] right, const uint8_t[::1] right_valid,
    int num_threads=1, code_dtype=np.int64,
):
    """Dense codes for the int64 values of both sides: ``(left_codes, right_codes, n_codes)``.

    ``*_valid`` is a byte mask (non-zero = valid) of the side's length, or empty for "all valid".
    Codes are ``code_dtype``: int64, or int32 when the sides have fewer than 2**31 rows together.
    """
    cdef Py_ssize_t nl = left.shape[0], nr = right.shape[0]
    cdef int64_t lo = INT64_MAX, hi = INT64_MIN
    if left_valid.shape[0] not in (0, nl) or right_valid.shape[0] not in (0, nr):
        raise ValueError("validity masks must be empty or as long as their values")
    with nogil:
        value_range(left, left_valid, &lo, &hi)
        value_range(right, right_valid, &lo, &hi)
    cdef bint seen = lo <= hi
    left_codes, right_codes = _code_arrays(nl, nr, code_dtype)
    if not seen:
        left_codes.fill(-1)
        right_codes.fill(-1)
        return left_codes, right_codes, 0
    cdef uint64_t span = <uint64_t>hi - <uint64_t>lo
    cdef bint by_table = span < <uint64_t>max(2 * (nl + nr), 1 << 16)
    num_threads = max(num_threads, 1)
    if left_codes.dtype == np.int32:
        if by_table:
            n = _factorize_by_table[int32_t](left, left_valid, right, right_valid, lo, span + 1,
                                             left_codes, right_codes, num_threads)
        else:
            n = _factorize_by_hash[int32_t](left, left_valid, right, right_valid,
                                            left_codes, right_codes)
    elif by_table:
        n = _factorize_by_table[int64_t](left, left_valid, right, right_valid, lo, span + 1,
                                         left_codes, right_codes, num_threads)
    else:
        n = _factorize_by_hash[int64_t](left, left_valid, right, right_valid,
                                        left_codes, right_codes)
    return left_codes, right_codes, n


cdef void mark_present(const int64_t[::1] values, const uint8_t[::1] valid, int64_t[::1] table,
                       int64_t lo) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(values.shape[0]):
        if valid.shape[0] == 0 or valid[i]:
            table[<uint64_t>values[i] - <uint64_t>lo] = 1


cdef void map_through_table(const int64_t[::1] values, const uint8_t[::1] valid,
                            const int64_t[::1] table, int64_t lo, code_t[::1] codes,
                            int num_threads) noexcept nogil:
    cdef Py_ssize_t i
    if valid.shape[0] == 0:
        for i in prange(values.shape[0], schedule="static", num_threads=num_threads,
                  use_threads_if=num_threads > 1):
            codes[i] = <code_t>table[<uint64_t>values[i] - <uint64_t>lo]
    else:
        for i in prange(values.shape[0], schedule="static", num_threads=num_threads,
                  use_threads_if=num_threads > 1):
            codes[i] = <code_t>table[<uint64_t>values[i] - <uint64_t>lo] if valid[i] else -1


cdef int64_t _factorize_by_table(
    const int64_t[::1] left, const uint8_t[::1] left_valid,
    const int64_t[::1] right, const uint8_t[::1] right_valid,
    int64_t lo, uint64_t size, code_t[::1] left_codes, code_t[::1] right_codes,
    int num_threads,
):
    """Codes in value order through a table indexed by ``value - lo``."""
    table_arr = np.zeros(size, dtype=np.int64)
    cdef int64_t[::1] table = table_arr
    cdef Py_ssize_t i, nl = left.shape[0], nr = right.shape[0]
    cdef int64_t n = 0
    with nogil:
        mark_present(left, left_valid, table, lo)
        mark_present(right, right_valid, table, lo)
        for i in range(<Py_ssize_t>size):
            if table[i]:
                table[i] = n
                n += 1
        map_through_table(left, left_valid, table, lo, left_codes, num_threads)
        map_through_table(right, right_valid, table, lo, right_codes, num_threads)
    return n


cdef class _Int64Table:
    """Open-addressing hash table from int64 values to codes in order of first appearance."""
    cdef vector[int64_t] keys
    cdef vector[int64_t] codes
    cdef uint64_t mask
    cdef int64_t size

    def __cinit__(self, int64_t expected):
        cdef uint64_t capacity = 1024
        while capacity < <uint64_t>(2 * expected):
            capacity <<= 1
        self.keys.resize(capacity)
        self.codes.assign(capacity, EMPTY)
        self.mask = capacity - 1
        self.size = 0

    cdef void grow(self) noexcept nogil:
        cdef vector[int64_t] old_keys = self.keys
        cdef vector[int64_t] old_codes = self.codes
        cdef uint64_t capacity = 2 * (self.mask + 1), slot
        cdef size_t i
        self.keys.assign(capacity, 0)
        self.codes.assign(capacity, EMPTY)
        self.mask = capacity - 1
        for i in range(old_codes.size()):
            if old_codes[i] != EMPTY:
                slot = mix64(<uint64_t>old_keys[i]) & self.mask
                while self.codes[slot] != EMPTY:
                    slot = (slot + 1) & self.mask
                self.keys[slot] = old_keys[i]
                self.codes[slot] = old_codes[i]

    cdef int64_t code(self, int64_t value) noexcept nogil:
        cdef uint64_t slot = mix64(<uint64_t>value) & self.mask
        while self.codes[slot] != EMPTY:
            if self.keys[slot] == value:
                return self.codes[slot]
            slot = (slot + 1) & self.mask
        self.keys[slot] = value
        self.codes[slot] = self.size
        self.size += 1
        if 2 * <uint64_t>self.size > self.mask + 1:
            self.grow()
        return self.size - 1


cdef int64_t _factorize_by_hash(
    const int64_t[::1] left, const uint8_t[::1] left_valid,
    const int64_t[::1] right, const uint8_t[::1] right_valid,
    code_t[::1] left_codes, code_t[::1] right_codes,
):
    cdef Py_ssize_t i, nl = left.shape[0], nr = right.shape[0]
    cdef _Int64Table table = _Int64Table(min(nl + nr, 1 << 20))
    with nogil:
        for i in range(nl):
            left_codes[i] = <code_t>table.code(left[i]) if is_valid(left_valid, i) else -1
        for i in range(nr):
            right_codes[i] = <code_t>table.code(right[i]) if is_valid(right_valid, i) else -1
    return table.size


cdef class _BytesTable:
    """Open-addressing hash table from byte strings (copied in) to codes of first appearance."""
    cdef vector[int64_t] slots       # code per slot, EMPTY when free
    cdef vector[uint64_t] hashes     # hash per code
    cdef vector[int64_t] starts      # start of each code's bytes in data; one extra end entry
    cdef vector[uint8_t] data
    cdef uint64_t mask

    def __cinit__(self, int64_t expected):
        cdef uint64_t capacity = 1024
        while capacity < <uint64_t>(2 * expected):
            capacity <<= 1
        self.slots.assign(capacity, EMPTY)
        self.mask = capacity - 1
        self.starts.push_back(0)

    cdef void grow(self) noexcept nogil:
        cdef uint64_t capacity = 2 * (self.mask + 1), slot
        cdef size_t code
        self.slots.assign(capacity, EMPTY)
        self.mask = capacity - 1
        for code in range(self.hashes.size()):
            slot = self.hashes[code] & self.mask
            while self.slots[slot] != EMPTY:
                slot = (slot + 1) & self.mask
            self.slots[slot] = code

    cdef int64_t code(self, const uint8_t *value, int64_t length) noexcept nogil:
        cdef uint64_t h = hash_bytes(value, length)
        cdef uint64_t slot = h & self.mask
        cdef int64_t code, start
        while self.slots[slot] != EMPTY:
            code = self.slots[slot]
            start = self.starts[code]
            if (self.hashes[code] == h and self.starts[code + 1] - start == length
                    and (length == 0 or memcmp(&self.data[start], value, length) == 0)):
                return code
            slot = (slot + 1) & self.mask
        code = self.hashes.size()
        self.slots[slot] = code
        self.hashes.push_back(h)
        self.data.insert(self.data.end(), value, value + length)
        self.starts.push_back(self.data.size())
        if 2 * self.hashes.size() > self.mask + 1:
            self.grow()
        return code


cdef void _codes_of_bytes(
    _BytesTable table, const int64_t[::1] offsets, const uint8_t[::1] data,
    const uint8_t[::1] valid, code_t[::1] codes,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef const uint8_t *base = &data[0] if data.shape[0] > 0 else NULL
    for i in range(codes.shape[0]):
        if is_valid(valid, i):
            codes[i] = <code_t>table.code(base + offsets[i], offsets[i + 1] - offsets[i])
        else:
            codes[i] = -1


def factorize_bytes(
    const int64_t[::1] left_offsets, const uint8_t[::1] left_data, const uint8_t[::1] left_valid,
    const int64_t[::1] right_offsets, const uint8_t[::1] right_data, const uint8_t[::1] right_valid,
    code_dtype=np.int64,
):
    """Dense codes for the byte strings of both sides: ``(left_codes, right_codes, n_codes)``.

    Each side is given as Arrow large-binary buffers: ``offsets`` (rows + 1 entries, already
    sliced to the array), ``data``, and a byte validity mask (empty: all valid). Codes are
    ``code_dtype``, as for ``factorize_int64``.
    """
    cdef Py_ssize_t nl = left_offsets.shape[0] - 1, nr = right_offsets.shape[0] - 1
    if nl < 0 or nr < 0:
        raise ValueError("offsets need one entry more than there are rows")
    if left_valid.shape[0] not in (0, nl) or right_valid.shape[0] not in (0, nr):
        raise ValueError("validity masks must be empty or as long as their values")
    left_codes, right_codes = _code_arrays(nl, nr, code_dtype)
    cdef _BytesTable table = _BytesTable(min(nl + nr, 1 << 20))
    if left_codes.dtype == np.int32:
        _codes_of_bytes[int32_t](table, left_offsets, left_data, left_valid, left_codes)
        _codes_of_bytes[int32_t](table, right_offsets, right_data, right_valid, right_codes)
    else:
        _codes_of_bytes[int64_t](table, left_offsets, left_data, left_valid, left_codes)
        _codes_of_bytes[int64_t](table, right_offsets, right_data, right_valid, right_codes)
    return left_codes, right_codes, <int64_t>table.hashes.size()


def combine_codes(const int64_t[::1] major, const int64_t[::1] minor, int64_t n_minor):
    """Codes of column pairs: ``major * n_minor + minor``, or -1 where either is -1.

    The result is sparse; factorize it again to make it dense.
    """
    cdef Py_ssize_t i, n = major.shape[0]
    if minor.shape[0] != n:
        raise ValueError("code arrays must have the same length")
    out = empty(n, np.int64)
    cdef int64_t[::1] combined = out
    with nogil:
        for i in range(n):
            combined[i] = -1 if major[i] < 0 or minor[i] < 0 else major[i] * n_minor + minor[i]
    return out
