"""``lakecore.open`` and the ``Lake``: the facade that opens a lake folder and hands out its
objects.

Opening builds the lake's ``LakeContext`` (catalog, writer lock, offline tables, online store,
audit log, Spark integration) and, for a writable open, finishes what a killed writer left:
it records an abort for a change announced in the audit log and never made, refuses a catalog
lakecore did not write, and rolls the online store forward to the latest offline commits
(rebuilding it when it does not open). Everything
else is done by the objects it returns (``lakecore.features``, ``lakecore.models``) and by
governance (``lakecore.governance``).

Layout of a lake folder::

    lakecore.json                       marker: format version
    catalog.json                        definitions (lakecore.catalog)
    audit.log                           every change, hash-chained (lakecore.governance.audit)
    .lock                               the writer lock (lakecore.catalog.locks)
    feature_groups/NAME/vVERSION/       one Delta table per feature group version
    online/                             the LMDB online store
    training_data/VIEW/vVERSION/tdN/    training datasets
    models/NAME/vVERSION/               model artifacts, read-only
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import lmdb
import pyarrow as pa

from lakecore.base.files import replace_file
from lakecore.base.refs import check_version
from lakecore.base.storage_errors import guard_storage
from lakecore.base.times import now_millis
from lakecore.catalog.locks import WriterLock
from lakecore.catalog.store import Catalog
from lakecore.errors import IntegrityError, LakeError, NotFoundError, ReadOnlyError
from lakecore.features import definitions
from lakecore.features.context import LakeContext
from lakecore.features.feature_group import FeatureGroup, feature_group
from lakecore.features.feature_view import FeatureView
from lakecore.features.query import Query
from lakecore.features.training_dataset import view_spec
from lakecore.governance.audit import AuditLog
from lakecore.governance.audit_events import AuditEvent
from lakecore.governance.forget import ForgetReport, forget
from lakecore.governance.forget import finish as finish_forget
from lakecore.governance.lineage import Node, lineage
from lakecore.governance.recovery import anchor_problems, catch_up
from lakecore.governance.vacuum import VacuumResult, check_retain, vacuum
from lakecore.governance.verify import Report, verify
from lakecore.integrations.spark import SparkEngine
from lakecore.models.monitoring import monitor
from lakecore.models.prediction_log import PredictionLog
from lakecore.models.predictor import Predictor
from lakecore.models.registry import ModelRegistry
from lakecore.online.store import OnlineStore
from lakecore.quality.drift import DriftReport

MARKER_FILE = "lakecore.json"
LAKE_FORMAT = 1


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


def _check_folder(path: str, readonly: bool) -> None:
    """Make sure ``path`` is a lake, or make an empty or missing folder one."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise LakeError(f"{path} is not a folder, so it cannot be a lake")
    if not os.path.isdir(path):
        if readonly:
            raise NotFoundError(f"no lake at {path}")
        os.makedirs(path, exist_ok=True)
    marker = os.path.join(path, MARKER_FILE)
    if not os.path.lexists(marker):
        if os.listdir(path):            # never turn someone's folder into a lake
            raise LakeError(f"{path} is not a lake (it has no {MARKER_FILE}) and is not "
                            f"empty; open a new or empty folder")
        if readonly:
            raise NotFoundError(f"no lake at {path} (no {MARKER_FILE})")
        replace_file(marker, json.dumps({"format": LAKE_FORMAT,
                                         "created_at_ms": now_millis()}).encode())
    elif os.path.islink(marker) or not os.path.isfile(marker):
        raise IntegrityError(f"{marker} is not a regular file; lakecore does not follow links "
                             f"inside a lake")


@guard_storage()
class Lake:
    """A lake folder opened for reading, or for reading and writing; get one from
    ``lakecore.open``.

    Examples
    --------
    >>> import lakecore, tempfile
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> _ = lake.create_feature_group("users", primary_key="id")
    >>> [fg.name for fg in lake.feature_groups()]
    ['users']
    >>> lake.verify().ok
    True
    >>> lake.close()
    """

    def __init__(self, path: str, *, readonly: bool = False):
        self.path = os.path.abspath(path)
        self.readonly = bool(readonly)
        _check_folder(self.path, self.readonly)
        self.audit = AuditLog(self.path)
        self._ctx = LakeContext(path=self.path, readonly=self.readonly,
                                catalog=Catalog(self.path), lock=WriterLock(self.path),
                                online_store=OnlineStore(self.path, self.readonly),
                                audit=self.audit, spark=SparkEngine())
        self.models = ModelRegistry(self._ctx)
        self._prediction_logs: list[PredictionLog] = []
        # also when the lake is dropped or the process exits without close()
        self._release = weakref.finalize(self, self._ctx.release_tables)
        if not self.readonly:
            self._check_writable()
            self._catch_up()

    def _check_writable(self) -> None:
        """A writable open must be able to write: take the writer lock once (which opens its
        file for writing), and say so plainly on read-only media."""
        try:
            with self._ctx.lock.hold():
                pass
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise ReadOnlyError(f"the lake at {self.path} cannot be written "
                                    f"({os.strerror(exc.errno)}); open it with readonly=True"
                                    ) from None
            raise

    @property
    def catalog(self) -> Catalog:
        """The lake's catalog store (every definition)."""
        return self._ctx.catalog

    @property
    def online_store(self) -> OnlineStore:
        """The lake's LMDB online store."""
        return self._ctx.online_store

    def _catch_up(self) -> None:
        """After a crash: record the changes a killed writer announced and never made, roll
        every online group forward to its latest offline commit, and make a merge of small
        files that is due (``offline.compaction``)."""
        with self._ctx.lock.hold():
            finish_forget(self._ctx, self.audit)    # before anything reads the rewritten logs
        catch_up(self._ctx, self.audit)
        specs = [s for s in self._ctx.catalog.state().feature_groups if s.online]
        with self._ctx.lock.hold():
            damage = None
            try:
                self._ctx.online_store.check()
            except lmdb.Error as exc:       # derived data: rebuilt from the offline tables
                damage = exc
                self._ctx.online_store.reset()
            for spec in specs:
                try:
                    FeatureGroup(self._ctx, spec)._sync_online()
                except IntegrityError as exc:   # one damaged table: the others still open
                    warnings.warn(f"feature group {spec.name!r} version {spec.version} was not "
                                  f"brought online: {exc}; verify() reports it", stacklevel=3)
            for spec in self._ctx.catalog.state().feature_groups:
                try:    # a merge a killed writer did not get to (or one level of a backlog)
                    FeatureGroup(self._ctx, spec)._merge_small_files()
                except IntegrityError:      # a blocked table: warned above, verify reports it
                    pass
                except LakeError as exc:    # a bad compaction setting: the lake still opens
                    warnings.warn(f"feature group {spec.name!r} version {spec.version} was not "
                                  f"compacted: {exc}", stacklevel=3)
            if damage is not None:
                self.audit.append("rebuild_online", "online", None)
                warnings.warn(f"the online store of {self.path} did not open ({damage}); it "
                              f"was rebuilt from the offline tables", stacklevel=3)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the lake: every object it handed out refuses further calls.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> lake.close()
        >>> fg.read()
        Traceback (most recent call last):
        ...
        lakecore.errors.LakeError: the lake at ... is closed
        """
        for prediction_log in self._prediction_logs:   # what predictors logged, first
            prediction_log.close()
        self._ctx.closed = True
        self._release()

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Lake({self.path!r}{', readonly=True' if self.readonly else ''})"

    # -- feature groups ----------------------------------------------------------------------
    def create_feature_group(self, name: str, *, version: int = 1,
                             primary_key: str | list[str], event_time: str | None = None,
                             schema: pa.Schema | None = None, online: bool = False,
                             ttl: dt.timedelta | None = None, description: str = "",
                             tags: dict[str, str] | None = None) -> FeatureGroup:
        """Create feature group ``name`` at ``version``; ``AlreadyExistsError`` if it exists.

        Parameters
        ----------
        name : str
        version : int
        primary_key : str or list of str
            The key columns; an upsert replaces the stored row with the same key (and event
            time). May not contain ``event_time``.
        event_time : str, optional
            A timestamp or date column: the time each row's values became true.
        schema : pyarrow.Schema, optional
            Fixed now; else by the first insert.
        online : bool
            Also keep the latest row per key in the online store.
        ttl : datetime.timedelta, optional
            Rows older than this are not served (online, point-in-time joins).
        description : str
        tags : dict of str to str

        Examples
        --------
        >>> import datetime as dt, lakecore, tempfile
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at",
        ...                                online=True, ttl=dt.timedelta(days=7))
        >>> fg.primary_key, fg.event_time, fg.online
        (['card'], 'at', True)
        >>> lake.close()
        """
        return definitions.create_feature_group(
            self._ctx, name, version=version, primary_key=primary_key, event_time=event_time,
            schema=schema, online=online, ttl=ttl, description=description, tags=tags)

    def feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """Feature group ``name`` at ``version`` (the latest version when None);
        ``NotFoundError`` when there is none.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> lake.feature_group("users").read().num_rows
        2
        >>> lake.close()
        """
        self._ctx.check_open()
        if version is not None:
            check_version(version)
        return feature_group(self._ctx, name, version)

    def feature_groups(self) -> list[FeatureGroup]:
        """Every feature group, every version, sorted by name and version.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> [g.ref for g in lake.feature_groups()]
        ['fg:users@1']
        >>> lake.close()
        """
        self._ctx.check_open()
        specs = sorted(self._ctx.catalog.state().feature_groups, key=lambda s: (s.name, s.version))
        return [FeatureGroup(self._ctx, s) for s in specs]

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
        definitions.delete_feature_group(self._ctx, name, version)

    # -- feature views -----------------------------------------------------------------------
    def create_feature_view(self, name: str, *, version: int = 1, query: Query,
                            labels: Any = (), transforms: dict[str, str] | None = None,
                            description: str = "") -> FeatureView:
        """A new feature view: ``query`` with ``labels`` (output or spine columns) and
        ``transforms`` (feature column -> built-in transform name).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all(),
        ...                                 transforms={"age": "min_max_scaler"})
        >>> view.create_training_data().read().column("age").to_pylist()
        [0.0, 1.0]
        >>> lake.close()
        """
        return definitions.create_feature_view(self._ctx, name, version=version, query=query,
                                         labels=labels, transforms=transforms,
                                         description=description)

    def feature_view(self, name: str, version: int | None = None) -> FeatureView:
        """Feature view ``name`` at ``version`` (the latest version when None).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> lake.feature_view("ages").ref
        'fv:ages@1'
        >>> lake.close()
        """
        self._ctx.check_open()
        return FeatureView(self._ctx, view_spec(self._ctx, name, version))

    def feature_views(self) -> list[FeatureView]:
        """Every feature view, every version, sorted by name and version.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> [v.ref for v in lake.feature_views()]
        ['fv:ages@1']
        >>> lake.close()
        """
        self._ctx.check_open()
        specs = sorted(self._ctx.catalog.state().feature_views, key=lambda v: (v.name, v.version))
        return [FeatureView(self._ctx, v) for v in specs]

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
        definitions.delete_feature_view(self._ctx, name, version)

    # -- models ------------------------------------------------------------------------------
    def predictor(self, model_name: str, *, version: int | None = None,
                  alias: str | None = None, load: Callable[[str], Any],
                  fill: float | None = None, log: bool = False) -> Predictor:
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
        self._ctx.check_open()
        prediction_log = None
        if log:
            prediction_log = PredictionLog(self, model_name)
            self._prediction_logs.append(prediction_log)
        return Predictor(self._ctx, model_name, version, alias, load, fill, prediction_log)

    def monitor(self, model_name: str, *, version: int | None = None,
                alias: str | None = None, start_time: dt.datetime | None = None,
                end_time: dt.datetime | None = None,
                load: Callable[[str], Any] | None = None) -> DriftReport:
        """Compare the features (and, with ``load``, the predictions) a model version served
        in ``[start_time, end_time)``, as its predictors logged them (``log=True``), with its
        training data's train split: PSI for numbers, Jensen-Shannon distance for strings and
        booleans (``quality.drift``).

        Examples
        --------
        See ``lakecore.quality.drift`` and the README.
        """
        self._ctx.check_open()
        for prediction_log in self._prediction_logs:    # what is buffered counts too
            prediction_log.flush()
        return monitor(self._ctx, self.feature_group, model_name, version, alias, start_time,
                       end_time, load)

    # -- governance --------------------------------------------------------------------------
    def lineage(self, obj: Any, direction: str = "upstream") -> list[Node]:
        """What ``obj`` (a lake object or a ref string) was made from (``"upstream"``) or what
        was made from it (``"downstream"``), nearest first; ``NotFoundError`` when it does
        not exist.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1], "age": [30]})
        >>> td = lake.create_feature_view("ages", query=fg.select_all()).create_training_data()
        >>> [node.ref for node in lake.lineage(td)]
        ['fv:ages@1', 'fg:users@1#0']
        >>> lake.close()
        """
        self._ctx.check_open()
        return lineage(self._ctx, obj, direction)

    def verify(self, *, fast: bool = False, anchor: tuple[int, str] | None = None) -> Report:
        """Re-hash every file the lake needs and check every hash, the audit chain and the
        online store against the offline tables. ``fast=True`` trusts files whose (inode,
        mtime, size) have not changed since a previous verify. ``anchor``: a ``(seq, hash)``
        from ``audit_head()`` kept outside the lake; the log must still hold that event (a
        log rewritten from the start, consistently with itself, is caught only this way).

        Examples
        --------
        >>> import tempfile, lakecore
        >>> with lakecore.open(tempfile.mkdtemp()) as lake:
        ...     _ = lake.create_feature_group("users", primary_key="id")
        ...     head = lake.audit_head()
        ...     lake.verify(anchor=head).problems
        []
        """
        self._ctx.check_open()
        report = verify(self._ctx, self.audit, fast=fast)
        if anchor is not None:
            report.problems.extend(anchor_problems(self.audit, anchor))
        return report

    def vacuum(self, *, retain: dt.timedelta = dt.timedelta(days=7)) -> VacuumResult:
        """Delete the data files that only commits older than ``retain`` need, except those a
        training dataset needs for ``recreate()``, and files crashed writers left (after an
        hour). Audited; ``verify()`` stays clean; ``read(as_of=...)`` of a commit whose files
        are gone raises ``NotFoundError``. ``retain=timedelta(0)`` keeps only the latest
        version (and what datasets need). Readers in other processes keep a snapshot taken
        less than ``retain`` ago.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> _ = fg.insert({"id": [1], "age": [31]})          # rewrites the file holding id 1
        >>> lake.vacuum(retain=dt.timedelta(0)).files_deleted
        1
        >>> fg.read().num_rows, lake.verify().ok
        (2, True)
        >>> lake.close()
        """
        retain = check_retain(retain)
        with self._ctx.writing("vacuum"):
            return vacuum(self._ctx, self.audit, retain)

    def forget(self, keys: Any, *, groups: Any = None, reason: str) -> ForgetReport:
        """Erase entities everywhere in the lake (GDPR article 17): ``keys`` is data with the
        entity's key columns (``{"user_id": [7]}``); ``groups`` (names) defaults to every
        group whose primary key holds those columns, and prediction logs that do are always
        included. Every version of those tables is rewritten without the rows (and still
        reads, minus them, in lakecore and in other Delta readers), the online store is
        purged and compacted, and one audit event records how many keys, their salted hash
        and ``reason``. Keys found nowhere change nothing.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="user_id")
        >>> _ = fg.insert({"user_id": [7, 8], "age": [30, 40]})
        >>> _ = fg.insert({"user_id": [7], "age": [31]})
        >>> report = lake.forget({"user_id": [7]}, reason="erasure request 2026-11-29")
        >>> report.rows_removed, len(report.commits_rewritten)
        (1, 2)
        >>> fg.read().to_pydict(), fg.read(as_of=0).to_pydict()
        ({'user_id': [8], 'age': [40]}, {'user_id': [8], 'age': [40]})
        >>> lake.verify().ok
        True
        >>> lake.close()
        """
        self._ctx.check_open()
        for prediction_log in self._prediction_logs:    # what is buffered holds them too
            prediction_log.flush()
        return forget(self._ctx, self.audit, keys, groups, reason)

    def audit_head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the latest audit event (None before any): keep it outside the
        lake and pass it to ``verify(anchor=...)`` later.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> with lakecore.open(tempfile.mkdtemp()) as lake:
        ...     _ = lake.create_feature_group("users", primary_key="id")
        ...     lake.audit_head()[0]
        1
        """
        self._ctx.check_open()
        last = self.audit.last_event()
        return None if last is None else (last.seq, last.hash)

    def audit_log(self) -> list[AuditEvent]:
        """Every change ever made to the lake, oldest first, hash-chained.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> [(e.op, e.target) for e in lake.audit_log()]
        [('create_feature_group', 'fg:users@1'), ('insert', 'fg:users@1#0'), ('create_feature_view', 'fv:ages@1')]
        >>> lake.close()
        """
        self._ctx.check_open()
        return self.audit.events()
