"""verify(fast=True) after a clean verify checks what changed since (the commits made after
the commit it reached, the live files, the chain), so its cost follows the data and the new
commits, not the history; a full verify still replays everything."""

import json
import os

import pytest

import lakecore
from lakecore.offline.delta_log import DeltaLog


@pytest.fixture
def lake(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(30):
            fg.insert({"id": [i], "v": [float(i)]})
        yield lake


def commits_read(monkeypatch, call) -> list[int]:
    read = []
    original = DeltaLog.load_commit

    def counting(self, version):
        read.append(version)
        return original(self, version)
    monkeypatch.setattr(DeltaLog, "load_commit", counting)
    call()
    monkeypatch.undo()
    return read


def test_fast_verify_replays_only_the_commits_made_since_the_last_clean_one(lake, monkeypatch):
    fg = lake.feature_group("g")
    assert lake.verify().ok                             # reaches commit 29
    fg.insert({"id": [100], "v": [1.0]})
    read = commits_read(monkeypatch, lambda: lake.verify(fast=True))
    assert 30 in read and not any(v < 20 for v in read), read
    full = commits_read(monkeypatch, lambda: lake.verify())
    assert set(range(31)) <= set(full)


def test_fast_verify_still_catches_changes_made_since(lake):
    fg = lake.feature_group("g")
    assert lake.verify().ok
    fg.insert({"id": [100], "v": [1.0]})
    log = os.path.join(fg.location, "_delta_log", f"{30:020d}.json")
    with open(log) as f:
        text = f.read()
    with open(log, "w") as f:                           # the new commit, edited
        f.write(text.replace('"rows_added":1', '"rows_added":2'))
    problems = lake.verify(fast=True).problems
    assert any("#30: the commit file has sha256" in p for p in problems), problems


def test_fast_verify_rehashes_live_files_that_changed(lake):
    fg = lake.feature_group("g")
    assert lake.verify().ok
    live = sorted(fg._table.snapshot().files)[0]
    with open(os.path.join(fg.location, live), "ab") as f:
        f.write(b"x")                                   # new size and mtime
    assert any(live in p for p in lake.verify(fast=True).problems)


def test_an_old_commit_edited_needs_the_full_verify(lake):
    """What fast trusts, documented: commits before the one a clean verify reached."""
    fg = lake.feature_group("g")
    assert lake.verify().ok
    log = os.path.join(fg.location, "_delta_log", f"{3:020d}.json")
    with open(log, "a") as f:
        f.write(json.dumps({"commitInfo": {"note": "edited"}}) + "\n")
    assert lake.verify(fast=True).ok
    assert any("#3: the commit file has sha256" in p for p in lake.verify().problems)


def test_a_cache_planted_as_a_link_is_not_followed(lake, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"files": {}, "tables": {"fg:g@1": [29, "sha256:forged"]}}))
    cache = os.path.join(lake.path, ".verify-cache.json")
    if os.path.lexists(cache):
        os.unlink(cache)
    os.symlink(outside, cache)
    with lakecore.open(lake.path, readonly=True) as reader:
        assert reader.verify(fast=True).ok              # read nothing through the link
    assert outside.read_text().startswith('{"files": {}')


def audit_lines_decoded(monkeypatch, call) -> int:
    """How many audit lines ``call`` checks the chain of."""
    from lakecore.governance.audit import AuditLog

    counted = []
    original = AuditLog.check_chain

    def counting(self, lines=None, prev=None, first=1):
        counted.append(len(self.raw_lines()) if lines is None else len(lines))
        return original(self, lines, prev, first)
    monkeypatch.setattr(AuditLog, "check_chain", counting)
    call()
    monkeypatch.undo()
    return sum(counted)


def test_fast_verify_checks_the_chain_of_the_new_events_only(lake, monkeypatch):
    fg = lake.feature_group("g")
    assert lake.verify().ok
    fg.insert({"id": [100], "v": [1.0]})
    assert audit_lines_decoded(monkeypatch, lambda: lake.verify(fast=True)) == 1
    assert audit_lines_decoded(monkeypatch, lambda: lake.verify()) > 30


def test_fast_verify_catches_a_new_event_edited_and_a_log_rewritten(lake):
    path = os.path.join(lake.path, "audit.log")
    fg = lake.feature_group("g")
    assert lake.verify().ok
    fg.insert({"id": [100], "v": [1.0]})
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    edited = lines[:-2] + [lines[-2].replace(b'"op":"insert"', b'"op":"inserted"'), b""]
    with open(path, "wb") as f:
        f.write(b"\n".join(edited))
    assert any("hash does not match" in p for p in lake.verify(fast=True).problems)
    with open(path, "wb") as f:                         # restored
        f.write(b"\n".join(lines))
    assert lake.verify().ok
    # an early event dropped: the line the last verify ended with moves, the whole chain is
    # checked again
    with open(path, "wb") as f:
        f.write(b"\n".join(lines[:3] + lines[4:]))
    problems = lake.verify(fast=True).problems
    assert any("missing or out of order" in p for p in problems), problems
