# distutils: language = c++
"""The online store's row codec: primary keys to LMDB keys, feature rows to LMDB values, and
batches of values (zero-copy views into LMDB's map) back into Arrow columns.

Key: each key column in order, integers (and dates, timestamps, booleans, all widened to int64)
as 8 big-endian bytes with the sign bit flipped, so byte order is numeric order; strings and
binary as a 2-byte big-endian length and the bytes.

Value: event time (int64, us), commit version (int64), a null bitmap (bit c set = column c is
null), the fixed-width columns' bytes (zeros when null; booleans take one byte), then every
variable-width column as a 4-byte length and its payload:

- string / binary: the bytes;
- list of fixed-width or boolean: element count (u32), element null bitmap, element bytes;
- list of string / binary: element count (u32), element null bitmap, element lengths (u32
  each), element bytes.

A batch decodes in two passes over the values into one arena of Arrow buffers that pyarrow
imports through the Arrow C data interface: a whole record batch in one call, with no per-value
Python objects and no per-column Python calls.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy, memset
from libcpp.vector cimport vector
from cython.parallel cimport prange

import numpy as np

cdef extern from *:
    """
    #ifndef ARROW_C_DATA_INTERFACE
    #define ARROW_C_DATA_INTERFACE
    struct ArrowArray {
      int64_t length;
      int64_t null_count;
      int64_t offset;
      int64_t n_buffers;
      int64_t n_children;
      const void** buffers;
      struct ArrowArray** children;
      struct ArrowArray* dictionary;
      void (*release)(struct ArrowArray*);
      void* private_data;
    };
    #endif
    """
    struct ArrowArray:
        int64_t length
        int64_t null_count
        int64_t offset
        int64_t n_buffers
        int64_t n_children
        const void **buffers
        ArrowArray **children
        ArrowArray *dictionary
        void (*release)(ArrowArray *) noexcept nogil
        void *private_data

cdef enum:
    MAX_KEY_BYTES = 500     # of one string or binary key value (LMDB keys: at most 511 bytes)
    HEADER = 16
    MAX_INT32 = 2147483647
    SMALL_ARENA = 1 << 16

cdef extern from "<stdlib.h>" nogil:
    void *aligned_alloc(size_t alignment, size_t size)
    void free(void *p)

cpdef enum Kind:
    FIXED = 0        # fixed-width bytes (integers, floats, dates, timestamps)
    BOOL = 1
    BYTES = 2        # string or binary
    LIST_FIXED = 3
    LIST_BOOL = 4
    LIST_BYTES = 5

cpdef enum KeyStatus:
    # Why a key cannot be encoded (``KeyRefused.status``); lakecore.online.codec words it.
    KEY_COUNT = 1           # not as many key columns or values as the layout has
    KEY_NULL = 2            # a null in a key column
    KEY_TOO_LONG = 3        # a string or binary key value over MAX_KEY_BYTES
    KEY_NOT_BYTES = 4       # a Python key value that is neither str nor bytes
    KEY_NOT_INTEGER = 5     # a Python key value that is not an int


class KeyRefused(ValueError):
    """A key the codec cannot encode: ``status`` (a ``KeyStatus``), the key ``column`` (-1:
    the whole key), the ``row`` of a batch (-1: one key) and a ``detail`` (a length or a
    type name). Kernels report; they do not word messages for users."""

    def __init__(self, int status, Py_ssize_t column, Py_ssize_t row, detail):
        super().__init__(status, column, row, detail)
        self.status, self.column, self.row, self.detail = status, column, row, detail


cpdef enum Scalar:
    INTEGER = 0      # signed integers, dates (days) and timestamps (us)
    FLOAT = 1
    BOOLEAN = 2
    STRING = 3
    BINARY = 4


cdef inline void put_be64(unsigned char *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[i] = <unsigned char>(v >> (56 - 8 * i))


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


cdef const uint8_t *address_of(buffer) except? NULL:
    """The start of an object's memory (the caller keeps the object alive)."""
    cdef Py_buffer view
    PyObject_GetBuffer(buffer, &view, PyBUF_SIMPLE)
    cdef const uint8_t *p = <const uint8_t *> view.buf
    PyBuffer_Release(&view)
    return p


def encode_keys(RowLayout layout, list columns, Py_ssize_t n):
    """LMDB keys for ``n`` rows of the key columns. ``columns[k]``: ``(validity, data,
    offsets, offset)`` of key column k: its Arrow validity bitmap (or None), value buffer, int32
    offsets buffer (strings and binary; else None) and the array's offset. Keys must have the
    layout's key types; a null raises ValueError."""
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
    """The LMDB key of one primary key given as Python values in key order: int or bool for
    integer, date (days), timestamp (us) and boolean columns, str or bytes for the others."""
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
            if not isinstance(v, int):
                raise KeyRefused(KEY_NOT_INTEGER, k, -1, type(v).__name__)
            size += 8
        parts.append(v)
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
            integer = v
            put_be64(p, (<uint64_t>integer) ^ (<uint64_t>1 << 63))
            p += 8
    return key


cdef class RowLayout:
    """Where each feature column lives in a value. Columns are numbered in output order,
    without the event time; ``time_position`` is where the event time goes among the value
    columns of a decoded batch (-1: the group has none). Key columns (``key_kinds``: FIXED,
    BOOL or BYTES, with ``key_widths``) come first in a decoded batch."""
    cdef public Py_ssize_t n_columns, n_keys, bitmap_bytes, fixed_bytes, time_position
    cdef bint all_eight_bytes          # every column fixed-width, 8 bytes (a fast decode path)
    cdef vector[int] kinds, widths, scalars, fixed_offsets, key_kinds, key_widths

    def __init__(self, kinds, widths, scalars, Py_ssize_t time_position, key_kinds, key_widths):
        cdef Py_ssize_t c
        self.n_keys = len(key_kinds)
        for c in range(self.n_keys):
            self.key_kinds.push_back(key_kinds[c])
            self.key_widths.push_back(key_widths[c])
        self.n_columns = len(kinds)
        self.time_position = time_position
        self.bitmap_bytes = bitmap_size(self.n_columns)
        self.fixed_bytes = 0
        for c in range(self.n_columns):
            self.kinds.push_back(kinds[c])
            self.widths.push_back(widths[c])
            self.scalars.push_back(scalars[c])
            self.fixed_offsets.push_back(self.fixed_bytes)
            if kinds[c] == FIXED:
                self.fixed_bytes += widths[c]
            elif kinds[c] == BOOL:
                self.fixed_bytes += 1
        self.all_eight_bytes = all(k == FIXED and w == 8 for k, w in zip(kinds, widths))


    def key_kinds_of(self, Py_ssize_t k):
        return self.key_kinds[k]


def newer_rows(list values, list stored):
    """For each encoded value, whether it replaces the stored one (None: nothing stored): a
    greater event time, or an equal one from a commit at least as late."""
    cdef Py_ssize_t n = len(values), i
    out = np.ones(n, dtype=np.uint8)
    cdef uint8_t[::1] replace = out
    cdef int64_t new_time, new_version, old_time, old_version
    cdef const uint8_t *p
    cdef const uint8_t *q
    if len(stored) != n:
        raise ValueError("newer_rows: as many stored values as values expected")
    for i in range(n):
        old = stored[i]
        if old is None:
            continue
        p = address_of(values[i])
        q = address_of(old)
        memcpy(&new_time, p, 8)
        memcpy(&new_version, p + 8, 8)
        memcpy(&old_time, q, 8)
        memcpy(&old_version, q + 8, 8)
        replace[i] = new_time > old_time or (new_time == old_time and new_version >= old_version)
    return out


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


# What the encoding loops read, as plain C so that they run without the GIL.
cdef struct Plan:
    Py_ssize_t n_columns, bitmap_bytes, fixed_bytes
    const int *kinds
    const int *widths
    const uint8_t **ptrs         # every column array, flattened
    const Py_ssize_t *lengths
    const Py_ssize_t *base       # index of column c's first array in ptrs


cdef inline bint valid_at(const Plan *plan, Py_ssize_t k, Py_ssize_t i) noexcept nogil:
    """Whether row i of byte mask k is valid (an empty mask: all valid)."""
    return plan.lengths[k] == 0 or plan.ptrs[k][i] != 0


cdef inline const int64_t *int64s(const Plan *plan, Py_ssize_t k) noexcept nogil:
    return <const int64_t *> plan.ptrs[k]


cdef Py_ssize_t payload_size(const Plan *plan, Py_ssize_t c, Py_ssize_t i) noexcept nogil:
    """Bytes of variable-width column c's payload in row i (0 when null)."""
    cdef int kind = plan.kinds[c]
    cdef Py_ssize_t b = plan.base[c], start, stop
    cdef const int64_t *offsets
    if not valid_at(plan, b, i):
        return 0
    offsets = int64s(plan, b + 1)
    start = offsets[i]
    stop = offsets[i + 1]
    if kind == BYTES:
        return stop - start
    if kind == LIST_BYTES:
        return 4 + bitmap_size(stop - start) + 4 * (stop - start) \
            + int64s(plan, b + 3)[stop] - int64s(plan, b + 3)[start]
    if kind == LIST_BOOL:
        return 4 + bitmap_size(stop - start) + (stop - start)
    return 4 + bitmap_size(stop - start) + (stop - start) * plan.widths[c]


cdef Py_ssize_t row_size(const Plan *plan, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t size = HEADER + plan.bitmap_bytes + plan.fixed_bytes, c
    for c in range(plan.n_columns):
        if plan.kinds[c] >= BYTES:
            size += 4 + payload_size(plan, c, i)
    return size


cdef uint8_t *write_payload(const Plan *plan, Py_ssize_t c, Py_ssize_t i, uint8_t *q) noexcept nogil:
    """Write column c's length-prefixed payload of row i at q; return the end."""
    cdef int kind = plan.kinds[c]
    cdef Py_ssize_t b = plan.base[c], start, stop, count, e, w = plan.widths[c]
    cdef Py_ssize_t size = payload_size(plan, c, i)
    cdef const int64_t *offsets = int64s(plan, b + 1)
    cdef const int64_t *child_offsets
    cdef uint8_t *bits
    cdef uint8_t *p
    store_u32(q, <uint32_t>size)
    q += 4
    if size == 0 and (kind == BYTES or not valid_at(plan, b, i)):
        return q
    start = offsets[i]
    stop = offsets[i + 1]
    if kind == BYTES:
        memcpy(q, plan.ptrs[b + 2] + start, stop - start)
        return q + size
    count = stop - start
    store_u32(q, <uint32_t>count)
    bits = q + 4
    memset(bits, 0, bitmap_size(count))
    for e in range(count):
        if not valid_at(plan, b + 2, start + e):
            set_bit(bits, e)
    p = bits + bitmap_size(count)
    if kind == LIST_BYTES:
        child_offsets = int64s(plan, b + 3)
        for e in range(count):
            store_u32(p, <uint32_t>(child_offsets[start + e + 1] - child_offsets[start + e]))
            p += 4
        memcpy(p, plan.ptrs[b + 4] + child_offsets[start],
               child_offsets[stop] - child_offsets[start])
    elif kind == LIST_BOOL:
        memcpy(p, plan.ptrs[b + 3] + start, count)
    else:
        memcpy(p, plan.ptrs[b + 3] + start * w, count * w)
    return q + size


cdef void write_row(const Plan *plan, Py_ssize_t i, int64_t time, int64_t version,
                    uint8_t *p) noexcept nogil:
    """Encode row i into p (of ``row_size`` bytes)."""
    cdef Py_ssize_t c, w, b
    cdef uint8_t *q
    memcpy(p, &time, 8)
    memcpy(p + 8, &version, 8)
    memset(p + HEADER, 0, plan.bitmap_bytes)
    q = p + HEADER + plan.bitmap_bytes
    for c in range(plan.n_columns):
        b = plan.base[c]
        if not valid_at(plan, b, i):
            set_bit(p + HEADER, c)
        if plan.kinds[c] == FIXED:
            w = plan.widths[c]
            if valid_at(plan, b, i):
                memcpy(q, plan.ptrs[b + 1] + i * w, w)
            else:
                memset(q, 0, w)
            q += w
        elif plan.kinds[c] == BOOL:
            q[0] = 1 if valid_at(plan, b, i) and plan.ptrs[b + 1][i] else 0
            q += 1
    for c in range(plan.n_columns):
        if plan.kinds[c] >= BYTES:
            q = write_payload(plan, c, i, q)


cdef Py_ssize_t arrays_per_kind(int kind) noexcept nogil:
    if kind == FIXED or kind == BOOL:
        return 2
    if kind == BYTES:
        return 3
    if kind == LIST_BYTES:
        return 5
    return 4


def encode_values(RowLayout layout, const int64_t[::1] times, int64_t version, list columns,
                  int num_threads=1):
    """One value per row. ``columns[c]`` holds column c's numpy arrays, by kind (a validity
    mask is uint8, 1 = valid, or empty when nothing is null; offsets are int64):

    - FIXED, BOOL: ``[valid, values]`` (values: the rows' bytes, one byte per boolean);
    - BYTES: ``[valid, offsets, data]``;
    - LIST_FIXED, LIST_BOOL: ``[valid, offsets, element_valid, element_values]``;
    - LIST_BYTES: ``[valid, offsets, element_valid, element_offsets, element_data]``.

    Sizing and filling run on ``num_threads`` threads; only creating the bytes objects needs
    the GIL.
    """
    cdef Py_ssize_t n = times.shape[0], i, c, nc = layout.n_columns
    cdef list flat = []
    cdef vector[Py_ssize_t] base
    for c in range(nc):
        if len(columns[c]) != arrays_per_kind(layout.kinds[c]):
            raise ValueError(f"column {c}: expected {arrays_per_kind(layout.kinds[c])} arrays")
        base.push_back(len(flat))
        flat.extend(columns[c])
    cdef _Columns cols = _Columns(flat)
    cdef Plan plan
    plan.n_columns = nc
    plan.bitmap_bytes = layout.bitmap_bytes
    plan.fixed_bytes = layout.fixed_bytes
    plan.kinds = layout.kinds.data()
    plan.widths = layout.widths.data()
    plan.ptrs = cols.ptrs.data()
    plan.lengths = cols.lengths.data()
    plan.base = base.data()
    cdef vector[Py_ssize_t] sizes
    cdef vector[uint8_t *] targets
    sizes.resize(n)
    targets.resize(n)
    cdef bint parallel = num_threads > 1 and n >= 20000
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        sizes[i] = row_size(&plan, i)
    out = [None] * n
    for i in range(n):
        value = PyBytes_FromStringAndSize(NULL, sizes[i])
        targets[i] = <uint8_t *> PyBytes_AS_STRING(value)
        out[i] = value
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        write_row(&plan, i, times[i], version, targets[i])
    return out


# -- decoding into Arrow ------------------------------------------------------------------------
cdef void release_child(ArrowArray *array) noexcept nogil:
    array.release = NULL


cdef void release_children(ArrowArray *array) noexcept nogil:
    cdef int64_t k
    for k in range(array.n_children):
        if array.children[k].release != NULL:
            array.children[k].release(array.children[k])
    array.release = NULL


cdef void release_pooled_batch(ArrowArray *array) noexcept nogil:
    """Release a decoded batch whose arena is a Python object (from Arrow's pool)."""
    release_children(array)
    with gil:
        Py_DECREF(<object> array.private_data)


cdef void release_small_batch(ArrowArray *array) noexcept nogil:
    """Release a decoded batch whose arena came from malloc."""
    release_children(array)
    free(array.private_data)


cdef struct Arena:
    uint8_t *start
    Py_ssize_t used


cdef inline uint8_t *carve(Arena *arena, Py_ssize_t size) noexcept nogil:
    """The next 64-byte aligned piece of ``size`` bytes (its size rounded up too)."""
    cdef uint8_t *p = arena.start + arena.used
    arena.used += (size + 63) & ~(<Py_ssize_t>63)
    return p


cdef inline Py_ssize_t rounded(Py_ssize_t size) noexcept nogil:
    return (size + 63) & ~(<Py_ssize_t>63)


cdef inline Py_ssize_t struct_bytes(Py_ssize_t n_children) noexcept nogil:
    """Room for one ArrowArray with up to 3 buffer pointers and its child pointers."""
    return rounded(sizeof(ArrowArray) + 3 * sizeof(void *) + n_children * sizeof(void *))


cdef ArrowArray *new_array(Arena *arena, Py_ssize_t length, Py_ssize_t n_buffers,
                           Py_ssize_t n_children) noexcept nogil:
    cdef uint8_t *p = carve(arena, struct_bytes(n_children))
    cdef ArrowArray *a = <ArrowArray *> p
    memset(p, 0, struct_bytes(n_children))
    a.length = length
    a.n_buffers = n_buffers
    a.n_children = n_children
    a.buffers = <const void **> (p + sizeof(ArrowArray))
    a.children = <ArrowArray **> (p + sizeof(ArrowArray) + 3 * sizeof(void *))
    a.release = release_child
    return a


cdef uint8_t *zeroed(Arena *arena, Py_ssize_t size) noexcept nogil:
    cdef uint8_t *p = carve(arena, size)
    memset(p, 0, size)
    return p


# One output column of a decoded batch while it is being filled.
cdef struct ColumnOut:
    ArrowArray *col
    ArrowArray *child
    uint8_t *valid
    uint8_t *out           # fixed bytes, boolean bits, string bytes or list element values
    int32_t *offsets
    uint8_t *cvalid        # list element validity
    int32_t *coffsets      # offsets of string list elements
    Py_ssize_t position    # bytes (strings) or elements (lists) written so far
    Py_ssize_t byte_pos    # element bytes written (lists of strings)
    Py_ssize_t nulls


cdef inline bint no_nulls_in(const uint8_t *bitmap, Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(size):
        if bitmap[k]:
            return False
    return True


cdef Py_ssize_t count_set(const uint8_t *bits, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, total = 0
    for i in range(n):
        total += is_set(bits, i)
    return total


cdef void fill_row(RowLayout layout, ColumnOut *outs, const uint8_t *row, Py_ssize_t i) noexcept nogil:
    """Append row i (NULL: missing) to every feature column."""
    cdef Py_ssize_t c, e, count, w, element_base, elen
    cdef int kind
    cdef ColumnOut *o
    cdef const uint8_t *q
    cdef const uint8_t *p
    cdef const uint8_t *ebits
    cdef uint32_t length
    if row == NULL:
        for c in range(layout.n_columns):
            o = &outs[c]
            o.nulls += 1
            clear_bit(o.valid, i)
            if layout.kinds[c] >= BYTES:
                o.offsets[i + 1] = <int32_t>o.position
        return
    if layout.all_eight_bytes and no_nulls_in(row + HEADER, layout.bitmap_bytes):
        q = row + HEADER + layout.bitmap_bytes      # the common case: plain 8-byte copies
        for c in range(layout.n_columns):
            memcpy(outs[c].out + 8 * i, q + 8 * c, 8)
        return
    q = row + HEADER + layout.bitmap_bytes + layout.fixed_bytes     # the variable-width part
    for c in range(layout.n_columns):
        o = &outs[c]
        kind = layout.kinds[c]
        w = layout.widths[c]
        if kind < BYTES:
            if is_set(row + HEADER, c):
                o.nulls += 1
                clear_bit(o.valid, i)
                continue
            p = row + HEADER + layout.bitmap_bytes + layout.fixed_offsets[c]
            if kind == FIXED:
                memcpy(o.out + i * w, p, w)
            elif p[0]:
                set_bit(o.out, i)
            continue
        length = load_u32(q)
        p = q + 4
        q = p + length
        if is_set(row + HEADER, c):
            o.nulls += 1
            clear_bit(o.valid, i)
            o.offsets[i + 1] = <int32_t>o.position
            continue
        if kind == BYTES:
            memcpy(o.out + o.position, p, length)
            o.position += length
        else:
            count = load_u32(p)
            ebits = p + 4
            p = ebits + bitmap_size(count)
            for e in range(count):
                if not is_set(ebits, e):
                    set_bit(o.cvalid, o.position + e)
            if kind == LIST_FIXED:
                memcpy(o.out + o.position * w, p, count * w)
            elif kind == LIST_BOOL:
                for e in range(count):
                    if p[e]:
                        set_bit(o.out, o.position + e)
            else:
                element_base = 4 * count
                for e in range(count):
                    elen = load_u32(p + 4 * e)
                    memcpy(o.out + o.byte_pos, p + element_base, elen)
                    element_base += elen
                    o.byte_pos += elen
                    o.coffsets[o.position + e + 1] = <int32_t>o.byte_pos
            o.position += count
        o.offsets[i + 1] = <int32_t>o.position


cdef inline uint64_t get_be64(const uint8_t *p) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(8):
        v = (v << 8) | p[i]
    return v


cdef void decode_key_column(RowLayout layout, list keys, Py_ssize_t kc, ArrowArray *col,
                            Arena *arena, Py_ssize_t total_bytes):
    """Key column kc of the encoded keys into Arrow buffers (keys are never null)."""
    cdef Py_ssize_t n = len(keys), i, k, w = layout.key_widths[kc], position = 0
    cdef int kind = layout.key_kinds[kc]
    cdef const uint8_t *p
    cdef uint8_t *out
    cdef int32_t *offsets = NULL
    cdef int64_t value
    cdef Py_ssize_t length
    if kind == BYTES:
        offsets = <int32_t *> carve(arena, 4 * (n + 1))
        offsets[0] = 0
        out = carve(arena, total_bytes)
        col.buffers[1] = offsets
        col.buffers[2] = out
    else:
        out = zeroed(arena, bitmap_size(n) if kind == BOOL else n * w)
        col.buffers[1] = out
    col.buffers[0] = NULL
    for i in range(n):
        p = <const uint8_t *> PyBytes_AS_STRING(keys[i])
        for k in range(kc):                     # skip the key columns before this one
            if layout.key_kinds[k] == BYTES:
                p += 2 + ((p[0] << 8) | p[1])
            else:
                p += 8
        if kind == BYTES:
            length = (p[0] << 8) | p[1]
            memcpy(out + position, p + 2, length)
            position += length
            offsets[i + 1] = <int32_t>position
            continue
        value = <int64_t>(get_be64(p) ^ (<uint64_t>1 << 63))
        if kind == BOOL:
            if value:
                set_bit(out, i)
        elif w == 8:
            memcpy(out + 8 * i, &value, 8)
        elif w == 4:
            (<int32_t *> out)[i] = <int32_t>value
        elif w == 2:
            (<int16_t *> out)[i] = <int16_t>value
        else:
            (<int8_t *> out)[i] = <int8_t>value


cdef Py_ssize_t key_bytes(RowLayout layout, list keys, Py_ssize_t kc):
    """Total bytes of BYTES key column kc over the encoded keys."""
    cdef Py_ssize_t total = 0, k
    cdef const uint8_t *p
    for key in keys:
        p = <const uint8_t *> PyBytes_AS_STRING(key)
        for k in range(kc):
            p += 2 + ((p[0] << 8) | p[1]) if layout.key_kinds[k] == BYTES else 8
        total += (p[0] << 8) | p[1]
    return total


def decode_batch(RowLayout layout, list keys, list values, int64_t min_time, allocate):
    """Decode LMDB keys and values (buffers, or None for a missing key) into an Arrow struct
    array of the key columns, then the event time and feature columns, through the C data
    interface.

    A row whose event time is below ``min_time`` counts as missing (the ttl). ``allocate(size)``
    returns a writable uint8 numpy array (the arena). Returns the address of an ArrowArray for
    ``pyarrow.RecordBatch._import_from_c``, valid until imported.
    """
    cdef Py_ssize_t n = len(values), i, c, k, nc = layout.n_columns, e, count, w
    cdef Py_ssize_t nk = layout.n_keys
    cdef Py_ssize_t n_out = nk + nc + (1 if layout.time_position >= 0 else 0)
    if len(keys) != n:
        raise ValueError("decode_batch: as many keys as values expected")
    cdef vector[const uint8_t *] rows
    cdef vector[Py_ssize_t] data_bytes
    cdef vector[Py_ssize_t] elements
    rows.resize(n, NULL)
    data_bytes.resize(nc, 0)
    elements.resize(nc, 0)
    cdef Py_buffer view
    cdef const uint8_t *row
    cdef const uint8_t *q
    cdef const uint8_t *ebits
    cdef int64_t time
    cdef uint32_t length
    cdef Py_ssize_t found = 0

    # pass 1: locate live rows, size the variable-width columns
    for i in range(n):
        v = values[i]
        if v is None:
            continue
        if PyBytes_CheckExact(v):
            row = <const uint8_t *> PyBytes_AS_STRING(v)
        else:                               # a buffer into LMDB's map, valid in its transaction
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            row = <const uint8_t *> view.buf
            PyBuffer_Release(&view)
        memcpy(&time, row, 8)
        if time < min_time:
            continue
        rows[i] = row
        found += 1
        q = row + HEADER + layout.bitmap_bytes + layout.fixed_bytes
        for c in range(nc):
            if layout.kinds[c] < BYTES:
                continue
            length = load_u32(q)
            if layout.kinds[c] == BYTES:
                data_bytes[c] += length
            elif length:
                count = load_u32(q + 4)
                elements[c] += count
                if layout.kinds[c] == LIST_BYTES:
                    data_bytes[c] += length - 4 - bitmap_size(count) - 4 * count
            q += 4 + length
    for c in range(nc):
        if data_bytes[c] > MAX_INT32 or elements[c] > MAX_INT32:
            raise OverflowError(f"column {c}: more than 2 GiB in one online read")

    # size the arena: structs, then buffers
    cdef Py_ssize_t bitmap = rounded(bitmap_size(n)), total = struct_bytes(n_out)
    cdef int kind
    cdef vector[Py_ssize_t] key_data
    for c in range(nk):
        kind = layout.key_kinds[c]
        key_data.push_back(key_bytes(layout, keys, c) if kind == BYTES else 0)
        if key_data[c] > MAX_INT32:
            raise OverflowError("keys: more than 2 GiB in one online read")
        total += struct_bytes(0)
        if kind == BYTES:
            total += rounded(4 * (n + 1)) + rounded(key_data[c])
        else:
            total += bitmap if kind == BOOL else rounded(n * layout.key_widths[c])
    if layout.time_position >= 0:
        total += struct_bytes(0) + bitmap + rounded(8 * n)
    for c in range(nc):
        kind = layout.kinds[c]
        total += struct_bytes(1) + bitmap
        if kind == FIXED:
            total += rounded(n * layout.widths[c])
        elif kind == BOOL:
            total += bitmap
        elif kind == BYTES:
            total += rounded(4 * (n + 1)) + rounded(data_bytes[c])
        else:
            total += rounded(4 * (n + 1)) + struct_bytes(0) + rounded(bitmap_size(elements[c]))
            if kind == LIST_FIXED:
                total += rounded(elements[c] * layout.widths[c])
            elif kind == LIST_BOOL:
                total += rounded(bitmap_size(elements[c]))
            else:
                total += rounded(4 * (elements[c] + 1)) + rounded(data_bytes[c])
    # small arenas from malloc (the common one-key read); big ones from Arrow's pool, which
    # reuses pages instead of taking fresh ones from the system on every read
    cdef Arena arena
    cdef uint8_t[::1] arena_view
    owner = None
    if total <= SMALL_ARENA:
        arena.start = <uint8_t *> aligned_alloc(64, total)
        if arena.start == NULL:
            raise MemoryError()
    else:
        owner = allocate(total)
        arena_view = owner
        arena.start = &arena_view[0]
    arena.used = 0

    # pass 2: set up every output column, then fill them row by row (each value is read once,
    # front to back, while it is in cache)
    cdef ArrowArray *top = new_array(&arena, n, 1, n_out)
    cdef ArrowArray *col
    cdef uint8_t *valid
    cdef int64_t *times_out
    cdef vector[ColumnOut] outs
    outs.resize(nc)
    cdef ColumnOut *o
    top.buffers[0] = NULL
    for c in range(nk):
        col = new_array(&arena, n, 3 if layout.key_kinds[c] == BYTES else 2, 0)
        decode_key_column(layout, keys, c, col, &arena, key_data[c])
        top.children[c] = col
    if layout.time_position >= 0:
        col = new_array(&arena, n, 2, 0)
        valid = zeroed(&arena, bitmap)
        times_out = <int64_t *> carve(&arena, 8 * n)
        for i in range(n):
            if rows[i] != NULL:
                set_bit(valid, i)
                memcpy(&times_out[i], rows[i], 8)
            else:
                times_out[i] = 0
        col.null_count = n - found
        col.buffers[0] = valid if found < n else NULL   # fewer buffers: a faster import
        col.buffers[1] = times_out
        top.children[nk + layout.time_position] = col
    for c in range(nc):
        kind = layout.kinds[c]
        w = layout.widths[c]
        o = &outs[c]
        memset(o, 0, sizeof(ColumnOut))
        o.col = new_array(&arena, n, 3 if kind == BYTES else 2, 1 if kind >= LIST_FIXED else 0)
        o.valid = carve(&arena, bitmap)      # all valid; nulls clear their bit
        memset(o.valid, 0xFF, bitmap)
        o.col.buffers[0] = o.valid
        if kind == FIXED or kind == BOOL:
            o.out = zeroed(&arena, n * w if kind == FIXED else bitmap_size(n))
            o.col.buffers[1] = o.out
        else:
            o.offsets = <int32_t *> carve(&arena, 4 * (n + 1))
            o.offsets[0] = 0
            o.col.buffers[1] = o.offsets
            if kind == BYTES:
                o.out = carve(&arena, data_bytes[c])
                o.col.buffers[2] = o.out
            else:
                o.child = new_array(&arena, elements[c], 3 if kind == LIST_BYTES else 2, 0)
                o.col.children[0] = o.child
                o.cvalid = zeroed(&arena, bitmap_size(elements[c]))
                o.child.buffers[0] = o.cvalid
                if kind == LIST_FIXED:
                    o.out = carve(&arena, elements[c] * w)
                elif kind == LIST_BOOL:
                    o.out = zeroed(&arena, bitmap_size(elements[c]))
                else:
                    o.coffsets = <int32_t *> carve(&arena, 4 * (elements[c] + 1))
                    o.coffsets[0] = 0
                    o.out = carve(&arena, data_bytes[c])
                if kind == LIST_BYTES:
                    o.child.buffers[1] = o.coffsets
                    o.child.buffers[2] = o.out
                else:
                    o.child.buffers[1] = o.out
        top.children[nk + c + (1 if 0 <= layout.time_position <= c else 0)] = o.col
    if nc:
        with nogil:
            for i in range(n):
                fill_row(layout, &outs[0], rows[i], i)
    for c in range(nc):
        o = &outs[c]
        o.col.null_count = o.nulls
        if o.nulls == 0:
            o.col.buffers[0] = NULL
        if o.child != NULL:
            o.child.null_count = elements[c] - count_set(o.cvalid, elements[c])
            if o.child.null_count == 0:
                o.child.buffers[0] = NULL
    if owner is None:
        top.release = release_small_batch
        top.private_data = <void *> arena.start
    else:
        top.release = release_pooled_batch
        Py_INCREF(owner)
        top.private_data = <void *> owner
    return <uintptr_t> top


def decode_row(RowLayout layout, value, int64_t min_time):
    """One value as a list of Python scalars in column order (dates and timestamps as integer
    days and microseconds), or None when it is missing or older than ``min_time``."""
    if value is None:
        return None
    cdef Py_buffer view
    PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
    try:
        return _decode_row(layout, <const uint8_t *> view.buf, min_time)
    finally:
        PyBuffer_Release(&view)


cdef object _scalar(int scalar, int width, const uint8_t *p, Py_ssize_t length):
    cdef double d
    cdef float f
    cdef int64_t i64
    cdef int32_t i32
    cdef int16_t i16
    if scalar == FLOAT:
        if width == 8:
            memcpy(&d, p, 8)
            return PyFloat_FromDouble(d)
        memcpy(&f, p, 4)
        return PyFloat_FromDouble(f)
    if scalar == INTEGER:
        if width == 8:
            memcpy(&i64, p, 8)
        elif width == 4:
            memcpy(&i32, p, 4)
            i64 = i32
        elif width == 2:
            memcpy(&i16, p, 2)
            i64 = i16
        else:
            i64 = (<const int8_t *> p)[0]
        return PyLong_FromLongLong(i64)
    if scalar == BOOLEAN:
        return p[0] != 0
    if scalar == STRING:
        return (<const char *> p)[:length].decode("utf-8")
    return (<const char *> p)[:length]


cdef object _decode_row(RowLayout layout, const uint8_t *row, int64_t min_time):
    cdef int64_t time
    memcpy(&time, row, 8)
    if time < min_time:
        return None
    cdef Py_ssize_t c, e, count, nc = layout.n_columns
    cdef const uint8_t *fixed = row + HEADER + layout.bitmap_bytes
    cdef const uint8_t *q = fixed + layout.fixed_bytes
    cdef const uint8_t *ebits
    cdef const uint8_t *p
    cdef uint32_t length, elen
    cdef int kind, scalar, w
    cdef list items
    out = [None] * nc
    for c in range(nc):
        kind = layout.kinds[c]
        scalar = layout.scalars[c]
        w = layout.widths[c]
        if kind < BYTES:
            if not is_set(row + HEADER, c):
                out[c] = _scalar(scalar, w, fixed + layout.fixed_offsets[c], 0)
            continue
        length = load_u32(q)
        p = q + 4
        q = p + length
        if is_set(row + HEADER, c):
            continue
        if kind == BYTES:
            out[c] = _scalar(scalar, w, p, length)
            continue
        count = load_u32(p)
        ebits = p + 4
        p = ebits + bitmap_size(count)
        items = [None] * count
        if kind == LIST_BYTES:
            length = 4 * count
            for e in range(count):
                elen = load_u32(p + 4 * e)
                if not is_set(ebits, e):
                    items[e] = _scalar(scalar, w, p + length, elen)
                length += elen
        else:
            for e in range(count):
                if not is_set(ebits, e):
                    items[e] = _scalar(scalar, w, p + e * w, 0)
        out[c] = items
    return out
