/* Small C++ helpers for the Cython kernels: things Cython cannot inline or express itself. */
#ifndef LAKECORE_SUPPORT_H
#define LAKECORE_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>

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
