"""Other engines read the lake's tables: deltalake and polars see exactly the rows of
``read(as_of=v)`` at every version, through upserts, deletes, compactions and checkpoints."""

import datetime as dt
import os

import numpy as np
import pyarrow as pa
import pytest

import lakecore

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def canonical(table: pa.Table) -> list[tuple]:
    table = table.select(["id", "ts", "x", "tags"])
    return sorted((r["id"], r["ts"], r["x"], tuple(r["tags"] or ())) for r in table.to_pylist())


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    rng = np.random.default_rng(5)
    lake = lakecore.open(tmp_path_factory.mktemp("interop"))
    fg = lake.create_feature_group("events", primary_key="id", event_time="ts")
    for step in range(24):
        action = step % 6
        if action == 4 and step > 0:
            fg.delete({"id": rng.integers(0, 50, 5).tolist()})
        elif action == 5:
            fg.compact()
        else:
            n = int(rng.integers(1, 40))
            fg.insert({
                "id": rng.integers(0, 50, n),
                "ts": pa.array([T0 + dt.timedelta(hours=int(h)) for h in rng.integers(0, 5, n)],
                               pa.timestamp("us", "UTC")),
                "x": rng.normal(size=n),
                "tags": [["a"] * int(k) for k in rng.integers(0, 3, n)],
            })
    return fg


def test_deltalake_reads_every_version(history):
    assert len(history.history()) == 24  # checkpoints at 10 and 20 are on the way
    for v in range(24):
        theirs = deltalake.DeltaTable(history.location, version=v).to_pyarrow_table()
        assert canonical(theirs) == canonical(history.read(as_of=v)), f"version {v}"


def test_deltalake_sees_lakecore_history_and_schema(history):
    table = deltalake.DeltaTable(history.location)
    assert table.version() == 23
    assert [f.name for f in table.schema().fields] == ["id", "ts", "x", "tags"]
    ops = [h["operation"] for h in reversed(table.history())]
    assert set(ops) == {"WRITE", "DELETE", "OPTIMIZE"}


def test_polars_reads_every_version(history):
    for v in range(0, 24, 3):
        theirs = pl.read_delta(history.location, version=v).to_arrow()
        assert canonical(theirs) == canonical(history.read(as_of=v)), f"version {v}"


def test_deltalake_time_travel_by_timestamp(history):
    commits = history.history()
    table = deltalake.DeltaTable(history.location)
    table.load_as_version(commits[7].timestamp)
    assert table.version() == 7


def test_file_statistics_are_exact(history):
    # deltalake prunes files with add.stats: filtered reads must agree with ours
    table = deltalake.DeltaTable(history.location)
    ours = history.read().filter(pa.compute.field("id") >= 25)
    theirs = table.to_pyarrow_table(filters=[("id", ">=", 25)])
    assert canonical(ours) == canonical(theirs)
    assert len(table.get_add_actions(flatten=True)) >= 1


def test_a_commit_by_another_engine_in_between_is_a_conflict(tmp_path, monkeypatch):
    from lakecore.offline import delta_log
    from tests.lake_state import lake_digest

    lake = lakecore.open(tmp_path / "lake")
    fg = lake.create_feature_group("g", primary_key="id", event_time="ts")
    fg.insert({"id": [1, 2], "ts": pa.array([T0, T0], pa.timestamp("us", "UTC")), "x": [1.0, 2.0]})
    original = delta_log.DeltaLog.try_commit
    foreign = pa.table({"id": pa.array([3], pa.int64()),
                        "ts": pa.array([T0], pa.timestamp("us", "UTC")), "x": [3.0]})

    def another_engine_wins(self, version, actions, timestamp_ms):
        deltalake.write_deltalake(fg.location, foreign, mode="append")
        monkeypatch.setattr(delta_log.DeltaLog, "try_commit", original)
        return original(self, version, actions, timestamp_ms)

    monkeypatch.setattr(delta_log.DeltaLog, "try_commit", another_engine_wins)
    before = lake_digest(lake.path)
    with pytest.raises(lakecore.ConflictError, match="another engine wrote commit 1"):
        fg.insert({"id": [1], "ts": pa.array([T0], pa.timestamp("us", "UTC")), "x": [9.0]})
    # the other engine's commit is never adopted; lakecore's attempt left nothing behind
    assert [e.target for e in lake.audit_log()] == ["fg:g@1", "fg:g@1#0"]
    with pytest.raises(lakecore.IntegrityError, match="no audit event records this commit"):
        fg.read()
    assert any("#1: no audit event records this commit" in p for p in lake.verify().problems)
    # without it, lakecore goes on from its own last commit
    os.unlink(os.path.join(fg.location, "_delta_log", f"{1:020d}.json"))
    assert sorted(fg.read().column("id").to_pylist()) == [1, 2]
    assert fg.insert({"id": [1], "ts": pa.array([T0], pa.timestamp("us", "UTC")),
                      "x": [9.0]}).rows_removed == 1
    assert lake_digest(lake.path) != before
    assert [c.operation for c in fg.history()] == ["insert", "insert"]
    assert lake.verify().ok, lake.verify().problems
