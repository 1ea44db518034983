"""Spark interop: ``to_spark`` gives the rows of ``read`` at every commit. Skipped, with a
message, without pyspark or Java; ``.ci/run`` installs the ``spark`` extra so CI runs them."""

import datetime as dt
import os
import shutil

import pyarrow as pa
import pytest

import lakecore

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (lakecore[spark])")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is not installed: Spark needs Java 17 or newer", allow_module_level=True)

TS = pa.timestamp("us", "UTC")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("TZ", "UTC")
    session = (SparkSession.builder.master("local[2]").appName("lakecore-tests")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def rows(table: pa.Table) -> list[tuple]:
    """Comparable rows: timestamps as UTC microseconds, sorted."""
    out = []
    for row in table.to_pylist():
        out.append(tuple(v.replace(tzinfo=dt.timezone.utc).timestamp() * 1e6
                         if isinstance(v, dt.datetime) else v for v in row.values()))
    return sorted(out, key=repr)


def spark_rows(df) -> list[tuple]:
    out = []
    for row in df.collect():
        out.append(tuple(v.replace(tzinfo=dt.timezone.utc).timestamp() * 1e6
                         if isinstance(v, dt.datetime) else v for v in row))
    return sorted(out, key=repr)


def test_to_spark_equals_read_at_every_commit(spark, tmp_path):
    day = lambda d: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=d)  # noqa: E731
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts")
        fg.insert({"id": [1, 2, 3], "ts": pa.array([day(0), day(1), day(2)], TS),
                   "v": [1.0, None, 3.0], "s": ["a", "é", None], "l": [[1], None, []]})
        fg.insert({"id": [1, 4], "ts": pa.array([day(0), day(3)], TS), "v": [9.0, 4.0],
                   "s": ["x", "d"], "l": [[2, 3], [4]]})                    # an upsert
        fg.delete({"id": [2]})
        fg.compact()
        fg.insert({"id": [5], "ts": pa.array([dt.datetime(1970, 1, 1, 0, 0, 0, 1,
                                                          tzinfo=dt.timezone.utc)], TS),
                   "v": [5.0], "s": ["e"], "l": [None]})
        for commit in fg.history():
            df = fg.to_spark(spark, as_of=commit.version)
            assert df.columns == fg.schema.names
            assert spark_rows(df) == rows(fg.read(as_of=commit.version)), commit.version
        assert spark_rows(fg.to_spark(spark)) == rows(fg.read())
        empty = lake.create_feature_group("empty", primary_key="id",
                                          schema=pa.schema([("id", pa.int64())]))
        assert empty.to_spark(spark).count() == 0


def test_to_spark_refuses_what_it_would_misread(spark, tmp_path):
    from lakecore.spark import check_readable

    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        snapshot = fg._table.snapshot()
        snapshot.protocol = {"minReaderVersion": 3, "minWriterVersion": 7,
                             "readerFeatures": ["deletionVectors"],
                             "writerFeatures": ["deletionVectors"]}
        with pytest.raises(lakecore.LakeError, match="deletionVectors"):
            check_readable(snapshot, "g")
        with pytest.raises(lakecore.ValidationError, match="SparkSession"):
            fg.to_spark("not a session")
