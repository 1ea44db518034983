# distutils: language = c++
"""The key codec: primary keys to LMDB keys (the format is in ``rowformat.pyx``), from Arrow
key columns (``encode_keys``) or one key of Python values (``encode_key``).

Keys the format cannot hold raise ``KeyRefused`` with a ``KeyStatus``; lakecore.online.codec
turns it into the user's error.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

import numpy as np

from lakecore._native.rowformat cimport (
    BOOL,
    BYTES,
    MAX_KEY_BYTES,
    MAX_KEY_SIZE,
    RowLayout,
    address_of,
    is_set,
    put_be64,
)


cpdef enum KeyStatus:
    # Why a key cannot be encoded (``KeyRefused.status``); lakecore.online.codec words it.
    KEY_COUNT = 1           # not as many key columns or values as the layout has
    KEY_NULL = 2            # a null in a key column
    KEY_TOO_LONG = 3        # a key value over MAX_KEY_BYTES, or a key over MAX_KEY_SIZE
    KEY_NOT_BYTES = 4       # a Python key value that is neither str nor bytes
    KEY_NOT_INTEGER = 5     # a Python key value that is not an integer
    KEY_OUT_OF_RANGE = 6    # a Python integer outside int64


class KeyRefused(ValueError):
    """A key the codec cannot encode: ``status`` (a ``KeyStatus``), the key ``column`` (-1:
    the whole key), the ``row`` of a batch (-1: one key) and a ``detail`` (a length or a
    type name). Kernels report; they do not word messages for users."""

    def __init__(self, int status, Py_ssize_t column, Py_ssize_t row, detail):
        super().__init__(status, column, row, detail)
        self.status, self.column, self.row, self.detail = status, column, row, detail


cdef inline int64_t key_integer(const uint8_t *data, Py_ssize_t i, int kind, int width) noexcept nogil:
    """Row i of an integer, date, timestamp or (bit-packed) boolean key column, as int64."""
    if kind == BOOL:
        return is_set(data, i)
    if width == 8:
        return (<const int64_t *> data)[i]
    if width == 4:
        return (<const int32_t *> data)[i]
    if width == 2:
        return (<const int16_t *> data)[i]
    return (<const int8_t *> data)[i]


cdef class _KeyColumns:
    """Raw pointers to the key columns' Arrow buffers (``encode_keys``' ``columns``), taken
    once before a row loop; the buffers are kept alive with them."""
    cdef vector[const uint8_t *] data
    cdef vector[const int32_t *] offsets
    cdef vector[const uint8_t *] validity
    cdef vector[Py_ssize_t] first
    cdef list keep

    def __init__(self, RowLayout layout, list columns):
        cdef const uint8_t *empty = <const uint8_t *> ""
        if len(columns) != layout.n_keys:
            raise KeyRefused(KEY_COUNT, -1, -1, len(columns))
        self.keep = list(columns)
        for k in range(layout.n_keys):
            validity_buffer, buffer, offsets_buffer, offset = columns[k]
            self.validity.push_back(address_of(validity_buffer)
                                    if validity_buffer is not None else NULL)
            self.data.push_back(empty if buffer is None or len(buffer) == 0
                                else address_of(buffer))
            if layout.key_kinds[k] == BYTES:
                self.offsets.push_back(<const int32_t *> address_of(offsets_buffer)
                                       if offsets_buffer is not None else NULL)
            else:
                self.offsets.push_back(NULL)
            self.first.push_back(offset)

    cdef Py_ssize_t size(self, RowLayout layout, Py_ssize_t i) except -1:
        """The encoded size of row i's key; KeyRefused when the format cannot hold it."""
        cdef Py_ssize_t size = 0, k, length
        for k in range(layout.n_keys):
            if self.validity[k] != NULL and not is_set(self.validity[k], self.first[k] + i):
                raise KeyRefused(KEY_NULL, k, i, None)
            if layout.key_kinds[k] == BYTES:
                length = self.offsets[k][self.first[k] + i + 1] - self.offsets[k][self.first[k] + i]
                if length > MAX_KEY_BYTES:
                    raise KeyRefused(KEY_TOO_LONG, k, i, length)
                size += 2 + length
            else:
                size += 8
        if size > MAX_KEY_SIZE:
            raise KeyRefused(KEY_TOO_LONG, -1, i, size)
        return size

    cdef void write(self, RowLayout layout, Py_ssize_t i, unsigned char *p) noexcept:
        """Encode row i's key at p (``size`` bytes)."""
        cdef Py_ssize_t k, start, length
        for k in range(layout.n_keys):
            if layout.key_kinds[k] == BYTES:
                start = self.offsets[k][self.first[k] + i]
                length = self.offsets[k][self.first[k] + i + 1] - start
                p[0] = <unsigned char>(length >> 8)
                p[1] = <unsigned char>length
                if length:
                    memcpy(p + 2, self.data[k] + start, length)
                p += 2 + length
            else:
                put_be64(p, (<uint64_t>key_integer(self.data[k], self.first[k] + i,
                                                   layout.key_kinds[k], layout.key_widths[k]))
                         ^ (<uint64_t>1 << 63))
                p += 8


def encode_keys(RowLayout layout, list columns, Py_ssize_t n):
    """LMDB keys for ``n`` rows of the key columns. ``columns[k]``: ``(validity, data,
    offsets, offset)`` of key column k: its Arrow validity bitmap (or None), value buffer, int32
    offsets buffer (strings and binary; else None) and the array's offset. Keys must have the
    layout's key types; a null raises KeyRefused."""
    cdef _KeyColumns keys = _KeyColumns(layout, columns)
    cdef Py_ssize_t i, size
    out = [None] * n
    for i in range(n):
        size = keys.size(layout, i)
        key = PyBytes_FromStringAndSize(NULL, size)
        keys.write(layout, i, <unsigned char *> PyBytes_AS_STRING(key))
        out[i] = key
    return out


def encode_keys_packed(RowLayout layout, list columns, Py_ssize_t n):
    """``encode_keys``' keys back to back in one buffer: ``(data, offsets)``, key i being
    ``data[offsets[i]:offsets[i + 1]]`` (no Python object per key). O(n)."""
    cdef _KeyColumns keys = _KeyColumns(layout, columns)
    cdef Py_ssize_t i
    offsets_array = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_array
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i] + keys.size(layout, i)
    data_array = np.empty(max(offsets[n], 1), dtype=np.uint8)
    cdef uint8_t[::1] data = data_array
    for i in range(n):
        keys.write(layout, i, &data[offsets[i]])
    return data_array, offsets_array


def split_keys(const uint8_t[::1] data, const int64_t[::1] offsets):
    """Packed keys (``encode_keys_packed``) as a list of bytes."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    if n < 0 or (n > 0 and (offsets[0] < 0 or offsets[n] > data.shape[0])):
        raise ValueError("split_keys: offsets outside the data")
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("split_keys: offsets must not decrease")
    out = [None] * n
    for i in range(n):
        out[i] = PyBytes_FromStringAndSize(<const char *> &data[0] + offsets[i] if data.shape[0]
                                           else NULL, offsets[i + 1] - offsets[i])
    return out


def encode_key(RowLayout layout, tuple values):
    """The LMDB key of one primary key given as Python values in key order: an integer (or
    anything with ``__index__``) for integer, date (days) and timestamp (us) columns, a bool
    (or 0 or 1) for boolean ones, str or bytes for the others."""
    cdef Py_ssize_t nk = layout.n_keys, k, size = 0
    cdef list parts = []
    cdef unsigned char *p
    cdef int64_t integer
    if len(values) != nk:
        raise KeyRefused(KEY_COUNT, -1, -1, len(values))
    for k in range(nk):
        v = values[k]
        if layout.key_kinds[k] == BYTES:
            if isinstance(v, str):
                v = (<str> v).encode("utf-8")
            elif not isinstance(v, bytes):
                raise KeyRefused(KEY_NOT_BYTES, k, -1, type(v).__name__)
            if len(<bytes> v) > MAX_KEY_BYTES:
                raise KeyRefused(KEY_TOO_LONG, k, -1, len(<bytes> v))
            size += 2 + len(<bytes> v)
        else:
            if isinstance(v, bool) and layout.key_kinds[k] != BOOL:
                raise KeyRefused(KEY_NOT_INTEGER, k, -1, "bool")   # as Arrow keys: no casting
            if not isinstance(v, int):
                try:
                    v = PyNumber_Index(v)           # numpy integers
                except TypeError:
                    raise KeyRefused(KEY_NOT_INTEGER, k, -1, type(v).__name__) from None
            size += 8
        parts.append(v)
    if size > MAX_KEY_SIZE:
        raise KeyRefused(KEY_TOO_LONG, -1, -1, size)
    key = PyBytes_FromStringAndSize(NULL, size)
    p = <unsigned char *> PyBytes_AS_STRING(key)
    for k in range(nk):
        v = parts[k]
        if layout.key_kinds[k] == BYTES:
            size = len(<bytes> v)
            p[0] = <unsigned char>(size >> 8)
            p[1] = <unsigned char>size
            memcpy(p + 2, PyBytes_AS_STRING(v), size)
            p += 2 + size
        else:
            try:
                integer = v
            except OverflowError:
                raise KeyRefused(KEY_OUT_OF_RANGE, k, -1, v) from None
            put_be64(p, (<uint64_t>integer) ^ (<uint64_t>1 << 63))
            p += 8
    return key
