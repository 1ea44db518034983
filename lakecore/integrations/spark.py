"""Apache Spark interop (the optional ``lakecore[spark]`` extra; pyspark is imported lazily).

``to_spark`` hands Spark the exact Parquet files that lakecore's own replay of the Delta log
says make up a commit, with the schema from the log, so it needs neither delta-spark nor any
download. Where a cluster has delta-spark, ``spark.read.format("delta").option("versionAsOf",
v).load(fg.location)`` reads the same rows. Tables using features lakecore does not write
(deletion vectors, column mapping) are refused rather than read wrongly.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lakecore.base.arrow import as_table
from lakecore.base.hashing import digest_file
from lakecore.base.times import now_micros
from lakecore.catalog.specs import DataFile, SourceCommit, TrainingDatasetSpec
from lakecore.errors import LakeError, ValidationError
from lakecore.offline.delta_log import Snapshot
from lakecore.query.planner import (
    Built,
    Resolve,
    _source,
    as_utc_times,
    spine_of,
    time_window,
)
from lakecore.training import transforms as tf
from lakecore.training.datasets import (
    PART_ROWS,
    ROW_ID,
    key_and_feature_columns,
    manifest,
    split_rows,
)

_UNSUPPORTED = ("deletionVectors", "columnMapping", "timestampNtz", "v2Checkpoint")


def _pyspark():
    try:
        import pyspark.sql
        import pyspark.sql.types
    except ImportError as exc:
        raise LakeError("Spark support needs pyspark: pip install 'lakecore[spark]'") from exc
    return pyspark


def check_readable(snapshot: Snapshot, name: str) -> None:
    """Refuse tables whose protocol or settings lakecore would misread."""
    protocol = snapshot.protocol or {}
    features = set(protocol.get("readerFeatures") or []) | set(protocol.get("writerFeatures") or [])
    used = sorted(features & set(_UNSUPPORTED))
    configuration = (snapshot.metadata or {}).get("configuration") or {}
    if configuration.get("delta.columnMapping.mode", "none") != "none":
        used.append("columnMapping")
    if configuration.get("delta.enableDeletionVectors") == "true" or \
            any((a or {}).get("deletionVector") for a in snapshot.files.values()):
        used.append("deletionVectors")
    if used:
        raise LakeError(f"feature group {name!r} uses Delta table features lakecore does not "
                        f"read: {', '.join(sorted(set(used)))}")


def table_to_spark(spark: Any, location: str, snapshot: Snapshot, schema_string: str | None,
                   name: str) -> Any:
    pyspark = _pyspark()
    if not isinstance(spark, pyspark.sql.SparkSession):
        raise ValidationError(f"spark: expected a SparkSession, got {type(spark).__name__}")
    check_readable(snapshot, name)
    if schema_string is None:
        raise ValidationError(f"feature group {name!r} has no schema and no rows yet")
    # Delta's schemaString is Spark's own JSON schema format
    schema = pyspark.sql.types.StructType.fromJson(json.loads(schema_string))
    paths = [os.path.join(location, path) for path in snapshot.files]
    if not paths:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*paths)


# -- point-in-time joins on Spark ----------------------------------------------------------------
ROW = ROW_ID
TIME = "__lakecore_time__"
SIDE = "__lakecore_side__"
MATCH = "__lakecore_match__"
ROW_TIME = "__lakecore_row_time__"
_LATEST_US = 2**62


def build_on_spark(spark: Any, resolve: Resolve, spec: Any, spine: Any, start_time, end_time,
                   pinned: dict | None = None, *, spine_time: str | None = None):
    """The embedded query engine (``lakecore.query.planner.build``) with every point-in-time join
    run on Spark: the union + sort + ``last(struct, ignorenulls)`` window, carrying whole rows
    as structs so that a null value is never filled from an older row. The spine and its
    rules (``spine_time``; never the latest rows) are the embedded engine's. Returns the
    joined Spark DataFrame (the spine's columns, the features, the spine row id ``ROW``) and
    a ``Built`` whose table is the spine (for the split assignment)."""
    pyspark = _pyspark()
    F = pyspark.sql.functions
    Window = pyspark.sql.Window
    if not isinstance(spark, pyspark.sql.SparkSession):
        raise ValidationError(f"spark: expected a SparkSession, got {type(spark).__name__}")
    if isinstance(spine, pyspark.sql.DataFrame):
        spine = spine.toArrow()
    start, end = time_window(start_time, end_time)
    sources = [_source(resolve, part, pinned) for part in spec.parts]
    base = spine_of(spec, sources, None if spine is None else as_table(spine, "spine"),
                    spine_time, False, start, end, now_micros(), latest_allowed=False)
    output = base.table.combine_chunks() if base.table.num_rows else base.table
    joins = base.joins
    times = None
    if base.time_column is not None:
        times = pc.cast(as_utc_times(output.column(base.time_column), base.time_column), pa.int64())
    left = output.append_column(ROW, pa.array(range(output.num_rows), pa.int64()))
    left = left.append_column(TIME, times if times is not None else
                              pa.array([_LATEST_US] * output.num_rows, pa.int64()))
    left_df = spark.createDataFrame(left)
    result = left_df.select(ROW)
    added: list[str] = []
    for part, source in joins:
        group = source.spec
        prefix = part.prefix or ""
        on = part.on or group.primary_key
        features = [c for c in part.columns if prefix + c not in base.columns
                    and prefix + c not in output.column_names]
        if not features:
            continue
        right = table_to_spark(spark, source.table.location, source.snapshot,
                               source.snapshot.metadata["schemaString"] if source.snapshot.metadata
                               else group.schema, group.name)
        timed = group.event_time is not None and base.time_column is not None
        right_time = F.unix_micros(F.col(group.event_time)) if group.event_time \
            else F.lit(0).cast("long")
        keys = [f"__k{i}" for i in range(len(on))]
        spine_time = F.col(TIME) if timed else F.lit(_LATEST_US).cast("long")
        spine_side = left_df.select(
            *[F.col(c).alias(k) for c, k in zip(on, keys)], spine_time.alias(TIME),
            F.col(ROW), F.lit(1).alias(SIDE),
            F.lit(None).cast(pyspark.sql.types.StructType(
                [pyspark.sql.types.StructField(ROW_TIME, pyspark.sql.types.LongType())]
                + [right.schema[c] for c in features])).alias(MATCH))
        group_side = right.select(
            *[F.col(c).alias(k) for c, k in zip(group.primary_key, keys)],
            right_time.alias(TIME), F.lit(None).cast("long").alias(ROW), F.lit(0).alias(SIDE),
            F.struct(right_time.alias(ROW_TIME), *[F.col(c) for c in features]).alias(MATCH))
        window = Window.partitionBy(*keys).orderBy(F.col(TIME).asc_nulls_first(), F.col(SIDE)) \
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        matched = spine_side.unionByName(group_side).withColumn(
            MATCH, F.last(F.col(MATCH), ignorenulls=True).over(window)) \
            .where(F.col(SIDE) == 1)
        ttl = group.ttl_us if timed else None
        live = F.col(f"{MATCH}.{ROW_TIME}").isNotNull()
        if timed:
            live = live & F.col(TIME).isNotNull()
        if ttl is not None:
            live = live & (F.col(f"{MATCH}.{ROW_TIME}") >= F.col(TIME) - F.lit(ttl))
        for c in keys:                              # a null key never matches
            live = live & F.col(c).isNotNull()
        picked = matched.select(F.col(ROW), *[
            F.when(live, F.col(f"{MATCH}.{c}")).alias(prefix + c) for c in features])
        result = result.join(picked, on=ROW, how="left")
        added += [prefix + c for c in features]
    commits = [SourceCommit(group=s.spec.name, version=s.spec.version,
                            commit=s.snapshot.version, hash=s.snapshot.commit_hash) for s in sources]
    frame = left_df.drop(TIME).join(result, on=ROW, how="left")
    order = list(output.column_names) + added + [ROW]
    return frame.select(*order), Built(output, commits, base.columns, base.time_column)


def write_on_spark(spark: Any, frame: Any, lake_path: str, folder: str, rows: dict,
                   columns: list[str], part_rows: int) -> dict:
    """Spark writes each split's rows as zstd Parquet (microsecond timestamps) into
    ``folder/<split>/``; lakecore then hashes the files. Rows go to files by a hash of their
    row id (deterministic, unlike sampled range partitioning) and are sorted within each
    file; the row id is kept so that reads restore spine order."""
    F = _pyspark().sql.functions
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    files = {}
    for name, indices in rows.items():
        chosen = spark.createDataFrame(pa.table({ROW: pa.array(np.asarray(indices, np.int64))}))
        relative = os.path.join(folder, name)
        target = os.path.join(lake_path, relative)
        parts = max(1, -(-len(indices) // part_rows))
        (frame.join(chosen, on=ROW, how="inner").select(*columns, ROW)
         .repartition(parts, F.col(ROW)).sortWithinPartitions(ROW)
         .write.mode("overwrite").option("compression", "zstd").parquet(target))
        names = sorted(n for n in os.listdir(target) if n.endswith(".parquet"))
        files[name] = [DataFile(path=os.path.join(relative, n),
                                sha256=digest_file(os.path.join(target, n)),
                                rows=pq.ParquetFile(os.path.join(target, n)).metadata.num_rows)
                       for n in names]
    return files


def materialize_on_spark(spark, resolve, lake_path, view, version, spine, spine_time, start_time,
                         end_time, split, seed, description, folder, pinned, stored_spine,
                         spine_file) -> TrainingDatasetSpec:
    """A training dataset's joins and files on Spark; splits, fitted transforms and the
    manifest as in the embedded engine (``lakecore.training.datasets.materialize``)."""
    frame, built = build_on_spark(spark, resolve, view.query, spine, start_time, end_time, pinned,
                                  spine_time=spine_time)
    key_columns, features = key_and_feature_columns(
        view, [c for c in frame.columns if c != ROW], built.spine_columns)
    rows = split_rows(built.table, built.time_column, split, seed)
    fit_on = "train" if "train" in rows else next(iter(rows))
    fit_rows = spark.createDataFrame(pa.table({ROW: pa.array(rows[fit_on], pa.int64())}))
    fitted = tf.fit(frame.join(fit_rows, on=ROW).select(*features).toArrow()
                    if features else pa.table({}), view.transforms)
    files = write_on_spark(spark, frame, lake_path, folder, rows,
                           key_columns + features + list(view.labels), PART_ROWS)
    if spine_file is not None:
        stored_spine = spine_file.result()
    return manifest(lake_path, view, version, built, stored_spine, spine_time, start_time, end_time,
                     split, seed, key_columns, features, fitted, files, description, folder,
                     "spark")


class SparkEngine:
    """The Spark integration as the lake's domain objects see it (installed in their
    context by the ``Lake``): reading a table at a commit, and building training data."""

    table_to_spark = staticmethod(table_to_spark)
    materialize = staticmethod(materialize_on_spark)
