"""Data for the online-store benchmarks: ``n`` entities x 20 float features, and the lake,
py-lmdb and sqlite3 stores holding the same rows."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pyarrow as pa

import lakecore

FEATURES = 20
EVENT_TIME = 1_900_000_000_000_000      # one time for every row, in microseconds (2030)


def entity_rows(n: int, seed: int = 0) -> pa.Table:
    """``id`` 0..n-1 (shuffled), ``ts``, ``f0..f19`` (float64, uniform)."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(n).astype(np.int64)
    times = pa.array(np.full(n, EVENT_TIME, np.int64)).cast(pa.timestamp("us", "UTC"))
    features = {f"f{i}": rng.random(n) for i in range(FEATURES)}
    return pa.table({"id": ids, "ts": times, **features})


def online_lake(path: str, rows: pa.Table):
    """A lake at ``path`` whose online group ``entities`` holds ``rows``; returns the lake
    and the group."""
    lake = lakecore.open(path)
    fg = lake.create_feature_group("entities", primary_key="id", event_time="ts", online=True)
    fg.insert(rows)
    return lake, fg


def request_keys(n: int, count: int, seed: int = 1) -> pa.Table:
    """``count`` random existing ids (repeats allowed), as online_read takes them."""
    rng = np.random.default_rng(seed)
    return pa.table({"id": rng.integers(0, n, count, dtype=np.int64)})


def sqlite_store(path: str, keys: list[bytes], values: list[bytes]) -> sqlite3.Connection:
    """A WITHOUT ROWID table ``(k BLOB PRIMARY KEY, v BLOB)`` of the same encoded rows (the
    embedded alternative); default durability (rollback journal, synchronous=FULL)."""
    if os.path.exists(path):
        os.remove(path)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE rows (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
    with connection:
        connection.executemany("INSERT INTO rows VALUES (?, ?)", zip(keys, values))
    return connection
