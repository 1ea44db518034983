"""What the domain objects of one open lake share, instead of the ``Lake`` itself.

A ``LakeContext`` holds the lake's folder, catalog, writer lock, offline tables, online store
and audit trail, and the two rules every change follows: ``check_open`` before anything, and
``writing`` (the writer lock, after checking that changes are allowed) around a change. The
``Lake`` facade makes one per open and hands it to every ``FeatureGroup``, ``FeatureView``,
``TrainingDataset``, ``ModelRegistry`` and ``Predictor`` it returns.

The audit trail and the Spark integration live in layers above this one; the facade installs
them here (``audit`` is anything with ``append``; ``spark`` the integration's engine).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakecore.base.files import check_own_folders
from lakecore.base.refs import group_folder, group_ref
from lakecore.catalog.locks import WriterLock
from lakecore.catalog.specs import CatalogState, FeatureGroupSpec, pick_version
from lakecore.catalog.store import Catalog
from lakecore.errors import LakeError, NotFoundError, ReadOnlyError
from lakecore.offline.delta_log import LOG_DIR, RecordedCommit
from lakecore.offline.table import OfflineTable
from lakecore.online.store import OnlineStore


class AuditTrail(Protocol):
    def append(self, op: str, target: str, object_hash: str | None, *,
               files: dict[str, str] | None = None, catalog: str | None = None,
               aborts: int | None = None, details: dict[str, Any] | None = None) -> Any: ...

    def recorded(self, target: str) -> Any: ...

    def next_seq(self) -> int: ...

    def abort(self, event: Any) -> Any: ...

    def withdraw(self, event: Any) -> None: ...

    def vacuum_horizon(self, group: str) -> int: ...

    def rewrites(self) -> Any: ...


@dataclass(eq=False)
class LakeContext:
    path: str
    readonly: bool
    catalog: Catalog
    lock: WriterLock
    online_store: OnlineStore
    audit: AuditTrail
    spark: Any = None                   # the Spark integration's engine (see the module doc)
    closed: bool = False
    _tables: dict[str, OfflineTable] = field(default_factory=dict)
    _tables_guard: threading.Lock = field(default_factory=threading.Lock)

    def check_open(self) -> None:
        if self.closed:
            raise LakeError(f"the lake at {self.path} is closed")

    @contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Hold the writer lock for one change, after checking that changes are allowed."""
        self.check_open()
        if self.readonly:
            raise ReadOnlyError(f"{what}: the lake at {self.path} is open read-only")
        with self.lock.hold():
            yield
            if self.audit.index_due():  # what opens read instead of the whole audit log
                with contextlib.suppress(OSError):
                    self.audit.write_index()

    def record(self, change: Callable[[CatalogState], Any], op: str, target: str,
               object_hash: str | None, details: dict[str, Any] | None = None) -> None:
        """Record a change of definitions (the caller is inside ``writing``): its audit event
        first, with the new catalog's sha256, then the catalog, which names the event. A crash
        between the two leaves an event whose change never landed: the next writable open
        appends an ``abort`` for it."""
        announced = []
        try:
            self.catalog.update(change, audit_seq=self.audit.next_seq(), announce=lambda digest:
                                announced.append(self.audit.append(op, target, object_hash,
                                                                   catalog=digest,
                                                                   details=details)))
        except BaseException:
            if announced and self.catalog.digest() != announced[0].catalog:
                self.withdraw(announced[0])     # the catalog was not written
            raise

    def announce(self, op: str, target: str, object_hash: str | None,
                 files: dict[str, str]) -> Any:
        """Record a table commit before it is made (``files``: the sha256 of its commit file
        and checkpoint, by absolute path). An event left for the same commit by a writer
        killed before making it is aborted first."""
        stale = self.audit.recorded(target)
        if stale is not None:
            self.audit.abort(stale)
        return self.audit.append(op, target, object_hash, files={
            os.path.relpath(path, self.path): digest for path, digest in files.items()})

    def withdraw(self, event: Any) -> None:
        """Take back the event of an announced change that was not made."""
        self.audit.withdraw(event)

    def offline_table(self, spec: FeatureGroupSpec) -> OfflineTable:
        """The group's offline table, one object per location for the lake's lifetime; its
        commits are read only when they are the ones the audit log recorded."""
        folder = group_folder(spec.name, spec.version)
        location = os.path.join(self.path, folder)
        with self._tables_guard:
            table = self._tables.get(location)
            if table is None:
                check_own_folders(self.path, folder)
                keys = spec.primary_key + ([spec.event_time] if spec.event_time else [])

                def recorded(version: int) -> RecordedCommit | None:
                    event = self.audit.recorded(group_ref(spec.name, spec.version, version))
                    if event is None:
                        return None
                    files = event.files or {}
                    now = self.audit.rewrites().files     # what a forget rewrote since
                    log = os.path.join(folder, LOG_DIR, f"{version:020d}")
                    return RecordedCommit(now.get(log + ".json", files.get(log + ".json")),
                                          now.get(log + ".checkpoint.parquet",
                                                  files.get(log + ".checkpoint.parquet")),
                                          event.object_hash)
                table = OfflineTable(location, keys, list(spec.primary_key), recorded)
                self._tables[location] = table
            return table

    def forget_table(self, location: str) -> None:
        with self._tables_guard:
            table = self._tables.pop(os.path.join(self.path, location), None)
        if table is not None:
            table.ready_files.release()

    def release_tables(self) -> None:
        """Drop the offline tables, removing the empty files they made for writes to come
        (``offline.ready_files``): at close, and when the process exits without one."""
        with self._tables_guard:
            tables, self._tables = list(self._tables.values()), {}
        for table in tables:
            table.ready_files.release()

    def group_spec(self, name: str, version: int | None) -> FeatureGroupSpec:
        """The definition of feature group ``name`` at ``version`` (latest when None)."""
        spec = pick_version([s for s in self.catalog.state().feature_groups if s.name == name],
                            version)
        if spec is None:
            which = f"version {version}" if version is not None else "any version"
            raise NotFoundError(f"feature group {name!r} ({which}) not found")
        return spec

    def resolve(self, name: str, version: int) -> tuple[FeatureGroupSpec, OfflineTable]:
        """A group's definition and offline table (what the query engine reads)."""
        spec = self.group_spec(name, version)
        return spec, self.offline_table(spec)
