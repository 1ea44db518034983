"""``TrainingDataset``: a feature view's materialized training data (the files and manifest
written by ``lakecore.training.datasets``), read back with the fitted transforms applied."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from lakecore.base.parquet import read_parquet
from lakecore.base.refs import dataset_ref
from lakecore.base.storage_errors import guard_storage
from lakecore.base.times import from_micros
from lakecore.catalog.specs import FeatureViewSpec, TrainingDatasetSpec, pick_version
from lakecore.errors import NotFoundError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.quality.statistics import Statistics
from lakecore.training import transforms as tf
from lakecore.training.datasets import ROW_ID, folder_of, materialize, with_statistics


def view_spec(ctx: LakeContext, name: str, version: int | None) -> FeatureViewSpec:
    """The definition of feature view ``name`` at ``version`` (latest when None)."""
    spec = pick_version([v for v in ctx.catalog.state().feature_views if v.name == name],
                        version)
    if spec is None:
        which = f"version {version}" if version is not None else "any version"
        raise NotFoundError(f"feature view {name!r} ({which}) not found")
    return spec


@guard_storage()
class TrainingDataset:
    """A materialized training dataset of a feature view (see the module doc).

    Attributes
    ----------
    version : int
    hash : str
        A sha256 over the source commits, spine, parameters, fitted transforms and files.
    features : list of str
        The feature names ``read()`` returns (after transforms), before the labels.
    labels : list of str
    splits : dict of str to int
        Rows per split (empty without splits).
    sources : list
        The exact commit of every feature group read.
    ref : str
        ``td:VIEW@VERSION/TD_VERSION``.

    Examples
    --------
    >>> import datetime as dt, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
    >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
    >>> _ = fg.insert({"card": [1, 2, 3, 4], "at": [day(1)] * 4, "total": [10.0, 20.0, 30.0, 40.0]})
    >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
    ...                                 transforms={"total": "standard_scaler"})
    >>> spine = {"card": [1, 2, 3, 4], "at": [day(2)] * 4, "y": [0, 0, 1, 1]}
    >>> td = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=1)
    >>> td.version, td.features, td.labels, td.splits
    (1, ['total'], ['y'], {'train': 2, 'test': 2})
    >>> td.ref, td.hash.startswith("sha256:")
    ('td:fraud@1/1', True)
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, spec: TrainingDatasetSpec):
        self._ctx = ctx
        self._spec = spec

    version = property(lambda self: self._spec.version)
    hash = property(lambda self: self._spec.hash)
    labels = property(lambda self: list(self._spec.labels))

    @property
    def features(self) -> list[str]:
        """Feature names as ``read()`` returns them (after transforms), before the labels."""
        return tf.output_names(self._spec.features, self._spec.transforms)

    @property
    def splits(self) -> dict[str, int]:
        """Split name -> number of rows (empty without splits)."""
        if not self._spec.splits:
            return {}
        return {p.name: sum(f.rows for f in self._spec.files[p.name]) for p in self._spec.splits}

    @property
    def sources(self) -> list:
        """The exact commit of every feature group read."""
        return list(self._spec.sources)

    @property
    def ref(self) -> str:
        """This object's ref (see ``lakecore.base.refs``), as ``lineage`` takes it."""
        return dataset_ref(self._spec.view, self._spec.view_version, self.version)

    def __repr__(self) -> str:
        return (f"TrainingDataset({self._spec.view!r}@{self._spec.view_version}, "
                f"version={self.version}, hash={self.hash[:19]}...)")

    def read(self, split: str | None = None, *, with_keys: bool = False) -> pa.Table:
        """The rows of ``split`` (every split, in order, when None): the spine's key columns
        when ``with_keys``, then the transformed features, then the labels.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
        >>> _ = fg.insert({"card": [1, 2, 3, 4], "at": [day(1)] * 4, "total": [10.0, 20.0, 30.0, 40.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "standard_scaler"})
        >>> spine = {"card": [1, 2, 3, 4], "at": [day(2)] * 4, "y": [0, 0, 1, 1]}
        >>> td = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=1)
        >>> td.read("train").column_names
        ['total', 'y']
        >>> td.read(with_keys=True).column_names
        ['card', 'at', 'total', 'y']
        >>> td.read().num_rows
        4
        >>> lake.close()
        """
        self._ctx.check_open()
        spec = self._spec
        if split is None:
            names = list(spec.files)
        elif split in spec.files:
            names = [split]
        else:
            raise ValidationError(f"split: no split {split!r} (splits: {', '.join(spec.files)})")
        tables = []
        for n in names:
            parts = [read_parquet(os.path.join(self._ctx.path, f.path)) for f in spec.files[n]]
            if spec.engine == "spark":      # files hold the row id: restore spine order
                whole = pa.concat_tables(parts, promote_options="permissive") if parts else None
                parts = [] if whole is None else [whole.sort_by(ROW_ID).drop_columns([ROW_ID])]
            tables.extend(parts)
        raw = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 \
            else tables[0]
        features = tf.apply(raw.select(spec.features), spec.transforms)
        columns = ([raw.column(c) for c in spec.key_columns] if with_keys else []) + \
            list(features.columns) + [raw.column(c) for c in spec.labels]
        names = (spec.key_columns if with_keys else []) + features.column_names + spec.labels
        return pa.table(columns, names=names)

    def statistics(self, split: str | None = None) -> Statistics:
        """Statistics of the features before transforms (what serving logs are compared
        with), of ``split`` (all rows when None), as stored in the manifest and covered by
        the dataset's hash; computed from the files for datasets made before statistics were
        kept.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1, 2, 3, 4], "age": [20, 30, 40, 50]})
        >>> td = lake.create_feature_view("ages", query=fg.select_all()).create_training_data()
        >>> td.statistics().columns["age"].mean
        35.0
        >>> lake.close()
        """
        self._ctx.check_open()
        spec = self._spec
        if split is not None and split not in spec.files:
            raise ValidationError(f"split: no split {split!r} (splits: {', '.join(spec.files)})")
        stored = spec.statistics if spec.statistics is not None else \
            with_statistics(spec, self._ctx.path).statistics
        return stored["" if split is None else split]

    def recreate(self, *, spark: Any = None) -> TrainingDataset:
        """Rebuild this dataset from the exact commits and spine it was made from (into a
        ``recreated`` folder beside it); the result has the same hash when nothing changed.
        A dataset built on Spark is rebuilt on Spark (pass the session).

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
        >>> _ = fg.insert({"card": [1, 2, 3, 4], "at": [day(1)] * 4, "total": [10.0, 20.0, 30.0, 40.0]})
        >>> view = lake.create_feature_view("fraud", query=fg.select_all(), labels=["y"],
        ...                                 transforms={"total": "standard_scaler"})
        >>> spine = {"card": [1, 2, 3, 4], "at": [day(2)] * 4, "y": [0, 0, 1, 1]}
        >>> td = view.create_training_data(spine=spine, split={"train": 0.5, "test": 0.5}, seed=1)
        >>> _ = fg.insert({"card": [1], "at": [day(1)], "total": [99.0]})     # later changes...
        >>> td.recreate().hash == td.hash                                      # ...do not matter
        True
        >>> lake.close()
        """
        ctx, spec = self._ctx, self._spec
        ctx.check_open()
        if spec.engine == "spark" and spark is None:
            raise ValidationError("this training dataset was built on Spark: pass spark= "
                                  "(a SparkSession) to recreate it")
        view = view_spec(ctx, spec.view, spec.view_version)
        spine = None
        if spec.spine is not None:
            spine = read_parquet(os.path.join(ctx.path, spec.spine.path))
        folder = os.path.join(folder_of(spec.view, spec.view_version, spec.version), "recreated")
        pinned = {(s.group, s.version): s.commit for s in spec.sources}
        rebuilt = materialize(ctx.resolve, ctx.path, view, spec.version, spine=spine,
                              spine_time=spec.spine_time,
                              start_time=from_micros(spec.start_time_us),
                              end_time=from_micros(spec.end_time_us), split=spec.splits,
                              seed=spec.seed, description=spec.description, folder=folder,
                              pinned=pinned, stored_spine=spec.spine,
                              spark=spark if spec.engine == "spark" else None,
                              spark_engine=ctx.spark,
                              transform_order=[f.column for f in spec.transforms])
        if spec.statistics is not None:     # kept since statistics were: rebuilt alike
            rebuilt = with_statistics(rebuilt, ctx.path)
        return TrainingDataset(ctx, rebuilt)

