# distutils: language = c++
"""Arrow batch export: many LMDB keys and values (the format is in ``rowformat.pyx``) decoded
into one Arrow record batch of the key columns, event time and features.

A batch decodes in two passes over the values into one arena of Arrow buffers that pyarrow
imports through the Arrow C data interface: a whole record batch in one call, with no per-value
Python objects and no per-column Python calls.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy, memset
from libcpp.vector cimport vector

from lakecore._native.rowformat import ValueRefused

from lakecore._native.rowformat cimport (
    BOOL,
    BYTES,
    FIXED,
    HEADER,
    LIST_BOOL,
    LIST_BYTES,
    LIST_FIXED,
    MAX_INT32,
    VALUE_MALFORMED,
    VALUE_TOO_LARGE,
    RowLayout,
    bitmap_size,
    clear_bit,
    get_be64,
    is_set,
    load_u32,
    malformed_column,
    next_key_part,
    set_bit,
)

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
    SMALL_ARENA = 1 << 16   # arenas up to this size come from malloc, bigger ones from Arrow

cdef extern from "<stdlib.h>" nogil:
    void *aligned_alloc(size_t alignment, size_t size)
    void free(void *p)


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
            p = next_key_part(p, layout.key_kinds[k])
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
            p = next_key_part(p, layout.key_kinds[k])
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
    cdef Py_ssize_t n = len(values), i, c, nc = layout.n_columns, count, w
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
    cdef int64_t time
    cdef uint32_t length
    cdef Py_ssize_t found = 0, size, bad

    # pass 1: locate live rows, size the variable-width columns
    for i in range(n):
        v = values[i]
        if v is None:
            continue
        if PyBytes_CheckExact(v):
            row = <const uint8_t *> PyBytes_AS_STRING(v)
            size = PyBytes_GET_SIZE(v)
        else:                               # a buffer into LMDB's map, valid in its transaction
            PyObject_GetBuffer(v, &view, PyBUF_SIMPLE)
            row = <const uint8_t *> view.buf
            size = view.len
            PyBuffer_Release(&view)
        bad = malformed_column(layout, row, size)     # before following any length in it
        if bad >= 0:
            raise ValueRefused(VALUE_MALFORMED, bad if bad < nc else -1, i, size)
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
            raise ValueRefused(VALUE_TOO_LARGE, c, -1, max(data_bytes[c], elements[c]))

    # size the arena: structs, then buffers
    cdef Py_ssize_t bitmap = rounded(bitmap_size(n)), total = struct_bytes(n_out)
    cdef int kind
    cdef vector[Py_ssize_t] key_data
    for c in range(nk):
        kind = layout.key_kinds[c]
        key_data.push_back(key_bytes(layout, keys, c) if kind == BYTES else 0)
        if key_data[c] > MAX_INT32:
            raise ValueRefused(VALUE_TOO_LARGE, -1, -1, key_data[c])
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
