"""A feature group's online side: its row layout, rolling the online store forward to the
offline commits, rebuilding it, and reading the latest row per key. A part of
``FeatureGroup``, kept apart."""

from __future__ import annotations

import os
from typing import Any

import lmdb
import pyarrow as pa

from lakecore.base.arrow import as_table
from lakecore.base.parquet import read_parquet
from lakecore.base.storage_errors import guard_storage, storage_error
from lakecore.errors import LakeError, ValidationError
from lakecore.offline.delta_log import commit_info
from lakecore.offline.evolution import fit
from lakecore.online.layout import Layout, check_keys


@guard_storage(skip=("online_read",))
class OnlineServing:
    """``FeatureGroup``'s online store methods (it provides ``_ctx``, ``_spec``, ``_table``,
    ``_schema`` and ``_online_layout``)."""

    def _layout(self, schema: pa.Schema) -> Layout:
        cached = self._table.online_layout
        if cached is None or cached.schema != schema:
            cached = Layout.of(schema, self.primary_key, self.event_time)
            self._table.online_layout = cached
        return cached

    def _sync_online(self) -> None:
        """Roll the online store forward to the latest offline commit (the caller holds the
        writer lock): commit by commit when only inserts and compactions are missing (a
        compaction changes no row: skipped), else by rebuilding the group's online data from
        the offline table. Reads only the commits after the watermark."""
        store, table = self._ctx.online_store, self._table
        snapshot = table.snapshot()
        watermark = store.watermark(self.name, self.version)
        if snapshot.version < 0 or watermark >= snapshot.version:
            table.online_version = snapshot.version
            return
        schema = self._schema(snapshot)
        missing = {v: commit_info(table.log.read_commit(v)[0])
                   for v in range(max(watermark, -1) + 1, snapshot.version + 1)}
        operations = {(info.get("lakecore") or {}).get("operation") for info in missing.values()}
        if watermark >= 0 and operations <= {"insert", "compact"}:
            for version, info in missing.items():
                if (info.get("lakecore") or {}).get("operation") == "insert":
                    self._apply_online_files(table.paths_added_by(version), schema, version)
        else:
            self._rebuild_online(snapshot, schema)
        table.online_version = snapshot.version

    def _apply_online_files(self, paths: list[str], schema: pa.Schema, version: int,
                            clear: bool = False) -> None:
        """Write the rows of data files ``paths`` (relative to the table; of commit
        ``version``) to the online store a file at a time, in one transaction: memory follows
        one file, and readers see the whole commit or none of it. ``clear``: replace every
        row the group had (a rebuild)."""
        location = self._table.location
        files = [os.path.join(location, p) for p in paths]

        def parts():
            for path in files:
                yield fit(read_parquet(path), schema)

        size = 4 * sum(os.lstat(f).st_size for f in files)     # decoded: a few times more
        self._ctx.online_store.apply_parts(self.name, self.version, self._layout(schema), parts,
                                           version, size, clear=clear)

    def _rebuild_online(self, snapshot, schema: pa.Schema) -> None:
        """Every row of the offline table at ``snapshot`` into the online store, replacing
        what the group had (one transaction, a file at a time)."""
        self._apply_online_files(list(snapshot.files), schema, snapshot.version, clear=True)

    def rebuild_online(self) -> None:
        """Rebuild this group's online data from its offline table (for example after the
        online files were lost).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> fg.rebuild_online()
        >>> fg.online_read({"card": [1]}).column("total").to_pylist()
        [10.0]
        >>> lake.close()
        """
        if not self.online:
            raise ValidationError(f"feature group {self.name!r} is not online")
        with self._ctx.writing(f"rebuild_online {self.name!r}"):
            snapshot = self._table.snapshot()
            schema = self._schema(snapshot)
            if schema is None or snapshot.version < 0:
                return
            self._rebuild_online(snapshot, schema)

    def online_read(self, keys: Any) -> pa.Table:
        """The latest row (greatest event time) of each requested key, in request order: the
        key columns as requested, then the event time and features; nulls for keys never seen
        and for rows older than the group's ttl.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
        >>> _ = fg.insert({"card": [1], "at": [day(3)], "total": [30.0]})
        >>> fg.online_read({"card": [2, 1, 9]}).column("total").to_pylist()
        [20.0, 30.0, None]
        >>> lake.close()
        """
        self._ctx.check_open()
        if not self.online:
            raise ValidationError(f"feature group {self.name!r} is not online")
        try:
            layout = self._read_layout()
            key_rows = check_keys(as_table(keys, "keys"), layout)
            found, stored = self._ctx.online_store.read(self.name, self.version, layout,
                                                        key_rows, self._spec.ttl_us)
            if stored is not layout:
                # stored under another schema: a change made since this object read the
                # schema, or one whose online rewrite a killed writer left to the next open
                self._online_layout = None
                layout = self._read_layout()
                found = fit(found, layout.batch_schema)
            return found
        except (OSError, lmdb.Error) as exc:    # here, not by a wrapper: a hot path
            if isinstance(exc, LakeError):
                raise
            raise storage_error(exc, self) from exc

    def _read_layout(self) -> Layout:
        """The online layout for reads, looked up once (again when the online store shows
        rows stored under another: a schema change)."""
        layout = self._online_layout
        if layout is None:
            schema = self._schema(self._table.snapshot())
            if schema is None:
                raise ValidationError(f"feature group {self.name!r} has no schema and no rows yet")
            layout = self._online_layout = self._layout(schema)
        return layout
