"""The catalog's records: every definition the lake holds, as msgspec Structs.

Groups, views (with their queries), training dataset manifests (with the fitted transforms
and the exact source commits) and model versions. They are plain data: the engines and
domain objects above read them, and the catalog store persists them as one JSON file.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pyarrow as pa

from lakecore.base.hashing import digest_record


class Expectation(msgspec.Struct, frozen=True, kw_only=True):
    """One check of the rows of an insert (``lakecore.expect`` makes them; the quality
    engine judges them). ``kind``: not_null, between, in_set, unique, matches, mean_between,
    row_count_between or fresh."""

    kind: str
    columns: list[str] = []         # one column; ``unique``: the columns of the key
    min: Any = None                 # between, mean_between, row_count_between (inclusive)
    max: Any = None
    values: list[Any] = []          # in_set
    regex: str | None = None        # matches: a search, as in Great Expectations
    max_age_us: int | None = None   # fresh
    mostly: float = 1.0

    def __str__(self) -> str:
        args = [repr(c) for c in self.columns] if self.kind != "unique" else [repr(self.columns)]
        if self.kind in ("between", "mean_between", "row_count_between"):
            args += [repr(self.min), repr(self.max)]
        elif self.kind == "in_set":
            args.append(repr(self.values))
        elif self.kind == "matches":
            args.append(repr(self.regex))
        elif self.kind == "fresh":
            args.append(f"{self.max_age_us} us")
        if self.mostly != 1.0:
            args.append(f"mostly={self.mostly}")
        return f"{self.kind}({', '.join(args)})"


class Fitted(msgspec.Struct, frozen=True, kw_only=True):
    """A transform fitted on training data."""

    column: str
    kind: str
    center: float = 0.0             # scalers: subtracted, then divided by scale
    scale: float = 1.0
    values: list[Any] = []          # encoders: the sorted train values


class QueryPart(msgspec.Struct, frozen=True, kw_only=True):
    """One group in a query: its selected feature columns and, for a joined group, the spine
    columns matched to its primary key and the prefix of its output columns."""

    group: str
    version: int
    columns: list[str]
    on: list[str] | None = None
    prefix: str | None = None


class QuerySpec(msgspec.Struct, frozen=True, kw_only=True):
    root: QueryPart
    joins: list[QueryPart] = []

    @property
    def parts(self) -> list[QueryPart]:
        return [self.root, *self.joins]


class SourceCommit(msgspec.Struct, frozen=True, kw_only=True):
    """The exact table commit a read used."""

    group: str
    version: int
    commit: int                     # the Delta table version (-1: the table had no commit)
    hash: str | None


class FeatureGroupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A feature group version's definition."""

    name: str
    version: int
    primary_key: list[str]
    event_time: str | None
    schema: str | None          # Delta schemaString of the stored schema, once known
    online: bool
    ttl_us: int | None
    description: str
    tags: dict[str, str]
    created_at_ms: int
    table_id: str
    location: str               # relative to the lake folder
    expectations: list[Expectation] = []    # judged on every insert, before anything is written
    on_failure: str = "reject"              # or "warn"


class FeatureViewSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A feature view version's definition."""

    name: str
    version: int
    query: QuerySpec
    labels: list[str]
    transforms: dict[str, str]
    description: str
    created_at_ms: int


class SplitPart(msgspec.Struct, frozen=True, kw_only=True):
    """One split of a training dataset: a fraction of the rows, or the rows whose spine event
    time is in ``[start_us, end_us)``."""

    name: str
    fraction: float | None = None
    start_us: int | None = None
    end_us: int | None = None


class DataFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str                   # relative to the lake folder
    sha256: str
    rows: int


QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class ColumnStats(msgspec.Struct, frozen=True, kw_only=True):
    """One column's statistics (``None`` where a figure does not apply or no value is there).

    Attributes
    ----------
    count : int
        Rows.
    nulls : int
        Missing values (NaN included for floats).
    distinct : int
        Distinct non-null values.
    min, max, mean, std
        Numbers and times: extremes, mean and population standard deviation (times: mean as
        a time, std in microseconds).
    quantiles : dict of float to value
        At 0.01, 0.05, 0.25, 0.5, 0.75, 0.95 and 0.99 (the value at that rank).
    histogram : tuple of (list, list)
        21 edges from min to max and 20 counts; the last bin is closed.
    top : list of (value, count)
        Strings and booleans: up to 20 most frequent values, most frequent first (ties by
        value).
    """

    count: int
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None
    mean: Any = None
    std: float | None = None
    quantile_values: list[Any] | None = None     # at QUANTILES (see ``quantiles``)
    histogram: tuple[list[Any], list[int]] | None = None
    top: list[tuple[Any, int]] | None = None

    @property
    def quantiles(self) -> dict[float, Any] | None:
        """The value at each rank of QUANTILES (0.01 ... 0.99)."""
        if self.quantile_values is None:
            return None
        return dict(zip(QUANTILES, self.quantile_values))


class Statistics(msgspec.Struct, frozen=True, kw_only=True):
    """Statistics of every column of a table (``columns``: name to ``ColumnStats``)."""

    columns: dict[str, ColumnStats]

    def to_table(self) -> pa.Table:
        """One row per column: its name and every figure (quantiles, histogram and top as
        text)."""
        rows = []
        for name, c in self.columns.items():
            rows.append({"column": name, "count": c.count, "nulls": c.nulls,
                         "distinct": c.distinct, "min": _text(c.min), "max": _text(c.max),
                         "mean": _text(c.mean), "std": c.std,
                         "quantiles": _text(c.quantile_values),
                         "histogram": _text(c.histogram),
                         "top": _text(c.top)})
        schema = pa.schema([("column", pa.string()), ("count", pa.int64()),
                            ("nulls", pa.int64()), ("distinct", pa.int64()),
                            ("min", pa.string()), ("max", pa.string()), ("mean", pa.string()),
                            ("std", pa.float64()), ("quantiles", pa.string()),
                            ("histogram", pa.string()), ("top", pa.string())])
        return pa.Table.from_pylist(rows, schema=schema)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return msgspec.json.encode(value).decode()


class TrainingDatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A training dataset's manifest: everything needed to read, verify and recreate it."""

    view: str
    view_version: int
    version: int
    sources: list[SourceCommit]         # the exact commit of every group read
    spine: DataFile | None              # the spine passed in (None: the root group's rows)
    start_time_us: int | None
    end_time_us: int | None
    splits: list[SplitPart]
    seed: int
    key_columns: list[str]              # the spine's columns that are neither labels nor features
    features: list[str]                 # before transforms
    labels: list[str]
    transforms: list[Fitted]
    files: dict[str, list[DataFile]]    # split name ("all" without splits) -> its parts
    description: str
    created_at_ms: int
    hash: str
    engine: str = "lakecore"            # "spark": joined and written by Spark
    spine_time: str | None = None       # the spine's event time column, when named by the user
    # by split ("" for all rows): the features before transforms (what serving is compared
    # with); None for datasets made before statistics were kept
    statistics: dict[str, Statistics] | None = None


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A registered model version: its artifact files (copied into the lake), parameters,
    metrics and the training dataset it was made from."""

    name: str
    version: int
    artifact: str                       # the artifact's path, relative to the lake
    files: list[DataFile]               # every file of the artifact
    params: dict[str, Any]
    metrics: dict[str, float]
    training_data: list[Any] | None     # [view, view version, dataset version, dataset hash]
    description: str
    created_at_ms: int
    hash: str


class CatalogState(msgspec.Struct, kw_only=True):
    format: int = 1
    feature_groups: list[FeatureGroupSpec] = []
    feature_views: list[FeatureViewSpec] = []
    training_datasets: list[TrainingDatasetSpec] = []
    models: list[ModelSpec] = []
    aliases: dict[str, dict[str, int]] = {}     # model name -> alias -> version
    # the highest version ever deleted, so that none is used twice: "model:NAME" for model
    # versions, "td:VIEW@VERSION" for a view's training datasets
    retired: dict[str, int] = {}
    audit_seq: int | None = None    # the audit event that recorded this catalog (its sha256)


def pick_version(specs: list, version: int | None) -> Any:
    """Of one name's specs, the one at ``version`` (the latest when None); None if absent."""
    if version is None:
        return max(specs, key=lambda s: s.version, default=None)
    return next((s for s in specs if s.version == version), None)


def next_version(state: CatalogState, family: str, versions: list[int]) -> int:
    """The next version of ``family`` (see ``CatalogState.retired``): never one used before."""
    return 1 + max([*versions, state.retired.get(family, 0)])


def view_hash(view: Any) -> str:
    """The hash of a feature view's definition (its query, labels and transforms)."""
    return digest_record({"view": [view.name, view.version], "query": view.query,
                          "labels": view.labels, "transforms": view.transforms})
