"""Seeded data for the offline-store write benchmarks, and the prepared tables they start from.

Rows: ``id`` (int64), ``ts`` (timestamp[us, UTC]) and ``f0..f{n-1}`` (float64). The history
is ``n_batches`` appends of ``batch_rows`` rows with increasing ranges: batch ``b`` holds the
ids ``[b * batch_rows, (b + 1) * batch_rows)`` (shuffled) and times inside day ``b``. The
upsert rows are existing ``(id, ts)`` pairs of the last batch with new feature values, so only
the files of the most recent append overlap them.

Both engines get the same rows: lakecore through ``FeatureGroup.insert`` (primary key ``id``,
event time ``ts``), deltalake through ``write_deltalake(..., mode="append")``.
"""

from __future__ import annotations

import os
import shutil
from typing import Iterator

import numpy as np
import pyarrow as pa

DAY_US = 24 * 3600 * 1_000_000
START_US = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z
TS_TYPE = pa.timestamp("us", tz="UTC")

BATCHES = 10
BATCH_ROWS = 1_000_000
UPSERT_ROWS = 100_000
N_COLS = 20
GROUP = "bench"


def _features(rng: np.random.Generator, n_rows: int, n_cols: int) -> dict[str, np.ndarray]:
    values = rng.standard_normal((n_cols, n_rows))
    return {f"f{i}": values[i] for i in range(n_cols)}


def float_batch(n_rows: int, n_cols: int = N_COLS, seed: int = 0, *, first_id: int = 0,
                day: int = 0) -> pa.Table:
    """``n_rows`` rows: ids ``first_id .. first_id + n_rows - 1`` in random order, times
    uniformly spread over day ``day`` (counted from 2026-01-01 UTC), standard normal floats."""
    rng = np.random.default_rng(seed)
    ids = first_id + rng.permutation(n_rows).astype(np.int64)
    ts = START_US + day * DAY_US + rng.integers(0, DAY_US, n_rows)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "ts": pa.array(ts, pa.int64()).cast(TS_TYPE),
        **_features(rng, n_rows, n_cols),
    })


def history_batch(b: int, batch_rows: int = BATCH_ROWS, n_cols: int = N_COLS,
                  seed: int = 0) -> pa.Table:
    """Append number ``b`` of the history (ids ``[b * batch_rows, (b + 1) * batch_rows)``,
    times in day ``b``)."""
    return float_batch(batch_rows, n_cols, seed=seed * 1000 + b, first_id=b * batch_rows, day=b)


def history(n_batches: int = BATCHES, batch_rows: int = BATCH_ROWS, n_cols: int = N_COLS,
            seed: int = 0) -> Iterator[pa.Table]:
    """The ``n_batches`` appends, oldest first, generated one at a time."""
    for b in range(n_batches):
        yield history_batch(b, batch_rows, n_cols, seed)


def upsert_rows(n_rows: int = UPSERT_ROWS, n_batches: int = BATCHES,
                batch_rows: int = BATCH_ROWS, n_cols: int = N_COLS, seed: int = 0) -> pa.Table:
    """``n_rows`` distinct ``(id, ts)`` pairs taken from the last append, in random order, with
    new feature values: every row replaces exactly one stored row."""
    last = history_batch(n_batches - 1, batch_rows, n_cols, seed)
    rng = np.random.default_rng(seed * 1000 + 999)
    picked = rng.choice(last.num_rows, n_rows, replace=False)
    keys = last.select(["id", "ts"]).take(pa.array(picked))
    return pa.table({"id": keys.column("id"), "ts": keys.column("ts"),
                     **_features(rng, n_rows, n_cols)})


# -- prepared folders ------------------------------------------------------------------------
def lakecore_group(lake_path: str):
    """The benchmark feature group of the lake in ``lake_path`` (created if missing)."""
    import lakecore

    lake = lakecore.open(lake_path)
    try:
        return lake.feature_group(GROUP)
    except lakecore.NotFoundError:
        return lake.create_feature_group(GROUP, primary_key="id", event_time="ts")


def write_lakecore_history(lake_path: str, n_batches: int = BATCHES,
                           batch_rows: int = BATCH_ROWS, n_cols: int = N_COLS, seed: int = 0):
    """A lake whose group holds the history, written as ``n_batches`` inserts."""
    fg = lakecore_group(lake_path)
    for batch in history(n_batches, batch_rows, n_cols, seed):
        fg.insert(batch)
    return fg


def write_deltalake_history(table_path: str, n_batches: int = BATCHES,
                            batch_rows: int = BATCH_ROWS, n_cols: int = N_COLS,
                            seed: int = 0) -> str:
    """A Delta table holding the history, written by deltalake as ``n_batches`` appends."""
    from deltalake import write_deltalake

    for batch in history(n_batches, batch_rows, n_cols, seed):
        write_deltalake(table_path, batch, mode="append")
    return table_path


def fresh_copy(prepared: str, target: str) -> str:
    """Copy the prepared folder to ``target`` (replacing it) and flush the copy to disk, so
    that its write-back does not run during the timed write that follows."""
    if os.path.exists(target):
        shutil.rmtree(target)
    if os.path.exists(prepared):
        shutil.copytree(prepared, target)
    os.sync()
    return target
