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

from lakecore.delta_log import Snapshot
from lakecore.errors import LakeError, ValidationError

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
