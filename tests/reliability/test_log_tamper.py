"""Delta log files damaged, planted or forged from outside: a commit file that does not parse
is an IntegrityError that blocks only its own table; a damaged checkpoint is never needed to
read; a checkpoint lakecore did not write is never read; verify() reports all of them."""

import os
import shutil
import subprocess
import sys
import warnings

import pytest

import lakecore
from lakecore.offline.delta_log import DeltaLog


def build(path: str) -> str:
    """A lake with 12 commits of one row each (a checkpoint at 10) and a second group; the
    first group's log folder."""
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(12):
            fg.insert({"id": [i], "v": [float(i)]})
        lake.create_feature_group("h", primary_key="id").insert({"id": [1]})
        assert lake.verify().ok
        return os.path.join(fg.location, "_delta_log")


@pytest.fixture(autouse=True)
def one_commit_per_insert(monkeypatch):
    """The cases name commits and checkpoints by version: no automatic compaction."""
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")


def run(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def name(version: int, kind: str = "json") -> str:
    return f"{version:020d}.{'json' if kind == 'json' else 'checkpoint.parquet'}"


def test_a_commit_file_that_does_not_parse_blocks_only_its_table(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    with open(os.path.join(log, name(11)), "ab") as f:
        f.write(b"{not json\n")
    with lakecore.open(path, readonly=True) as lake:
        with pytest.raises(lakecore.IntegrityError, match="does not parse"):
            lake.feature_group("g").read()
        assert any("#11" in p for p in lake.verify().problems)
    with pytest.warns(UserWarning, match="was not brought online"):
        lake = lakecore.open(path)                  # a writable open still works
    with lake:
        assert lake.feature_group("h").read().num_rows == 1
        lake.feature_group("h").insert({"id": [2]})
        with pytest.raises(lakecore.IntegrityError):
            lake.feature_group("g").insert({"id": [99], "v": [1.0]})


def test_a_damaged_checkpoint_is_not_needed_to_read(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    checkpoint = os.path.join(log, name(10, "checkpoint"))
    with open(checkpoint, "r+b") as f:
        f.truncate(os.path.getsize(checkpoint) // 2)
    for readonly in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lake = lakecore.open(path, readonly=readonly)
        with lake:
            fg = lake.feature_group("g")
            assert fg.read().num_rows == 12 and fg.read(as_of=10).num_rows == 11
            assert any("checkpoint 10 has sha256" in p and "is never read" in p
                       for p in lake.verify().problems)


def test_a_planted_checkpoint_is_never_read(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    shutil.copy(os.path.join(log, name(10, "checkpoint")), os.path.join(log, name(5, "checkpoint")))
    with lakecore.open(path, readonly=True) as lake:
        fg = lake.feature_group("g")
        assert [fg.read(as_of=v).num_rows for v in (5, 7, 9)] == [6, 8, 10]
        assert any("checkpoint 5 is not lakecore's" in p for p in lake.verify().problems)


def forge_checkpoint(log: str) -> None:
    """Replace checkpoint 10 by one holding commit 4's files, written the way lakecore writes
    checkpoints."""
    table = DeltaLog(os.path.dirname(log))
    early = table.snapshot(4)
    early.version = 10                          # commit 4's files, where checkpoint 10 goes
    staged, _ = table.stage_checkpoint(early)
    os.replace(staged, os.path.join(log, name(10, "checkpoint")))


def test_a_forged_checkpoint_is_never_read_and_is_reported(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    forge_checkpoint(log)
    with lakecore.open(path, readonly=True) as lake:
        fg = lake.feature_group("g")
        assert fg.read().num_rows == 12 and fg.read(as_of=10).num_rows == 11
        assert fg.online_read({"id": [11]}).column("v").to_pylist() == [11.0]
        problems = lake.verify().problems
    assert any("checkpoint 10 has sha256" in p for p in problems), problems


def test_a_forged_checkpoint_is_not_read_by_a_writer_in_another_process(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    forge_checkpoint(log)
    run(f"""
import lakecore
with lakecore.open({path!r}) as lake:
    fg = lake.feature_group("g")
    fg.insert({{"id": [100], "v": [1.0]}})
    assert fg.read().num_rows == 13, fg.read().num_rows
    assert fg.online_read({{"id": [5]}}).column("v").to_pylist() == [5.0]
""")


@pytest.mark.parametrize("pointer", [b'{"version": 5, "size": 3}', b'{"version": 12}',
                                     b"not json"])
def test_an_edited_last_checkpoint_pointer_is_reported(tmp_path, pointer):
    path = str(tmp_path / "lake")
    log = build(path)
    with open(os.path.join(log, "_last_checkpoint"), "wb") as f:
        f.write(pointer)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.feature_group("g").read().num_rows == 12
        assert any("_last_checkpoint" in p for p in lake.verify().problems)


def test_a_pointer_left_behind_by_a_killed_writer_is_not_a_problem(tmp_path):
    """A writer killed between a checkpoint and its pointer leaves the pointer missing or at
    an earlier checkpoint of lakecore's (found by the 500-kill loop)."""
    path = str(tmp_path / "lake")
    log = build(path)
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        for i in range(12, 21):                 # checkpoint 20
            fg.insert({"id": [i], "v": [float(i)]})
    pointer = os.path.join(log, "_last_checkpoint")
    with open(pointer, "wb") as f:
        f.write(b'{"version": 10, "size": 13}')
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok, lake.verify().problems
    os.unlink(pointer)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.verify().ok, lake.verify().problems


@pytest.mark.parametrize("kind", ["json", "checkpoint"])
def test_a_log_file_replaced_by_a_link_is_never_followed(tmp_path, kind):
    """Even a link to an exact copy: lakecore reads nothing outside the lake."""
    path = str(tmp_path / "lake")
    log = build(path)
    inside = os.path.join(log, name(10, kind))
    outside = str(tmp_path / "copy")
    shutil.copy(inside, outside)
    os.unlink(inside)
    os.symlink(outside, inside)
    with lakecore.open(path, readonly=True) as lake:
        fg = lake.feature_group("g")
        if kind == "json":
            with pytest.raises(lakecore.IntegrityError, match="is a link"):
                fg.read(as_of=10)
            assert any("#10: commit file unreadable" in p for p in lake.verify().problems)
        else:                                   # the commits are replayed instead
            assert fg.read().num_rows == 12 and fg.read(as_of=10).num_rows == 11
            assert any("checkpoint 10 is a link" in p for p in lake.verify().problems)


def test_a_data_file_replaced_by_a_link_is_reported(tmp_path):
    path = str(tmp_path / "lake")
    log = build(path)
    table = os.path.dirname(log)
    data = sorted(n for n in os.listdir(table) if n.endswith(".parquet"))[0]
    outside = str(tmp_path / "copy.parquet")
    shutil.copy(os.path.join(table, data), outside)
    os.unlink(os.path.join(table, data))
    os.symlink(outside, os.path.join(table, data))
    with lakecore.open(path, readonly=True) as lake:
        assert any(data in p and "is a link" in p for p in lake.verify().problems)
