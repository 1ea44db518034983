"""Mergeable column summaries: what a feature group's statistics are built from, one data file
at a time, so that a new commit costs only its own files.

Per file and column, a ``Summary`` keeps:

- counts, nulls, min, max, the sum and the sum of squared deviations: merged exactly (Chan's
  pairwise update), so counts, extremes, mean and std are exact in any merge;
- the sorted values when the file has at most ``POINTS`` of them, else ``POINTS`` order
  statistics at evenly spaced ranks, each standing for ``n / POINTS`` values. Merged points give
  quantiles and histogram counts within ``1 / (2 * POINTS)`` (0.012%) of rank per file's
  share: exact while every file is small;
- for distinct counts, the 64-bit hashes of the distinct values when there are at most
  ``HASHES`` of them (exact), else the ``HASHES`` smallest (a k-minimum-values sketch: relative
  standard error ``1 / sqrt(HASHES)`` = 0.4%, so the contract's 2% is five standard errors
  away). Unions of hash sets merge exactly;
- for strings and booleans, the counts of the ``TOP_KEPT`` most frequent values and the count
  of the rest: exact top values while every file has at most that many distinct values.

All of it is deterministic (no sampling, fixed hash): the same files give the same figures.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

POINTS = 4096
HASHES = 65536
TOP_KEPT = 1024

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_POSITION_WEIGHTS = np.random.default_rng(0x1A4EC0DE).integers(
    1, 2**63, size=256, dtype=np.uint64) | np.uint64(1)


class Summary(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One column of one data file (see the module's docstring). ``kind``: "number" (numbers
    and times, as float64 or int64 microseconds), "category" (strings, booleans) or "other"."""

    kind: str
    count: int
    nulls: int
    low: float | int | None = None
    high: float | int | None = None
    total: float = 0.0
    squares: float = 0.0                # sum of squared deviations from the file's mean
    points: bytes = b""                 # float64 or int64 order statistics, little-endian
    step: float = 1.0                   # values each point stands for
    hashes: bytes = b""                 # sorted distinct uint64 hashes (all, or the smallest)
    hashes_complete: bool = True        # every distinct value's hash is there
    top: list[tuple[str | bool, int]] = []
    rest: int = 0                       # values outside ``top``


def summarize(column: pa.ChunkedArray | pa.Array) -> Summary:
    """The summary of one column of one file."""
    t = column.type
    count = len(column)
    if pa.types.is_floating(t):
        column = pc.if_else(pc.is_nan(column), pa.scalar(None, t), column)
    valid = column.drop_null()
    nulls = count - len(valid)
    if pa.types.is_floating(t) and len(valid):
        valid = pc.add(valid, pa.scalar(0.0, t))    # -0.0 is 0.0: one distinct value
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = valid.to_numpy() if len(valid) else np.empty(0, np.float64)
        return _number_summary(count, nulls, values, is_time=False)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return _number_summary(count, nulls, as_micros(valid), is_time=True)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
        return _category_summary(count, nulls, valid)
    return Summary(kind="other", count=count, nulls=nulls)


def as_micros(valid: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Non-null times or dates as int64 microseconds since the epoch."""
    t = valid.type
    if not len(valid):
        return np.empty(0, np.int64)
    if pa.types.is_timestamp(t):
        return valid.cast(pa.timestamp("us", t.tz)).cast(pa.int64()).to_numpy()
    days = valid.cast(pa.int32()).cast(pa.int64()).to_numpy()
    return days * 86_400_000_000


def _number_summary(count: int, nulls: int, values: np.ndarray, is_time: bool) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(kind="number", count=count, nulls=nulls)
    as_int = values.dtype.kind in "iu" and (is_time or values.dtype.kind == "i")
    stored = values.astype(np.int64 if as_int else np.float64, copy=False)
    ordered = np.sort(stored)
    as_float = ordered if ordered.dtype == np.float64 else ordered.astype(np.float64)
    total = float(as_float.sum())
    mean = total / n
    deviations = as_float - mean
    squares = float(np.dot(deviations, deviations))
    if n <= POINTS:
        points, step = ordered, 1.0
    else:
        ranks = ((np.arange(POINTS) + 0.5) * (n / POINTS)).astype(np.int64)
        points, step = ordered[ranks], n / POINTS
    distinct = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
    hashes, complete = _smallest_hashes(_hash_fixed(distinct))
    return Summary(kind="number", count=count, nulls=nulls, low=ordered[0].item(),
                   high=ordered[-1].item(), total=total, squares=squares,
                   points=points.astype(points.dtype.newbyteorder("<")).tobytes(), step=step,
                   hashes=hashes, hashes_complete=complete)


def _category_summary(count: int, nulls: int, valid: pa.ChunkedArray | pa.Array) -> Summary:
    if not len(valid):
        return Summary(kind="category", count=count, nulls=nulls)
    counts = pc.value_counts(valid)
    values = counts.field("values")
    frequencies = counts.field("counts").to_numpy()
    order = np.lexsort((np.arange(len(frequencies)), -frequencies))[:TOP_KEPT]
    kept = values.take(pa.array(order)).to_pylist()
    kept_counts = frequencies[order].tolist()
    top = sorted(zip(kept, kept_counts), key=lambda p: (-p[1], p[0]))
    if pa.types.is_boolean(valid.type):
        distinct = np.array([1 + int(v) for v in values.to_pylist()], np.uint64)
    else:
        distinct = _hash_strings(values)
    hashes, complete = _smallest_hashes(distinct)
    return Summary(kind="category", count=count, nulls=nulls, top=top,
                   rest=len(valid) - int(sum(kept_counts)), hashes=hashes,
                   hashes_complete=complete)


# -- hashing ---------------------------------------------------------------------------------
def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, in place: every input bit moves every output bit."""
    shifted = np.empty_like(h)
    with np.errstate(over="ignore"):
        for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(h, np.uint64(shift), out=shifted)
            h ^= shifted
            h *= np.uint64(factor)
        np.right_shift(h, np.uint64(31), out=shifted)
        h ^= shifted
    return h


def _hash_fixed(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of int64 or float64 values (by their bits)."""
    return _mix(np.ascontiguousarray(values).view(np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))


def _hash_strings(values: pa.Array) -> np.ndarray:
    """64-bit hashes of distinct strings: a weighted sum of their bytes (weights cycling
    every 256 bytes) and their length, mixed."""
    values = values.cast(pa.large_binary()) if not pa.types.is_large_binary(values.type) \
        else values
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[values.offset:values.offset + len(values) + 1]
    data = (np.frombuffer(data_buffer, np.uint8) if data_buffer is not None
            else np.empty(0, np.uint8))
    start, end = offsets[:-1], offsets[1:]
    lengths = (end - start).astype(np.uint64)
    total = int(end[-1] - start[0]) if len(values) else 0
    sums = np.zeros(len(values), np.uint64)
    if total:
        used = data[start[0]:end[-1]].astype(np.uint64) + np.uint64(1)
        owner = np.repeat(np.arange(len(values)), (end - start))
        position = np.arange(total, dtype=np.int64) - (start - start[0])[owner]
        with np.errstate(over="ignore"):
            products = used * _POSITION_WEIGHTS[position % len(_POSITION_WEIGHTS)]
        nonempty = end > start
        sums[nonempty] = np.add.reduceat(products, (start - start[0])[nonempty])
    with np.errstate(over="ignore"):
        return _mix(sums ^ (lengths * np.uint64(0xD6E8FEB86659FD93)))


def _smallest_hashes(hashes: np.ndarray) -> tuple[bytes, bool]:
    """The ``HASHES`` smallest of distinct values' hashes, sorted; whether that is all."""
    complete = len(hashes) <= HASHES
    if not complete:
        hashes = np.partition(hashes, HASHES - 1)[:HASHES]
    return np.sort(hashes).astype("<u8").tobytes(), complete
