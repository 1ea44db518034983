/* Small C++ helpers for the Cython kernels: things Cython cannot inline or express itself. */
#ifndef LAKECORE_SUPPORT_H
#define LAKECORE_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifdef _OPENMP
#define LAKECORE_HAS_OPENMP 1
#else
#define LAKECORE_HAS_OPENMP 0
#endif

/* One row inside a key bucket: its time and its row number. */
template <typename T> struct TimedRow { T t; int64_t row; };

/* Sort a bucket by time only (not stable: callers resolve equal times by row number). */
template <typename T> static inline void sort_timed_rows(TimedRow<T> *first, TimedRow<T> *last) {
    std::sort(first, last, [](const TimedRow<T> &a, const TimedRow<T> &b) { return a.t < b.t; });
}

/* Index of the lowest set bit of a non-zero word. */
static inline int lowest_bit(uint64_t x) { return __builtin_ctzll(x); }

/* Bit j of the result: lo <= codes[j] < hi, for the n <= 64 codes from codes[0].
   0 <= lo <= hi < 2**63 (2**31 for int32 codes), so one unsigned comparison of codes[j] - lo
   with hi - lo is exact: a negative code wraps to a distance of at least 2**63 (2**31). */
template <typename C>
static inline uint64_t codes_in_range(const C *codes, int n, int64_t lo, int64_t hi) {
    const uint64_t span = (uint64_t)(hi - lo);
    uint64_t mask = 0;
    for (int j = 0; j < n; j++)
        mask |= (uint64_t)((uint64_t)(int64_t)codes[j] - (uint64_t)lo < span) << j;
    return mask;
}

#if defined(__SSE2__)
/* The same for int32 codes, four at a time. */
template <>
inline uint64_t codes_in_range<int32_t>(const int32_t *codes, int n, int64_t lo, int64_t hi) {
    if (n < 64) {
        const uint32_t span = (uint32_t)(hi - lo);
        uint64_t mask = 0;
        for (int j = 0; j < n; j++)
            mask |= (uint64_t)((uint32_t)codes[j] - (uint32_t)lo < span) << j;
        return mask;
    }
    /* SSE2 compares signed: flip the top bit of both sides to compare unsigned. */
    const __m128i top = _mm_set1_epi32(INT32_MIN);
    const __m128i first = _mm_set1_epi32((int32_t)lo);
    const __m128i span = _mm_set1_epi32((int32_t)((uint32_t)(hi - lo) ^ 0x80000000u));
    uint64_t mask = 0;
    for (int j = 0; j < 64; j += 4) {
        __m128i c = _mm_loadu_si128((const __m128i *)(codes + j));
        __m128i distance = _mm_xor_si128(_mm_sub_epi32(c, first), top);
        __m128i inside = _mm_cmplt_epi32(distance, span);
        mask |= (uint64_t)(unsigned)_mm_movemask_ps(_mm_castsi128_ps(inside)) << j;
    }
    return mask;
}
#endif

/* 64-bit finalizer (splitmix64): a cheap, well-mixed hash for integer keys. */
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Hash of a byte string, eight bytes at a time. */
static inline uint64_t hash_bytes(const unsigned char *p, int64_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w; memcpy(&w, p, 8);
        h = mix64(h ^ w);
        p += 8; n -= 8;
    }
    if (n > 0) {
        uint64_t w = 0; memcpy(&w, p, (size_t)n);
        h = mix64(h ^ w ^ 0xff51afd7ed558ccdULL);
    }
    return h;
}

#endif
