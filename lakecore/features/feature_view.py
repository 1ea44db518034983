"""Feature views: a saved query with labels and transforms, the training datasets made from
it, batch data for scoring, and online feature vectors served with the same transforms."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import lmdb
import numpy as np
import pyarrow as pa

from lakecore.base.arrow import as_table, indices_array
from lakecore.base.refs import dataset_ref, model_ref, view_ref
from lakecore.base.storage_errors import guard_storage, storage_error
from lakecore.catalog.specs import (
    FeatureViewSpec,
    QueryPart,
    TrainingDatasetSpec,
    next_version,
)
from lakecore.errors import (
    LakeError,
    NotFoundError,
    SchemaError,
    ValidationError,
)
from lakecore.features.context import LakeContext
from lakecore.features.feature_group import feature_group
from lakecore.features.query import Query
from lakecore.features.training_dataset import TrainingDataset
from lakecore.online.environments import handles_version as _handles_version
from lakecore.query.planner import build
from lakecore.training import transforms as tf
from lakecore.training.datasets import (
    discard_folder,
    folder_of,
    materialize,
    parse_split,
    with_statistics,
)


@guard_storage(skip=("feature_vector",))
class FeatureView:
    """A feature view version; get one from ``Lake.create_feature_view`` or
    ``Lake.feature_view``.

    Attributes
    ----------
    name, version : str, int
    labels : list of str
    transforms : dict of str to str
    description : str
    query : Query
        The saved query.
    ref : str
        ``fv:NAME@VERSION``.

    Examples
    --------
    >>> import datetime as dt, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
    >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
    >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(2)], "total": [10.0, 30.0]})
    >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
    ...                                 transforms={"total": "min_max_scaler"})
    >>> spine = {"card": [1, 2], "at": [day(3), day(3)], "y": [0, 1]}
    >>> view.name, view.version, view.labels, view.transforms
    ('fraud', 1, ['y'], {'total': 'min_max_scaler'})
    >>> view.ref
    'fv:fraud@1'
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, spec: FeatureViewSpec):
        self._ctx = ctx
        self._spec = spec
        self._plan: _ServingPlan | None = None

    name = property(lambda self: self._spec.name)
    version = property(lambda self: self._spec.version)
    labels = property(lambda self: list(self._spec.labels))
    transforms = property(lambda self: dict(self._spec.transforms))
    description = property(lambda self: self._spec.description)

    @property
    def query(self) -> Query:
        """The saved query."""
        return Query(self._ctx, self._spec.query)

    @property
    def ref(self) -> str:
        """This object's ref (see ``lakecore.base.refs``), as ``lineage`` takes it."""
        return view_ref(self.name, self.version)

    def __repr__(self) -> str:
        return f"FeatureView({self.name!r}, version={self.version})"

    # -- training data -----------------------------------------------------------------------
    def create_training_data(self, *, spine: Any = None, spine_time: str | None = None,
                             start_time=None, end_time=None, split: Any = None, seed: int = 0,
                             description: str = "", spark: Any = None) -> TrainingDataset:
        """Materialize the view's data as a new training dataset version.

        Parameters
        ----------
        spine : table-like or Spark DataFrame, optional
            The labelled rows (keys, event time, labels); the root group's rows when None.
        spine_time : str, optional
            The spine's event time column (default: the root group's event_time name).
            Features are joined as of it; a spine without it is refused, never joined to
            the latest rows.
        start_time, end_time : datetime, optional
            Keep spine rows with ``start_time <= event time < end_time``.
        split : dict, optional
            Fractions (``{"train": 0.8, "test": 0.2}``, shuffled by ``seed``) or half-open
            time ranges (``{"train": (t0, t1), "test": (t1, t2)}``) on the spine's time.
        seed : int
        description : str
        spark : SparkSession, optional
            Run the joins and the writing on Spark (same rows and hash).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> _ = fg.insert({"card": [1, 1], "at": [day(1), day(5)], "total": [10.0, 50.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select(["total"]), labels=["y"])
        >>> td = view.create_training_data(spine={"card": [1], "t": [day(3)], "y": [1]},
        ...                                spine_time="t")
        >>> td.read().to_pylist()
        [{'total': 10.0, 'y': 1}]
        >>> lake.close()
        """
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValidationError(f"seed: expected an int, got {seed!r}")
        if not isinstance(description, str):
            raise ValidationError(f"description: expected a str, got {description!r}")
        parts = parse_split(split)
        spine_table = None
        if spine is not None:
            if spark is not None and type(spine).__module__.startswith("pyspark"):
                spine = spine.toArrow()     # a Spark DataFrame: kept in its row order
            spine_table = as_table(spine, "spine")
        with self._ctx.writing(f"create training data of {self.name!r}"):
            state = self._ctx.catalog.state()
            version = next_version(state, self._family, [
                t.version for t in state.training_datasets
                if (t.view, t.view_version) == (self.name, self.version)])
            folder = folder_of(self.name, self.version, version)
            discard_folder(self._ctx.path, folder)     # left by a writer that crashed
            try:
                spec = materialize(self._ctx.resolve, self._ctx.path, self._spec, version,
                                   spine=spine_table, spine_time=spine_time,
                                   start_time=start_time, end_time=end_time, split=parts,
                                   seed=seed, description=description, folder=folder,
                                   spark=spark, spark_engine=self._ctx.spark)
                spec = with_statistics(spec, self._ctx.path)
            except BaseException:
                discard_folder(self._ctx.path, folder)
                raise
            self._ctx.record(lambda s: s.training_datasets.append(spec), "create_training_data",
                             dataset_ref(self.name, self.version, version), spec.hash)
        return TrainingDataset(self._ctx, spec)

    @property
    def _family(self) -> str:
        """The key of this view's dataset versions in ``CatalogState.retired``."""
        return f"td:{self.name}@{self.version}"

    def delete_training_data(self, version: int) -> None:
        """Delete training dataset ``version`` and its files; refused (``LakeError``) while a
        registered model was trained on it. Audited; its version number is never used again.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2], "age": [30, 40]})
        >>> view = lake.create_feature_view("ages", query=fg.select_all())
        >>> view.create_training_data().version
        1
        >>> view.delete_training_data(1)
        >>> view.create_training_data().version
        2
        >>> lake.close()
        """
        ctx = self._ctx
        with ctx.writing(f"delete training data {version!r} of {self.name!r}"):
            spec = self.training_data(version)._spec
            ref = dataset_ref(self.name, self.version, spec.version)
            trained = [model_ref(m.name, m.version) for m in ctx.catalog.state().models
                       if m.training_data is not None and m.training_data[:3]
                       == [self.name, self.version, spec.version]]
            if trained:
                raise LakeError(f"training data {ref} cannot be deleted: registered model(s) "
                                f"{', '.join(trained)} were trained on it; delete them first")

            def drop(state) -> None:
                state.training_datasets = [
                    t for t in state.training_datasets
                    if (t.view, t.view_version, t.version) != (self.name, self.version,
                                                               spec.version)]
                state.retired[self._family] = max(state.retired.get(self._family, 0),
                                                  spec.version)
            ctx.record(drop, "delete_training_data", ref, spec.hash)
            discard_folder(ctx.path, folder_of(self.name, self.version, spec.version))

    def _datasets(self) -> list[TrainingDatasetSpec]:
        return [t for t in self._ctx.catalog.state().training_datasets
                if (t.view, t.view_version) == (self.name, self.version)]

    def training_data(self, version: int) -> TrainingDataset:
        """Training dataset ``version`` of this view; ``NotFoundError`` when there is none.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(2)], "total": [10.0, 30.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "min_max_scaler"})
        >>> spine = {"card": [1, 2], "at": [day(3), day(3)], "y": [0, 1]}
        >>> td = view.create_training_data(spine=spine)
        >>> view.training_data(1).hash == td.hash
        True
        >>> lake.close()
        """
        self._ctx.check_open()
        spec = next((t for t in self._datasets() if t.version == version), None)
        if spec is None:
            raise NotFoundError(f"feature view {self.name!r} version {self.version} has no "
                                f"training data version {version!r}")
        return TrainingDataset(self._ctx, spec)

    def training_datasets(self) -> list[TrainingDataset]:
        """Every training dataset of this view, oldest first.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(2)], "total": [10.0, 30.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "min_max_scaler"})
        >>> spine = {"card": [1, 2], "at": [day(3), day(3)], "y": [0, 1]}
        >>> _ = view.create_training_data(spine=spine)
        >>> _ = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5})
        >>> [td.version for td in view.training_datasets()]
        [1, 2]
        >>> lake.close()
        """
        self._ctx.check_open()
        return [TrainingDataset(self._ctx, t) for t in sorted(self._datasets(),
                                                               key=lambda t: t.version)]

    def _resolve(self, training_data: Any) -> TrainingDatasetSpec | None:
        """The dataset whose transforms and column order serving uses (None: no transforms)."""
        if isinstance(training_data, TrainingDataset):
            return training_data._spec
        if training_data is not None:
            return self.training_data(training_data)._spec
        datasets = self._datasets()
        if datasets:
            return max(datasets, key=lambda t: t.version)
        if self._spec.transforms:
            raise ValidationError(f"feature view {self.name!r} has transforms but no training "
                                  f"data to take their statistics from; create training data first")
        return None

    # -- batch scoring -----------------------------------------------------------------------
    def batch_data(self, *, spine: Any = None, spine_time: str | None = None,
                   latest: bool = False, start_time=None, end_time=None,
                   training_data: Any = None) -> pa.Table:
        """Keys and event time, then the features (transformed like the training data) of the
        latest commits, for scoring.

        ``spine``, ``spine_time``, ``start_time`` and ``end_time`` are as in
        ``create_training_data``; ``latest=True`` joins every group's latest row per key
        (ttl counted back from now) instead of the rows as of the spine's times.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> _ = fg.insert({"card": [1, 1], "at": [day(1), day(5)], "total": [10.0, 50.0]})
        >>> view = lake.create_feature_view("spend_view", query=fg.select(["total"]))
        >>> view.batch_data(spine={"card": [1]}, latest=True).column("total").to_pylist()
        [50.0]
        >>> lake.close()
        """
        self._ctx.check_open()
        dataset = self._resolve(training_data)
        built = build(self._ctx.resolve, self._spec.query, spine, start_time, end_time,
                      spine_time=spine_time, latest=latest)
        labels = set(self._spec.labels)
        keys = [c for c in built.spine_columns if c not in labels]
        features = dataset.features if dataset is not None else \
            [c for c in built.table.column_names if c not in built.spine_columns and c not in labels]
        transformed = tf.apply(built.table.select(features),
                               dataset.transforms if dataset is not None else [])
        return pa.table([built.table.column(c) for c in keys] + list(transformed.columns),
                        names=keys + transformed.column_names)

    # -- online serving ----------------------------------------------------------------------
    def _serving_parts(self) -> list[tuple[QueryPart, Any]]:
        """The view's groups that contribute features, each with its FeatureGroup; every one
        must be online."""
        labels = set(self._spec.labels)
        parts = []
        for part in self._spec.query.parts:
            group = feature_group(self._ctx, part.group, part.version)
            if not [c for c in part.columns if (part.prefix or "") + c not in labels]:
                continue
            if not group.online:
                raise ValidationError(f"feature view {self.name!r}: feature group {group.name!r} "
                                      f"is not online, so its features cannot be served")
            parts.append((part, group))
        return parts

    def feature_vectors(self, keys: Any, *, training_data: Any = None,
                        untransformed: bool = False) -> pa.Table:
        """One row per key (``keys``: data with the join key columns): the features in
        training column order, transformed, from the online store. A feature column given in
        ``keys`` is used as given (a value the caller already has); a feature that no online
        group serves must be given there. ``untransformed``: the values as served, before the
        training data's transforms.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(2)], "total": [10.0, 30.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "min_max_scaler"})
        >>> spine = {"card": [1, 2], "at": [day(3), day(3)], "y": [0, 1]}
        >>> _ = view.create_training_data(spine=spine)
        >>> view.feature_vectors({"card": [2, 1, 7]}).column("total").to_pylist()
        [1.0, 0.0, None]
        >>> lake.close()
        """
        plan = self._serving_plan(training_data)
        table = as_table(keys, "keys")
        columns: dict[str, Any] = {name: table.column(name) for name in table.column_names}
        for lookup in plan.lookups:
            absent = [c for c in lookup.on if c not in columns]
            if absent:
                raise lookup.missing_key(absent[0], "keys")
            request = pa.table({k: columns[c] for k, c in zip(lookup.primary_key, lookup.on)})
            present = np.ones(request.num_rows, bool)
            for column in request.columns:      # a null join key (a missing row before) finds nothing
                present &= ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)
            found = lookup.group.online_read(request if present.all() else
                                             request.filter(pa.array(present)))
            positions = None
            if not present.all():
                positions = indices_array(np.where(present, np.cumsum(present) - 1, -1))
            for column, name in zip(lookup.columns, lookup.names):
                if name not in columns:
                    values = found.column(column)
                    columns[name] = values if positions is None else values.take(positions)
        missing = [f for f in plan.features if f not in columns]
        if missing:
            raise _not_served(missing[0])
        raw = pa.table({f: columns[f] for f in plan.features})
        return raw if untransformed else tf.apply(raw, plan.transforms)

    def transform(self, raw: pa.Table, *, training_data: Any = None) -> pa.Table:
        """Features as ``feature_vectors(..., untransformed=True)`` returned them, transformed
        like the training data."""
        return tf.apply(raw, self._serving_plan(training_data).transforms)

    def feature_vector(self, key: dict[str, Any], *, training_data: Any = None) -> dict[str, Any]:
        """One key's features (a dict of Python values) in training column order: every
        group's row read in one LMDB transaction, transformed like the training data. Values
        follow ``feature_vectors``: a feature given in ``key`` is used as given.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
        >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(2)], "total": [10.0, 30.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "min_max_scaler"})
        >>> spine = {"card": [1, 2], "at": [day(3), day(3)], "y": [0, 1]}
        >>> _ = view.create_training_data(spine=spine)
        >>> view.feature_vector({"card": 2})
        {'total': 1.0}
        >>> lake.close()
        """
        plan, raw = self.raw_vector(key, training_data)
        return plan.transform(raw)

    def raw_vector(self, key: dict[str, Any], training_data: Any = None
                   ) -> tuple[_ServingPlan, dict[str, Any]]:
        """``feature_vector``'s values before transforms, and the serving plan that
        transforms them (``plan.transform``)."""
        if not isinstance(key, dict):
            raise ValidationError(f"key: expected a dict of join key column to value, got {key!r}")
        try:
            plan = self._serving_plan(training_data)
            values, flat = key, []
            reader = plan.store.row_reader(plan.env, plan.layouts_db)
            try:
                if not reader.layouts_match(plan.layouts):
                    # a schema change since the plan was made: read it the general way
                    self._plan = None
                    reader.close()
                    table = self.feature_vectors(pa.table({k: [v] for k, v in key.items()}),
                                                 training_data=training_data,
                                                 untransformed=True)
                    return (self._serving_plan(training_data),
                            {name: table.column(name)[0].as_py() for name in table.column_names})
                for lookup in plan.lookups:
                    on = lookup.on
                    try:
                        key_values = (values[on[0]],) if len(on) == 1 else \
                            tuple([values[c] for c in on])
                    except KeyError as absent:
                        raise lookup.missing_key(absent.args[0], "key") from None
                    row = None if None in key_values else \
                        reader.row(lookup.db, lookup.layout, key_values, lookup.ttl_us)
                    if row is None:
                        row = lookup.nulls
                    flat.extend(row)
                    if plan.chained:            # later groups may be keyed on these features
                        values = {**dict(zip(lookup.names, [row[j] for j in lookup.picks])),
                                  **values}
            finally:
                reader.close()
            if plan.identity and len(key) == plan.n_key_columns:
                return plan, dict(zip(plan.features, flat))
            return plan, plan.pick(key, flat)
        except (OSError, lmdb.Error) as exc:    # here, not by a wrapper: a hot path
            if isinstance(exc, LakeError):
                raise
            raise storage_error(exc, self) from exc

    def _serving_plan(self, training_data: Any) -> _ServingPlan:
        """What serving needs, resolved once per catalog state (the catalog file is re-read
        only when another writer changed it)."""
        cached = self._plan
        now = time.monotonic()
        if cached is not None and training_data is None and cached.which is None \
                and now < cached.checked + _PLAN_RECHECK_S and not self._ctx.closed \
                and cached.handles == _handles_version():
            return cached               # the common serving call: nothing to look up
        self._ctx.check_open()
        which = training_data.version if isinstance(training_data, TrainingDataset) else training_data
        if cached is not None and cached.which == which and now < cached.checked + _PLAN_RECHECK_S \
                and cached.handles == _handles_version():
            return cached               # serving: the catalog file is looked at once a second
        state = self._ctx.catalog.state()
        if cached is not None and cached.key == (which, id(state)) \
                and cached.handles == _handles_version():
            cached.checked = now
            return cached
        dataset = self._resolve(training_data)
        store = self._ctx.online_store
        lookups, complete, offset = [], True, 0
        for part, group in self._serving_parts():
            layout = group._read_layout()
            db = store.database(group.name, group.version)
            complete = complete and db is not None
            index = {name: j for j, name in enumerate(layout.feature_names)}
            lookups.append(_Lookup(
                group, db, layout, group._spec.ttl_us, list(part.on or group.primary_key),
                list(group.primary_key), list(part.columns),
                [(part.prefix or "") + c for c in part.columns],
                [index[c] for c in part.columns], offset, [None] * len(layout.feature_names),
                store.db_name(group.name, group.version)))
            offset += len(layout.feature_names)
        features = dataset.features if dataset is not None else self._feature_names()
        served = {name: lookup.offset + j for lookup in lookups
                  for name, j in zip(lookup.names, lookup.picks)}
        key_columns = {c for lookup in lookups for c in lookup.on}
        identity = [served.get(f) for f in features] == list(range(offset)) \
            and not key_columns & set(features)
        plan = _ServingPlan(
            (which, id(state)), which, now, store, _handles_version(), store._env(create=False),
            lookups, features, [served.get(f, -1) for f in features], identity, len(key_columns), any(set(lookup.on) & served.keys() for lookup in lookups),
            dataset.transforms if dataset is not None else [],
            tf.RowTransformer(dataset.transforms if dataset is not None else []),
            [(lookup.db_name, lookup.layout.fingerprint) for lookup in lookups],
            store.layouts_handle(store._env(create=False)))
        self._plan = plan if complete else None   # a group without data yet: look again
        return plan

    def _feature_names(self) -> list[str]:
        labels = set(self._spec.labels)
        return [(p.prefix or "") + c for p in self._spec.query.parts for c in p.columns
                if (p.prefix or "") + c not in labels]


_PLAN_RECHECK_S = 1.0


def _not_served(feature: str) -> SchemaError:
    return SchemaError(f"feature {feature!r} comes from the spine, so it cannot be served "
                       f"online; pass it in keys")


@dataclass
class _Lookup:
    """One online group read by serving, keyed on ``on`` (request or earlier features)."""
    group: Any                  # the FeatureGroup
    db: Any                     # its database handle
    layout: Any
    ttl_us: int | None
    on: list[str]
    primary_key: list[str]
    columns: list[str]          # the columns the view selects from the group
    names: list[str]            # their output names (with the part's prefix)
    picks: list[int]            # their positions among the group's features
    offset: int                 # where the group's features start in the concatenated rows
    nulls: list[None]           # a missing row
    db_name: bytes = b""        # its database's name (the key of its layout record)

    def missing_key(self, column: str, argument: str) -> SchemaError:
        return SchemaError(f"{argument}: missing join key column {column!r} for feature group "
                           f"{self.group.name!r}")


@dataclass
class _ServingPlan:
    key: tuple                  # (training data asked for, catalog state it was built from)
    which: Any
    checked: float              # time.monotonic() of the last look at the catalog
    store: Any
    handles: int                # the store's handles version the db handles belong to
    env: Any
    lookups: list[_Lookup]
    features: list[str]         # raw feature names in training order
    sources: list[int]          # per feature: its position in the concatenated rows (-1: keys)
    identity: bool              # the concatenated rows are the features in order
    n_key_columns: int          # request columns the groups are keyed on
    chained: bool               # a group is keyed on another group's features
    transforms: list
    transform: tf.RowTransformer
    layouts: list[tuple[bytes, bytes]] = field(default_factory=list)   # (database, layout)
    layouts_db: Any = None      # the handle of the layout records

    def pick(self, key: dict[str, Any], flat: list) -> dict[str, Any]:
        """The features from the concatenated rows, a value given in ``key`` first."""
        out = {}
        for name, source in zip(self.features, self.sources):
            if name in key:
                out[name] = key[name]
            elif source >= 0:
                out[name] = flat[source]
            else:
                raise _not_served(name)
        return out


def check_view(query: Any, labels: Any, transforms: Any) -> tuple[list[str], dict[str, str]]:
    """Validate a feature view's definition; its labels and transforms."""
    if not isinstance(query, Query):
        raise ValidationError(f"query: expected a Query (fg.select(...)), got {type(query).__name__}")
    if isinstance(labels, str):
        labels = [labels]
    labels = list(labels or ())
    if not all(isinstance(label, str) for label in labels):
        raise ValidationError(f"labels: expected column names, got {labels!r}")
    transforms = tf.check_transforms(transforms)
    types = {}                          # output column -> its type in the group's schema
    for part in query.spec.parts:
        schema = feature_group(query._ctx, part.group, part.version).schema
        for column in part.columns:
            types.setdefault((part.prefix or "") + column,
                             None if schema is None else schema.field(column).type)
    features = list(types)
    for column, kind in transforms.items():
        if column in labels:
            raise ValidationError(f"transforms: {column!r} is a label; transforms apply to features")
        if column not in features:
            raise SchemaError(f"transforms: {column!r} is not a feature of the query "
                              f"(features: {', '.join(features)})")
        if types[column] is not None:   # a transform that cannot apply fails now, not later
            tf.check_type(column, kind, types[column])
    return labels, transforms
