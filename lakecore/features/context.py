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

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakecore.base.files import check_own_folders
from lakecore.base.refs import group_folder
from lakecore.catalog.locks import WriterLock
from lakecore.catalog.specs import CatalogState, FeatureGroupSpec, pick_version
from lakecore.catalog.store import Catalog
from lakecore.errors import LakeError, NotFoundError, ReadOnlyError
from lakecore.offline.table import OfflineTable
from lakecore.online.store import OnlineStore


class AuditTrail(Protocol):
    def append(self, op: str, target: str, object_hash: str | None, events: Any = None,
               files: dict[str, str] | None = None) -> Any: ...


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

    def record(self, change: Callable[[CatalogState], Any], op: str, target: str,
               object_hash: str | None) -> None:
        """Persist a change of definitions, then its audit event (the caller is inside
        ``writing``): the catalog is the fact, the event derived from it."""
        self.catalog.update(change)
        self.audit.append(op, target, object_hash)

    def offline_table(self, spec: FeatureGroupSpec) -> OfflineTable:
        """The group's offline table, one object per location for the lake's lifetime."""
        location = os.path.join(self.path, group_folder(spec.name, spec.version))
        with self._tables_guard:
            table = self._tables.get(location)
            if table is None:
                check_own_folders(self.path, group_folder(spec.name, spec.version))
                keys = spec.primary_key + ([spec.event_time] if spec.event_time else [])
                table = OfflineTable(location, keys, list(spec.primary_key))
                self._tables[location] = table
            return table

    def forget_table(self, location: str) -> None:
        with self._tables_guard:
            self._tables.pop(os.path.join(self.path, location), None)

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
