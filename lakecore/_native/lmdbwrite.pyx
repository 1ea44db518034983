# distutils: language = c++
"""Many rows put into an open LMDB write transaction in one native loop (``put_rows``): keys
and values each from one packed buffer (``keycodec.encode_keys_packed``,
``valuecodec.encode_packed``), no Python object or call per row and no GIL while LMDB works. O(n) here, plus LMDB's own B-tree work:
an append per row into an empty database, a lookup and a put per row otherwise.

The LMDB functions are those of the LMDB library py-lmdb has loaded, given as addresses
(``LmdbFunctions``; ``lakecore.online.native_write`` finds them and the transaction), so that
one library copy and one ``MDB_env`` serve the environment in this process, as LMDB requires.
"""
from libc.stdint cimport int64_t, uint8_t, uintptr_t
from libc.string cimport memcpy

cdef extern from *:
    """
    /* The part of LMDB 0.9's public ABI (lmdb.h) that put_rows uses. */
    typedef struct MDB_txn MDB_txn;
    typedef struct MDB_cursor MDB_cursor;
    typedef unsigned int MDB_dbi;
    typedef struct MDB_val { size_t mv_size; void *mv_data; } MDB_val;
    typedef int (*lakecore_dbi_open_fn)(MDB_txn *, const char *, unsigned int, MDB_dbi *);
    typedef int (*lakecore_cursor_open_fn)(MDB_txn *, MDB_dbi, MDB_cursor **);
    typedef int (*lakecore_cursor_put_fn)(MDB_cursor *, MDB_val *, MDB_val *, unsigned int);
    typedef void (*lakecore_cursor_close_fn)(MDB_cursor *);
    typedef int (*lakecore_get_fn)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);
    #define LAKECORE_MDB_APPEND 0x20000
    #define LAKECORE_MDB_NOTFOUND (-30798)
    """
    ctypedef struct MDB_txn
    ctypedef struct MDB_cursor
    ctypedef unsigned int MDB_dbi
    ctypedef struct MDB_val:
        size_t mv_size
        void *mv_data
    ctypedef int (*lakecore_dbi_open_fn)(MDB_txn *, const char *, unsigned int,
                                         MDB_dbi *) noexcept nogil
    ctypedef int (*lakecore_cursor_open_fn)(MDB_txn *, MDB_dbi, MDB_cursor **) noexcept nogil
    ctypedef int (*lakecore_cursor_put_fn)(MDB_cursor *, MDB_val *, MDB_val *,
                                           unsigned int) noexcept nogil
    ctypedef void (*lakecore_cursor_close_fn)(MDB_cursor *) noexcept nogil
    ctypedef int (*lakecore_get_fn)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *) noexcept nogil
    unsigned int MDB_APPEND "LAKECORE_MDB_APPEND"
    int MDB_NOTFOUND "LAKECORE_MDB_NOTFOUND"

cdef enum:
    HEADER = 16         # a value's event time and commit version (rowformat.pyx)


cdef class LmdbFunctions:
    """The addresses of the LMDB 0.9 functions ``put_rows`` calls (``mdb_dbi_open``,
    ``mdb_cursor_open``, ``mdb_cursor_put``, ``mdb_cursor_close``, ``mdb_get``)."""
    cdef lakecore_dbi_open_fn dbi_open
    cdef lakecore_cursor_open_fn cursor_open
    cdef lakecore_cursor_put_fn cursor_put
    cdef lakecore_cursor_close_fn cursor_close
    cdef lakecore_get_fn get

    def __init__(self, uintptr_t dbi_open, uintptr_t cursor_open, uintptr_t cursor_put,
                 uintptr_t cursor_close, uintptr_t get):
        if not (dbi_open and cursor_open and cursor_put and cursor_close and get):
            raise ValueError("LmdbFunctions: every address must be set")
        self.dbi_open = <lakecore_dbi_open_fn> dbi_open
        self.cursor_open = <lakecore_cursor_open_fn> cursor_open
        self.cursor_put = <lakecore_cursor_put_fn> cursor_put
        self.cursor_close = <lakecore_cursor_close_fn> cursor_close
        self.get = <lakecore_get_fn> get


cdef inline bint replaces(const uint8_t *new, const MDB_val *stored) noexcept nogil:
    """Whether a new value replaces the stored one: a greater event time, or an equal one from
    a commit at least as late (``valuecodec.newer_rows``). A stored value too short to hold the
    header (damaged) is replaced."""
    cdef int64_t new_time, new_version, old_time, old_version
    if stored.mv_size < HEADER:
        return True
    memcpy(&new_time, new, 8)
    memcpy(&new_version, new + 8, 8)
    memcpy(&old_time, stored.mv_data, 8)
    memcpy(&old_version, <const uint8_t *> stored.mv_data + 8, 8)
    return new_time > old_time or (new_time == old_time and new_version >= old_version)


cdef int put_loop(LmdbFunctions lib, MDB_txn *txn, MDB_dbi dbi, MDB_cursor *cursor,
                  const uint8_t *keys, const int64_t *key_offsets, const uint8_t *data,
                  const int64_t *offsets, Py_ssize_t n, bint append, Py_ssize_t *written,
                  Py_ssize_t *row) noexcept nogil:
    cdef Py_ssize_t i
    cdef int rc
    cdef MDB_val key, value, stored
    cdef unsigned int flags = MDB_APPEND if append else 0
    for i in range(n):
        row[0] = i
        key.mv_size = <size_t>(key_offsets[i + 1] - key_offsets[i])
        key.mv_data = <void *>(keys + key_offsets[i])
        value.mv_size = <size_t>(offsets[i + 1] - offsets[i])
        value.mv_data = <void *>(data + offsets[i])
        if not append:
            rc = lib.get(txn, dbi, &key, &stored)
            if rc == 0:
                if value.mv_size < HEADER or not replaces(data + offsets[i], &stored):
                    continue
            elif rc != MDB_NOTFOUND:
                return rc
        rc = lib.cursor_put(cursor, &key, &value, flags)
        if rc != 0:
            return rc
        written[0] += 1
    row[0] = -1
    return 0


cdef bint bad_offsets(const int64_t[::1] offsets, Py_ssize_t n, Py_ssize_t size) noexcept:
    """Whether ``offsets`` (n + 1 of them) do not cut ``size`` bytes into n pieces in order."""
    cdef Py_ssize_t i
    if offsets.shape[0] != n + 1:
        return True
    if n == 0:
        return False
    if offsets[0] < 0 or offsets[n] > size:
        return True
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            return True
    return False


def put_rows(LmdbFunctions lib, uintptr_t txn, bytes db_name, const uint8_t[::1] keys,
             const int64_t[::1] key_offsets, const uint8_t[::1] data,
             const int64_t[::1] offsets, bint append):
    """Put key i (``keys[key_offsets[i]:key_offsets[i + 1]]``) -> value i
    (``data[offsets[i]:offsets[i + 1]]``) into the named database of the write transaction at
    address ``txn`` (an ``MDB_txn *`` of ``lib``'s library), keys in order. ``append``: into
    an empty database (``MDB_APPEND``: pages filled densely; a key out of order fails with
    MDB_KEYEXIST); else each row replaces the stored one only when it is newer
    (``replaces``). Returns ``(status, written, row)``: LMDB's return code (0: every row
    handled), how many rows were put, and the row that failed (-1: none). The caller words
    the code and aborts the transaction on failure."""
    cdef Py_ssize_t n = key_offsets.shape[0] - 1, written = 0, row = -1
    cdef MDB_dbi dbi
    cdef MDB_cursor *cursor = NULL
    cdef int rc
    if not txn:
        raise ValueError("put_rows: no transaction")
    if n < 0 or bad_offsets(key_offsets, n, keys.shape[0]):
        raise ValueError("put_rows: key offsets outside the keys or decreasing")
    if bad_offsets(offsets, n, data.shape[0]):
        raise ValueError("put_rows: value offsets not one per key, outside the data or "
                         "decreasing")
    cdef const uint8_t *key_start = &keys[0] if keys.shape[0] else NULL
    cdef const uint8_t *start = &data[0] if data.shape[0] else NULL
    cdef const char *name = db_name
    with nogil:
        rc = lib.dbi_open(<MDB_txn *> txn, name, 0, &dbi)
        if rc == 0:
            rc = lib.cursor_open(<MDB_txn *> txn, dbi, &cursor)
        if rc == 0:
            rc = put_loop(lib, <MDB_txn *> txn, dbi, cursor, key_start, &key_offsets[0], start,
                          &offsets[0], n, append, &written, &row)
            lib.cursor_close(cursor)
    return rc, written, row
