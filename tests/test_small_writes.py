"""The cheap path for small commits: data files written into empty files made ahead of time
(never through anything planted at their names), compactions that leave the online store
alone, and data files read without following links."""

import os
import subprocess
import sys
import textwrap

import pyarrow as pa
import pytest

import lakecore
from lakecore.errors import IntegrityError
from lakecore.offline import ready_files

TS = pa.timestamp("us", "UTC")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row(i: int) -> dict:
    return {"id": [i % 5], "at": pa.array([1_000_000 * (i + 1)], TS), "v": [float(i)]}


def empty_files(folder: str) -> set[str]:
    return {n for n in os.listdir(folder) if n.endswith(".parquet")
            and os.path.getsize(os.path.join(folder, n)) == 0}


def folder_fsyncs(monkeypatch, folder: str) -> list[int]:
    """Count fsyncs of ``folder`` (a folder's fsync makes the names in it durable)."""
    calls: list[int] = []
    real = os.fsync
    target = os.stat(folder).st_ino

    def counting(fd):
        if os.fstat(fd).st_ino == target:
            calls.append(fd)
        return real(fd)
    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_small_inserts_skip_the_folder_fsync_and_keep_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        fg.insert(row(0))                           # makes the first batch of ready files
        calls = folder_fsyncs(monkeypatch, fg.location)
        for i in range(1, ready_files.BATCH):
            fg.insert(row(i))
        assert calls == []                          # every one went into a ready file
        fg.insert(row(ready_files.BATCH))           # the next batch: one folder fsync
        assert len(calls) == 1
        assert fg.read().num_rows == ready_files.BATCH + 1
        assert lake.verify().ok
        location = fg.location
    assert empty_files(location) == set()           # close removes the unused ones


def test_the_unused_ready_files_go_when_the_process_exits_without_close(tmp_path):
    child = textwrap.dedent("""
        import sys, pyarrow as pa, lakecore
        lake = lakecore.open(sys.argv[1])
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        print(fg.location)
    """)
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path / "lake")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    location = out.stdout.strip()
    assert empty_files(location) == set()
    assert len([n for n in os.listdir(location) if n.endswith(".parquet")]) == 1


@pytest.mark.parametrize("plant", ["link", "hard link", "bytes"])
def test_anything_planted_at_a_ready_name_is_skipped_not_written_through(tmp_path, plant):
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"")
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        fg.insert(row(0))
        ready = empty_files(fg.location)
        assert len(ready) == ready_files.BATCH - 1
        for name in ready:                          # every ready name is planted
            path = os.path.join(fg.location, name)
            os.unlink(path)
            if plant == "link":
                os.symlink(outside, path)
            elif plant == "hard link":
                os.link(outside, path)              # an empty file with another name outside
            else:
                with open(path, "wb") as f:
                    f.write(b"not empty")
        fg.insert(row(1))
        assert outside.read_bytes() == b""          # nothing written through the links
        for name in ready:
            path = os.path.join(fg.location, name)
            assert os.path.islink(path) if plant == "link" else os.path.getsize(path) in (0, 9)
            assert os.path.exists(path)             # left where it was found
            assert name not in fg._table.snapshot().files
        assert fg.read().num_rows == 2
        assert lake.verify().ok, lake.verify().problems


def test_a_failed_change_puts_the_ready_files_back_as_they_were(tmp_path, monkeypatch):
    from lakecore.offline import delta_log
    from tests.lake_state import lake_digest

    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        fg.insert(row(0))
        for i in range(1, 40):   # an empty pool, a pool in use: each failure leaves all as it was
            before = lake_digest(lake.path)
            with monkeypatch.context() as patch:
                patch.setattr(delta_log.DeltaLog, "try_commit",
                              lambda *a, **k: (_ for _ in ()).throw(OSError(28, "disk full")))
                with pytest.raises(lakecore.LakeError):
                    fg.insert(row(i))
            assert lake_digest(lake.path) == before
            fg.insert(row(i))
        assert fg.read().num_rows == 40
        assert lake.verify().ok


def test_compactions_leave_the_online_store_alone(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        store = lake._ctx.online_store
        for i in range(4):                          # the fourth one-row file: a merge
            fg.insert(row(i))
        operations = [c.operation for c in fg.history()]
        assert operations == ["insert"] * 4 + ["compact"]
        assert store.watermark("g", 1) == 3         # the last commit that changed rows
        assert lake.verify().ok, lake.verify().problems
        fg.insert(row(4))                           # applied on top, no catch-up needed
        assert store.watermark("g", 1) == 5
        got = fg.online_read({"id": [0, 4]}).column("v").to_pylist()
        assert got == [0.0, 4.0]
    with lakecore.open(tmp_path / "lake") as lake:   # reopened: nothing to roll forward
        assert lake._ctx.online_store.watermark("g", 1) == 5
        assert lake.verify().ok


def test_an_online_store_behind_an_insert_and_a_compaction_catches_up(tmp_path, monkeypatch):
    from lakecore.online import store as online_store

    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at", online=True)
        for i in range(3):
            fg.insert(row(i))
        # a writer killed after its commit, before the online write (and the merge after it)
        monkeypatch.setattr(online_store.OnlineStore, "apply", lambda *a, **k: None)
        fg.insert(row(3))
        monkeypatch.undo()
        assert [c.operation for c in fg.history()][-2:] == ["insert", "compact"]
        assert lake._ctx.online_store.watermark("g", 1) == 2
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        assert lake._ctx.online_store.watermark("g", 1) == 3
        assert fg.online_read({"id": [3]}).column("v").to_pylist() == [3.0]
        assert lake.verify().ok, lake.verify().problems


def test_a_data_file_replaced_by_a_link_is_never_read(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="at")
        fg.insert(row(0))
        name = next(iter(fg._table.snapshot().files))
        path = os.path.join(fg.location, name)
        copy = tmp_path / "copy.parquet"
        os.rename(path, copy)
        os.symlink(copy, path)                      # the same bytes, through a link
        with pytest.raises(IntegrityError, match="link"):
            fg.read()
        assert any("link" in p for p in lake.verify().problems)


def test_a_killed_writers_ready_files_are_ignored_by_verify_and_vacuumed_later(tmp_path):
    child = textwrap.dedent("""
        import os, sys, lakecore
        lake = lakecore.open(sys.argv[1])
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1], "v": [1.0]})
        print(fg.location, flush=True)
        os._exit(0)                                 # no close, no exit handlers: a kill
    """)
    out = subprocess.run([sys.executable, "-c", child, str(tmp_path / "lake")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    location = out.stdout.strip()
    left = empty_files(location)
    assert len(left) == ready_files.BATCH - 1
    with lakecore.open(tmp_path / "lake") as lake:
        assert lake.verify().ok
        lake.vacuum()                               # too recent: a writer may be at work
        assert empty_files(location) == left
        old = os.stat(location).st_mtime - 2 * 3600
        for name in left:
            os.utime(os.path.join(location, name), (old, old))
        lake.vacuum()
        assert empty_files(location) == set()
        assert lake.feature_group("g").read().num_rows == 1
        assert lake.verify().ok
