# distutils: language = c++
"""The online store's row format, and where a feature group's columns sit in it (``RowLayout``).

Key (``keycodec``): each key column in order, integers (and dates, timestamps, booleans, all
widened to int64) as 8 big-endian bytes with the sign bit flipped, so byte order is numeric
order; strings and binary as a 2-byte big-endian length and the bytes.

Value (``valuecodec``): event time (int64, us), commit version (int64), a null bitmap (bit c
set = column c is null), the fixed-width columns' bytes (zeros when null; booleans take one
byte), then every variable-width column as a 4-byte length and its payload:

- string / binary: the bytes;
- list of fixed-width or boolean: element count (u32), element null bitmap, element bytes;
- list of string / binary: element count (u32), element null bitmap, element lengths (u32
  each), element bytes.

``batchexport`` decodes many keys and values at once into Arrow. The declarations and the
inline helpers every codec shares are in ``rowformat.pxd``; the bytes on disk are pinned by the
golden-bytes tests in ``tests/test_rowcodec.py``.
"""


class ValueRefused(ValueError):
    """Values the codec cannot decode: ``status`` (a ``ValueStatus``), the feature ``column``
    (-1: the keys), the ``row`` (-1: not one row) and a ``detail``. Kernels report; they do not
    word messages for users."""

    def __init__(self, int status, Py_ssize_t column, Py_ssize_t row, detail):
        super().__init__(status, column, row, detail)
        self.status, self.column, self.row, self.detail = status, column, row, detail


cdef class RowLayout:
    """Where each feature column lives in a value. Columns are numbered in output order,
    without the event time; ``time_position`` is where the event time goes among the value
    columns of a decoded batch (-1: the group has none). Key columns (``key_kinds``: FIXED,
    BOOL or BYTES, with ``key_widths``) come first in a decoded batch."""

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

    def key_kind(self, Py_ssize_t k):
        """The ``Kind`` of key column k."""
        return self.key_kinds[k]
