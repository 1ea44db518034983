# distutils: language = c++
"""The value codec: feature rows to LMDB values (``encode_values``, sized and written without
the GIL), one value back to Python scalars (``decode_row``, the feature-vector path), and the
rule for which of two values of a key is newer (``newer_rows``). The format is in
``rowformat.pyx``.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.float cimport PyFloat_FromDouble
from cpython.long cimport PyLong_FromLongLong
from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t
from libc.string cimport memcpy, memset
from libcpp.vector cimport vector

import numpy as np

from lakecore._native.rowformat import ValueRefused

from lakecore._native.rowformat cimport (
    BINARY,
    BOOL,
    BOOLEAN,
    BYTES,
    FIXED,
    FLOAT,
    HEADER,
    INTEGER,
    LIST_BOOL,
    LIST_BYTES,
    STRING,
    VALUE_MALFORMED,
    RowLayout,
    address_of,
    bitmap_size,
    is_set,
    load_u32,
    malformed_column,
    set_bit,
    store_u32,
)


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


cdef class _Rows:
    """The encoding plan of one call: the columns' raw pointers and a ``Plan`` over them."""
    cdef _Columns cols
    cdef vector[Py_ssize_t] base
    cdef Plan plan

    def __init__(self, RowLayout layout, list columns):
        cdef Py_ssize_t c, nc = layout.n_columns
        cdef list flat = []
        if len(columns) != nc:
            raise ValueError(f"expected {nc} columns, got {len(columns)}")
        for c in range(nc):
            if len(columns[c]) != arrays_per_kind(layout.kinds[c]):
                raise ValueError(f"column {c}: expected {arrays_per_kind(layout.kinds[c])} arrays")
            self.base.push_back(len(flat))
            flat.extend(columns[c])
        self.cols = _Columns(flat)
        self.plan.n_columns = nc
        self.plan.bitmap_bytes = layout.bitmap_bytes
        self.plan.fixed_bytes = layout.fixed_bytes
        self.plan.kinds = layout.kinds.data()
        self.plan.widths = layout.widths.data()
        self.plan.ptrs = self.cols.ptrs.data()
        self.plan.lengths = self.cols.lengths.data()
        self.plan.base = self.base.data()


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
    cdef Py_ssize_t n = times.shape[0], i
    cdef _Rows rows = _Rows(layout, columns)
    cdef const Plan *plan = &rows.plan
    cdef vector[Py_ssize_t] sizes
    cdef vector[uint8_t *] targets
    sizes.resize(n)
    targets.resize(n)
    cdef bint parallel = num_threads > 1 and n >= 20000
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        sizes[i] = row_size(plan, i)
    out = [None] * n
    for i in range(n):
        value = PyBytes_FromStringAndSize(NULL, sizes[i])
        targets[i] = <uint8_t *> PyBytes_AS_STRING(value)
        out[i] = value
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        write_row(plan, i, times[i], version, targets[i])
    return out


def encode_packed(RowLayout layout, const int64_t[::1] times, int64_t version, list columns,
                  allocate, int num_threads=1):
    """The same values as ``encode_values``, back to back in one buffer: ``(data, offsets)``,
    value i being ``data[offsets[i]:offsets[i + 1]]``. ``allocate(size)`` returns the data
    buffer (a writable uint8 array of at least ``size`` bytes). No Python object per row:
    sizing and filling run on ``num_threads`` threads without the GIL, the offsets are a
    running sum (O(n) in all). (Encoding straight from unsorted columns through a row order
    was measured instead of gathering them first: about 5x slower, a cache miss per column
    and row.)"""
    cdef Py_ssize_t n = times.shape[0], i
    cdef _Rows rows = _Rows(layout, columns)
    cdef const Plan *plan = &rows.plan
    offsets_array = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_array
    cdef bint parallel = num_threads > 1 and n >= 20000
    offsets[0] = 0
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        offsets[i + 1] = row_size(plan, i)
    with nogil:
        for i in range(n):
            offsets[i + 1] += offsets[i]
    data = allocate(offsets[n])
    cdef uint8_t[::1] target = data
    if target.shape[0] < offsets[n]:
        raise ValueError("encode_packed: allocate returned a buffer too small")
    cdef uint8_t *start = &target[0] if target.shape[0] else NULL
    for i in prange(n, nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=parallel):
        write_row(plan, i, times[i], version, start + offsets[i])
    return data, offsets_array


def decode_row(RowLayout layout, value, int64_t min_time):
    """One value as a list of Python scalars in column order (dates and timestamps as integer
    days and microseconds), or None when it is missing or older than ``min_time``. A value
    whose lengths do not add up raises ValueRefused (VALUE_MALFORMED)."""
    if value is None:
        return None
    cdef Py_buffer view
    cdef Py_ssize_t bad
    PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
    try:
        bad = malformed_column(layout, <const uint8_t *> view.buf, view.len)
        if bad >= 0:
            raise ValueRefused(VALUE_MALFORMED, bad if bad < layout.n_columns else -1, -1,
                               view.len)
        try:
            return _decode_row(layout, <const uint8_t *> view.buf, min_time)
        except UnicodeDecodeError:
            raise ValueRefused(VALUE_MALFORMED, -1, -1, view.len) from None
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
