# The online row format, shared by the key codec, the value codec and the Arrow batch export
# (the format itself is described in rowformat.pyx). Everything here is inline or a
# declaration, so that each codec module compiles the same byte layout.
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libcpp.vector cimport vector

cdef enum:
    MAX_KEY_BYTES = 500     # of one string or binary key value
    MAX_KEY_SIZE = 511      # of a whole encoded key (LMDB's limit)
    HEADER = 16             # a value's event time and commit version
    MAX_INT32 = 2147483647

cpdef enum Kind:
    FIXED = 0        # fixed-width bytes (integers, floats, dates, timestamps)
    BOOL = 1
    BYTES = 2        # string or binary
    LIST_FIXED = 3
    LIST_BOOL = 4
    LIST_BYTES = 5

cpdef enum Scalar:
    INTEGER = 0      # signed integers, dates (days) and timestamps (us)
    FLOAT = 1
    BOOLEAN = 2
    STRING = 3
    BINARY = 4

cpdef enum ValueStatus:
    # Why values cannot be decoded (``ValueRefused.status``); lakecore.online.codec words it.
    VALUE_TOO_LARGE = 1     # one column's bytes or elements over 2 GiB in one read
    VALUE_MALFORMED = 2     # a stored value whose lengths do not add up (damaged or forged)


cdef class RowLayout:
    cdef public Py_ssize_t n_columns, n_keys, bitmap_bytes, fixed_bytes, time_position
    cdef bint all_eight_bytes          # every column fixed-width, 8 bytes (a fast decode path)
    cdef vector[int] kinds, widths, scalars, fixed_offsets, key_kinds, key_widths


cdef inline Py_ssize_t bitmap_size(Py_ssize_t n) noexcept nogil:
    return (n + 7) >> 3


cdef inline bint is_set(const uint8_t *bits, Py_ssize_t i) noexcept nogil:
    return (bits[i >> 3] >> (i & 7)) & 1


cdef inline void set_bit(uint8_t *bits, Py_ssize_t i) noexcept nogil:
    bits[i >> 3] |= <uint8_t>(1 << (i & 7))


cdef inline void clear_bit(uint8_t *bits, Py_ssize_t i) noexcept nogil:
    bits[i >> 3] &= <uint8_t>~(1 << (i & 7))


cdef inline uint32_t load_u32(const uint8_t *p) noexcept nogil:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef inline void store_u32(uint8_t *p, uint32_t v) noexcept nogil:
    memcpy(p, &v, 4)


cdef inline void put_be64(unsigned char *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <unsigned char>(v >> (56 - 8 * i))


cdef inline uint64_t get_be64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v = (v << 8) | p[i]
    return v


cdef inline const uint8_t *next_key_part(const uint8_t *p, int kind) noexcept nogil:
    """The key part after the one at p: 2-byte length and bytes, or 8 bytes."""
    return p + 2 + ((p[0] << 8) | p[1]) if kind == BYTES else p + 8


cdef inline const uint8_t *address_of(buffer) except? NULL:
    """The start of an object's memory (the caller keeps the object alive)."""
    cdef Py_buffer view
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
    cdef const uint8_t *p = <const uint8_t *> view.buf
    PyBuffer_Release(&view)
    return p


cdef inline Py_ssize_t malformed_column(RowLayout layout, const uint8_t *row,
                                        Py_ssize_t size) noexcept nogil:
    """-1 when every length in a stored value fits the layout and the value's ``size``
    exactly; else the feature column whose bytes do not (``n_columns``: the header or fixed
    part, or bytes left over). Decoders call it before they follow any length."""
    cdef Py_ssize_t pos = HEADER + layout.bitmap_bytes + layout.fixed_bytes, c, need, e
    cdef Py_ssize_t count, elements
    cdef uint32_t length
    cdef int kind
    if size < pos:
        return layout.n_columns
    for c in range(layout.n_columns):
        kind = layout.kinds[c]
        if kind < BYTES:
            continue
        if size - pos < 4:
            return c
        length = load_u32(row + pos)
        pos += 4
        if length > size - pos or (length and is_set(row + HEADER, c)):  # nulls: no payload
            return c
        if kind != BYTES and not is_set(row + HEADER, c):     # a list: count, bitmap, elements
            if length < 4:
                return c
            count = load_u32(row + pos)
            need = 4 + bitmap_size(count)
            if need > length:
                return c
            if kind == LIST_FIXED:
                need += count * layout.widths[c]
            elif kind == LIST_BOOL:
                need += count
            else:
                elements = need + 4 * count
                if elements > length:
                    return c
                for e in range(count):
                    need += 4 + load_u32(row + pos + 4 + bitmap_size(count) + 4 * e)
            if need != length:
                return c
        pos += length
    return -1 if pos == size else layout.n_columns
