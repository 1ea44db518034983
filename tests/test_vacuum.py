"""lake.vacuum(): files only old commits need are deleted, files datasets need are kept,
leftovers of crashed writers go after a grace period, reads of vacuumed commits say so,
verify() stays clean, and a reader in another process keeps its snapshot."""

import datetime as dt
import os
import subprocess
import sys
import textwrap
import time

import deltalake
import pyarrow as pa
import pytest

import lakecore
from lakecore.cli import main as cli

TS = pa.timestamp("us", "UTC")
DAY = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def no_automatic_compaction(monkeypatch):
    """The cases count files and name commits."""
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")


def data_files(fg) -> set[str]:
    """The data files on disk (the empty ones made ahead for writes to come aside)."""
    return {n for n in os.listdir(fg.location) if n.endswith(".parquet")
            and os.path.getsize(os.path.join(fg.location, n))}


def upserts(fg, rounds: int, start: int = 0) -> None:
    """Each round adds a new id and rewrites the file holding id 1 (one file removed per
    round): commit ``v`` holds ``v + 2`` rows."""
    for r in range(start, start + rounds):
        fg.insert({"id": [1, 100 + r], "at": pa.array([DAY, DAY], TS), "v": [float(r), 1.0]})


def test_vacuum_deletes_what_only_old_commits_need(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        upserts(fg, 6)
        latest = fg.read()
        old = fg.read(as_of=2)
        before = data_files(fg)
        result = lake.vacuum(retain=dt.timedelta(0))
        assert result.horizons == {"fg:g@1": 5} and result.files_deleted == 5
        assert len(before) - len(data_files(fg)) == 5
        assert result.bytes_freed > 0
        assert fg.read().sort_by("id").equals(latest.sort_by("id"))
        assert fg.read(as_of=5).sort_by("id").equals(latest.sort_by("id"))
        with pytest.raises(lakecore.NotFoundError, match="commit 2 was vacuumed"):
            fg.read(as_of=2)
        assert old.num_rows == 4
        assert fg.online_read({"id": [1]}).column("v").to_pylist() == [5.0]
        event = lake.audit_log()[-1]
        assert (event.op, event.target, event.horizon) == ("vacuum", "fg:g@1", 5)
        report = lake.verify()
        assert report.ok, report.problems
        theirs = deltalake.DeltaTable(fg.location).to_pyarrow_table()
        assert theirs.num_rows == latest.num_rows
        assert lake.vacuum(retain=dt.timedelta(0)).files_deleted == 0   # nothing left to do
        assert lake.audit_log()[-1] == event                            # and nothing recorded
    with lakecore.open(tmp_path / "lake", readonly=True) as lake:
        assert lake.verify().ok
        with pytest.raises(lakecore.ReadOnlyError):
            lake.vacuum()


def test_retain_keeps_commits_replaced_within_it(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        upserts(fg, 3)                              # commits 0-2, then a pause
        time.sleep(1.5)
        upserts(fg, 3, start=3)                     # commits 3-5
        assert lake.vacuum().files_deleted == 0     # 7 days: everything is recent
        result = lake.vacuum(retain=dt.timedelta(seconds=1))
        assert result.horizons == {"fg:g@1": 2} and result.files_deleted == 2
        for version in range(2, 6):
            assert fg.read(as_of=version).num_rows == version + 2
        with pytest.raises(lakecore.NotFoundError, match="vacuumed"):
            fg.read(as_of=1)
        assert lake.verify().ok, lake.verify().problems
        with pytest.raises(lakecore.ValidationError, match="retain"):
            lake.vacuum(retain=dt.timedelta(days=-1))
        with pytest.raises(lakecore.ValidationError, match="retain"):
            lake.vacuum(retain=7)


def test_vacuum_keeps_what_training_datasets_recreate_from(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        upserts(fg, 2)
        view = lake.create_feature_view("view", query=fg.select_all())
        td = view.create_training_data(spine={"id": [1, 100], "at": pa.array([DAY] * 2, TS)})
        upserts(fg, 4)
        lake.vacuum(retain=dt.timedelta(0))
        assert td.recreate().hash == td.hash
        assert fg.read(as_of=1).num_rows == 3       # the dataset's commit is whole
        with pytest.raises(lakecore.NotFoundError):
            fg.read(as_of=3)
        assert lake.verify().ok, lake.verify().problems


def test_leftovers_of_crashed_writers_go_after_the_grace_period(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        log = os.path.join(fg.location, "_delta_log")
        old = time.time() - 2 * 3600
        reports = os.path.join(fg.location, "_validation")
        os.makedirs(reports)
        planted = {os.path.join(fg.location, "part-00009-crashed-c000.zstd.parquet"): old,
                   os.path.join(log, ".00000000000000000009.abc.tmp"): old,
                   # a report staged by a forget killed before it was recorded
                   os.path.join(reports, ".00000000000000000000.json.ab.forget.tmp"): old,
                   os.path.join(fg.location, "part-00010-recent-c000.zstd.parquet"): None}
        for path, mtime in planted.items():
            with open(path, "wb") as f:
                f.write(b"leftover")
            if mtime is not None:
                os.utime(path, (mtime, mtime))
        assert lake.verify().ok                     # leftovers are not problems
        assert lake.vacuum(retain=dt.timedelta(0)).files_deleted == 3
        assert [os.path.exists(p) for p in planted] == [False, False, False, True]
        assert fg.read().num_rows == 1 and lake.verify().ok


def age(path, hours: float = 2) -> None:
    """Make ``path`` and everything in it ``hours`` old."""
    old = time.time() - hours * 3600
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (old, old))
    os.utime(path, (old, old))


def test_dataset_folders_no_catalog_entry_owns_go_after_the_grace_period(tmp_path):
    import shutil

    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        upserts(fg, 2)
        view = lake.create_feature_view("view", query=fg.select_all())
        td = view.create_training_data(spine={"id": [1, 100], "at": pa.array([DAY] * 2, TS)})
        owned = os.path.join(lake.path, "training_data", "view", "v1", f"td{td.version}")
        crashed = os.path.join(os.path.dirname(owned), "td7")   # a build killed before its
        shutil.copytree(owned, crashed)                         # catalog change
        stray = os.path.join(lake.path, ".catalog.json.0123.tmp")
        staged = os.path.join(owned, ".spine.parquet.ab.forget.tmp")    # a killed forget's
        for path in (stray, staged):
            with open(path, "wb") as f:
                f.write(b"{}")
        assert lake.verify().ok
        lake.vacuum(retain=dt.timedelta(0))
        assert os.path.isdir(crashed) and os.path.exists(stray)     # too recent
        assert os.path.exists(staged)
        age(owned), age(crashed), age(stray)
        result = lake.vacuum(retain=dt.timedelta(0))
        assert not os.path.exists(crashed) and not os.path.exists(stray)
        assert not os.path.exists(staged)
        assert result.files_deleted >= 2 and os.path.isdir(owned)
        assert td.recreate().hash == td.hash
        assert lake.verify().ok, lake.verify().problems


KILLED_VACUUM = textwrap.dedent("""
    import datetime as dt, sys, lakecore
    with lakecore.open(sys.argv[1]) as lake:
        print("open", flush=True)
        lake.vacuum(retain=dt.timedelta(0))
""")


def test_a_vacuum_killed_at_any_point_leaves_a_lake_that_verifies_and_vacuums_again(tmp_path):
    import random
    import signal

    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        upserts(fg, 40)
        view = lake.create_feature_view("view", query=fg.select_all())
        td = view.create_training_data(spine={"id": [1, 100], "at": pa.array([DAY] * 2, TS)})
        upserts(fg, 40, start=40)
        at = td._spec.sources[0].commit                 # the commit the dataset was made from
        expected, pinned, td_hash = fg.read().sort_by("id"), fg.read(as_of=at), td.hash
    rng = random.Random(3)
    for round_ in range(6):
        with lakecore.open(path) as lake:           # more files for this vacuum to delete
            upserts(lake.feature_group("g"), 20, start=80 + 20 * round_)
            expected = lake.feature_group("g").read().sort_by("id")
        child = subprocess.Popen([sys.executable, "-c", KILLED_VACUUM, path],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "open"
        time.sleep(rng.uniform(0, 0.03))       # before, during or after the deletions
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        with lakecore.open(path) as lake:
            assert lake.verify().ok, lake.verify().problems
            fg = lake.feature_group("g")
            assert fg.read().sort_by("id").equals(expected)
            assert fg.read(as_of=at).sort_by("id").equals(pinned.sort_by("id"))
    with lakecore.open(path) as lake:
        lake.vacuum(retain=dt.timedelta(0))
        assert lake.verify().ok, lake.verify().problems
        assert lake.feature_view("view").training_data(td.version).recreate().hash == td_hash
        assert len(data_files(lake.feature_group("g"))) == len(
            deltalake.DeltaTable(lake.feature_group("g").location).file_uris()) + len(
            lake.feature_group("g")._table.snapshot(at).files)


def test_cli_vacuum(tmp_path, capsys):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        upserts(lake.create_feature_group("g", primary_key="id", event_time="at"), 3)
    assert cli(["vacuum", path, "--retain", "0"]) == 0
    out = capsys.readouterr().out
    assert "fg:g@1: commits 2 and later kept whole" in out and "2 file(s) deleted" in out
    assert cli(["vacuum", path, "--retain", "7 days"]) == 2
    assert "--retain" in capsys.readouterr().err


READER = textwrap.dedent("""
    import sys, lakecore
    with lakecore.open(sys.argv[1], readonly=True) as lake:
        fg = lake.feature_group("g")
        first = fg.read(as_of=2).sort_by("id")
        print("read", flush=True)
        sys.stdin.readline()                    # the writer compacts and vacuums meanwhile
        again = fg.read(as_of=2).sort_by("id")
        print("same" if again.equals(first) else "changed", first.num_rows, flush=True)
""")


def test_a_reader_holding_a_snapshot_is_unaffected_by_compaction_and_vacuum(tmp_path):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        upserts(fg, 4)
        reader = subprocess.Popen([sys.executable, "-c", READER, path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert reader.stdout.readline().strip() == "read"
        fg.compact()
        assert lake.vacuum(retain=dt.timedelta(hours=1)).files_deleted == 0
        out, _ = reader.communicate("go\n", timeout=60)
        assert out.split() == ["same", "4"]
        assert lake.verify().ok
