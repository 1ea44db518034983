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


def encode_keys(RowLayout layout, list columns, Py_ssize_t n):
    """LMDB keys for ``n`` rows of the key columns. ``columns[k]``: ``(validity, data,
    offsets, offset)`` of key column k: its Arrow validity bitmap (or None), value buffer, int32
    offsets buffer (strings and binary; else None) and the array's offset. Keys must have the
    layout's key types; a null raises KeyRefused."""
    cdef Py_ssize_t nk = layout.n_keys, i, k, size, start, length
    cdef vector[const uint8_t *] data
    cdef vector[const int32_t *] offsets
    cdef vector[const uint8_t *] validity
    cdef vector[Py_ssize_t] first
    cdef const uint8_t *empty = <const uint8_t *> ""
    cdef unsigned char *p
    if len(columns) != nk:
        raise KeyRefused(KEY_COUNT, -1, -1, len(columns))
    for k in range(nk):
        validity_buffer, buffer, offsets_buffer, offset = columns[k]
        validity.push_back(address_of(validity_buffer) if validity_buffer is not None else NULL)
        data.push_back(empty if buffer is None or len(buffer) == 0 else address_of(buffer))
        if layout.key_kinds[k] == BYTES:
            offsets.push_back(<const int32_t *> address_of(offsets_buffer)
                              if offsets_buffer is not None else NULL)
        else:
            offsets.push_back(NULL)
        first.push_back(offset)
    out = [None] * n
    for i in range(n):
        size = 0
        for k in range(nk):
            if validity[k] != NULL and not is_set(validity[k], first[k] + i):
                raise KeyRefused(KEY_NULL, k, i, None)
            if layout.key_kinds[k] == BYTES:
                length = offsets[k][first[k] + i + 1] - offsets[k][first[k] + i]
                if length > MAX_KEY_BYTES:
                    raise KeyRefused(KEY_TOO_LONG, k, i, length)
                size += 2 + length
            else:
                size += 8
        if size > MAX_KEY_SIZE:
            raise KeyRefused(KEY_TOO_LONG, -1, i, size)
        key = PyBytes_FromStringAndSize(NULL, size)
        p = <unsigned char *> PyBytes_AS_STRING(key)
        for k in range(nk):
            if layout.key_kinds[k] == BYTES:
                start = offsets[k][first[k] + i]
                length = offsets[k][first[k] + i + 1] - start
                p[0] = <unsigned char>(length >> 8)
                p[1] = <unsigned char>length
                if length:
                    memcpy(p + 2, data[k] + start, length)
                p += 2 + length
            else:
                put_be64(p, (<uint64_t>key_integer(data[k], first[k] + i, layout.key_kinds[k],
                                                   layout.key_widths[k])) ^ (<uint64_t>1 << 63))
                p += 8
        out[i] = key
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
