"""The audit index: opening a lake reads the events after the last index, not the whole log;
whatever the index cannot answer is read from the whole log; an index that is not the one
recorded is never used, and verify() reports it."""

import json
import os

import pyarrow as pa
import pytest

import lakecore
from lakecore.errors import IntegrityError
from lakecore.governance import audit as audit_module
from lakecore.governance.audit import INDEX_FILE, AuditLog

TS = pa.timestamp("us", "UTC")
EVERY = 40


@pytest.fixture
def lake_path(tmp_path, monkeypatch):
    """A lake of 3 groups and about 150 events, indexed every ``EVERY`` events."""
    monkeypatch.setattr(audit_module, "INDEX_EVERY", EVERY)
    monkeypatch.setattr(audit_module, "INDEX_WINDOW", 8)
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        groups = [lake.create_feature_group(f"g{n}", primary_key="id", event_time="at",
                                            online=True) for n in range(3)]
        for i in range(45):
            groups[i % 3].insert({"id": [i % 4], "at": pa.array([1_000_000 * (i + 1)], TS),
                                  "v": [float(i)]})
    return path


def decoded_on_open(path: str, monkeypatch) -> tuple[int, lakecore.Lake]:
    """How many events a read-only open and a read of every group's latest version decode."""
    added = []
    real = AuditLog._add
    monkeypatch.setattr(AuditLog, "_add", lambda self, e: added.append(e) or real(self, e))
    lake = lakecore.open(path, readonly=True)
    for name in ("g0", "g1", "g2"):
        lake.feature_group(name).read()
    return len(added), lake


def test_an_open_reads_only_the_events_after_the_index(lake_path, monkeypatch):
    events = lakecore.open(lake_path, readonly=True).audit_log()
    indexes = [e for e in events if e.op == audit_module.INDEX_OP]
    assert len(indexes) == len(events) // EVERY
    decoded, lake = decoded_on_open(lake_path, monkeypatch)
    assert decoded < EVERY + 2                      # the tail, not the ~150 events
    with lake:
        assert lake.verify().ok, lake.verify().problems
        assert len(lake.audit_log()) == len(events)     # every event, read whole when asked


def test_older_commits_are_still_checked_against_their_events(lake_path, monkeypatch):
    with lakecore.open(lake_path, readonly=True) as lake:
        fg = lake.feature_group("g0")
        assert fg.read(as_of=0).num_rows == 1       # commit 0's event is not in the index
        assert [c.version for c in fg.history()][:2] == [0, 1]
    # a commit of the past rewritten by hand: found on reading it, though the index skips it
    log = os.path.join(lake_path, "feature_groups", "g0", "v1", "_delta_log", f"{1:020d}.json")
    with open(log) as f:
        text = f.read()
    with open(log, "w") as f:
        f.write(text.replace('"rows_added":1', '"rows_added":2'))
    with lakecore.open(lake_path, readonly=True) as lake:
        with pytest.raises(IntegrityError):
            lake.feature_group("g0").read(as_of=1)


@pytest.mark.parametrize("damage", ["edited", "link", "forged"])
def test_an_index_that_is_not_the_recorded_one_is_not_used(lake_path, monkeypatch, tmp_path,
                                                          damage):
    total = len(lakecore.open(lake_path, readonly=True).audit_log())
    index = os.path.join(lake_path, INDEX_FILE)
    with open(index) as f:
        content = json.load(f)
    if damage == "edited":      # the catalog events dropped: the index would hide a change
        content["catalog"] = []
        with open(index, "w") as f:
            json.dump(content, f)
    elif damage == "link":
        outside = tmp_path / "index.json"
        os.rename(index, outside)
        os.symlink(outside, index)
    else:                       # a commit forged by hand, with an index that "records" it
        fg_log = os.path.join(lake_path, "feature_groups", "g0", "v1", "_delta_log")
        last = max(int(n[:20]) for n in os.listdir(fg_log) if n.endswith(".json"))
        with open(os.path.join(fg_log, f"{last:020d}.json")) as f:
            forged = f.read()
        with open(os.path.join(fg_log, f"{last + 1:020d}.json"), "w") as f:
            f.write(forged)
        fake = dict(content["live"][-1], target=f"fg:g0@1#{last + 1}")
        content["live"].append(fake)
        with open(index, "w") as f:
            json.dump(content, f)
    decoded, lake = decoded_on_open(lake_path, monkeypatch) if damage != "forged" else (
        None, lakecore.open(lake_path, readonly=True))
    with lake:
        if decoded is not None:
            assert decoded >= total > EVERY         # the whole log was read instead
        else:
            with pytest.raises(IntegrityError):
                lake.feature_group("g0").read()     # the forged commit stays refused
        problems = lake.verify().problems
        assert any(INDEX_FILE in p or "audit.index" in p or "commit" in p
                   for p in problems), problems


def test_a_writer_killed_while_indexing_leaves_a_lake_that_opens_whole(lake_path,
                                                                        monkeypatch):
    monkeypatch.setattr(audit_module, "INDEX_EVERY", EVERY)
    with open(os.path.join(lake_path, INDEX_FILE), "rb") as f:
        before = f.read()

    def killed(*args, **kwargs):
        raise OSError(5, "killed before the index was recorded")
    with lakecore.open(lake_path) as lake:
        fg = lake.feature_group("g1")
        monkeypatch.setattr(AuditLog, "append", killed)
        log = lake.audit
        with pytest.raises(OSError):
            log.write_index()
        monkeypatch.undo()
    with open(os.path.join(lake_path, INDEX_FILE), "rb") as f:
        assert f.read() == before                   # the recorded index is still in place
    assert not [n for n in os.listdir(lake_path) if n.endswith(".tmp")]
    with lakecore.open(lake_path) as lake:
        fg = lake.feature_group("g1")
        fg.insert({"id": [9], "at": pa.array([10**9], TS), "v": [9.0]})
        assert lake.verify().ok, lake.verify().problems
