"""Commits, catalogs and audit logs changed from outside lakecore. Every commit and every
catalog must be the one an audit event recorded: a commit appended or edited by hand (or by
another engine) is never read, adopted into the audit log or brought online; a catalog edited
by hand is reported and a writable open refuses it; an audit log that lost its tail or
vanished is reported without an anchor. A writer killed between an event and its change
leaves nothing to report, and the next writable open records the abort."""

import json
import os
import subprocess
import sys
import textwrap

import deltalake
import pyarrow as pa
import pytest

import lakecore
from tests.lake_state import lake_digest


def build(path: str, tmp_path) -> None:
    """An online group with 3 commits and a second group, a view with transforms and a
    training dataset, and a model with an alias moved once."""
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        for i in range(3):
            fg.insert({"id": [i], "v": [float(i)]})
        lake.create_feature_group("h", primary_key="id").insert({"id": [1]})
        view = lake.create_feature_view("view", query=fg.select_all(),
                                        transforms={"v": "standard_scaler"})
        view.create_training_data()
        artifact = tmp_path / "model.bin"
        artifact.write_bytes(b"weights")
        lake.models.register("m", artifact)
        lake.models.register("m", artifact)
        lake.models.set_alias("m", "production", 1)
        lake.models.set_alias("m", "production", 2)
        assert lake.verify().ok


def run(code: str, *args: str, returncode: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == returncode, done.stderr
    return done


def refused_writable_open(path: str) -> str:
    """The IntegrityError a writable open in another process gives; the lake's files are
    unchanged by it."""
    before = lake_digest(path)
    done = run("""
        import sys, lakecore
        try:
            lakecore.open(sys.argv[1])
        except lakecore.IntegrityError as exc:
            print(exc)
    """, path)
    assert lake_digest(path) == before
    return done.stdout


def log_path(path: str, version: int) -> str:
    return os.path.join(path, "feature_groups", "g", "v1", "_delta_log", f"{version:020d}.json")


def lakecore_like_commit(path: str) -> None:
    """Append commit 3 the way lakecore writes one: a data file with its sha256 and key
    ranges in the tags, a commitInfo with lakecore's fields and a hash consistent with it."""
    from lakecore.base.parquet import write_parquet
    from lakecore.offline.table import HASH_SCHEME, change_digest

    with open(log_path(path, 2), "rb") as f:
        previous = [json.loads(line) for line in f.read().splitlines()]
    info = next(a["commitInfo"] for a in previous if "commitInfo" in a)
    folder = os.path.dirname(os.path.dirname(log_path(path, 2)))
    name = "part-00003-forged-c000.zstd.parquet"
    size, digest = write_parquet(pa.table({"id": pa.array([0], pa.int64()), "v": [666.0]}),
                                 os.path.join(folder, name))
    add = {"path": name, "partitionValues": {}, "size": size, "modificationTime": 0,
           "dataChange": True, "stats": None,
           "tags": {"lakecore.sha256": digest, "lakecore.ranges": '{"id":[0,0]}'}}
    removes = [{"path": a["add"]["path"], "dataChange": True, "extendedFileMetadata": True,
                "partitionValues": {}, "size": a["add"]["size"], "deletionTimestamp": 0}
               for a in _commit_actions(path, 0) if "add" in a]
    schema = _commit_actions(path, 0)[2]["metaData"]["schemaString"]
    forged = change_digest(info["lakecore"]["hash"], schema, [add], removes, "insert")
    ours = dict(info["lakecore"], hash=forged, parent_hash=info["lakecore"]["hash"],
                hash_scheme=HASH_SCHEME)
    actions = [{"commitInfo": dict(info, timestamp=info["timestamp"] + 1, lakecore=ours)},
               *({"remove": r} for r in removes), {"add": add}]
    with open(log_path(path, 3), "w") as f:
        f.write("".join(json.dumps(a) + "\n" for a in actions))


def _commit_actions(path: str, version: int) -> list[dict]:
    with open(log_path(path, version), "rb") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def deltalake_append(path: str) -> None:
    deltalake.write_deltalake(os.path.dirname(os.path.dirname(log_path(path, 0))),
                              pa.table({"id": pa.array([0], pa.int64()), "v": [666.0]}),
                              mode="append")


def edited_commit(path: str) -> None:
    """Commit 2 rewritten: its row's value changed in a new data file it now adds."""
    from lakecore.base.parquet import write_parquet

    actions = _commit_actions(path, 2)
    folder = os.path.dirname(os.path.dirname(log_path(path, 2)))
    add = next(a["add"] for a in actions if "add" in a)
    size, digest = write_parquet(pa.table({"id": pa.array([2], pa.int64()), "v": [666.0]}),
                                 os.path.join(folder, "part-forged.zstd.parquet"))
    add.update(path="part-forged.zstd.parquet", size=size,
               tags=dict(add["tags"], **{"lakecore.sha256": digest}))
    with open(log_path(path, 2), "w") as f:
        f.write("".join(json.dumps(a) + "\n" for a in actions))


@pytest.mark.parametrize("forge", [lakecore_like_commit, deltalake_append],
                         ids=["lakecore-like", "deltalake"])
def test_a_commit_appended_by_hand_is_never_adopted(tmp_path, forge):
    path = str(tmp_path / "lake")
    build(path, tmp_path)
    forge(path)
    with lakecore.open(path, readonly=True) as lake:
        assert any("fg:g@1#3: no audit event records this commit" in p
                   for p in lake.verify().problems), lake.verify().problems
        with pytest.raises(lakecore.IntegrityError, match="no audit event records"):
            lake.feature_group("g").read()
        events = len(lake.audit_log())
    done = run("""
        import sys, warnings, lakecore
        warnings.simplefilter("always")
        with lakecore.open(sys.argv[1]) as lake:
            print(len(lake.audit_log()))
            try:                                  # not served: the group is blocked
                lake.feature_group("g").online_read({"id": [0]})
            except lakecore.IntegrityError:
                print("blocked")
            lake.feature_group("h").insert({"id": [2]})       # the other group still works
            try:
                lake.feature_group("g").insert({"id": [7], "v": [7.0]})
            except lakecore.IntegrityError as exc:
                print("refused", exc)
    """, path)
    out = done.stdout.splitlines()
    assert "was not brought online" in done.stderr
    assert out[0] == str(events)                     # nothing adopted into the audit log
    assert out[1] == "blocked"
    assert out[2].startswith("refused") and "no audit event records" in out[2]
    with lakecore.open(path, readonly=True) as lake:
        assert not any("#3" in e.target for e in lake.audit_log())
    os.unlink(log_path(path, 3))                     # without it, everything is as it was
    with lakecore.open(path) as lake:
        assert lake.feature_group("g").online_read({"id": [0]}).column("v").to_pylist() == [0.0]
        assert lake.verify().ok, lake.verify().problems


def test_a_commit_edited_by_hand_is_never_read(tmp_path):
    path = str(tmp_path / "lake")
    build(path, tmp_path)
    edited_commit(path)
    with lakecore.open(path, readonly=True) as lake:
        assert any("fg:g@1#2: the commit file has sha256" in p for p in lake.verify().problems)
        with pytest.raises(lakecore.IntegrityError, match="changed outside lakecore"):
            lake.feature_group("g").read()


KILLED = """
import os, sys
import lakecore
from lakecore.offline import delta_log, table
from lakecore.catalog import store

def killed(*args, **kwargs):
    os._exit(9)
if sys.argv[2] == "commit":                     # after its event, before the commit file
    delta_log.DeltaLog.try_commit = killed
else:                                           # after its event, before the catalog
    store.replace_file = killed
lake = lakecore.open(sys.argv[1])
if sys.argv[2] == "commit":
    lake.feature_group("g").insert({"id": [9], "v": [9.0]})
else:
    lake.models.set_alias("m", "production", 1)
"""


@pytest.mark.parametrize("where", ["commit", "catalog"])
def test_a_writer_killed_between_an_event_and_its_change_leaves_nothing_to_report(tmp_path,
                                                                                 where):
    path = str(tmp_path / "lake")
    build(path, tmp_path)
    run(KILLED, path, where, returncode=9)
    with lakecore.open(path, readonly=True) as lake:
        announced = lake.audit_log()[-1]
        assert announced.op in ("insert", "set_alias:production")
        assert lake.verify().ok, lake.verify().problems
        assert lake.feature_group("g").read().num_rows == 3
    with lakecore.open(path) as lake:
        last = lake.audit_log()[-1]
        assert (last.op, last.target, last.aborts) == ("abort", announced.target,
                                                        announced.seq)
        assert lake.verify().ok, lake.verify().problems
        assert lake.models.get("m", alias="production").version == 2
        lake.feature_group("g").insert({"id": [9], "v": [9.0]})
        lake.models.set_alias("m", "production", 1)
        assert lake.verify().ok, lake.verify().problems
        assert lake.feature_group("g").online_read({"id": [9]}).column("v").to_pylist() == [9.0]


def _edit_catalog(path: str, edit) -> None:
    catalog = os.path.join(path, "catalog.json")
    with open(catalog) as f:
        state = json.load(f)
    edit(state)
    with open(catalog, "w") as f:
        json.dump(state, f)


def _ttl(state):
    state["feature_groups"][0]["ttl_us"] = 1


def _alias(state):
    state["aliases"]["m"]["production"] = 1


def _transforms(state):
    state["feature_views"][0]["transforms"] = {"v": "min_max_scaler"}


def _location(state):
    state["feature_groups"][0]["location"] = "/tmp/elsewhere"


def _description(state):
    state["feature_groups"][1]["description"] = "edited"


@pytest.mark.parametrize("edit", [_ttl, _alias, _transforms, _location, _description])
def test_a_catalog_edited_by_hand_is_reported_and_a_writable_open_refuses_it(tmp_path, edit):
    path = str(tmp_path / "lake")
    build(path, tmp_path)
    _edit_catalog(path, edit)
    with lakecore.open(path, readonly=True) as lake:
        problems = lake.verify().problems
    assert any(p.startswith("catalog: ") and "changed outside lakecore" in p
               for p in problems), problems
    refusal = refused_writable_open(path)
    assert "changed outside lakecore" in refusal and "read-only" in refusal


def _cut_after(path: str, keep) -> None:
    log = os.path.join(path, "audit.log")
    with open(log, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    with open(log, "wb") as f:
        f.writelines(keep(lines))


@pytest.mark.parametrize("cut", ["alias events", "one event", "whole log"])
def test_an_audit_log_that_lost_its_tail_is_reported_without_an_anchor(tmp_path, cut):
    path = str(tmp_path / "lake")
    build(path, tmp_path)
    _cut_after(path, {"alias events": lambda lines: lines[:-2],
                      "one event": lambda lines: lines[:-1],
                      "whole log": lambda lines: []}[cut])
    with lakecore.open(path, readonly=True) as lake:
        problems = lake.verify().problems
    assert any("audit log ends" in p or "records no catalog change" in p
               for p in problems), problems
    assert "lost its tail" in refused_writable_open(path)    # no event is made up again


def test_commits_whose_events_were_cut_off_are_reported(tmp_path):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        for i in range(3):
            fg.insert({"id": [i], "v": [float(i)]})
    _cut_after(path, lambda lines: lines[:-2])
    with lakecore.open(path, readonly=True) as lake:
        problems = lake.verify().problems
    assert any("#1: no audit event records this commit" in p for p in problems), problems
    assert any("#2: no audit event records this commit" in p for p in problems), problems
