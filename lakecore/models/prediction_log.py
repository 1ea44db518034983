"""Logging what a predictor served: request keys, features before transforms, the prediction,
the model and the time, into the offline group ``NAME_predictions``.

A ``predict`` call only appends to a buffer: a one-key call its Python values (a tuple), a
batch call references to its Arrow columns (no conversion, no copy). A background thread
commits the buffer as one insert when it holds ``FLUSH_ROWS`` rows or its oldest row is
``FLUSH_SECONDS`` old, so the call that fills it does not wait for the commit; ``flush()``, the
predictor's ``close()`` and ``lake.close()`` commit in the caller's thread. A crash loses at
most the buffer; a child made by ``fork()`` starts with an empty one and no thread (the
parent's rows are the parent's to commit). The group is created on the first commit: primary
key the request's key columns, event time ``logged_at``.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from typing import Any

import numpy as np
import pyarrow as pa

FLUSH_ROWS = 10_000
FLUSH_SECONDS = 10.0
TIME = pa.timestamp("us", "UTC")

_logs: weakref.WeakSet[PredictionLog] = weakref.WeakSet()


class _Rows:
    """Consecutive one-key calls of one kind (``ident``: key names, feature schema, model
    version): their values, column by column."""

    __slots__ = ("ident", "columns", "predictions", "times")

    def __init__(self, ident: tuple[tuple, pa.Schema, int]):
        self.ident = ident
        self.columns: list[list] = [[] for _ in range(len(ident[0]) + len(ident[1]))]
        self.predictions: list = []
        self.times: list[int] = []              # ns


class PredictionLog:
    """The buffer of one predictor's served rows, and its commits."""

    def __init__(self, lake: Any, model: str):
        self._lake, self._model = lake, model
        self.group = f"{model}_predictions"
        self._reset()
        _logs.add(self)

    def _reset(self) -> None:
        """An empty buffer, fresh locks and no thread (also in a child after ``fork()``)."""
        self._parts: list[tuple | _Rows] = []
        self._tail: _Rows | None = None         # the last part, when one-key rows
        self._rows = 0
        self._since = 0.0
        self._lock = threading.Lock()           # the buffer
        self._due = threading.Condition(self._lock)
        self._committing = threading.Lock()     # one commit at a time, in order
        self._thread: threading.Thread | None = None
        self._closed = False
        self.failure: BaseException | None = None   # the background commit's last error

    # -- recording (the serving thread) ------------------------------------------------------
    def record(self, keys: pa.Table, raw: pa.Table, prediction: Any, version: int) -> None:
        """Keep one batch call's rows (``keys``: the request key columns, ``raw``: the
        features as served)."""
        part = (keys, raw, prediction, version, time.time_ns() // 1000)
        with self._lock:
            if not self._parts:
                self._started()
            self._parts.append(part)
            self._tail = None
            self._rows += keys.num_rows
            if self._rows >= FLUSH_ROWS:
                self._due.notify()

    def record_row(self, ident: tuple[tuple, pa.Schema, int], key: dict[str, Any],
                   features: dict[str, Any], prediction: Any) -> None:
        """Keep one one-key call's values (``key`` and ``features`` in ``ident``'s order).
        ``ident``: the key names, the features' schema and the model version, one object for
        as long as they stay the same. A serving hot path: about a microsecond."""
        now = time.time_ns()
        with self._lock:
            tail = self._tail
            if tail is None or tail.ident is not ident:
                if not self._parts:
                    self._started()
                tail = self._tail = _Rows(ident)
                self._parts.append(tail)
            columns = tail.columns
            i = 0
            for value in key.values():
                columns[i].append(value)
                i += 1
            for value in features.values():
                columns[i].append(value)
                i += 1
            tail.predictions.append(prediction)
            tail.times.append(now)
            self._rows += 1
            if self._rows >= FLUSH_ROWS:
                self._due.notify()

    def _started(self) -> None:
        """A new buffer: the thread times it from now (and is started, the first time)."""
        self._since = time.monotonic()
        self._due.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"lakecore-log-{self.group}",
                                            daemon=True)
            self._thread.start()

    # -- committing --------------------------------------------------------------------------
    def _run(self) -> None:
        """The background committer: waits until the buffer is full or old enough."""
        while True:
            with self._lock:
                while not self._closed and not (
                        self._parts and (self._rows >= FLUSH_ROWS
                                         or time.monotonic() - self._since >= FLUSH_SECONDS)):
                    wait = None if not self._parts else \
                        max(self._since + FLUSH_SECONDS - time.monotonic(), 0.0)
                    self._due.wait(wait)
                if self._closed:
                    return
            try:
                self.flush()
            except BaseException as exc:        # kept for the next flush() to raise
                self.failure = exc
                warnings.warn(f"prediction log {self.group!r}: a background commit failed "
                              f"({exc}); the rows stay buffered", stacklevel=1)
                with self._lock:
                    self._due.wait(FLUSH_SECONDS)     # not again at once

    def flush(self) -> None:
        """Commit the buffered rows (one insert); nothing to do when empty. Rows a failed
        commit leaves stay buffered, ahead of newer ones."""
        with self._committing:
            with self._lock:
                parts, self._parts, rows, self._rows = self._parts, [], self._rows, 0
                self._tail = None
            if not parts:
                return
            try:
                self._commit(parts)
            except BaseException:
                with self._lock:
                    self._parts[:0] = parts
                    if len(self._parts) == len(parts):
                        self._tail = None if type(parts[-1]) is not _Rows else parts[-1]
                    self._rows += rows
                    self._since = min(self._since, time.monotonic())
                raise
            self.failure = None

    def close(self) -> None:
        """Commit what is buffered and stop the background thread (a later record starts
        another)."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                self._due.notify()
                thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join()
            with self._lock:
                self._closed, self._thread = False, None

    def _commit(self, parts: list[tuple | _Rows]) -> None:
        table = _rows(self._tables(parts), self._model)
        try:
            group = self._lake.feature_group(self.group)
        except KeyError:
            keys = _key_names(parts[0])
            group = self._lake.create_feature_group(
                self.group, primary_key=list(keys), event_time="logged_at",
                description=f"predictions served by model {self._model!r}")
        group.insert(table)

    def _tables(self, parts: list[tuple | _Rows]) -> list[tuple]:
        """Every part as (keys, raw, predictions, versions, times) of Arrow tables."""
        out = []
        for part in parts:
            if type(part) is not _Rows:
                keys, raw, prediction, version, at = part
                n = keys.num_rows
                out.append((keys, raw, np.asarray(prediction), np.full(n, version),
                            np.full(n, at)))
                continue
            key_names, schema, version = part.ident
            n_keys = len(key_names)
            keys = pa.table({name: pa.array(column) for name, column in
                             zip(key_names, part.columns[:n_keys])})
            raw = pa.table([pa.array(column, field.type) for field, column in
                            zip(schema, part.columns[n_keys:])], schema=schema)
            n = len(part.times)
            first = part.predictions[0]
            # one row per call: (1,) or (1, k) each; arrays concatenate far faster than
            # np.asarray walks a list of them
            predicted = np.concatenate(part.predictions) if type(first) is np.ndarray \
                and first.ndim >= 1 else np.asarray(part.predictions)
            predicted = predicted.reshape(n, -1) if predicted.ndim >= 2 and \
                predicted.size != n else predicted.reshape(-1)
            out.append((keys, raw, predicted, np.full(n, version),
                        np.array(part.times, np.int64) // 1000))
        return out


def _key_names(part: tuple | _Rows) -> tuple:
    return part.ident[0] if type(part) is _Rows else tuple(part[0].column_names)


def _after_fork_in_child() -> None:
    for log in list(_logs):
        log._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _rows(parts: list[tuple], model: str) -> pa.Table:
    """The buffered calls as one table, built column by column (not call by call)."""
    keys = pa.concat_tables([p[0] for p in parts], promote_options="permissive")
    raw = pa.concat_tables([p[1] for p in parts], promote_options="permissive")
    values = [p[2] for p in parts]
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
    columns["model_version"] = pa.array(np.concatenate([p[3] for p in parts]).astype(np.int64))
    columns["logged_at"] = pa.array(np.concatenate([p[4] for p in parts]).astype(np.int64)
                                    ).cast(TIME)
    return pa.table(columns).combine_chunks()
