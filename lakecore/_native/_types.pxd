# Types shared by the native kernels.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

# Times reach the as-of kernel as int64 (timestamps, dates, integers) or float64.
ctypedef fused time_t:
    int64_t
    double

# Dense key codes: int32 halves their memory when there are fewer than 2**31 rows.
ctypedef fused code_t:
    int32_t
    int64_t

cdef extern from "support.h" nogil:
    int LAKECORE_HAS_OPENMP
    cdef cppclass TimedRow[T]:
        T t
        int64_t row
    void sort_timed_rows[T](TimedRow[T] *first, TimedRow[T] *last)
    int lowest_bit(uint64_t x)
    uint64_t codes_in_range[C](const C *codes, int n, int64_t lo, int64_t hi)
    uint64_t mix64(uint64_t x)
    uint64_t hash_bytes(const unsigned char *p, int64_t n)
