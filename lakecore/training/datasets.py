"""Training datasets: a feature view's query materialized as Parquet under the lake, with a
manifest that pins everything it was made from.

The manifest (``TrainingDatasetSpec``, in the catalog and beside the files) records the exact
commit of every group read, the spine (stored as a file, with its hash), the split spec and
seed, the transform statistics fitted on the train split, and the sha256 of every output
file. Its ``hash`` is a sha256 over all of that, so re-running the same query on the same
commits (``recreate``) must give the same hash, bit for bit.

Files hold the raw (untransformed) rows: the spine's key columns, the features, the labels.
Transforms are applied when the data is read, from the fitted statistics.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.files import fsync_path, remove_tree
from lakecore.base.hashing import digest_record
from lakecore.base.parquet import read_parquet, write_parquet
from lakecore.base.times import now_millis, utc_micros
from lakecore.catalog.specs import (
    DataFile,
    FeatureViewSpec,
    SplitPart,
    TrainingDatasetSpec,
)
from lakecore.errors import SchemaError, ValidationError
from lakecore.quality.statistics import describe
from lakecore.query.planner import Resolve, as_utc_times, build
from lakecore.training import transforms as tf


def folder_of(view: str, view_version: int, version: int) -> str:
    """A dataset's folder, relative to the lake."""
    return os.path.join("training_data", view, f"v{view_version}", f"td{version}")


def discard_folder(lake_path: str, folder: str) -> None:
    """Remove a dataset folder that no catalog entry owns (a failed or crashed build), and
    the empty folders above it, so that a failed call leaves the lake as it was. The caller
    holds the writer lock."""
    remove_tree(os.path.join(lake_path, folder))
    parent = os.path.dirname(folder)
    while parent:
        try:
            os.rmdir(os.path.join(lake_path, parent))
        except OSError:
            break                       # not empty (other datasets), or gone
        parent = os.path.dirname(parent)


def parse_split(split: Any) -> list[SplitPart]:
    """``None``, fractions ``{"train": 0.8, "test": 0.2}`` or times ``{"train": (t0, t1)}``."""
    if split is None:
        return []
    if not isinstance(split, dict) or not split or not all(isinstance(k, str) for k in split):
        raise ValidationError(f"split: expected None or a dict of split name to fraction or "
                              f"(start, end) times, got {split!r}")
    if "all" in split and len(split) > 1:
        raise ValidationError("split: 'all' is reserved for data without splits")
    values = list(split.values())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        if any(not 0 < v <= 1 for v in values) or abs(sum(values) - 1) > 1e-9:
            raise ValidationError(f"split: fractions must be in (0, 1] and sum to 1, got {split!r}")
        return [SplitPart(name=k, fraction=float(v)) for k, v in split.items()]
    if all(isinstance(v, (tuple, list)) and len(v) == 2 for v in values):
        parts = []
        for name, (start, end) in split.items():
            start_us, end_us = utc_micros(start, "split"), utc_micros(end, "split")
            if start_us is None or end_us is None or start_us >= end_us:
                raise ValidationError(f"split: {name!r} needs a start before its end, got "
                                      f"{(start, end)!r}")
            parts.append(SplitPart(name=name, start_us=start_us, end_us=end_us))
        return parts
    raise ValidationError(f"split: expected fractions or (start, end) pairs, got {split!r}")


def split_rows(table: pa.Table, time_column: str | None, parts: list[SplitPart],
                seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split, in spine order."""
    n = table.num_rows
    if not parts:
        return {"all": np.arange(n)}
    if parts[0].fraction is not None:
        order = np.random.default_rng(seed).permutation(n)
        rows, start = {}, 0
        for i, part in enumerate(parts):
            stop = n if i == len(parts) - 1 else min(n, start + round(part.fraction * n))
            rows[part.name] = np.sort(order[start:stop])
            start = stop
        return rows
    if time_column is None:
        raise SchemaError("split: a time split needs the spine's event time column")
    times = pc.cast(as_utc_times(table.column(time_column), time_column), pa.int64())
    times = times.to_numpy(zero_copy_only=False) if times.null_count == 0 else \
        pc.fill_null(times, np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
    return {p.name: np.flatnonzero((times >= p.start_us) & (times < p.end_us)) for p in parts}


# Rows per dataset file: a big split is several files, written on several threads.
PART_ROWS = 1 << 19
# The spine row number, kept in files written by Spark (whose row order is its own).
ROW_ID = "__lakecore_row__"


def write_file(table: pa.Table, lake_path: str, relative: str) -> DataFile:
    """A dataset file (same rows, same bytes), fsynced, replacing an earlier copy; its
    DataFile."""
    path = os.path.join(lake_path, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _, digest = write_parquet(table, path, replace=True)
    return DataFile(path=relative, sha256=digest, rows=table.num_rows)


def content_hash(spec: TrainingDatasetSpec) -> str:
    """sha256 over the source commits, the spine, the parameters, the fitted transforms and
    the output files (paths aside: a recreated copy elsewhere has the same hash)."""
    return digest_record({
        "sources": [[s.group, s.version, s.commit, s.hash] for s in spec.sources],
        "spine": None if spec.spine is None else spec.spine.sha256,
        **({"spine_time": spec.spine_time} if spec.spine_time is not None else {}),
        "params": {"view": [spec.view, spec.view_version], "start": spec.start_time_us,
                   "end": spec.end_time_us, "splits": spec.splits, "seed": spec.seed,
                   "keys": spec.key_columns, "features": spec.features, "labels": spec.labels},
        "transforms": spec.transforms,
        "files": {name: [[f.sha256, f.rows] for f in parts]
                  for name, parts in sorted(spec.files.items())},
        **({"engine": spec.engine} if spec.engine != "lakecore" else {}),
        **({"statistics": spec.statistics} if spec.statistics is not None else {}),
    })


def with_statistics(spec: TrainingDatasetSpec, lake_path: str) -> TrainingDatasetSpec:
    """``spec`` with the statistics of its features before transforms, of every split and
    of all rows (key ""), read from its files, and its hash covering them."""
    parts = {name: pa.concat_tables(
        [read_parquet(os.path.join(lake_path, f.path), spec.features) for f in files])
        for name, files in spec.files.items()}
    stats = {name: describe(table, spec.features) for name, table in parts.items()}
    if len(parts) > 1 or "" not in stats:
        stats[""] = describe(pa.concat_tables(list(parts.values())), spec.features) \
            if len(parts) > 1 else next(iter(stats.values()))
    spec = msgspec.structs.replace(spec, statistics=stats)
    return msgspec.structs.replace(spec, hash=content_hash(spec))


def materialize(resolve: Resolve, lake_path: str, view: FeatureViewSpec, version: int, *,
                spine: pa.Table | None,
                spine_time: str | None, start_time, end_time, split: list[SplitPart], seed: int,
                description: str, folder: str, pinned: dict[tuple[str, int], int] | None = None,
                stored_spine: DataFile | None = None, spark: Any = None,
                spark_engine: Any = None,
                transform_order: list[str] | None = None) -> TrainingDatasetSpec:
    """Build the view's data and write it to ``folder`` (relative to the lake); the manifest.
    With a SparkSession as ``spark``, ``spark_engine.materialize`` (the Spark integration) runs
    the joins and writes the files instead, with the same splits, transforms and manifest.

    Transforms are fitted in column-name order (the order the catalog stores a view's
    transforms in, so a dataset made before and after reopening the lake is the same), or in
    ``transform_order`` (``recreate``: the order of the dataset being rebuilt)."""
    order = transform_order if transform_order is not None else sorted(view.transforms)
    view = msgspec.structs.replace(view, transforms={c: view.transforms[c] for c in order})
    pool = ThreadPoolExecutor(2, thread_name_prefix="lakecore-write")
    try:
        return _materialize(resolve, lake_path, view, version, spine, spine_time, start_time,
                            end_time, split, seed, description, folder, pinned, stored_spine,
                            pool, spark, spark_engine)
    finally:
        pool.shutdown(wait=True)


def _materialize(resolve, lake_path, view, version, spine, spine_time, start_time, end_time,
                 split, seed, description, folder, pinned, stored_spine, pool, spark,
                 spark_engine) -> TrainingDatasetSpec:
    spine_file = None
    if spine is not None and stored_spine is None:      # written while the joins run
        spine_file = pool.submit(write_file, spine, lake_path,
                                 os.path.join(folder, "spine.parquet"))
    if spark is not None:
        return spark_engine.materialize(spark, resolve, lake_path, view, version, spine,
                                        spine_time, start_time, end_time, split, seed,
                                        description, folder, pinned, stored_spine, spine_file)
    built = build(resolve, view.query, spine, start_time, end_time, pinned,
                  spine_time=spine_time, latest_allowed=False)
    table = built.table
    key_columns, features = key_and_feature_columns(view, table.column_names,
                                                    built.spine_columns)
    rows = split_rows(table, built.time_column, split, seed)
    fit_on = "train" if "train" in rows else next(iter(rows))
    raw = table.select(key_columns + features + view.labels)
    fit_rows = raw.select(features) if not split else \
        raw.select(features).take(pa.array(rows[fit_on], pa.int64()))
    fitted = tf.fit(fit_rows, view.transforms)
    writes: dict[str, list] = {}
    for name, indices in rows.items():          # splits and their parts are written side by side
        whole = len(indices) == raw.num_rows and not split
        rows_of_split = raw if whole else raw.take(pa.array(indices, pa.int64()))
        writes[name] = [
            pool.submit(write_file, rows_of_split.slice(start, PART_ROWS), lake_path,
                        os.path.join(folder, f"{name}-{start // PART_ROWS:04d}.parquet"))
            for start in range(0, max(rows_of_split.num_rows, 1), PART_ROWS)]
    files = {name: [future.result() for future in futures] for name, futures in writes.items()}
    if spine_file is not None:
        stored_spine = spine_file.result()
    return manifest(lake_path, view, version, built, stored_spine, spine_time, start_time, end_time,
                     split, seed, key_columns, features, fitted, files, description, folder,
                     "lakecore")


def key_and_feature_columns(view: FeatureViewSpec, names: list[str],
                             spine_columns: list[str]) -> tuple[list[str], list[str]]:
    """The dataset's key columns (the spine's, labels aside) and features (the rest, labels
    aside); SchemaError when a label is in neither."""
    missing = [label for label in view.labels if label not in names]
    if missing:
        raise SchemaError(f"labels: no column {missing[0]!r} in the view's output or the spine "
                          f"(columns: {', '.join(names)})")
    key_columns = [c for c in spine_columns if c not in view.labels]
    features = [c for c in names if c not in spine_columns and c not in view.labels]
    return key_columns, features


def manifest(lake_path, view, version, built, stored_spine, spine_time, start_time, end_time,
             split, seed, key_columns, features, fitted, files, description, folder,
             engine: str) -> TrainingDatasetSpec:
    """Make the dataset's folder durable and return its manifest, hashed."""
    fsync_path(os.path.join(lake_path, folder))
    spec = TrainingDatasetSpec(
        view=view.name, view_version=view.version, version=version, sources=built.sources,
        spine=stored_spine, spine_time=spine_time,
        start_time_us=utc_micros(start_time, "start_time"),
        end_time_us=utc_micros(end_time, "end_time"), splits=split, seed=seed,
        key_columns=key_columns, features=features, labels=list(view.labels),
        transforms=fitted, files=files, description=description,
        created_at_ms=now_millis(), hash="", engine=engine)
    return msgspec.structs.replace(spec, hash=content_hash(spec))
