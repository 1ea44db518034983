# distutils: language = c++
"""Arrow validity bitmaps for as-of results, made in one native pass: a negative result (no
match) becomes a null of ``take``'s indices."""
from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t

import numpy as np

from lakecore._native.memory import empty

from lakecore._native._types cimport LAKECORE_HAS_OPENMP, code_t


cdef inline int64_t validity_byte(
    code_t *indices, int64_t n, int64_t b, uint8_t *bits,
) noexcept nogil:
    """Bit j of ``bits[b]``: entry ``8 * b + j`` is not negative; negative entries become 0.
    Returns how many were negative."""
    cdef int64_t i, end = min(8 * b + 8, n), missing = 0
    cdef uint8_t byte = 0
    for i in range(8 * b, end):
        if indices[i] >= 0:
            byte |= <uint8_t>(1 << (i - 8 * b))
        else:
            indices[i] = 0
            missing += 1
    bits[b] = byte
    return missing


def index_validity(code_t[::1] indices, int num_threads=1):
    """Ready as-of results for Arrow ``take``: every negative entry becomes 0, in place.

    Returns ``(bitmap, missing)``: how many entries were negative and, when some were, an Arrow
    validity bitmap (one bit per entry, least significant first, 1 = valid) that marks them, else
    ``None``. One pass, with no temporary as big as the entries.
    """
    cdef int64_t n = indices.shape[0], n_bytes = (n + 7) // 8, b, missing = 0
    if n == 0:
        return None, 0
    num_threads = max(num_threads, 1) if LAKECORE_HAS_OPENMP else 1
    bitmap = empty(n_bytes, np.uint8)
    cdef uint8_t[::1] bits = bitmap
    with nogil:
        for b in prange(n_bytes, schedule="static", num_threads=num_threads,
                        use_threads_if=num_threads > 1):
            missing += validity_byte(&indices[0], n, b, &bits[0])
    return (bitmap if missing else None), missing
