"""Automatic compaction: small files are merged by size tier in the same call that made them,
every version stays readable with the same rows (in lakecore and in deltalake), the online
store and verify() are unaffected, and the knob turns it off."""

import json
import os
import warnings

import deltalake
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lakecore
from lakecore.offline import compaction
from lakecore.offline.compaction import files_to_merge, tier

TS = pa.timestamp("us", "UTC")


def canonical(table: pa.Table) -> list:
    return sorted(table.select(sorted(table.column_names)).to_pylist(),
                  key=lambda r: json.dumps(r, sort_keys=True, default=str))


def live_files(fg) -> int:
    return len(deltalake.DeltaTable(fg.location).file_uris())


def test_one_row_inserts_keep_few_files_and_every_version(tmp_path):
    rng = np.random.default_rng(7)
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="t", online=True)
        model: dict[tuple, float] = {}
        expected = {}                       # version -> rows, after every commit
        most = 0
        for step in range(200):
            op = rng.random()
            if op < 0.75 or not model:      # insert or upsert a row
                key = (int(rng.integers(0, 80)), int(rng.integers(0, 3)))
                value = float(rng.normal())
                fg.insert({"id": [key[0]], "t": pa.array([key[1]], TS), "v": [value]})
                model[key] = value
            else:                           # delete every row of an id
                gone = int(rng.choice(sorted({k[0] for k in model})))
                fg.delete({"id": [gone]})
                model = {k: v for k, v in model.items() if k[0] != gone}
            history = fg.history()
            rows = sorted((k[0], k[1], v) for k, v in model.items())
            for commit in history:
                expected.setdefault(commit.version, rows)
            most = max(most, live_files(fg))
        assert most <= 4 * (tier(len(model)) + 2)
        operations = [c.operation for c in fg.history()]
        assert operations.count("compact") > 15
        for version, rows in expected.items():
            stored = fg.read(as_of=version)
            got = sorted(zip(stored.column("id").to_pylist(),
                             [t.timestamp() * 1e6 // 1 for t in stored.column("t").to_pylist()],
                             stored.column("v").to_pylist()))
            assert [(i, int(t), v) for i, t, v in got] == rows, version
            if version % 5 == 0 or version == max(expected):
                theirs = deltalake.DeltaTable(fg.location, version=version).to_pyarrow_table()
                assert canonical(theirs) == canonical(stored.cast(theirs.schema)), version
        ids = sorted({k[0] for k in model})
        online = fg.online_read({"id": ids}).column("v").to_pylist()
        latest = {}
        for (i, t), v in sorted(model.items()):
            latest[i] = v                   # the greatest event time wins
        assert online == [latest[i] for i in ids]
        report = lake.verify()
        assert report.ok, report.problems
        assert sum(e.op == "compact" for e in lake.audit_log()) == operations.count("compact")


def test_the_knob_turns_it_off_and_checks_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        for i in range(12):
            fg.insert({"id": [i], "v": [1.0]})
        assert live_files(fg) == 12 and len(fg.history()) == 12
        monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "8")
        fg.insert({"id": [12], "v": [1.0]})
        assert live_files(fg) == 1 and fg.history()[-1].operation == "compact"
        monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "1")
        with pytest.raises(lakecore.ValidationError, match="LAKECORE_COMPACT_FAN_IN"):
            fg.insert({"id": [13], "v": [1.0]})
        assert fg.read().num_rows == 13     # refused before anything was written


def test_a_failed_compaction_leaves_the_insert_committed(tmp_path, monkeypatch):
    from lakecore.offline.table import OfflineTable

    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(3):
            fg.insert({"id": [i], "v": [1.0]})

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(OfflineTable, "plan_compact", full)
        with pytest.warns(UserWarning, match="automatic compaction"):
            commit = fg.insert({"id": [3], "v": [1.0]})
        assert commit.operation == "insert" and fg.read().num_rows == 4
        assert fg.online_read({"id": [3]}).column("v").to_pylist() == [1.0]
        monkeypatch.undo()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fg.insert({"id": [4], "v": [1.0]})  # the next change compacts
        assert fg.history()[-1].operation == "compact"
        assert lake.verify().ok, lake.verify().problems


def _add(rows):
    return {"path": f"f{rows}", "size": 1, "stats": json.dumps({"numRecords": rows})}


@given(st.lists(st.integers(1, 2_000_000), max_size=60), st.integers(2, 8))
def test_files_to_merge_takes_the_lowest_full_tier(sizes, fan_in):
    os.environ["LAKECORE_COMPACT_FAN_IN"] = str(fan_in)
    try:
        adds = [_add(r) for r in sizes]
        chosen = files_to_merge(adds)
    finally:
        del os.environ["LAKECORE_COMPACT_FAN_IN"]
    # the reference: group by floor(log4(rows)) below the big-file size
    tiers: dict[int, list] = {}
    for a, rows in zip(adds, sizes):
        if rows < compaction.BIG_FILE_ROWS:
            level = 0
            while 4 ** (level + 1) <= rows:
                level += 1
            tiers.setdefault(level, []).append(a)
    full = [level for level in sorted(tiers) if len(tiers[level]) >= fan_in]
    assert chosen == (tiers[full[0]][: 4 * fan_in] if full else [])


def test_a_writable_open_makes_a_merge_that_is_due(tmp_path, monkeypatch):
    path = tmp_path / "lake"
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")      # a writer that did not merge
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(6):
            fg.insert({"id": [i], "v": [float(i)]})
    monkeypatch.delenv("LAKECORE_COMPACT_FAN_IN")
    with lakecore.open(path, readonly=True) as lake:        # a reader changes nothing
        assert len(lake.feature_group("g").history()) == 6
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        assert [c.operation for c in fg.history()][-1] == "compact"
        assert live_files(fg) == 1 and fg.read().num_rows == 6
        assert fg.online_read({"id": [5]}).column("v").to_pylist() == [5.0]
        assert lake.verify().ok, lake.verify().problems
