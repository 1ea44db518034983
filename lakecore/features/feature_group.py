"""``FeatureGroup``: a versioned table of features with a primary key and an event time.

The rows, schema and history live in the group's Delta log (``lakecore.offline``); the
definition (keys, ttl, online flag, ...) lives in the catalog. Every change validates its input
completely before it writes anything, then writes data files, then commits.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Callable
from typing import Any

import msgspec
import pyarrow as pa

from lakecore.base.arrow import as_table
from lakecore.base.refs import group_folder, group_ref
from lakecore.base.storage_errors import guard_storage, storage_error
from lakecore.catalog.specs import Expectation, FeatureGroupSpec
from lakecore.errors import (
    IntegrityError,
    LakeError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from lakecore.features.commits import SCHEMA_CHANGES, Commit, commit_record
from lakecore.features.context import LakeContext
from lakecore.features.group_evolution import SchemaEvolution
from lakecore.features.group_online import OnlineServing
from lakecore.features.group_stream import StreamInserts, as_stream
from lakecore.features.query import Query, select_query
from lakecore.features.validation import judge_insert, store_report, stored_reports
from lakecore.offline.compaction import fan_in, files_to_merge
from lakecore.offline.delta_log import Snapshot
from lakecore.offline.schema import conform, storage_schema
from lakecore.offline.table import Change, table_schema
from lakecore.online.codec import encode_keys
from lakecore.online.layout import Layout
from lakecore.online.store import OnlineRows, prepare
from lakecore.quality.expectations import ValidationReport
from lakecore.quality.expectations import check as check_expectations
from lakecore.quality.file_statistics import table_statistics
from lakecore.quality.statistics import Statistics


@guard_storage(skip=("online_read",))
class FeatureGroup(SchemaEvolution, OnlineServing, StreamInserts):
    """A feature group version; get one from ``Lake.create_feature_group`` or
    ``Lake.feature_group``.

    Attributes
    ----------
    name, version : str, int
    primary_key : list of str
    event_time : str or None
    online : bool
    ttl : datetime.timedelta or None
    description : str
    tags : dict of str to str
    location : str
        The folder of the group's Delta table.
    schema : pyarrow.Schema or None
        The stored schema (None before it is known).
    hash : str or None
        The latest commit's hash (None before the first commit).
    ref : str
        ``fg:NAME@VERSION``.

    Examples
    --------
    >>> import datetime as dt, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
    >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
    >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
    >>> fg.name, fg.version, fg.primary_key, fg.event_time, fg.online, fg.ttl
    ('spend', 1, ['card'], 'at', True, None)
    >>> fg.schema.names
    ['card', 'at', 'total']
    >>> fg.ref
    'fg:spend@1'
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, spec: FeatureGroupSpec):
        self._ctx = ctx
        self._spec = spec
        self._table = ctx.offline_table(spec)
        self._online_layout: Layout | None = None   # fixed once the schema is (it never changes)

    # -- attributes --------------------------------------------------------------------------
    name = property(lambda self: self._spec.name)
    version = property(lambda self: self._spec.version)
    event_time = property(lambda self: self._spec.event_time)
    online = property(lambda self: self._spec.online)
    description = property(lambda self: self._spec.description)

    @property
    def primary_key(self) -> list[str]:
        return list(self._spec.primary_key)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._spec.tags)

    @property
    def ttl(self) -> dt.timedelta | None:
        return None if self._spec.ttl_us is None else dt.timedelta(microseconds=self._spec.ttl_us)

    @property
    def location(self) -> str:
        """The folder of this group's Delta table."""
        return os.path.join(self._ctx.path, group_folder(self.name, self.version))

    @property
    def schema(self) -> pa.Schema | None:
        """The stored schema, or None before it is known (no schema= and no insert yet)."""
        return self._schema(self._table.snapshot())

    @property
    def hash(self) -> str | None:
        """The latest commit's hash (None before the first commit)."""
        return self._table.snapshot().commit_hash

    @property
    def ref(self) -> str:
        """This object's ref (see ``lakecore.base.refs``), as ``lineage`` takes it."""
        return group_ref(self.name, self.version)

    def __repr__(self) -> str:
        return f"FeatureGroup({self.name!r}, version={self.version})"

    def _schema(self, snapshot: Snapshot) -> pa.Schema | None:
        return table_schema(snapshot, self._spec.schema)

    # -- changes -----------------------------------------------------------------------------
    def _commit_change(self, snapshot: Snapshot, schema: pa.Schema, plan,
                       deleted_keys: list[bytes] | None = None,
                       online_rows: OnlineRows | None = None,
                       report: ValidationReport | Callable[[Change], ValidationReport | None]
                       | None = None) -> Commit | None:
        """Run ``plan`` (which writes data files and returns a Change) and commit it, its audit
        event first; on any failure delete the files it wrote, so the lake is left as it was.
        ``report``: the insert's validation report, or a function giving it from the planned
        Change (judged on its files). Then bring the online store up to the new commit (a
        derived store: a crash before that is repaired on open)."""
        table = self._table
        table.begin_change()
        try:
            try:
                change: Change = plan()
            except OSError as exc:      # a full disk, a file size limit: before any commit
                raise storage_error(exc, self, f"feature group {self.name!r}: nothing was "
                                               f"committed, a data file could not be written: "
                                    ) from exc
            if change.operation == "delete" and change.rows_removed == 0:
                table.discard_pending()         # none of the keys is stored: no commit
                return None
            if callable(report):
                report = report(change)
            if change.operation == "insert" and not change.adds and not change.removes:
                table.discard_pending()         # an empty stream: no commit
                return None
            ctx = self._ctx
            snapshot, info = table.commit(
                snapshot, change, schema, self._spec.table_id, self.name,
                announce=lambda version, digest, files: ctx.announce(
                    change.operation, group_ref(self.name, self.version, version), digest,
                    {**files, **self._store_report(report, version)}),
                withdraw=ctx.withdraw)
        except BaseException:
            table.discard_pending()
            raise
        table.pending.clear()
        if self.online:
            current = table.online_version == snapshot.version - 1
            if change.operation in SCHEMA_CHANGES:
                # every row again, under the new layout, in one transaction with its record
                self._rebuild_online(snapshot, schema)
                table.online_version = snapshot.version
                self._online_layout = None
            elif not change.data_change:
                # a compaction changes no row: the online store stays as it is (its watermark
                # names the last commit that changed rows)
                if current:
                    table.online_version = snapshot.version
            else:
                store = self._ctx.online_store
                if current or store.watermark(self.name, self.version) == snapshot.version - 1:
                    if online_rows is None and change.rows is None and change.row_files:
                        self._apply_online_files(change.row_files, schema, snapshot.version)
                    else:
                        store.apply(self.name, self.version, self._layout(schema),
                                    online_rows if online_rows is not None else change.rows,
                                    snapshot.version, deleted_keys=deleted_keys)
                    table.online_version = snapshot.version
                else:
                    self._sync_online()
        commit = commit_record(snapshot.version, snapshot.timestamp, info)
        return commit if report is None else msgspec.structs.replace(commit, validation=report)

    # -- expectations (quality.expectations) -------------------------------------------------
    @property
    def expectations(self) -> list[Expectation]:
        """The expectations every insert is judged by (``set_expectations``)."""
        return list(self._spec.expectations)

    def set_expectations(self, expectations: list[Expectation], *,
                         on_failure: str = "reject") -> None:
        """Judge every later insert by ``expectations`` (``lakecore.expect``), before
        anything is written: ``on_failure="reject"`` refuses a failing insert
        (``ValidationError`` with its ``.report``), ``"warn"`` writes it and warns. Each
        written insert's report is stored in the lake (``validation_history``).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> from lakecore import expect
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("pay", primary_key="id")
        >>> fg.set_expectations([expect.between("amount", 0, 100)])
        >>> fg.insert({"id": [1], "amount": [5.0]}).validation.ok
        True
        >>> try:
        ...     fg.insert({"id": [2], "amount": [500.0]})
        ... except lakecore.ValidationError as error:
        ...     print(error.report.results[0].examples)
        [500.0]
        >>> lake.close()
        """
        if on_failure not in ("reject", "warn"):
            raise ValidationError(f"on_failure: expected 'reject' or 'warn', got {on_failure!r}")
        if not isinstance(expectations, (list, tuple)) or not all(
                isinstance(e, Expectation) for e in expectations):
            raise ValidationError(f"expectations: expected a list of lakecore.expect "
                                  f"expectations, got {expectations!r}")
        with self._ctx.writing(f"set_expectations on {self.name!r}"):
            schema = self._schema(self._table.snapshot())
            if schema is not None:
                check_expectations(list(expectations), schema)
            name, version = self.name, self.version

            def change(state) -> None:
                for i, g in enumerate(state.feature_groups):
                    if (g.name, g.version) == (name, version):
                        state.feature_groups[i] = msgspec.structs.replace(
                            g, expectations=list(expectations), on_failure=on_failure)
            self._ctx.record(change, "set_expectations", group_ref(name, version), None)
            self._spec = self._ctx.group_spec(name, version)

    def _judge(self, rows: pa.Table) -> ValidationReport | None:
        """The report of the group's expectations on ``rows`` (``features.validation``)."""
        self._spec = self._ctx.group_spec(self.name, self.version)
        return judge_insert(self._spec, self._table, rows)

    def _store_report(self, report: ValidationReport | None, version: int) -> dict[str, str]:
        return store_report(self._table, report, version)

    def statistics(self, *, as_of: int | dt.datetime | None = None,
                   columns: list[str] | None = None) -> Statistics:
        """Statistics of the table at ``as_of`` (latest when None), of ``columns`` (every
        column when None). Built from summaries of each data file, kept in the lake, so that
        a new commit costs only the files it added (see ``lakecore.quality.file_statistics``).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2, 3], "age": [30, 40, None], "city": ["a", "b", "a"]})
        >>> stats = fg.statistics()
        >>> stats.columns["age"].mean, stats.columns["age"].nulls, stats.columns["city"].top
        (35.0, 1, [('a', 2), ('b', 1)])
        >>> lake.close()
        """
        self._ctx.check_open()
        snapshot, _ = self._snapshot_at(as_of)
        schema = self._schema(snapshot)
        if schema is None or snapshot.version < 0:
            raise ValidationError(f"statistics: feature group {self.name!r} has no rows yet")
        names = schema.names if columns is None else list(columns)
        unknown = [c for c in names if c not in schema.names]
        if unknown:
            raise SchemaError(f"columns: {', '.join(map(repr, unknown))} are not in the schema "
                              f"at commit {snapshot.version} ({', '.join(schema.names)})")
        cache = self._table.statistics_cache
        missing = [c for c in names if (snapshot.version, c) not in cache]
        if missing:
            found = table_statistics(self._table, snapshot, schema, missing,
                                     keep=not self._ctx.readonly)
            for name, stats in found.columns.items():
                cache[(snapshot.version, name)] = stats
        return Statistics(columns={c: cache[(snapshot.version, c)] for c in names})

    def validation_history(self) -> list[ValidationReport]:
        """The stored report of every insert judged by expectations, oldest first; each
        checked against the sha256 its commit's audit event recorded."""
        self._ctx.check_open()
        return stored_reports(self._ctx, self._table, self.name, self.version)

    def insert(self, data: Any) -> Commit | None:
        """Upsert rows: a row whose (primary key, event_time) is already stored replaces it; in
        one call the last duplicate wins. Returns the Commit (None for an empty insert, which
        is checked like any other but makes no commit).

        ``data``: a pyarrow Table or RecordBatch, a pandas or polars DataFrame, a dict of
        columns, or a stream (a ``pyarrow.RecordBatchReader``, any object with
        ``__arrow_c_stream__``, or an iterator of record batches or tables such as
        ``ParquetFile.iter_batches()``). A stream is written as it is read, a data file per 1,048,576
        rows, with memory that follows one such chunk rather than the stream; it commits once
        at the end, and nothing if any part of it fails.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> commit = fg.insert({"card": [1], "at": [day(1)], "total": [12.5]})   # same key and time
        >>> commit.version, commit.rows_added, commit.rows_removed
        (1, 1, 1)
        >>> sorted(fg.read().column("total").to_pylist())
        [12.5, 20.0]
        >>> lake.close()
        """
        stream = as_stream(data)
        if stream is not None:
            return self._insert_stream(stream)
        incoming = as_table(data, "data")
        fan_in()                        # a bad compaction setting is refused before writing
        with self._ctx.writing(f"insert into {self.name!r}"):
            snapshot = self._table.snapshot()
            schema = self._schema(snapshot)
            if schema is None:
                schema = storage_schema(incoming.schema, self.primary_key, self.event_time)
            rows = conform(incoming, schema, self.primary_key, self.event_time)
            report = self._judge(rows)
            # what the online store will hold, made before anything is committed: a key it
            # cannot hold is refused here, with the lake as it was
            online_rows = prepare(rows, self._layout(schema)) if self.online else None
            if rows.num_rows == 0:
                return None             # nothing to write: no commit
            commit = self._commit_change(
                snapshot, schema, lambda: self._table.plan_upsert(snapshot, rows, schema),
                online_rows=online_rows, report=report)
            self._merge_small_files()
            return commit

    def delete(self, keys: Any) -> Commit | None:
        """Remove every stored row of these primary keys (``keys``: data with the key columns).
        Returns the Commit (None when no stored row has those keys: no commit is made).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> fg.delete({"card": [2]}).rows_removed
        1
        >>> fg.read().column("card").to_pylist()
        [1]
        >>> fg.online_read({"card": [2]}).column("total").to_pylist()
        [None]
        >>> lake.close()
        """
        key_table = as_table(keys, "keys")
        fan_in()                        # a bad compaction setting is refused before writing
        with self._ctx.writing(f"delete from {self.name!r}"):
            snapshot = self._table.snapshot()
            schema = self._schema(snapshot)
            if schema is None:
                raise ValidationError(
                    f"delete: feature group {self.name!r} has no schema and no rows yet"
                )
            missing = [k for k in self.primary_key if k not in key_table.column_names]
            if missing:
                raise SchemaError(f"keys: missing primary key column(s) {', '.join(map(repr, missing))}")
            key_schema = pa.schema([schema.field(k) for k in self.primary_key])
            key_rows = conform(key_table.select(self.primary_key), key_schema, self.primary_key,
                               None, argument="keys")
            deleted = encode_keys(key_rows, self._layout(schema)) if self.online else None
            commit = self._commit_change(
                snapshot, schema, lambda: self._table.plan_delete(snapshot, key_rows, schema),
                deleted_keys=deleted)
            self._merge_small_files()
            return commit

    def compact(self) -> Commit:
        """Rewrite the table's files into as few as possible, as a new commit with the same rows.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> _ = fg.insert({"card": [3], "at": [day(2)], "total": [5.0]})
        >>> fg.compact().operation
        'compact'
        >>> fg.read().num_rows
        3
        >>> lake.close()
        """
        with self._ctx.writing(f"compact {self.name!r}"):
            snapshot = self._table.snapshot()
            schema = self._schema(snapshot)
            if schema is None:
                raise ValidationError(f"compact: feature group {self.name!r} has no rows yet")
            return self._commit_change(
                snapshot, schema, lambda: self._table.plan_compact(snapshot, schema))

    def _merge_small_files(self) -> None:
        """Merge small files when a size tier has filled up (``offline.compaction``), as a
        ``"compact"`` commit after the caller's (which stands whatever happens here)."""
        snapshot = self._table.snapshot()
        chosen = files_to_merge(snapshot.files.values())
        if not chosen:
            return
        schema = self._schema(snapshot)
        try:
            self._commit_change(snapshot, schema,
                                lambda: self._table.plan_compact(snapshot, schema, chosen))
        except Exception as exc:    # noqa: BLE001 - the change itself is committed already
            warnings.warn(f"feature group {self.name!r}: the automatic compaction after commit "
                          f"{snapshot.version} failed ({exc}); the commit stands, and the next "
                          f"change tries again", stacklevel=4)

    # -- queries -----------------------------------------------------------------------------
    def select(self, columns: list[str]) -> Query:
        """A query of these feature columns (key and event time columns are always carried).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> fg.select(["total"]).read().column_names
        ['card', 'at', 'total']
        >>> lake.close()
        """
        self._ctx.check_open()
        return select_query(self._ctx, self._spec, self.schema, columns)

    def select_all(self) -> Query:
        """A query of every feature column.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> fg.select_all().read(spine={"card": [2], "at": [day(5)]}).column("total").to_pylist()
        [20.0]
        >>> lake.close()
        """
        self._ctx.check_open()
        return select_query(self._ctx, self._spec, self.schema, None)

    # -- reading -----------------------------------------------------------------------------
    def read(self, *, as_of: int | dt.datetime | None = None,
             columns: list[str] | None = None) -> pa.Table:
        """The table at the latest commit, at commit number ``as_of``, or as it was at a
        ``datetime`` (naive means UTC).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> _ = fg.insert({"card": [1], "at": [day(2)], "total": [11.0]})
        >>> fg.read().num_rows, fg.read(as_of=0).num_rows
        (3, 2)
        >>> fg.read(columns=["total"]).column_names
        ['total']
        >>> lake.close()
        """
        self._ctx.check_open()
        snapshot, latest = self._snapshot_at(as_of)
        schema = self._schema(snapshot) or self._schema(latest)
        if columns is not None:
            if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                raise SchemaError(f"columns: expected a list of column names, got {columns!r}")
            unknown = [c for c in columns if schema is not None and c not in schema.names]
            if unknown:
                raise SchemaError(f"columns: no column {unknown[0]!r} in feature group {self.name!r}")
        if schema is None:  # nothing written and no declared schema: no rows, types unknown
            return pa.table({c: pa.array([], pa.null()) for c in columns or []})
        try:
            return self._table.read(snapshot, schema,
                                    list(columns) if columns is not None else None)
        except FileNotFoundError as exc:
            horizon = self._ctx.audit.vacuum_horizon(group_ref(self.name, self.version))
            if snapshot.version < horizon:
                raise NotFoundError(f"feature group {self.name!r} commit {snapshot.version} was "
                                    f"vacuumed: lake.vacuum kept the files of commits "
                                    f"{horizon} and later") from None
            raise IntegrityError(f"feature group {self.name!r} commit {snapshot.version}: data "
                                 f"file {exc.filename} is missing") from None

    def _snapshot_at(self, as_of: int | dt.datetime | None) -> tuple[Snapshot, Snapshot]:
        """The snapshot at ``as_of`` (a commit number, a datetime, or None: the latest), and
        the latest one."""
        latest = self._table.snapshot()
        if as_of is None:
            return latest, latest
        if isinstance(as_of, dt.datetime):
            return self._table.snapshot(self._table.version_at(as_of)), latest
        if isinstance(as_of, int) and not isinstance(as_of, bool):
            if not 0 <= as_of <= latest.version:
                raise NotFoundError(
                    f"feature group {self.name!r} has no commit {as_of} "
                    f"(commits: {'none' if latest.version < 0 else f'0..{latest.version}'})"
                )
            return self._table.snapshot(as_of), latest
        raise ValidationError(f"as_of: expected a commit number or a datetime, got {as_of!r}")

    def to_spark(self, spark: Any, *, as_of: int | dt.datetime | None = None) -> Any:
        """The table at ``as_of`` as a Spark DataFrame, read from the exact Parquet files of
        that commit with the schema from the Delta log (needs the ``lakecore[spark]`` extra;
        lakecore never creates a SparkSession, it uses the one given).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1], "age": [30]})
        >>> df = fg.to_spark(spark, as_of=0)        # doctest: +SKIP
        >>> df.count()                              # doctest: +SKIP
        1
        >>> lake.close()
        """
        self._ctx.check_open()
        if self._ctx.spark is None:
            raise LakeError("to_spark: this lake was opened without the Spark integration")
        snapshot, latest = self._snapshot_at(as_of)
        schema_string = (snapshot.metadata or latest.metadata or {}).get("schemaString") \
            or self._spec.schema
        return self._ctx.spark.table_to_spark(spark, self._table.location, snapshot,
                                              schema_string, self.name)

    def history(self) -> list[Commit]:
        """Every commit, oldest first.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> _ = fg.delete({"card": [1]})
        >>> [(c.version, c.operation, c.rows_added, c.rows_removed) for c in fg.history()]
        [(0, 'insert', 2, 0), (1, 'delete', 0, 1)]
        >>> lake.close()
        """
        self._ctx.check_open()
        entries, shown = self._table.log.history(), self._table.history_shown
        shown.extend(commit_record(v, ts, info) for v, ts, info in entries[len(shown):])
        return list(shown)


def feature_group(ctx: LakeContext, name: str, version: int | None = None) -> FeatureGroup:
    """Feature group ``name`` at ``version`` (the latest when None); NotFoundError."""
    return FeatureGroup(ctx, ctx.group_spec(name, version))
