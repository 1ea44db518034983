"""``lakecore.open`` and the ``Lake``: one folder, its catalog, its writer lock and its tables.

Layout of a lake folder::

    lakecore.json                       marker: format version
    catalog.json                        definitions (see catalog.py)
    .lock                               the writer lock (see locks.py)
    feature_groups/NAME/vVERSION/       one Delta table per feature group version
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from lakecore.base.files import remove_tree, replace_file
from lakecore.base.storage_errors import guard_storage
from lakecore.governance.audit import AuditEvent, AuditLog, commit_files, live_events, missing_events
from lakecore.catalog.store import Catalog, FeatureGroupSpec, FeatureViewSpec
from lakecore.errors import (
    AlreadyExistsError,
    IntegrityError,
    LakeError,
    NotFoundError,
    ReadOnlyError,
    SchemaError,
    ValidationError,
)
from lakecore.features.feature_group import FeatureGroup
from lakecore.features.feature_view import FeatureView, check_view
from lakecore.governance.lineage import Node, lineage, view_hash
from lakecore.catalog.locks import WriterLock
from lakecore.models.registry import ModelRegistry, Predictor
from lakecore.offline.table import OfflineTable
from lakecore.online.store import Layout, OnlineStore
from lakecore.query.planner import Query
from lakecore.offline.schema import storage_schema, to_delta_schema_string
from lakecore.training.datasets import discard_folder
from lakecore.governance.verify import Report, verify

MARKER_FILE = "lakecore.json"
_CREATE_OPS = ("create_feature_group", "create_feature_view", "create_training_data",
               "register_model")
_DELETE_OP = {"fg": "delete_feature_group", "fv": "delete_feature_view",
              "td": "delete_training_data", "model": "delete_model"}
LAKE_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def open(path: str | os.PathLike[str], *, readonly: bool = False) -> Lake:
    """Open the lake in ``path``, creating the folder if it is missing (unless ``readonly``).

    A folder that exists must be a lake or empty: anything else is a ``LakeError`` and
    nothing is written there. ``readonly=True`` refuses every change (``ReadOnlyError``) and
    works on read-only media; a missing lake is then a ``NotFoundError``.

    Examples
    --------
    >>> import lakecore, tempfile
    >>> with lakecore.open(tempfile.mkdtemp()) as lake:
    ...     fg = lake.create_feature_group("users", primary_key="id")
    ...     fg.insert({"id": [1, 2], "age": [30, 40]}).rows_added
    2
    """
    return Lake(os.fspath(path), readonly=readonly)


def check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"{what}: expected a name of letters, digits, '_', '.' or '-' (at most 128 "
            f"characters, not starting with '.' or '-'), got {name!r}"
        )
    return name


def check_version(version: Any, what: str = "version") -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"{what}: expected an integer >= 1, got {version!r}")
    return version


@guard_storage()
class Lake:
    """A lake folder opened for reading, or for reading and writing."""

    def __init__(self, path: str, *, readonly: bool = False):
        self.path = os.path.abspath(path)
        self.readonly = bool(readonly)
        self._closed = False
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise LakeError(f"{self.path} is not a folder, so it cannot be a lake")
        if not os.path.isdir(self.path):
            if readonly:
                raise NotFoundError(f"no lake at {self.path}")
            os.makedirs(self.path, exist_ok=True)
        marker = os.path.join(self.path, MARKER_FILE)
        if not os.path.lexists(marker):
            if os.listdir(self.path):   # never turn someone's folder into a lake
                raise LakeError(f"{self.path} is not a lake (it has no {MARKER_FILE}) and is "
                                f"not empty; open a new or empty folder")
            if readonly:
                raise NotFoundError(f"no lake at {self.path} (no {MARKER_FILE})")
            self._write_marker(marker)
        elif os.path.islink(marker) or not os.path.isfile(marker):
            raise IntegrityError(f"{marker} is not a regular file; lakecore does not follow "
                                 f"links inside a lake")
        self._lock = WriterLock(self.path)
        self.catalog = Catalog(self.path)
        self._tables: dict[str, OfflineTable] = {}
        self._tables_guard = threading.Lock()
        self.online_store = OnlineStore(self.path, self.readonly)
        self.audit = AuditLog(self.path)
        self.models = ModelRegistry(self)
        if not self.readonly:
            self._catch_up_online()
            self._catch_up_audit()

    def _catch_up_audit(self) -> None:
        """Append the audit events a crash left out (a change is durable before its event).
        Only commits without an event have their log file read, so an open stays cheap."""
        with self._lock.hold():
            events = self.audit.events()
            live = live_events(events)
            audited = {e.target for e in live}
            state = self.catalog.state()
            for spec in state.feature_groups:
                ref = f"fg:{spec.name}@{spec.version}"
                if ref not in audited:
                    self.audit.append("create_feature_group", ref, None, events)
                table = self._offline_table(spec)
                for version in table.log._versions_on_disk()[0]:
                    target = f"{ref}#{version}"
                    if target in audited:
                        continue
                    actions, _ = table.log.read_commit(version)
                    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
                    ours = info.get("lakecore") or {}
                    self.audit.append(ours.get("operation") or str(info.get("operation", "commit")),
                                      target, ours.get("hash"), events,
                                      commit_files(self.path, table.location, version))
            others = [("create_feature_view", f"fv:{v.name}@{v.version}", None)
                      for v in state.feature_views]
            others += [("create_training_data", f"td:{t.view}@{t.view_version}/{t.version}",
                        t.hash) for t in state.training_datasets]
            others += [("register_model", f"model:{m.name}@{m.version}", m.hash)
                       for m in state.models]
            for op, target, digest in missing_events(events, others):
                self.audit.append(op, target, digest, events)
            # deletions that were durable in the catalog before their event was
            present = {f"fg:{g.name}@{g.version}" for g in state.feature_groups} | \
                {target for _, target, _ in others}
            gone = dict.fromkeys(e.target for e in live if e.op in _CREATE_OPS
                                 and e.target not in present)
            for target in gone:
                kind = target.split(":", 1)[0]
                if kind == "td" and "fv:" + target[3:].split("/", 1)[0] in gone:
                    continue                # deleted with its view
                self.audit.append(_DELETE_OP[kind], target, None, events)

    def audit_log(self) -> list[AuditEvent]:
        """Every change ever made to the lake, oldest first, hash-chained."""
        self._check_open()
        return self.audit.events()

    def predictor(self, model_name: str, *, version: int | None = None,
                  alias: str | None = None, load: Callable[[str], Any],
                  fill: float | None = None) -> Predictor:
        """A model version loaded in this process, predicting from online feature vectors.

        Parameters
        ----------
        model_name : str
        version, alias : optional
            Which version: a number, or an alias (``predictor.reload()`` follows it when it
            moves); the latest version when neither is given.
        load : callable
            ``load(path)`` turns the artifact's read-only copy in the lake into an object with
            ``.predict(X)`` (and any other method ``predict(method=...)`` names).
        fill : float, optional
            Replaces missing feature values (unknown keys, rows past the ttl); NaN when None.

        Examples
        --------
        See ``lakecore.Predictor``.
        """
        self._check_open()
        return Predictor(self, model_name, version, alias, load, fill)

    def lineage(self, obj: Any, direction: str = "upstream") -> list[Node]:
        """What ``obj`` was made from (upstream) or what was made from it (downstream)."""
        self._check_open()
        return lineage(self, obj, direction)

    def verify(self, *, fast: bool = False) -> Report:
        """Re-hash every file the lake needs and check every hash and the audit chain.
        ``fast=True`` trusts files whose (inode, mtime, size) have not changed since a
        previous verify."""
        self._check_open()
        return verify(self, fast=fast)

    def _catch_up_online(self) -> None:
        """Bring every online group's online data up to its latest offline commit."""
        specs = [s for s in self.catalog.state().feature_groups if s.online]
        if specs:
            with self._lock.hold():
                for spec in specs:
                    FeatureGroup(self, spec)._sync_online()

    def _write_marker(self, marker: str) -> None:
        replace_file(marker, json.dumps({"format": LAKE_FORMAT,
                                         "created_at_ms": time.time_ns() // 1_000_000}).encode())

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._closed = True
        self._tables.clear()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lake({self.path!r}{', readonly=True' if self.readonly else ''})"

    def _check_open(self) -> None:
        if self._closed:
            raise LakeError(f"the lake at {self.path} is closed")

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Hold the writer lock for one change, after checking that changes are allowed."""
        self._check_open()
        if self.readonly:
            raise ReadOnlyError(f"{what}: the lake at {self.path} is open read-only")
        with self._lock.hold():
            yield

    def _offline_table(self, spec: FeatureGroupSpec) -> OfflineTable:
        location = os.path.join(self.path, spec.location)
        with self._tables_guard:
            table = self._tables.get(location)
            if table is None:
                keys = spec.primary_key + ([spec.event_time] if spec.event_time else [])
                table = OfflineTable(location, keys, list(spec.primary_key))
                self._tables[location] = table
            return table

    # -- feature groups ----------------------------------------------------------------------
    def create_feature_group(
        self,
        name: str,
        *,
        version: int = 1,
        primary_key: str | list[str],
        event_time: str | None = None,
        schema: pa.Schema | None = None,
        online: bool = False,
        ttl: dt.timedelta | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> FeatureGroup:
        """Create feature group ``name`` at ``version``; AlreadyExistsError if it exists."""
        check_name(name, "name")
        check_version(version)
        keys = [primary_key] if isinstance(primary_key, str) else primary_key
        if not isinstance(keys, (list, tuple)) or not keys or \
                not all(isinstance(k, str) and k for k in keys):
            raise SchemaError(f"primary_key: expected a column name or a non-empty list of "
                              f"column names, got {primary_key!r}")
        keys = list(keys)
        if len(set(keys)) != len(keys):
            raise SchemaError(f"primary_key: a column is named twice in {keys}")
        if event_time is not None and (not isinstance(event_time, str) or not event_time):
            raise SchemaError(f"event_time: expected a column name or None, got {event_time!r}")
        if event_time in keys:
            raise SchemaError(f"primary_key: must not contain the event_time column "
                              f"{event_time!r} (event_time is part of the upsert key already)")
        schema_string = None
        if schema is not None:
            if not isinstance(schema, pa.Schema):
                raise SchemaError(f"schema: expected a pyarrow.Schema, got {type(schema).__name__}")
            stored = storage_schema(schema, keys, event_time)
            if online:
                Layout.of(stored, keys, event_time)   # SchemaError for types kept offline only
            schema_string = to_delta_schema_string(stored)
        ttl_us = None
        if ttl is not None:
            if not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0):
                raise ValidationError(f"ttl: expected a positive datetime.timedelta, got {ttl!r}")
            ttl_us = (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds
        if not isinstance(description, str):
            raise ValidationError(f"description: expected a str, got {description!r}")
        tags = dict(tags or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ValidationError("tags: expected a dict of str to str")

        with self._writing("create_feature_group"):
            if self._find_spec(name, version) is not None:
                raise AlreadyExistsError(f"feature group {name!r} version {version} already exists")
            location = os.path.join("feature_groups", name, f"v{version}")
            self._remove_group_data(name, version, location)    # a deletion's leftovers
            os.makedirs(os.path.join(self.path, location), exist_ok=True)
            spec = FeatureGroupSpec(
                name=name, version=version, primary_key=keys, event_time=event_time,
                schema=schema_string, online=bool(online), ttl_us=ttl_us,
                description=description, tags=tags, created_at_ms=time.time_ns() // 1_000_000,
                table_id=str(uuid.uuid4()), location=location,
            )
            self.catalog.update(lambda state: state.feature_groups.append(spec))
            self.audit.append("create_feature_group", f"fg:{name}@{version}", None)
        return FeatureGroup(self, spec)

    def delete_feature_group(self, name: str, version: int) -> None:
        """Delete a feature group version: its definition, Delta table and online rows.
        Refused (``LakeError``) while a feature view reads it. Audited; ``verify()`` stays
        clean, and ``lineage`` of it raises ``NotFoundError`` afterwards.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> _ = lake.create_feature_group("users", primary_key="id")
        >>> lake.delete_feature_group("users", 1)
        >>> [fg.name for fg in lake.feature_groups()]
        []
        >>> lake.close()
        """
        check_version(version)
        with self._writing(f"delete feature group {name!r} version {version}"):
            spec = self._find_spec(name, version)
            if spec is None:
                raise NotFoundError(f"feature group {name!r} version {version} not found")
            readers = [f"fv:{v.name}@{v.version}" for v in self.catalog.state().feature_views
                       if any((p.group, p.version) == (name, version) for p in v.query.parts)]
            if readers:
                raise LakeError(f"feature group {name!r} version {version} cannot be deleted: "
                                f"feature view(s) {', '.join(readers)} read it; delete them "
                                f"first")
            last_hash = self._offline_table(spec).snapshot().commit_hash

            def drop(state) -> None:
                state.feature_groups = [g for g in state.feature_groups
                                        if (g.name, g.version) != (name, version)]
            self.catalog.update(drop)
            self.audit.append("delete_feature_group", f"fg:{name}@{version}", last_hash)
            self._remove_group_data(name, version, spec.location)

    def _remove_group_data(self, name: str, version: int, location: str) -> None:
        """Remove the table folder and online rows of a group that the catalog no longer
        has (the caller holds the writer lock)."""
        folder = os.path.join(self.path, location)
        with self._tables_guard:
            self._tables.pop(folder, None)
        self.online_store.remove_group(name, version)
        remove_tree(folder)

    def delete_feature_view(self, name: str, version: int) -> None:
        """Delete a feature view version with its training datasets and their files.
        Refused (``LakeError``) while a registered model was trained on one of its datasets.
        Audited; ``verify()`` stays clean.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1], "age": [30]})
        >>> _ = lake.create_feature_view("ages", query=fg.select_all())
        >>> lake.delete_feature_view("ages", 1)
        >>> lake.delete_feature_group("users", 1)      # no view reads it any more
        >>> lake.close()
        """
        check_version(version)
        with self._writing(f"delete feature view {name!r} version {version}"):
            state = self.catalog.state()
            spec = next((v for v in state.feature_views if (v.name, v.version) == (name, version)),
                        None)
            if spec is None:
                raise NotFoundError(f"feature view {name!r} version {version} not found")
            datasets = {t.version for t in state.training_datasets
                        if (t.view, t.view_version) == (name, version)}
            trained = [f"model:{m.name}@{m.version}" for m in state.models
                       if m.training_data is not None and m.training_data[:2] == [name, version]
                       and m.training_data[2] in datasets]
            if trained:
                raise LakeError(f"feature view {name!r} version {version} cannot be deleted: "
                                f"registered model(s) {', '.join(trained)} were trained on its "
                                f"training data; delete them first")
            family = f"td:{name}@{version}"

            def drop(state) -> None:
                state.feature_views = [v for v in state.feature_views
                                       if (v.name, v.version) != (name, version)]
                state.training_datasets = [t for t in state.training_datasets
                                           if (t.view, t.view_version) != (name, version)]
                if datasets:
                    state.retired[family] = max(state.retired.get(family, 0), *datasets)
            self.catalog.update(drop)
            self.audit.append("delete_feature_view", f"fv:{name}@{version}", view_hash(spec))
            discard_folder(self.path, os.path.join("training_data", name, f"v{version}"))

    def _find_spec(self, name: str, version: int | None) -> FeatureGroupSpec | None:
        specs = [s for s in self.catalog.state().feature_groups if s.name == name]
        if version is None:
            return max(specs, key=lambda s: s.version, default=None)
        return next((s for s in specs if s.version == version), None)

    def feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """Feature group ``name`` at ``version`` (the latest version when None)."""
        self._check_open()
        if version is not None:
            check_version(version)
        spec = self._find_spec(name, version)
        if spec is None:
            which = f"version {version}" if version is not None else "any version"
            raise NotFoundError(f"feature group {name!r} ({which}) not found")
        return FeatureGroup(self, spec)

    # -- feature views -----------------------------------------------------------------------
    def create_feature_view(self, name: str, *, version: int = 1, query: Query,
                            labels: Any = (), transforms: dict[str, str] | None = None,
                            description: str = "") -> FeatureView:
        """A new feature view: ``query`` with ``labels`` (output or spine columns) and
        ``transforms`` (feature column -> built-in transform name)."""
        name = check_name(name, "feature view name")
        version = check_version(version)
        labels, transforms = check_view(query, labels, transforms)
        if not isinstance(description, str):
            raise ValidationError(f"description: expected a str, got {description!r}")
        if query._lake is not self:
            raise ValidationError("query: it comes from another Lake object")
        with self._writing("create_feature_view"):
            state = self.catalog.state()
            if any((v.name, v.version) == (name, version) for v in state.feature_views):
                raise AlreadyExistsError(f"feature view {name!r} version {version} already exists")
            spec = FeatureViewSpec(name=name, version=version, query=query.spec, labels=labels,
                                   transforms=transforms, description=description,
                                   created_at_ms=time.time_ns() // 1_000_000)
            self.catalog.update(lambda s: s.feature_views.append(spec))
            self.audit.append("create_feature_view", f"fv:{name}@{version}", None)
        return FeatureView(self, spec)

    def feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """Feature view ``name`` at ``version`` (the latest version when None)."""
        self._check_open()
        specs = [v for v in self.catalog.state().feature_views if v.name == name]
        spec = max(specs, key=lambda v: v.version, default=None) if version is None else \
            next((v for v in specs if v.version == version), None)
        if spec is None:
            which = f"version {version}" if version is not None else "any version"
            raise NotFoundError(f"feature view {name!r} ({which}) not found")
        return FeatureView(self, spec)

    def feature_views(self) -> list[FeatureView]:
        """Every feature view, every version, sorted by name and version."""
        self._check_open()
        specs = sorted(self.catalog.state().feature_views, key=lambda v: (v.name, v.version))
        return [FeatureView(self, v) for v in specs]

    def feature_groups(self) -> list[FeatureGroup]:
        """Every feature group, every version, sorted by name and version."""
        self._check_open()
        specs = sorted(self.catalog.state().feature_groups, key=lambda s: (s.name, s.version))
        return [FeatureGroup(self, s) for s in specs]

