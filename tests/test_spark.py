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


def test_to_spark_reads_every_version_across_schema_changes(spark, tmp_path):
    day = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts")
        fg.insert(pa.table({"id": [1, 2], "ts": pa.array([day, day], TS),
                            "n": pa.array([1, 2], pa.int32()), "gone": ["a", "b"]}))
        fg.add_columns([pa.field("city", pa.string())])
        fg.insert({"id": [3], "ts": pa.array([day], TS), "n": pa.array([3], pa.int32()),
                   "gone": ["c"], "city": ["Oslo"]})
        fg.widen("n", pa.int64())
        fg.drop_columns(["gone"])
        for commit in fg.history():
            df = fg.to_spark(spark, as_of=commit.version)
            expected = fg.read(as_of=commit.version)
            assert df.columns == expected.column_names, commit.version
            assert spark_rows(df) == rows(expected), commit.version


def test_to_spark_refuses_what_it_would_misread(spark, tmp_path):
    from lakecore.integrations.spark import check_readable

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


def same_rows(a: pa.Table, b: pa.Table) -> bool:
    """Equal column names, types and values (schema metadata and nullability aside)."""
    return a.column_names == b.column_names and all(
        x.type == y.type and x.to_pylist() == y.to_pylist() for x, y in zip(a.columns, b.columns))


@pytest.fixture(scope="module")
def history_lake(tmp_path_factory):
    """Two groups with ties, late rows, null values, keys missing on one side, and a ttl."""
    import numpy as np

    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("pit") / "lake"
    lake = lakecore.open(path)
    day = lambda d: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=int(d))  # noqa: E731
    a = lake.create_feature_group("a", primary_key="id", event_time="ts")
    b = lake.create_feature_group("b", primary_key="id", event_time="ts", ttl=dt.timedelta(hours=30))
    c = lake.create_feature_group("c", primary_key="id")
    for group, n in [(a, 400), (b, 300)]:
        for _ in range(3):
            values = rng.random(n)
            values[rng.random(n) < 0.2] = np.nan
            group.insert({"id": rng.integers(0, 40, n), "ts": pa.array([day(h) for h in
                                                                         rng.integers(0, 200, n)], TS),
                          "v": pa.array(values, from_pandas=True), "w": rng.integers(0, 9, n)})
    c.insert({"id": np.arange(0, 40, 2), "segment": [f"s{i}" for i in range(20)]})
    view = lake.create_feature_view(
        "v", query=a.select_all().join(b.select_all(), prefix="b_").join(c.select_all()),
        labels=["label"])
    spine = pa.table({"id": rng.integers(0, 45, 500),
                      "ts": pa.array([None if h < 0 else day(h)
                                      for h in rng.integers(-5, 220, 500)], TS),
                      "label": rng.integers(0, 2, 500)})
    yield lake, view, spine
    lake.close()


def test_spark_training_data_has_the_embedded_rows(spark, history_lake):
    lake, view, spine = history_lake
    embedded = view.create_training_data(spine=spine, split={"train": 0.7, "test": 0.3}, seed=3)
    on_spark = view.create_training_data(spine=spine, split={"train": 0.7, "test": 0.3}, seed=3,
                                         spark=spark)
    for split in ("train", "test"):
        assert same_rows(on_spark.read(split, with_keys=True), embedded.read(split, with_keys=True))
    assert on_spark._spec.engine == "spark" and on_spark.splits == embedded.splits
    assert all("/train/" in f.path or "/test/" in f.path            # files Spark wrote
               for parts in on_spark._spec.files.values() for f in parts)
    spine_df = spark.createDataFrame(spine)
    from_df = view.create_training_data(spine=spine_df, spark=spark)
    assert same_rows(from_df.read(with_keys=True),
                     view.create_training_data(spine=spine).read(with_keys=True))
    with pytest.raises(lakecore.ValidationError, match="spark="):
        on_spark.recreate()
    assert on_spark.recreate(spark=spark).hash == on_spark.hash
    assert lake.verify().ok


def test_spark_follows_the_spine_time_rules(spark, history_lake):
    lake, view, spine = history_lake
    time_name = [c for c in spine.column_names if c != "id" and
                 pa.types.is_timestamp(spine.schema.field(c).type)][0]
    renamed = spine.rename_columns(["when" if c == time_name else c for c in spine.column_names])
    embedded = view.create_training_data(spine=renamed, spine_time="when")
    on_spark = view.create_training_data(spine=spark.createDataFrame(renamed),
                                         spine_time="when", spark=spark)
    assert same_rows(on_spark.read(with_keys=True), embedded.read(with_keys=True))
    assert on_spark.recreate(spark=spark).hash == on_spark.hash
    with pytest.raises(lakecore.SchemaError, match=f"no column {time_name!r}.*spine_time"):
        view.create_training_data(spine=renamed, spark=spark)


def test_spark_training_data_without_a_spine(spark, history_lake):
    lake, view, spine = history_lake
    plain = lake.create_feature_view("plain", query=lake.feature_group("a").select_all().join(
        lake.feature_group("b").select_all(), prefix="b_"))
    start = dt.datetime(2026, 1, 3, tzinfo=dt.timezone.utc)
    embedded = plain.create_training_data(start_time=start)
    on_spark = plain.create_training_data(start_time=start, spark=spark)
    assert same_rows(on_spark.read(with_keys=True), embedded.read(with_keys=True))


def test_the_readme_spark_example(spark, capsys):
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```py\n(.*?)```", readme, flags=re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, "README.md", "exec"), {})
    claimed = re.findall(r"print\(.*\)\s+# (.*)", block)
    assert printed.getvalue().splitlines() == claimed
