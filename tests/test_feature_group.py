"""Feature groups: creation, upserts, deletes, time travel, history, schemas and errors."""

import datetime as dt
import os
import time

import pyarrow as pa
import pytest

import lakecore
from lakecore import (
    AlreadyExistsError,
    NotFoundError,
    ReadOnlyError,
    SchemaError,
    ValidationError,
)
from tests.lake_state import lake_digest

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


TS = pa.timestamp("us", "UTC")


def day(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


@pytest.fixture
def fg(lake):
    return lake.create_feature_group("tx", primary_key="id", event_time="ts",
                                     description="transactions", tags={"team": "risk"})


def sorted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


def test_create_and_look_up(lake, fg):
    assert (fg.name, fg.version, fg.primary_key, fg.event_time) == ("tx", 1, ["id"], "ts")
    assert fg.description == "transactions" and fg.tags == {"team": "risk"}
    assert fg.schema is None and fg.hash is None and fg.online is False and fg.ttl is None
    assert fg.location.startswith(lake.path) and os.path.isdir(fg.location)
    v2 = lake.create_feature_group("tx", version=2, primary_key=["id"], event_time="ts")
    assert lake.feature_group("tx").version == 2
    assert lake.feature_group("tx", 1).description == "transactions"
    assert [(g.name, g.version) for g in lake.feature_groups()] == [("tx", 1), ("tx", 2)]
    assert v2.location != fg.location
    with pytest.raises(AlreadyExistsError):
        lake.create_feature_group("tx", primary_key="id")
    with pytest.raises(NotFoundError, match="nope"):
        lake.feature_group("nope")
    with pytest.raises(NotFoundError):
        lake.feature_group("tx", 3)


def test_empty_group_reads_empty(lake, fg):
    assert fg.read().num_rows == 0 and fg.history() == []
    declared = lake.create_feature_group(
        "typed", primary_key="k", schema=pa.schema([("k", pa.int32()), ("x", pa.float64())]))
    assert declared.read().schema == pa.schema([("k", pa.int32()), ("x", pa.float64())])
    assert declared.read(as_of=T0).num_rows == 0


def test_upsert_replaces_same_key_and_time_last_duplicate_wins(fg):
    c0 = fg.insert({"id": [1, 2, 1], "ts": [day(0), day(0), day(0)], "x": [1.0, 2.0, 3.0]})
    assert (c0.version, c0.operation, c0.rows_added, c0.rows_removed) == (0, "insert", 2, 0)
    c1 = fg.insert({"id": [1, 1], "ts": [day(0), day(1)], "x": [10.0, 11.0]})
    assert (c1.version, c1.rows_added, c1.rows_removed) == (1, 2, 1)
    assert sorted_rows(fg.read()) == sorted_rows(pa.table({
        "id": [1, 1, 2], "ts": pa.array([day(0), day(1), day(0)], pa.timestamp("us", "UTC")),
        "x": [10.0, 11.0, 2.0]}))
    assert fg.read(as_of=0).column("x").to_pylist().count(3.0) == 1
    assert fg.schema == pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us", "UTC")),
                                   ("x", pa.float64())])


def test_group_without_event_time_upserts_on_key(lake):
    g = lake.create_feature_group("users", primary_key=["a", "b"])
    g.insert({"a": [1, 1], "b": ["x", "y"], "v": [1, 2]})
    c = g.insert({"a": [1], "b": ["x"], "v": [5]})
    assert c.rows_removed == 1
    assert sorted_rows(g.read()) == [{"a": 1, "b": "x", "v": 5}, {"a": 1, "b": "y", "v": 2}]


def test_delete_removes_every_row_of_the_keys(fg):
    fg.insert({"id": [1, 1, 2, 3], "ts": [day(0), day(1), day(0), day(0)], "x": [1., 2., 3., 4.]})
    c = fg.delete({"id": [1, 3, 99]})
    assert (c.operation, c.rows_removed, c.rows_added) == ("delete", 3, 0)
    assert fg.read().column("id").to_pylist() == [2]
    assert fg.read(as_of=0).num_rows == 4


def test_time_travel_by_datetime_and_history(fg):
    commits = [fg.insert({"id": [i], "ts": [day(i)], "x": [float(i)]}) for i in range(3)]
    assert [c.version for c in fg.history()] == [0, 1, 2]
    assert fg.history() == commits
    stamps = [c.timestamp for c in commits]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert all(s.microsecond % 1000 == 0 for s in stamps)
    for c in commits:
        assert fg.read(as_of=c.timestamp).num_rows == c.version + 1
    assert fg.read(as_of=stamps[0] - dt.timedelta(milliseconds=1)).num_rows == 0
    naive = stamps[1].replace(tzinfo=None)
    assert fg.read(as_of=naive).num_rows == 2
    with pytest.raises(NotFoundError):
        fg.read(as_of=3)
    assert fg.read(columns=["x"]).column_names == ["x"]
    with pytest.raises(SchemaError, match="nope"):
        fg.read(columns=["nope"])


def test_commit_hashes_chain(fg):
    c0 = fg.insert({"id": [1], "ts": [day(0)], "x": [1.0]})
    c1 = fg.insert({"id": [2], "ts": [day(0)], "x": [1.0]})
    assert c0.hash.startswith("sha256:") and c0.hash != c1.hash and fg.hash == c1.hash


def test_schema_casts_and_rejections(lake, fg):
    fg.insert(pa.table({"id": pa.array([1], pa.int32()),
                        "ts": pa.array([0], pa.int64()).cast(pa.timestamp("s")),
                        "x": pa.array([1.0], pa.float64())}))
    assert fg.schema.field("id").type == pa.int32()
    # int64 values into the int32 key, ints into the float column, ms into us
    fg.insert(pa.table({"id": pa.array([2], pa.int64()),
                        "ts": pa.array([5], pa.int64()).cast(pa.timestamp("ms", "Asia/Tokyo")),
                        "x": pa.array([7], pa.int8())}))
    assert fg.read().num_rows == 2
    before = lake_digest(lake.path)
    bad = [
        ({"id": [1], "ts": ["2024-01-01"], "x": [1.0]}, SchemaError, "'ts'"),
        ({"id": ["1"], "ts": [day(0)], "x": [1.0]}, SchemaError, "'id'"),
        ({"id": [1], "ts": [day(0)]}, SchemaError, "'x'"),
        ({"id": [1], "ts": [day(0)], "x": [1.0], "y": [2]}, SchemaError, "'y'"),
        ({"id": [None], "ts": [day(0)], "x": [1.0]}, ValidationError, "'id'"),
        ({"id": [1], "ts": [None], "x": [1.0]}, ValidationError, "'ts'"),
        ({"id": [2**40], "ts": [day(0)], "x": [1.0]}, SchemaError, "'id'"),
        ([1, 2], SchemaError, "data"),
    ]
    for data, error, word in bad:
        with pytest.raises(error) as info:
            fg.insert(data)
        assert word in str(info.value)
    assert lake_digest(lake.path) == before
    assert len(fg.history()) == 2


def test_first_insert_fixes_schema_and_bad_types_are_refused(lake):
    g = lake.create_feature_group("g", primary_key="k", event_time="t")
    with pytest.raises(SchemaError, match="'t'"):
        g.insert({"k": [1], "t": ["yesterday"]})
    with pytest.raises(SchemaError, match="'t'"):
        g.insert({"k": [1], "t": [1.5]})
    with pytest.raises(SchemaError, match="'k'"):
        g.insert({"k": [1.5], "t": [day(0)]})
    with pytest.raises(SchemaError, match="uint64|'u'"):
        g.insert({"k": [1], "t": [day(0)], "u": pa.array([1], pa.uint64())})
    assert g.history() == [] and g.schema is None
    g.insert({"k": pa.array([1], pa.uint8()), "t": pa.array([dt.date(2024, 1, 1)]),
              "l": [[1.0, 2.0]], "s": ["é"], "b": [b"\x00"], "f": [True]})
    assert g.schema.field("k").type == pa.int16()
    assert g.schema.field("t").type == pa.timestamp("us", "UTC")
    assert g.read().to_pylist()[0]["l"] == [1.0, 2.0]


def test_bad_definitions(lake):
    for kwargs, error in [
        (dict(name="bad name", primary_key="id"), ValidationError),
        (dict(name="../escape", primary_key="id"), ValidationError),
        (dict(name="ok", primary_key=[]), SchemaError),
        (dict(name="ok", primary_key="id", event_time="id"), SchemaError),
        (dict(name="ok", primary_key=["id", "ts"], event_time="ts"), SchemaError),
        (dict(name="ok", primary_key="id", version=0), ValidationError),
        (dict(name="ok", primary_key="id", ttl=dt.timedelta(0)), ValidationError),
        (dict(name="ok", primary_key="id", schema={"id": "int"}), SchemaError),
        (dict(name="ok", primary_key="id", schema=pa.schema([("x", pa.int64())])), SchemaError),
        (dict(name="ok", primary_key="id", schema=pa.schema([("id", pa.float64())])), SchemaError),
    ]:
        with pytest.raises(error):
            lake.create_feature_group(**kwargs)
    assert lake.feature_groups() == []
    with pytest.raises(SchemaError, match="primary_key.*event_time column 'ts'"):
        lake.create_feature_group("ok", primary_key=["id", "ts"], event_time="ts")


def test_readonly_refuses_changes_and_missing_lake(tmp_path, lake, fg):
    fg.insert({"id": [1], "ts": [day(0)], "x": [1.0]})
    with lakecore.open(lake.path, readonly=True) as ro:
        g = ro.feature_group("tx")
        assert g.read().num_rows == 1
        with pytest.raises(ReadOnlyError):
            g.insert({"id": [2], "ts": [day(0)], "x": [1.0]})
        with pytest.raises(ReadOnlyError):
            ro.create_feature_group("other", primary_key="id")
        with pytest.raises(ReadOnlyError):
            g.delete({"id": [1]})
    with pytest.raises(NotFoundError):
        lakecore.open(tmp_path / "missing", readonly=True)


def test_reopen_sees_everything_and_two_handles_share_changes(lake, fg):
    fg.insert({"id": [1], "ts": [day(0)], "x": [1.0]})
    other = lakecore.open(lake.path)
    other.feature_group("tx").insert({"id": [2], "ts": [day(0)], "x": [1.0]})
    other.create_feature_group("new", primary_key="k")
    assert fg.read().num_rows == 2
    assert lake.feature_group("new").primary_key == ["k"]


def test_compact_keeps_rows_in_fewer_files(fg, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")   # counts files and commits
    for i in range(5):
        fg.insert({"id": [i], "ts": [day(i)], "x": [float(i)]})
    before = sorted_rows(fg.read())
    c = fg.compact()
    assert c.operation == "compact" and c.version == 5
    assert sorted_rows(fg.read()) == before
    # five files and the merged one stay on disk (empty files made ahead for writes aside)
    assert len([p for p in os.listdir(fg.location) if p.endswith(".parquet")
                and os.path.getsize(os.path.join(fg.location, p))]) == 6
    assert sorted_rows(fg.read(as_of=4)) == before


def test_upsert_rewrites_only_overlapping_files(fg, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")   # counts files and commits
    for i in range(4):
        fg.insert({"id": list(range(i * 10, i * 10 + 10)), "ts": [day(i)] * 10,
                   "x": [0.0] * 10})
    files_before = live_files(fg)
    c = fg.insert({"id": [35], "ts": [day(3)], "x": [1.0]})
    assert c.rows_removed == 1
    # only the last file held key 35: it is replaced by one file with its other rows and the
    # new one; the three other files stay live and untouched
    live = live_files(fg)
    assert len(live) == 4
    assert len(live & files_before) == 3
    assert fg.read().num_rows == 40


def live_files(fg):
    """The data files the Delta log lists as live, replayed from its JSON commits."""
    import json
    log = os.path.join(fg.location, "_delta_log")
    live = set()
    for name in sorted(n for n in os.listdir(log) if n.endswith(".json")):
        with open(os.path.join(log, name)) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    live.add(action["add"]["path"])
                if "remove" in action:
                    live.discard(action["remove"]["path"])
    return live


def test_closed_lake(tmp_path):
    lake = lakecore.open(tmp_path / "l")
    lake.close()
    with pytest.raises(lakecore.LakeError, match="closed"):
        lake.feature_groups()


def test_commit_timestamps_rise_even_when_fast(fg, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")   # counts files and commits
    commits = [fg.insert({"id": [i], "ts": [day(0)], "x": [1.0]}) for i in range(20)]
    stamps = [c.timestamp for c in commits]
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    # a checkpoint was written at version 10 and reading through it gives the same rows
    log = os.path.join(fg.location, "_delta_log")
    assert os.path.exists(os.path.join(log, f"{10:020d}.checkpoint.parquet"))
    fresh = lakecore.open(os.path.dirname(os.path.dirname(os.path.dirname(fg.location))))
    assert fresh.feature_group("tx").read().num_rows == 20
    assert fresh.feature_group("tx").read(as_of=12).num_rows == 13
    assert fresh.feature_group("tx").hash == commits[-1].hash
    time.sleep(0)


def test_bad_deletes_change_nothing(lake, fg):
    fg.insert({"id": [1, 2], "ts": [day(0), day(0)], "x": [1.0, 2.0]})
    before = lake_digest(lake.path)
    for keys, error, word in [
        ({"nope": [1]}, SchemaError, "'id'"),
        ({"id": ["1"]}, SchemaError, "'id'"),
        ({"id": [None]}, ValidationError, "'id'"),
        ("id=1", SchemaError, "keys"),
    ]:
        with pytest.raises(error) as info:
            fg.delete(keys)
        assert word in str(info.value)
    assert lake_digest(lake.path) == before
    # extra columns in the keys are ignored
    assert fg.delete({"id": [1], "other": ["x"]}).rows_removed == 1


def test_failed_write_leaves_no_files(lake, fg, monkeypatch):
    fg.insert({"id": [1], "ts": [day(0)], "x": [1.0]})
    before = lake_digest(lake.path)
    from lakecore.offline import delta_log

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(delta_log.DeltaLog, "try_commit", refuse)
    with pytest.raises(OSError):
        fg.insert({"id": [1, 2], "ts": [day(0), day(1)], "x": [5.0, 6.0]})
    assert lake_digest(lake.path) == before


def test_empty_inserts_and_deletes_of_absent_keys_make_no_commit(lake, fg):
    fg.insert({"id": [1, 2], "ts": pa.array([day(1), day(1)], TS), "v": [1.0, 2.0]})
    before = lake_digest(lake.path)
    assert fg.insert(pa.table({"id": pa.array([], pa.int64()), "ts": pa.array([], TS),
                               "v": pa.array([], pa.float64())})) is None
    assert fg.insert({"id": [], "ts": pa.array([], TS), "v": []}) is None
    assert fg.delete({"id": [7, 8]}) is None
    assert fg.delete({"id": pa.array([], pa.int64())}) is None
    assert lake_digest(lake.path) == before and len(fg.history()) == 1
    with pytest.raises(SchemaError, match="extra"):        # still checked like any insert
        fg.insert({"id": [], "ts": pa.array([], TS), "v": [], "extra": []})
    online = lake.create_feature_group("online", primary_key="id", online=True)
    online.insert({"id": [1], "v": [1.0]})
    assert online.delete({"id": [5]}) is None and len(online.history()) == 1
    assert online.delete({"id": [1, 5]}).rows_removed == 1
    assert online.online_read({"id": [1]}).column("v").to_pylist() == [None]
