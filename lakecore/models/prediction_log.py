"""Logging what a predictor served: request keys, features before transforms, the prediction,
the model and the time, into the offline group ``NAME_predictions``.

A ``predict`` call only keeps references to its Arrow columns in a buffer (no conversion, no
copy); the buffer is committed as one insert when it holds ``FLUSH_ROWS`` rows or its oldest
row is ``FLUSH_SECONDS`` old (checked on each call), on ``flush()``, on the predictor's
``close()`` and on ``lake.close()``. A crash loses at most the buffer; a child made by
``fork()`` starts with an empty one (the parent's rows are the parent's to commit). The group is created on
the first commit: primary key the request's key columns, event time ``logged_at``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pyarrow as pa

FLUSH_ROWS = 10_000
FLUSH_SECONDS = 10.0
TIME = pa.timestamp("us", "UTC")


class PredictionLog:
    """The buffer of one predictor's served rows, and its commits."""

    def __init__(self, lake: Any, model: str):
        self._lake, self._model = lake, model
        self.group = f"{model}_predictions"
        self._parts: list[tuple[pa.Table, pa.Table, Any, int, int]] = []
        self._rows = 0
        self._since = 0.0
        self._pid = os.getpid()

    def _forked(self) -> None:
        """In a child made by ``fork()``, forget the parent's buffered rows: they are the
        parent's to commit, and the child logs its own from here on."""
        if self._pid != os.getpid():
            self._parts, self._rows, self._pid = [], 0, os.getpid()

    def record(self, keys: pa.Table, raw: pa.Table, prediction: Any, version: int) -> None:
        """Keep one call's rows (``keys``: the request key columns, ``raw``: the features as
        served), committed with the next flush."""
        self._forked()
        if not self._parts:
            self._since = time.monotonic()
        self._parts.append((keys, raw, prediction, version, time.time_ns() // 1000))
        self._rows += keys.num_rows
        if self._rows >= FLUSH_ROWS or time.monotonic() - self._since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit the buffered rows (one insert); nothing to do when empty."""
        self._forked()
        if not self._parts:
            return
        parts, self._parts, self._rows = self._parts, [], 0
        table = _rows(parts, self._model)
        try:
            group = self._lake.feature_group(self.group)
        except KeyError:
            keys = parts[0][0].column_names
            group = self._lake.create_feature_group(
                self.group, primary_key=list(keys), event_time="logged_at",
                description=f"predictions served by model {self._model!r}")
        group.insert(table)


def _rows(parts: list[tuple[pa.Table, pa.Table, Any, int, int]], model: str) -> pa.Table:
    """The buffered calls as one table, built column by column (not call by call)."""
    keys = pa.concat_tables([p[0] for p in parts], promote_options="permissive")
    raw = pa.concat_tables([p[1] for p in parts], promote_options="permissive")
    sizes = np.array([p[0].num_rows for p in parts])
    values = [np.asarray(p[2]) for p in parts]
    if values[0].ndim == 2:                     # per-class probabilities: one list per row
        stacked = np.concatenate(values).astype(np.float64)
        predicted = pa.array(list(stacked), pa.list_(pa.float64()))
    else:
        predicted = pa.array(np.concatenate([v.reshape(-1) for v in values]))
        if pa.types.is_integer(predicted.type) or pa.types.is_floating(predicted.type):
            predicted = predicted.cast(pa.float64())
    columns = {name: keys.column(name) for name in keys.column_names}
    for name in raw.column_names:
        if name not in columns:
            columns[name] = raw.column(name)
    n = keys.num_rows
    columns["prediction"] = predicted
    columns["model"] = pa.array([model] * n, pa.string())
    columns["model_version"] = pa.array(np.repeat([p[3] for p in parts], sizes).astype(np.int64))
    columns["logged_at"] = pa.array(np.repeat([p[4] for p in parts], sizes).astype(np.int64)
                                    ).cast(TIME)
    return pa.table(columns)
