# distutils: language = c++
"""The online store's row codec: primary keys to LMDB keys, feature rows to LMDB values, and
batches of values (zero-copy views into LMDB's map) back into Arrow column buffers.

Key: each key column in order, integers (and dates, timestamps, booleans, all widened to int64)
as 8 big-endian bytes with the sign bit flipped, so byte order is numeric order; strings and
binary as a 2-byte big-endian length and the bytes.

Value: event time (int64, us), commit version (int64), a null bitmap (bit set = null), every
fixed-width column's bytes (zeros when null), then every variable-width column as a 4-byte
length and its bytes. Encoding and decoding are one pass over the rows, O(total bytes).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libcpp.vector cimport vector

import numpy as np

cdef enum:
    HEADER = 16


cdef inline void put_be64(unsigned char *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <unsigned char>(v >> (56 - 8 * i))


def encode_keys(list int_columns, list bytes_columns, list order, Py_ssize_t n):
    """LMDB keys for ``n`` rows. ``int_columns``: int64 arrays; ``bytes_columns``:
    ``(offsets int64, data uint8)`` pairs; ``order``: for each key column, ``(is_bytes, index)``
    into those lists, in key order."""
    cdef Py_ssize_t i, j, size
    cdef const int64_t[::1] ints
    cdef const int64_t[::1] offsets
    cdef const uint8_t[::1] data
    cdef int64_t length
    cdef unsigned char *p
    out = [None] * n
    cdef list int_views = [np.ascontiguousarray(c, dtype=np.int64) for c in int_columns]
    cdef list bytes_views = [(np.ascontiguousarray(o, dtype=np.int64),
                              np.ascontiguousarray(d, dtype=np.uint8)) for o, d in bytes_columns]
    for i in range(n):
        size = 0
        for is_bytes, j in order:
            if is_bytes:
                offsets = bytes_views[j][0]
                size += 2 + offsets[i + 1] - offsets[i]
            else:
                size += 8
        key = PyBytes_FromStringAndSize(NULL, size)
        p = <unsigned char *> PyBytes_AS_STRING(key)
        for is_bytes, j in order:
            if is_bytes:
                offsets = bytes_views[j][0]
                data = bytes_views[j][1]
                length = offsets[i + 1] - offsets[i]
                p[0] = <unsigned char>(length >> 8)
                p[1] = <unsigned char>length
                if length:
                    memcpy(p + 2, &data[offsets[i]], length)
                p += 2 + length
            else:
                ints = int_views[j]
                put_be64(p, (<uint64_t>ints[i]) ^ (<uint64_t>1 << 63))
                p += 8
        out[i] = key
    return out


cdef class RowLayout:
    """Where each feature column lives in a value: fixed columns with their widths, then
    variable-width columns."""
    cdef public Py_ssize_t n_fixed, n_var, bitmap_bytes, fixed_bytes
    cdef int64_t[::1] widths
    cdef int64_t[::1] fixed_offsets

    def __init__(self, widths, Py_ssize_t n_var):
        self.n_fixed = len(widths)
        self.n_var = n_var
        self.bitmap_bytes = (self.n_fixed + n_var + 7) // 8
        self.widths = np.array(widths, dtype=np.int64).reshape(-1)
        self.fixed_offsets = np.zeros(self.n_fixed + 1, dtype=np.int64)
        cdef Py_ssize_t j
        for j in range(self.n_fixed):
            self.fixed_offsets[j + 1] = self.fixed_offsets[j] + self.widths[j]
        self.fixed_bytes = self.fixed_offsets[self.n_fixed]


cdef class _Columns:
    """Raw pointers to a list of numpy arrays, taken once before a row loop (acquiring a
    buffer per row and column would dominate the loop)."""
    cdef vector[const uint8_t *] ptrs
    cdef vector[Py_ssize_t] lengths
    cdef list keep

    def __init__(self, list arrays):
        cdef const uint8_t[::1] view
        self.keep = []
        for a in arrays:
            arr = np.ascontiguousarray(a).view(np.uint8).reshape(-1)
            self.keep.append(arr)
            view = arr
            self.ptrs.push_back(&view[0] if view.shape[0] else NULL)
            self.lengths.push_back(view.shape[0])


def encode_values(RowLayout layout, const int64_t[::1] times, int64_t version,
                  list fixed_values, list fixed_valid, list var_offsets, list var_data,
                  list var_valid):
    """One value per row. ``fixed_values[j]``: the column's bytes (uint8, rows * width);
    ``*_valid[j]``: a byte mask (1 = valid) or an empty array; ``var_offsets[j]`` /
    ``var_data[j]``: large-binary buffers of variable-width column j."""
    cdef Py_ssize_t n = times.shape[0], i, j, size, nf = layout.n_fixed, nv = layout.n_var
    cdef Py_ssize_t base = HEADER + layout.bitmap_bytes
    cdef _Columns fv = _Columns(fixed_values), fval = _Columns(fixed_valid)
    cdef _Columns vo = _Columns(var_offsets), vd = _Columns(var_data), vval = _Columns(var_valid)
    cdef const int64_t *offsets
    cdef int64_t width, length
    cdef unsigned char *p
    cdef unsigned char *q
    out = [None] * n
    for i in range(n):
        size = base + layout.fixed_bytes
        for j in range(nv):
            if vval.lengths[j] == 0 or vval.ptrs[j][i]:
                offsets = <const int64_t *> vo.ptrs[j]
                size += offsets[i + 1] - offsets[i]
            size += 4
        value = PyBytes_FromStringAndSize(NULL, size)
        p = <unsigned char *> PyBytes_AS_STRING(value)
        memcpy(p, &times[i], 8)
        memcpy(p + 8, &version, 8)
        memset(p + HEADER, 0, layout.bitmap_bytes)
        q = p + base
        for j in range(nf):
            width = layout.widths[j]
            if fval.lengths[j] == 0 or fval.ptrs[j][i]:
                memcpy(q, fv.ptrs[j] + i * width, width)
            else:
                memset(q, 0, width)
                p[HEADER + j // 8] |= <unsigned char>(1 << (j % 8))
            q += width
        for j in range(nv):
            if vval.lengths[j] == 0 or vval.ptrs[j][i]:
                offsets = <const int64_t *> vo.ptrs[j]
                length = offsets[i + 1] - offsets[i]
                memcpy(q, &length, 4)
                if length:
                    memcpy(q + 4, vd.ptrs[j] + offsets[i], length)
                q += 4 + length
            else:
                memset(q, 0, 4)
                p[HEADER + (nf + j) // 8] |= <unsigned char>(1 << ((nf + j) % 8))
                q += 4
        out[i] = value
    return out


def decode_values(RowLayout layout, list values):
    """Decode LMDB values (buffers, or None for a missing key) into column buffers:
    ``(found, times, versions, valid, fixed, var_offsets, var_data)`` where ``valid`` is a
    (columns, rows) byte matrix, ``fixed[j]`` the uint8 bytes of fixed column j, and the var
    lists large-binary buffers."""
    cdef Py_ssize_t n = len(values), i, j, nf = layout.n_fixed, nv = layout.n_var
    cdef Py_ssize_t base = HEADER + layout.bitmap_bytes
    found_arr = np.zeros(n, dtype=np.uint8)
    times_arr = np.zeros(n, dtype=np.int64)
    versions_arr = np.zeros(n, dtype=np.int64)
    valid_arr = np.zeros((nf + nv, n), dtype=np.uint8)
    cdef uint8_t[::1] found = found_arr
    cdef int64_t[::1] times = times_arr
    cdef int64_t[::1] versions = versions_arr
    cdef uint8_t[:, ::1] valid = valid_arr
    fixed_out = [np.zeros(n * layout.widths[j], dtype=np.uint8) for j in range(nf)]
    offsets_out = [np.zeros(n + 1, dtype=np.int64) for j in range(nv)]
    cdef _Columns fixed_ptrs = _Columns(fixed_out), offset_ptrs = _Columns(offsets_out)
    cdef uint8_t *fo
    cdef int64_t *oo
    cdef Py_buffer view
    cdef const unsigned char *p
    cdef const unsigned char *q
    cdef uint32_t length
    cdef int64_t width
    cdef list var_lengths_total = [0] * nv
    cdef list rows = [None] * n
    # pass 1: fixed columns, validity, var lengths
    for i in range(n):
        v = values[i]
        if v is None:
            for j in range(nv):
                oo = <int64_t *> offset_ptrs.ptrs[j]
                oo[i + 1] = oo[i]
            continue
        PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
        try:
            p = <const unsigned char *> view.buf
            found[i] = 1
            memcpy(&times[i], p, 8)
            memcpy(&versions[i], p + 8, 8)
            for j in range(nf + nv):
                valid[j, i] = 0 if (p[HEADER + j // 8] >> (j % 8)) & 1 else 1
            q = p + base
            for j in range(nf):
                width = layout.widths[j]
                fo = <uint8_t *> fixed_ptrs.ptrs[j]
                memcpy(fo + i * width, q, width)
                q += width
            for j in range(nv):
                memcpy(&length, q, 4)
                oo = <int64_t *> offset_ptrs.ptrs[j]
                oo[i + 1] = oo[i] + length
                q += 4 + length
        finally:
            PyBuffer_Release(&view)
    data_out = [np.empty(offsets_out[j][n], dtype=np.uint8) for j in range(nv)]
    cdef _Columns data_ptrs = _Columns(data_out)
    cdef uint8_t *do
    # pass 2: variable-width bytes
    if nv:
        for i in range(n):
            v = values[i]
            if v is None:
                continue
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            try:
                p = <const unsigned char *> view.buf
                q = p + base + layout.fixed_bytes
                for j in range(nv):
                    memcpy(&length, q, 4)
                    if length:
                        do = <uint8_t *> data_ptrs.ptrs[j]
                        oo = <int64_t *> offset_ptrs.ptrs[j]
                        memcpy(do + oo[i], q + 4, length)
                    q += 4 + length
            finally:
                PyBuffer_Release(&view)
    return found_arr, times_arr, versions_arr, valid_arr, fixed_out, offsets_out, data_out
