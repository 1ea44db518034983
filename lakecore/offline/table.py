"""A feature group's offline table: Parquet files plus its Delta log, written copy-on-write.

Upserts and deletes rewrite only the files whose key ranges overlap the incoming keys. Each
data file carries, in ``add.tags``, its sha256 (computed while writing it) and the exact
min/max of every key and event-time column; ``add.stats`` holds exact Delta statistics (or
none for a column where exactness is not certain), because other readers trust them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore._version import __version__
from lakecore.base.files import fsync_path
from lakecore.base.hashing import digest_bytes, digest_record
from lakecore.base.keys import (
    key_hashes,
    last_of_each_key,
    rows_matching,
    sharing_a_value,
)
from lakecore.base.parquet import ROW_GROUP_ROWS, read_parquet, write_parquet
from lakecore.base.threads import SMALL_INPUT_BYTES, get_num_threads
from lakecore.base.times import now_millis, utc_millis
from lakecore.errors import ConflictError
from lakecore.offline.compaction import file_rows
from lakecore.offline.delta_log import (
    CHECKPOINT_INTERVAL,
    PROTOCOL,
    DeltaLog,
    RecordedCommit,
    Snapshot,
)
from lakecore.offline.evolution import check_values_fit, fit
from lakecore.offline.ready_files import ReadyFiles, data_file_name
from lakecore.offline.schema import from_delta_schema_string, to_delta_schema_string

# Rows per data file: big enough for fast scans, small enough that an upsert touching recent
# keys rewrites little.
MAX_FILE_ROWS = ROW_GROUP_ROWS
# Below this many rows a file is written on one thread.
_PARALLEL_ROWS = 1 << 17
SHA_TAG = "lakecore.sha256"
RANGES_TAG = "lakecore.ranges"
_MAX_STAT_STRING = 32


# (column, lo, hi): rows with lo <= column <= hi (None: unbounded), as recorded ranges hold it
Window = tuple[str, "int | None", "int | None"]


@dataclass
class Change:
    """What one operation commits: files to add and remove, and its row counts."""

    operation: str
    adds: list[dict[str, Any]]
    removes: list[dict[str, Any]]
    rows_added: int
    rows_removed: int
    key_ranges: dict[str, list[Any]] | None  # the keys it touched, for conflict checks
    data_change: bool = True
    rows: pa.Table | None = None              # the rows an insert wrote (for the online store)
    row_files: list[str] | None = None        # or, when not held, the files holding them


def table_schema(snapshot: Snapshot, declared: str | None) -> pa.Schema | None:
    """A table's schema at ``snapshot``: its log's, else the one declared at creation (a
    Delta schemaString), else None (no schema and no rows yet)."""
    if snapshot.metadata is not None:
        return from_delta_schema_string(snapshot.metadata["schemaString"])
    if declared is not None:
        return from_delta_schema_string(declared)
    return None


def _range_value(value: Any) -> Any:
    """A JSON-able, order-preserving form of a key value for range checks."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bool):
        return int(value)
    return value


def _min_max(column: pa.ChunkedArray) -> tuple[Any, Any]:
    """Exact min and max of a column with at least one valid value (NaN propagates for floats:
    numpy's min/max of a float column holding NaN is NaN)."""
    t = column.type
    if column.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        values = column.to_numpy()
        return values.min().item(), values.max().item()
    mm = pc.min_max(column)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if pa.types.is_floating(t) and pc.any(pc.is_nan(column)).as_py():
        return float("nan"), float("nan")
    return lo, hi


def column_ranges(table: pa.Table, columns: list[str]) -> dict[str, list[Any]]:
    """Exact ``[min, max]`` of each column, as integers (times in us, dates in days) or text."""
    ranges = {}
    for name in columns:
        column = table.column(name)
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = column.cast(pa.int64() if pa.types.is_timestamp(column.type) else pa.int32())
        if len(column) == 0 or column.null_count == len(column):
            continue
        lo, hi = _min_max(column)
        ranges[name] = [_range_value(lo), _range_value(hi)]
    return ranges


def ranges_overlap(a: dict[str, list[Any]], b: dict[str, list[Any]], columns: list[str]) -> bool:
    """Whether two key-range maps may share a key (missing ranges: maybe)."""
    for name in columns:
        if name in a and name in b:
            (lo1, hi1), (lo2, hi2) = a[name], b[name]
            if hi1 < lo2 or hi2 < lo1:
                return False
    return True


def delta_stats(table: pa.Table) -> str:
    """Delta file statistics that are exact: counts for every column, min/max only where
    lakecore and every reader agree on the order and the encoding."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_list(field.type):
            continue
        nulls[field.name] = column.null_count
        if column.null_count == len(column):
            continue
        t = field.type
        if pa.types.is_date(t):
            lo, hi = (v.isoformat() for v in _min_max(column))
        elif pa.types.is_integer(t):
            lo, hi = _min_max(column)
        elif pa.types.is_floating(t):
            lo, hi = _min_max(column)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                continue  # NaN or infinities: readers order them differently
        elif pa.types.is_string(t):
            lo, hi = _min_max(column)
            if len(lo) > _MAX_STAT_STRING or len(hi) > _MAX_STAT_STRING:
                continue
        else:
            continue
        mins[field.name], maxs[field.name] = lo, hi
    stats = {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs,
             "nullCount": nulls}
    return json.dumps(stats, separators=(",", ":"))


class OfflineTable:
    """One Delta table with a fixed schema and key columns."""

    def __init__(self, location: str, key_columns: list[str], primary_key: list[str],
                 recorded: Callable[[int], RecordedCommit | None] | None = None):
        self.location = location
        self.log = DeltaLog(location, recorded)
        self.key_columns = key_columns      # primary key, then event_time if any
        self.primary_key = primary_key
        self.pending: list[str] = []        # files written and not yet committed
        self.ready_files = ReadyFiles(location)
        self.unsynced_names = False         # a pending file's name still needs a folder fsync
        self.online_layout = None           # the online row layout of the current schema
        # the latest commit the online store is known (in this process) to be current with:
        # its watermark, or a compaction after it
        self.online_version = -2
        self.history_shown: list = []       # history() as the feature layer shows it, so far
        self.statistics_cache: dict = {}    # (commit, column) -> its statistics (immutable)

    def drop_caches(self) -> None:
        """Forget what this process cached of the table's files (after they were rewritten
        in place: ``offline.rewrite``)."""
        self.log = DeltaLog(self.location, self.log.recorded)
        self.history_shown = []
        self.statistics_cache = {}

    # -- reading -----------------------------------------------------------------------------
    def snapshot(self, version: int | None = None) -> Snapshot:
        return self.log.snapshot(version)

    def version_at(self, when: dt.datetime) -> int:
        """The last version committed at or before ``when`` (-1: none)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        limit = utc_millis(when)
        found = -1
        for version, ts, _ in self.log.history():
            if ts <= limit:
                found = version
            else:
                break
        return found

    def read(self, snapshot: Snapshot, schema: pa.Schema, columns: list[str] | None,
             within: Window | None = None, keys_within: Window | None = None) -> pa.Table:
        """The table's rows (``columns`` only, when given). ``within``: ``(time column, lo,
        hi)`` in microseconds; files whose recorded range of that column lies outside
        ``[lo, hi]`` are skipped (their rows may still be outside it: filter after).
        ``keys_within``: the same for an integer key column."""
        return self._read_files(self.files_within(snapshot, within, keys_within), schema,
                                columns)

    def files_within(self, snapshot: Snapshot, within: Window | None,
                     keys_within: Window | None = None) -> list[dict[str, Any]]:
        """The ``add`` actions of the live files that may hold rows ``within`` (and
        ``keys_within``; see ``read``)."""
        windows = [w for w in (within, keys_within) if w is not None]
        return [a for a in snapshot.files.values() if all(_may_hold(a, *w) for w in windows)]

    def read_in_batches(self, snapshot: Snapshot, schema: pa.Schema, columns: list[str],
                        within: Window | None, max_rows: int,
                        keys_within: Window | None = None) -> Iterator[pa.Table]:
        """``read``'s rows as tables of whole files, each of at most ``max_rows`` rows (or
        one file): memory follows a batch, not the table. The next batch is read while the
        caller works on this one."""
        batches: list[list[dict[str, Any]]] = [[]]
        held = 0
        for add in self.files_within(snapshot, within, keys_within):
            rows = file_rows(add) or max_rows
            if batches[-1] and held + rows > max_rows:
                batches.append([])
                held = 0
            batches[-1].append(add)
            held += rows
        with ThreadPoolExecutor(1) as reader:
            ahead = reader.submit(self._read_files, batches[0], schema, columns)
            for following in batches[1:] + [None]:
                found = ahead.result()
                if following is not None:
                    ahead = reader.submit(self._read_files, following, schema, columns)
                yield found
                del found

    def _read_files(self, adds: list[dict[str, Any]], schema: pa.Schema,
                    columns: list[str] | None) -> pa.Table:
        target = schema if columns is None else pa.schema([schema.field(c) for c in columns])
        files = {a["path"]: a for a in adds}
        paths = [os.path.join(self.location, p) for p in files]
        if not paths:
            return target.empty_table()
        threads = _file_threads(adds)
        if threads > 1 and len(paths) > 1:     # a file per thread (threads within a file
            with ThreadPoolExecutor(min(threads, len(paths))) as pool:  # as well: slower)
                parts = list(pool.map(
                    lambda p: read_parquet(p, target.names, use_threads=False), paths))
        else:
            parts = [read_parquet(p, target.names) for p in paths]
        return pa.concat_tables([fit(part, target) for part in parts])

    # -- writing data files ------------------------------------------------------------------
    def write_files(self, table: pa.Table, version_hint: int, data_change: bool = True,
                    ) -> list[dict[str, Any]]:
        """Write ``table`` as one or more new Parquet files; their ``add`` actions."""
        if table.num_rows == 0:
            return []
        # One file per MAX_FILE_ROWS, and at least one per thread for big writes.
        threads = get_num_threads()
        pieces = max(-(-table.num_rows // MAX_FILE_ROWS),
                     min(threads, table.num_rows // _PARALLEL_ROWS), 1)
        bounds = [table.num_rows * i // pieces for i in range(pieces + 1)]
        slices = [table.slice(bounds[i], bounds[i + 1] - bounds[i]) for i in range(pieces)]
        if pieces == 1:
            return [self._write_file(slices[0], version_hint, data_change, ready=True)]
        with ThreadPoolExecutor(min(threads, pieces)) as pool:
            return list(pool.map(lambda s: self._write_file(s, version_hint, data_change), slices))

    def write_file(self, table: pa.Table, version_hint: int) -> dict[str, Any]:
        """``table`` as one new data file (safe to call from one writer thread while the
        caller goes on); its ``add`` action."""
        return self._write_file(table, version_hint, True)

    def drop_pending(self, path: str) -> None:
        """Delete one file this change wrote and will not commit after all."""
        self.pending.remove(path)
        if not self.ready_files.undo(os.path.basename(path)):
            os.unlink(path)

    def _write_file(self, table: pa.Table, version_hint: int, data_change: bool,
                    ready: bool = False) -> dict[str, Any]:
        """One data file; ``ready``: into a file made ahead of time (one writing thread)."""
        if ready:
            name, into = self.ready_files.take(version_hint)
        else:
            name, into = data_file_name(version_hint), None
            self.unsynced_names = True
        path = os.path.join(self.location, name)
        self.pending.append(path)
        size, digest = write_parquet(table, path, into=into)
        return {
            "path": name,
            "partitionValues": {},
            "size": size,
            "modificationTime": now_millis(),
            "dataChange": data_change,
            "stats": delta_stats(table),
            "tags": {
                SHA_TAG: digest,
                RANGES_TAG: json.dumps(column_ranges(table, self.key_columns),
                                        separators=(",", ":")),
            },
        }

    # -- planning changes --------------------------------------------------------------------
    def _split_matching(self, snapshot: Snapshot, keys: pa.Table, columns: list[str],
                        schema: pa.Schema) -> tuple[list[dict], list[pa.Table], int]:
        """Find the stored rows whose ``columns`` equal a row of ``keys``.

        Returns the ``remove`` actions of the files holding any, the rows of those files to
        keep, and how many rows matched. Files whose key ranges cannot overlap are not read;
        the others are read once each, in parallel.
        """
        ranges = column_ranges(keys, columns)
        candidates = [add for add in snapshot.files.values()
                      if ranges_overlap(file_ranges(add), ranges, columns)]

        def split(add: dict[str, Any]) -> tuple[dict, pa.Table | None, int]:
            stored = fit(read_parquet(os.path.join(self.location, add["path"])), schema)
            mask = rows_matching(stored, keys, columns, "left", "right")
            matched = int(mask.sum())
            return add, (stored.filter(pa.array(~mask)) if matched else None), matched

        threads = min(_file_threads(candidates), len(candidates))
        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                results = list(pool.map(split, candidates))
        else:
            results = [split(add) for add in candidates]
        removes = [remove_action(add) for add, _, matched in results if matched]
        kept = [rows for _, rows, matched in results if matched and rows.num_rows]
        return removes, kept, sum(matched for _, _, matched in results)

    def latest_per_key(self, table: pa.Table) -> pa.Table:
        """``table`` with its own duplicates of (primary key, event time) resolved: the last
        one wins, as an upsert stores them."""
        return self.latest_with_hashes(table)[0]

    def latest_with_hashes(self, table: pa.Table) -> tuple[pa.Table, np.ndarray]:
        """``latest_per_key`` and the key hashes (``key_hashes``) of the rows it keeps. Rows
        are hashed first; only rows whose hash repeats are factorized and compared exactly
        (most inserts hold no duplicate)."""
        hashes = key_hashes(table, self.key_columns)
        order = np.argsort(hashes)
        shared = sharing_a_value(hashes[order])
        if not shared.any():
            return table, hashes
        candidates = np.sort(order[shared])
        keys = table.select(self.key_columns).take(pa.array(candidates))
        losing = ~last_of_each_key(keys, self.key_columns)
        if not losing.any():
            return table, hashes
        keep = np.ones(table.num_rows, bool)
        keep[candidates[losing]] = False
        return table.filter(pa.array(keep)), hashes[keep]

    def plan_upsert(self, snapshot: Snapshot, table: pa.Table, schema: pa.Schema) -> Change:
        table = self.latest_per_key(table)
        removes, kept, removed = self._split_matching(snapshot, table, self.key_columns, schema)
        # the surviving rows of rewritten files go into the same new files as the new rows
        adds = self.write_files(pa.concat_tables([*kept, table]) if kept else table,
                                snapshot.version + 1)
        return Change("insert", adds, removes, table.num_rows, removed,
                      column_ranges(table, self.key_columns), rows=table)

    def plan_delete(self, snapshot: Snapshot, keys: pa.Table, schema: pa.Schema) -> Change:
        removes, kept, removed = self._split_matching(snapshot, keys, self.primary_key, schema)
        adds = self.write_files(pa.concat_tables(kept), snapshot.version + 1) if kept else []
        return Change("delete", adds, removes, 0, removed, column_ranges(keys, self.primary_key))

    def plan_compact(self, snapshot: Snapshot, schema: pa.Schema,
                     files: list[dict[str, Any]] | None = None) -> Change:
        """Merge ``files`` (``add`` actions; every live file when None) into as few files as
        their rows need, as a commit that changes no row. Nothing to gain: an empty Change."""
        files = list(snapshot.files.values()) if files is None else files
        if len(files) <= 1:
            return Change("compact", [], [], 0, 0, None, data_change=False)
        paths = [os.path.join(self.location, a["path"]) for a in files]
        table = pa.concat_tables([fit(read_parquet(p), schema) for p in paths])
        adds = self.write_files(table, snapshot.version + 1, data_change=False)
        if len(adds) >= len(files):
            self.discard_pending()  # nothing gained: leave the table as it is
            return Change("compact", [], [], 0, 0, None, data_change=False)
        removes = [remove_action(a, data_change=False) for a in files]
        return Change("compact", adds, removes, table.num_rows, table.num_rows, None,
                      data_change=False)

    def plan_rewrite(self, snapshot: Snapshot, schema: pa.Schema, operation: str) -> Change:
        """The current files rewritten as ``schema`` (a widened type, dropped columns): the
        same rows. Integers widened to float64 must stay exact (``check_values_fit``)."""
        files = list(snapshot.files.values())
        if not files:
            return Change(operation, [], [], 0, 0, None)
        table = pa.concat_tables(
            [read_parquet(os.path.join(self.location, a["path"])) for a in files],
            promote_options="permissive")
        for field in schema:
            if field.name in table.column_names and table.schema.field(field.name).type != \
                    field.type:
                check_values_fit(table, field.name, field.type)
        adds = self.write_files(fit(table, schema), snapshot.version + 1)
        return Change(operation, adds, [remove_action(a) for a in files], 0, 0, None)

    # -- committing --------------------------------------------------------------------------
    def commit(self, snapshot: Snapshot, change: Change, schema: pa.Schema, table_id: str,
               name: str, announce: Callable[[int, str, dict[str, str]], Any],
               withdraw: Callable[[Any], None]) -> tuple[Snapshot, dict[str, Any]]:
        """Commit ``change`` on top of ``snapshot``. ``announce(version, commit hash, {path:
        sha256})`` records the commit file (and checkpoint) before the commit is made, and
        ``withdraw`` takes back what it returned when the commit could not be made. A commit
        made by another engine in between is a ConflictError: lakecore builds only on its own
        commits."""
        if change.adds and self.unsynced_names:
            fsync_path(self.location)   # the new files' names, durable before a commit names them
        self.unsynced_names = False
        version = snapshot.version + 1
        timestamp = max(now_millis(), (snapshot.timestamp or 0) + 1)
        schema_string = to_delta_schema_string(schema)
        commit_hash = change_digest(snapshot.commit_hash, schema_string, change.adds,
                                    change.removes, change.operation)
        info = {
            "timestamp": timestamp,
            "operation": {"insert": "WRITE", "delete": "DELETE", "compact": "OPTIMIZE"}.get(
                change.operation, change.operation.upper()),
            "operationParameters": {},
            "engineInfo": f"lakecore/{__version__}",
            "isBlindAppend": not change.removes,
            "lakecore": {
                "operation": change.operation,
                "rows_added": change.rows_added,
                "rows_removed": change.rows_removed,
                "hash": commit_hash,
                "parent_hash": snapshot.commit_hash,
                "hash_scheme": HASH_SCHEME,
            },
        }
        actions: list[dict[str, Any]] = [{"commitInfo": info}]
        if version == 0:
            actions.append({"protocol": dict(PROTOCOL)})
            actions.append({"metaData": {
                "id": table_id, "name": name, "description": None,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": schema_string, "partitionColumns": [],
                "configuration": {}, "createdTime": timestamp,
            }})
        elif snapshot.metadata is not None and snapshot.metadata["schemaString"] != schema_string:
            # a schema change (offline.evolution): the same table, its new schema
            actions.append({"metaData": {**snapshot.metadata, "schemaString": schema_string}})
        for remove in change.removes:
            actions.append({"remove": {**remove, "deletionTimestamp": timestamp}})
        for add in change.adds:
            actions.append({"add": add})
        body = self.log.encode_commit(actions)
        new = snapshot.copy()
        new.apply(version, actions, timestamp)
        files = {self.log.commit_path(version): digest_bytes(body)}
        staged = None
        try:
            if version > 0 and version % CHECKPOINT_INTERVAL == 0:
                staged, files[self.log.checkpoint_path(version)] = self.log.stage_checkpoint(new)
            announced = announce(version, commit_hash, files)
            try:
                made = self.log.try_commit(version, body, timestamp)
            except BaseException:
                if not _holds(self.log.commit_path(version), body):
                    withdraw(announced)
                raise
            if not made:
                withdraw(announced)
                raise ConflictError(
                    f"another engine wrote commit {version} of {self.location} in between; "
                    f"lakecore builds only on commits it recorded (verify() reports that one)")
            self.log.remember(new)
            if staged is not None:
                self.log.place_checkpoint(staged, version,
                                          2 + len(new.files) + len(new.tombstones))
                staged = None
        finally:
            if staged is not None:
                with contextlib.suppress(OSError):
                    os.unlink(staged)
        return new, info

    def paths_added_by(self, version: int) -> list[str]:
        """The data files commit ``version`` added (relative to the table)."""
        actions, _ = self.log.read_commit(version)
        return [a["add"]["path"] for a in actions if "add" in a]

    def begin_change(self) -> None:
        """A change starts writing files: ``discard_pending`` undoes what it writes."""
        self.pending.clear()
        self.ready_files.begin()

    def discard_pending(self) -> None:
        """Undo the files written since ``begin_change`` (after a failed change): delete
        them, or put back emptied the ready files they were written into."""
        for path in self.pending:
            if self.ready_files.undo(os.path.basename(path)):
                continue
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.pending.clear()
        self.ready_files.forget_made()


def _file_threads(adds: Any) -> int:
    """Threads for reading these files: one when they are small together."""
    return get_num_threads() if sum(a["size"] for a in adds) >= SMALL_INPUT_BYTES else 1


def file_ranges(add: dict[str, Any]) -> dict[str, list[Any]]:
    """The key ranges lakecore recorded for a file; empty (may hold anything) for files that
    other engines wrote. Shared between calls: do not change it."""
    return _parse_ranges((add.get("tags") or {}).get(RANGES_TAG, "{}"))


# Every change checks the ranges of every live file: parse each file's once, not per change.
_parse_ranges = functools.lru_cache(maxsize=1 << 16)(json.loads)


# How a commit's hash is made (``lakecore.hash_scheme`` in its commitInfo). Scheme 1, of
# commits made before it was recorded, covers every live file, so hashing a table's history
# cost its commits times its files; scheme 2 covers the commit's own change, chained to its
# parent's hash, which pins the same live files.
HASH_SCHEME = 2


def commit_digest(parent: str | None, schema_string: str, live: Any, operation: str) -> str:
    """A scheme-1 commit hash: its parent's hash, the schema, every live file (path, size,
    sha256) and the operation."""
    return digest_record({
        "parent": parent,
        "schema": schema_string,
        "files": sorted([a["path"], a["size"], (a.get("tags") or {}).get(SHA_TAG)]
                        for a in live),
        "operation": operation,
    })


def change_digest(parent: str | None, schema_string: str, adds: list[dict[str, Any]],
                  removes: list[dict[str, Any]], operation: str) -> str:
    """A scheme-2 commit hash: its parent's hash, the schema, the files it adds (path, size,
    sha256) and removes (path), and the operation."""
    return digest_record({
        "parent": parent,
        "schema": schema_string,
        "adds": sorted([a["path"], a["size"], (a.get("tags") or {}).get(SHA_TAG)]
                       for a in adds),
        "removes": sorted(r["path"] for r in removes),
        "operation": operation,
    })


def _holds(path: str, body: bytes) -> bool:
    """Whether ``path`` exists with exactly ``body`` (our commit landed after all)."""
    try:
        with open(path, "rb") as f:
            return f.read() == body
    except OSError:
        return False


def file_digest(add: dict[str, Any]) -> str | None:
    """The sha256 lakecore recorded for a data file (None: written by another engine)."""
    return (add.get("tags") or {}).get(SHA_TAG)


def _may_hold(add: dict[str, Any], column: str, lo: int | None, hi: int | None) -> bool:
    """Whether a file may hold rows with ``lo <= column <= hi`` (no recorded range: maybe)."""
    recorded = file_ranges(add).get(column)
    if recorded is None:
        return True
    return (lo is None or recorded[1] >= lo) and (hi is None or recorded[0] <= hi)


def remove_action(add: dict[str, Any], data_change: bool = True) -> dict[str, Any]:
    return {"path": add["path"], "dataChange": data_change, "extendedFileMetadata": True,
            "partitionValues": {}, "size": add["size"]}
