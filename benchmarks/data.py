"""One seeded generator for every benchmark: unsorted as-of join inputs.

Left: ``key`` (int64), ``ts`` (timestamp[us]), ``lid`` (row id). Right: ``key``, ``ts``,
``rid`` (row id). Right times are unique, so every engine must pick the same row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

SPAN_US = 365 * 24 * 3600 * 1_000_000  # one year of microseconds
START_US = 1_700_000_000 * 1_000_000


def asof_tables(n_left: int, n_right: int, n_keys: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    slot = SPAN_US // n_right
    right_times = START_US + rng.permutation(n_right) * slot + rng.integers(0, slot, n_right)
    left = pa.table({
        "key": rng.integers(0, n_keys, n_left),
        "ts": pa.array(START_US + rng.integers(0, SPAN_US, n_left)).cast(pa.timestamp("us")),
        "lid": np.arange(n_left),
    })
    right = pa.table({
        "key": rng.integers(0, n_keys, n_right),
        "ts": pa.array(right_times).cast(pa.timestamp("us")),
        "rid": np.arange(n_right),
    })
    return left, right


def string_keys(table: pa.Table) -> pa.Table:
    """The same table with its integer keys spelled as strings."""
    keys = pa.array(np.char.add("key-", table.column("key").to_numpy().astype(str)))
    return table.set_column(0, "key", keys)
