"""The query engine: a ``QuerySpec``'s feature groups joined point-in-time correctly onto a
spine.

``build`` gives one row per spine row, in spine order: the spine's columns, then each group's selected features
as of the spine row's event time (the row with the same key and the greatest
``event_time <= t``, and ``>= t - ttl`` when the group has a ttl), nulls when there is none.
Without a spine the root group's rows (in ``[start_time, end_time)``, sorted by event time
and key) are the spine. Each group is read once, only the columns needed, without rows that
no spine row can match (files outside the spine's times, or its integer keys, are not read),
and joined by the native as-of kernel. A group larger than ``JOIN_MEMORY_BYTES`` of decoded
rows is read and joined a batch of files at a time (``_join_in_batches``): same result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore._native import asof as _asof
from lakecore.base.arrow import as_table, indices_array, take_rows, type_kind
from lakecore.base.keys import key_codes
from lakecore.base.threads import threads_for
from lakecore.base.times import now_micros, utc_micros
from lakecore.catalog.specs import FeatureGroupSpec, QueryPart, QuerySpec, SourceCommit
from lakecore.errors import SchemaError, ValidationError
from lakecore.offline.compaction import file_rows
from lakecore.offline.table import OfflineTable, Window, table_schema

# The feature group of a (name, version): its definition and its offline table.
Resolve = Callable[[str, int], tuple[FeatureGroupSpec, OfflineTable]]

TIME = "__lakecore_time__"          # the join time column on both sides of a join
UTC_US = pa.timestamp("us", "UTC")
_LATEST = np.iinfo(np.int64).max     # spine time of a spine without event times


# -- building ----------------------------------------------------------------------------------
@dataclass
class Built:
    table: pa.Table
    sources: list[SourceCommit]
    spine_columns: list[str]        # the spine's columns (keys, event time, extras) in output
    time_column: str | None         # the spine's event time column, if it has one


@dataclass
class _Source:
    spec: FeatureGroupSpec
    table: OfflineTable
    snapshot: Any
    schema: pa.Schema

    def read(self, columns: list[str], within: Window | None = None,
             keys_within: Window | None = None) -> pa.Table:
        return self.table.read(self.snapshot, self.schema, columns, within, keys_within)


def _source(resolve: Resolve, part: QueryPart,
            pinned: dict[tuple[str, int], int] | None) -> _Source:
    spec, table = resolve(part.group, part.version)
    commit = None if pinned is None else pinned.get((part.group, part.version))
    snapshot = table.snapshot() if commit is None or commit < 0 else table.snapshot(commit)
    schema = table_schema(snapshot, spec.schema) or table_schema(table.snapshot(), spec.schema)
    if schema is None:
        raise ValidationError(f"feature group {spec.name!r} has no schema and no rows yet")
    missing = [c for c in part.columns if c not in schema.names]
    if missing:
        raise SchemaError(f"feature group {spec.name!r} has no column {missing[0]!r}")
    return _Source(spec, table, snapshot, schema)


def time_window(start_time, end_time) -> tuple[int | None, int | None]:
    """``start_time`` and ``end_time`` as UTC microseconds (None: unbounded), checked."""
    start, end = utc_micros(start_time, "start_time"), utc_micros(end_time, "end_time")
    if start is not None and end is not None and start >= end:
        raise ValidationError(f"start_time {start_time} is not before end_time {end_time}")
    return start, end


def as_utc_times(column: pa.ChunkedArray | pa.Array, name: str) -> pa.ChunkedArray:
    """A spine's event time column as timestamp[us, UTC] (naive times are UTC)."""
    kind = type_kind(column.type)
    if kind not in ("timestamp", "date"):
        raise SchemaError(f"spine: event time column {name!r} has type {column.type}; expected "
                          f"a timestamp or date")
    if kind == "date":
        column = pc.cast(column, pa.timestamp("us"))
    if column.type.tz is None:                  # naive times are UTC
        column = pc.cast(column, pa.timestamp(column.type.unit, "UTC"))
    return pc.cast(column, UTC_US)


def _window(table: pa.Table, column: str, start: int | None, end: int | None) -> pa.Table:
    """Rows with ``start <= column < end`` (microseconds, UTC)."""
    if start is None and end is None:
        return table
    times = pc.cast(as_utc_times(table.column(column), column), pa.int64())
    mask = None
    if start is not None:
        mask = pc.greater_equal(times, start)
    if end is not None:
        below = pc.less(times, end)
        mask = below if mask is None else pc.and_(mask, below)
    return table.filter(pc.fill_null(mask, False))


@dataclass
class Spine:
    """The left side of a query's joins, before any group is joined to it."""

    table: pa.Table
    columns: list[str]              # the spine's own columns (kept as they are)
    time_column: str | None         # its event time column (None: it has none)
    joins: list[tuple[QueryPart, _Source]]


def _timed_groups(sources: list[_Source]) -> list[str]:
    return [s.spec.name for s in sources if s.spec.event_time]


def spine_of(spec: QuerySpec, sources: list[_Source], spine: Any, spine_time: str | None,
             latest: bool, start: int | None, end: int | None, now_us: int,
             latest_allowed: bool = True) -> Spine:
    """The spine of a query (the ``spine`` table, or the root group's rows) and the joins
    still to do on it. A spine must carry event times whenever a group of the query has
    them, unless ``latest`` asks for the latest rows: it is never joined to them silently."""
    root, root_source = spec.root, sources[0]
    root_group = root_source.spec
    or_latest = " or latest=True for the latest rows" if latest_allowed else ""
    if spine_time is not None and (not isinstance(spine_time, str) or not spine_time):
        raise ValidationError(f"spine_time: expected a column name, got {spine_time!r}")
    if spine is None:
        if spine_time is not None:
            raise ValidationError("spine_time: names a column of a spine, but no spine was "
                                  "given (the root group's rows are the spine)")
        time_column = root_group.event_time
        timed = _timed_groups(sources)
        if time_column is None and timed and not latest:
            raise SchemaError(
                f"feature group {timed[0]!r} has an event_time but the query's root group "
                f"{root_group.name!r} has none, so its rows carry no time to join it as of; "
                f"pass a spine with an event time column (spine=..., spine_time=...)"
                f"{or_latest}")
        if (start is not None or end is not None) and time_column is None:
            raise SchemaError(f"start_time/end_time: feature group {root_group.name!r} has no "
                              f"event_time")
        keys = root_group.primary_key + ([time_column] if time_column else [])
        output = root_source.read(keys + [c for c in root.columns if c not in keys])
        if time_column:
            output = _window(output, time_column, start, end)
            if latest:
                output = _latest_per_key(output, root_group.primary_key, time_column,
                                         root_group.ttl_us, now_us)
        order = [(c, "ascending") for c in ([time_column] if time_column else [])
                 + root_group.primary_key]
        return Spine(output.sort_by(order), keys, time_column,
                     list(zip(spec.joins, sources[1:])))
    output = as_table(spine, "spine")
    duplicated = {n for n, count in Counter(output.column_names).items() if count > 1}
    if duplicated:
        raise SchemaError(f"spine: column {min(duplicated)!r} appears twice")
    missing = [k for k in root_group.primary_key if k not in output.column_names]
    if missing:
        raise SchemaError(f"spine: missing join key column {missing[0]!r} of feature group "
                          f"{root_group.name!r} (spine columns: {', '.join(output.column_names)})")
    wanted = spine_time if spine_time is not None else root_group.event_time
    time_column = wanted if wanted in output.column_names else None
    if time_column is None:
        timed = _timed_groups(sources)
        if spine_time is not None or (timed and not latest):
            looked_for = (f"column {wanted!r}" if wanted else "an event time column (the root "
                          f"group {root_group.name!r} has no event_time to name it)")
            raise SchemaError(
                f"spine: no {looked_for} (spine columns: {', '.join(output.column_names)}); "
                f"feature group {timed[0] if timed else root_group.name!r} is joined as of "
                f"the spine's event times: name the spine's time column with "
                f"spine_time=...{or_latest}" if timed else
                f"spine: no column {wanted!r} named by spine_time (spine columns: "
                f"{', '.join(output.column_names)})")
        if start is not None or end is not None:
            raise SchemaError(f"spine: no event time column {wanted!r} to apply "
                              f"start_time/end_time to; name it with spine_time=...")
    else:
        as_utc_times(output.column(time_column), time_column)     # type check
        output = _window(output, time_column, start, end)
    joins = [(msgspec.structs.replace(root, on=root_group.primary_key), root_source),
             *zip(spec.joins, sources[1:])]
    return Spine(output, list(output.column_names), time_column, joins)


def _latest_per_key(table: pa.Table, key: list[str], time_column: str, ttl_us: int | None,
                    now_us: int) -> pa.Table:
    """Each key's row with the greatest event time (none when it is older than ``ttl``)."""
    times = pc.cast(table.column(time_column), pa.int64()).to_numpy(zero_copy_only=False)
    codes, _, _ = key_codes(table, table.slice(0, 0), key, key)
    order = np.lexsort((times, codes))
    last = np.ones(len(order), bool)
    last[:-1] = codes[order][1:] != codes[order][:-1]
    picked = np.sort(order[last])
    if ttl_us is not None:
        picked = picked[times[picked] >= now_us - ttl_us]
    return table.take(pa.array(picked, pa.int64()))


def build(resolve: Resolve, spec: QuerySpec, spine: Any, start_time, end_time,
          pinned: dict[tuple[str, int], int] | None = None, *, spine_time: str | None = None,
          latest: bool = False, latest_allowed: bool = True) -> Built:
    """Run a query; ``pinned`` maps (group, version) to the table commit to read;
    ``spine_time`` names the spine's event time column (default: the root's event_time);
    ``latest`` joins every group's latest row per key (ttl counted back from now), which
    training data never does (``latest_allowed=False``)."""
    if not isinstance(latest, bool):
        raise ValidationError(f"latest: expected True or False, got {latest!r}")
    start, end = time_window(start_time, end_time)
    sources = [_source(resolve, part, pinned) for part in spec.parts]
    now_us = now_micros()
    left = spine_of(spec, sources, spine, spine_time, latest, start, end, now_us,
                    latest_allowed)
    output, spine_columns, time_column, joins = left.table, left.columns, left.time_column, \
        left.joins
    output = output.combine_chunks() if output.num_rows else output
    spine_times = None                  # None: join the latest rows (now_us is the clock)
    if time_column is not None and not latest:
        spine_times = as_utc_times(output.column(time_column), time_column)
    # Joins whose key columns the output already has are done together, so that the spine's
    # keys are factorized once per join key (with every such group's keys), not once per group.
    base = list(output.column_names)
    pending = list(joins)
    while pending:
        ready = [j for j in pending
                 if all(c in output.column_names for c in (j[0].on or j[1].spec.primary_key))]
        if not ready:
            part, source = pending[0]          # names a missing column: report it
            _plan_join(output, spine_columns, part, source)
        first_on = ready[0][0].on or ready[0][1].spec.primary_key
        batch = [j for j in ready if (j[0].on or j[1].spec.primary_key) == first_on]
        output = _join_batch(output, spine_columns, spine_times, now_us, batch)
        pending = [j for j in pending if j not in batch]
    order = base + [(part.prefix or "") + c for part, _ in joins
                    for c in part.columns if (part.prefix or "") + c not in spine_columns]
    if output.column_names != order:    # batches may have run out of query order
        output = output.select(order)
    commits = [SourceCommit(group=s.spec.name, version=s.spec.version,
                            commit=s.snapshot.version, hash=s.snapshot.commit_hash) for s in sources]
    return Built(output, commits, spine_columns, time_column)


def _plan_join(output: pa.Table, spine_columns: list[str], part: QueryPart,
               source: _Source) -> list[str]:
    """Check one join against the output so far; the feature columns it adds."""
    group = source.spec
    on = part.on or group.primary_key
    missing = [c for c in on if c not in output.column_names]
    if missing:
        raise SchemaError(f"join with {group.name!r}: no column {missing[0]!r} in the spine or "
                          f"the query's output (columns: {', '.join(output.column_names)})")
    prefix = part.prefix or ""
    features = []
    for column in part.columns:
        name = prefix + column
        if name in spine_columns:
            continue                    # the spine carries it: the spine's values win
        if name in output.column_names:
            raise SchemaError(f"column {name!r} of feature group {group.name!r} clashes with a "
                              f"column already in the query's output; pass prefix= to join()")
        features.append(column)
    return features


def _reach(source: _Source, spine_times: pa.ChunkedArray | None, now_us: int
           ) -> tuple[tuple[str, int | None, int | None] | None, bool]:
    """The window of event times a group's rows must be in to be matched (None: any), and
    whether the group is joined as of the spine's times."""
    group = source.spec
    timed = bool(group.event_time) and spine_times is not None
    ttl_us = group.ttl_us
    within = None
    if timed:                           # the times a spine row can reach: [min - ttl, max]
        bounds = pc.min_max(spine_times)
        if bounds["max"].is_valid:
            lo = None if ttl_us is None else max(bounds["min"].value - ttl_us, -(2**63))
            within = (group.event_time, lo, bounds["max"].value)
    elif group.event_time and ttl_us is not None:   # latest rows, no older than the ttl
        within = (group.event_time, now_us - ttl_us, None)
    return within, timed


def _right_columns(source: _Source, features: list[str]) -> list[str]:
    group = source.spec
    return group.primary_key + ([group.event_time] if group.event_time else []) + features


def _key_window(left_keys: pa.Table, source: _Source) -> Window | None:
    """The spine's range of a one-column integer key, as a window on the group's key
    column: files whose recorded key range lies outside it hold no row a spine row can
    match (None: not such a key, or no key at all)."""
    key = source.spec.primary_key
    if len(key) != 1 or left_keys.num_columns != 1 or \
            not pa.types.is_integer(left_keys.schema.field(0).type) or \
            not pa.types.is_integer(source.schema.field(key[0]).type):
        return None
    bounds = pc.min_max(left_keys.column(0))
    if not bounds["min"].is_valid:
        return None
    return key[0], bounds["min"].as_py(), bounds["max"].as_py()


def _right_rows(source: _Source, features: list[str], spine_times: pa.ChunkedArray | None,
                now_us: int, keys_within: Window | None = None
                ) -> tuple[pa.Table, np.ndarray, int | None]:
    """A group's key and feature columns (without rows no spine row can reach), its times as
    int64 microseconds (all 0 without event time), and the ttl the kernel applies (None when
    the latest rows are joined: rows older than ``now_us - ttl`` are dropped here instead).
    Files outside the spine's times (and ``keys_within``) are not read."""
    within, timed = _reach(source, spine_times, now_us)
    right = source.read(_right_columns(source, features), within, keys_within)
    return _joinable(source, right, within, timed)


def _joinable(source: _Source, right: pa.Table, within, timed: bool
              ) -> tuple[pa.Table, np.ndarray, int | None]:
    """Rows of a group as read, ready for the kernel (see ``_right_rows``)."""
    group = source.spec
    if not group.event_time:
        return right, np.zeros(right.num_rows, np.int64), None
    right = right.rename_columns([TIME if c == group.event_time else c for c in right.column_names])
    if timed:       # rows outside the window cannot match (the kernel applies the ttl)
        right = right.slice(0, 0) if within is None else \
            _prune(right, within[1], within[2], required=False)
    elif within is not None:            # here the ttl is applied by dropping the rows
        right = _prune(right, within[1], None, required=True)
    times = pc.cast(right.column(TIME), pa.int64()).to_numpy(zero_copy_only=False)
    return right, times, group.ttl_us if timed else None


def _join_batch(output: pa.Table, spine_columns: list[str], spine_times: pa.ChunkedArray | None,
                now_us: int, batch: list[tuple[QueryPart, _Source]]) -> pa.Table:
    """``output`` with the features of every group in ``batch`` (all joined on the same
    output columns) as of the spine times: the spine's keys and all the groups' keys are
    factorized together once, then each group is matched by the native as-of kernel."""
    plans = [(part, source, _plan_join(output, spine_columns, part, source))
             for part, source in batch]
    plans = [p for p in plans if p[2]]
    if not plans:
        return output
    on = plans[0][0].on or plans[0][1].spec.primary_key
    names = plans[0][1].spec.primary_key
    left_keys = pa.table([output.column(c) for c in on], names=names)
    large = [p for p in plans if _held_rows(p[1], spine_times, now_us, left_keys)
             > _batch_rows(p[1], p[2])]
    for plan in large:                  # bigger than the join's memory: files batch by batch
        output = _join_in_batches(output, spine_times, now_us, on, plan)
    plans = [p for p in plans if p not in large]
    if not plans:
        return output
    rights = [_right_rows(source, features, spine_times, now_us, _key_window(left_keys, source))
              for _, source, features in plans]
    right_keys = _concat_keys([rows.select(source.spec.primary_key).rename_columns(names)
                               for (rows, _, _), (_, source, _) in zip(rights, plans)])
    if right_keys is None:              # key types differ between the groups: one at a time
        for plan, right in zip(plans, rights):
            output = _join_batch_of_one(output, spine_times, on, plan, right)
        return output
    left_codes, right_codes, n_codes = key_codes(
        left_keys, right_keys, names, names,
        code_dtype=_code_dtype(left_keys.num_rows + right_keys.num_rows))
    start = 0
    for (part, source, features), (right, times, ttl_us) in zip(plans, rights):
        codes = right_codes[start:start + right.num_rows]
        start += right.num_rows
        output = _match_and_add(output, spine_times, left_codes, codes, times, n_codes, ttl_us,
                                right, part, features, source.spec.event_time is not None)
    return output


def _join_batch_of_one(output, spine_times, on, plan, right_rows) -> pa.Table:
    part, source, features = plan
    right, times, ttl_us = right_rows
    names = source.spec.primary_key
    left_codes, codes, n_codes = key_codes(pa.table([output.column(c) for c in on], names=names),
                                           right, names, names,
                                           code_dtype=_code_dtype(output.num_rows + right.num_rows))
    return _match_and_add(output, spine_times, left_codes, codes, times, n_codes, ttl_us, right,
                          part, features, source.spec.event_time is not None)


def _code_dtype(rows: int) -> type:
    """32-bit key codes when both sides together have fewer than 2**31 rows: half the memory,
    and the kernel's passes test twice as many codes at a time."""
    return np.int32 if rows < 2**31 else np.int64


def _concat_keys(tables: list[pa.Table]) -> pa.Table | None:
    """The groups' key columns one after the other (None when their types differ)."""
    if any(t.schema != tables[0].schema for t in tables):
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _match_and_add(output, spine_times, left_codes, right_codes, right_times, n_codes, ttl_us,
                   right, part, features, timed_group) -> pa.Table:
    """Match every output row to the group's row (backward as of the spine time, within the
    ttl) and append the group's feature columns."""
    matched = _match(output, spine_times, left_codes, right_codes, right_times, n_codes,
                     ttl_us, right.num_rows, timed_group)
    threads = threads_for(output.num_rows + right.num_rows)
    gathered = take_rows(right.select(features), indices_array(matched), threads)
    return _add(output, gathered, part, features)


def _match(output, spine_times, left_codes, right_codes, right_times, n_codes, ttl_us,
           right_rows: int, timed_group: bool) -> np.ndarray:
    """For every output row, the row of the group's rows it is joined to (-1: none)."""
    n = output.num_rows
    left_codes = left_codes.copy()
    if timed_group and spine_times is not None:
        left_times = pc.cast(spine_times, pa.int64())
        if left_times.null_count:
            left_codes[np.asarray(left_times.is_null().to_numpy(zero_copy_only=False), bool)] = -1
            left_times = pc.fill_null(left_times, 0)
        left_times = left_times.to_numpy(zero_copy_only=False)
    else:                               # no time on one side: the latest row of each key
        left_times = np.full(n, _LATEST, np.int64)
    return _asof.asof_indices(left_codes, np.ascontiguousarray(left_times, np.int64),
                              right_codes, np.ascontiguousarray(right_times, np.int64),
                              n_codes, int(_asof.Direction.BACKWARD), False,
                              ttl_us is not None, ttl_us or 0, threads_for(n + right_rows),
                              overwrite_left_codes=True)     # (a copy made above)


def _add(output: pa.Table, gathered: pa.Table, part: QueryPart, features: list[str]
         ) -> pa.Table:
    prefix = part.prefix or ""
    for column in features:
        output = output.append_column(
            pa.field(prefix + column, gathered.schema.field(column).type),
            gathered.column(column))
    return output


# -- groups larger than the join's memory: a batch of files at a time ----------------------------
JOIN_MEMORY_BYTES = 384 << 20       # decoded rows of a group held at once (twice, reading ahead)


def _batch_rows(source: _Source, features: list[str]) -> int:
    """Rows of the group per batch: ``JOIN_MEMORY_BYTES`` over the bytes a row takes (its
    columns' widths, 32 for text, plus 24 for the join's own arrays)."""
    width = 24
    for column in _right_columns(source, features):
        t = source.schema.field(column).type
        width += t.bit_width // 8 if pa.types.is_primitive(t) and t.bit_width >= 8 else 32
    return max(JOIN_MEMORY_BYTES // width, 1)


def _held_rows(source: _Source, spine_times, now_us: int, left_keys: pa.Table) -> int:
    """How many rows of the group a join would read (from the files' recorded counts)."""
    within, _ = _reach(source, spine_times, now_us)
    files = source.table.files_within(source.snapshot, within, _key_window(left_keys, source))
    return sum(file_rows(a) or 0 for a in files)


def _join_in_batches(output: pa.Table, spine_times: pa.ChunkedArray | None, now_us: int,
                     on: list[str], plan) -> pa.Table:
    """``_join_batch_of_one`` holding a batch of the group's files at a time: each spine row
    keeps its best match so far (its time, and the features of the row), replaced when a
    later batch holds a row with a greater time. A group holds one row per key and event
    time, so no two batches offer the same time for a key: the result is the one-pass
    join's."""
    part, source, features = plan
    names = source.spec.primary_key
    within, timed = _reach(source, spine_times, now_us)
    left_keys = pa.table([output.column(c) for c in on], names=names)
    n = output.num_rows
    threads = threads_for(n)
    best_time = np.full(n, np.iinfo(np.int64).min, np.int64)
    best_slot = np.full(n, -1, np.int64)        # the row of ``kept`` holding its features
    kept = pa.schema([source.schema.field(c) for c in features]).empty_table()
    for batch in source.table.read_in_batches(
            source.snapshot, source.schema, _right_columns(source, features), within,
            _batch_rows(source, features), _key_window(left_keys, source)):
        right, times, ttl_us = _joinable(source, batch, within, timed)
        del batch
        if not right.num_rows:
            continue
        left_codes, right_codes, n_codes = key_codes(
            left_keys, right, names, names, code_dtype=_code_dtype(n + right.num_rows))
        matched = _match(output, spine_times, left_codes, right_codes, times, n_codes, ttl_us,
                         right.num_rows, source.spec.event_time is not None)
        better = matched >= 0
        better[better] = times[matched[better]] > best_time[better]
        if not better.any():
            continue
        rows = matched[better]
        best_slot[better] = kept.num_rows + np.arange(len(rows))
        best_time[better] = times[rows]
        kept = pa.concat_tables([kept, take_rows(right.select(features), pa.array(rows),
                                                 threads)])
        if kept.num_rows > n:           # only the rows still best: never more than the spine
            live = best_slot >= 0
            kept = take_rows(kept, pa.array(best_slot[live]), threads)
            best_slot[live] = np.arange(int(live.sum()))
    gathered = take_rows(kept, indices_array(best_slot), threads)
    return _add(output, gathered, part, features)


def _prune(right: pa.Table, lo: int | None, hi: int | None, required: bool) -> pa.Table:
    """Only the rows whose time is in ``[lo, hi]`` (microseconds; None: no bound). Unless
    ``required`` (the rows outside would be matched), rows are dropped only when that drops at
    least half of them: copying every column of a table to lose a few rows costs more than
    the kernel spends skipping them."""
    times = right.column(TIME)
    have = pc.min_max(times)
    if not have["max"].is_valid or ((hi is None or have["max"].value <= hi) and
                                    (lo is None or have["min"].value >= lo)):
        return right                    # every row may match: filtering would only copy
    masks = ([] if hi is None else [pc.less_equal(times, pa.scalar(hi, UTC_US))]) + \
        ([] if lo is None else [pc.greater_equal(times, pa.scalar(lo, UTC_US))])
    mask = masks[0] if len(masks) == 1 else pc.and_(*masks)
    if not required and pc.sum(mask).as_py() * 2 > right.num_rows:
        return right
    return right.filter(mask)
