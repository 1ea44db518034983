"""Forgetting: an entity erased from every version of every table that holds it, the online
store, prediction logs, validation reports and kept statistics; every other row and version
as it was, in lakecore and in deltalake; verify() clean; crash-safe."""

import datetime as dt
import os
import pathlib
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lakecore

MARKER = "forget-me-7@example.com"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def day(d: int) -> dt.datetime:
    return dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)


def build(path) -> dict:
    """A lake whose users group holds user 7 in many versions (inserts, upserts, a delete,
    merges), online, with expectations that keep examples of user 7's e-mail; and another
    group keyed differently. Returns every version's rows before any forget."""
    with lakecore.open(path) as lake:
        users = lake.create_feature_group("users", primary_key="user_id", event_time="at",
                                          online=True)
        users.set_expectations([lakecore.expect.matches("email", r"^[a-z]+@example\.com$")],
                               on_failure="warn")
        for d in range(1, 13):
            ids = [7, 8, 9, 10 + d] if d % 3 else [8, 10 + d]
            with pytest.warns(UserWarning) if 7 in ids else _nothing():
                users.insert({"user_id": ids, "at": [day(d)] * len(ids),
                              "email": [MARKER if i == 7 else f"user{'x' * (i % 5)}@example.com"
                                        for i in ids],
                              "score": [float(i * d) for i in ids]})
        users.delete({"user_id": [9], "at": [day(1)]})
        other = lake.create_feature_group("cities", primary_key="city")
        other.insert({"city": ["a", "b"], "people": [7, 8]})
        users.statistics()
        return versions(lake)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def versions(lake, name="users") -> dict[int, pa.Table]:
    fg = lake.feature_group(name)
    latest = fg._table.snapshot().version
    return {v: fg.read(as_of=v) for v in range(latest + 1)}


def without_7(table: pa.Table) -> pa.Table:
    return table.filter(pa.compute.not_equal(table.column("user_id"), 7))


def canonical(table: pa.Table) -> list:
    return sorted(map(str, table.to_pylist()))


def files_under(path) -> list[pathlib.Path]:
    return [p for p in pathlib.Path(path).rglob("*") if p.is_file() and not p.is_symlink()]


def scan(path) -> list[str]:
    """Where user 7 is still found: the marker's bytes in any file, or user 7 in any
    Parquet file's rows (zstd hides values from a byte scan)."""
    found = []
    for file in files_under(path):
        data = file.read_bytes()
        if MARKER.encode() in data:
            found.append(f"{file}: marker bytes")
        if data[:4] == b"PAR1":
            table = pq.read_table(file)
            for name in ("user_id",):
                if name in table.column_names and 7 in table.column(name).to_pylist():
                    found.append(f"{file}: user 7 in {name}")
            for name in table.column_names:
                if MARKER in str(table.column(name).to_pylist()):
                    found.append(f"{file}: marker in {name}")
    return found


def test_an_entity_is_erased_from_every_version_and_store(tmp_path):
    path = tmp_path / "lake"
    build(path)
    with lakecore.open(path) as lake:
        before = versions(lake)
        cities = versions(lake, "cities")
        assert scan(path)                        # the subject is there to begin with
        head = lake.audit_head()
        report = lake.forget({"user_id": [7]}, reason="erasure request #1")
        latest_before = before[max(before)]
        assert report.rows_removed == latest_before.num_rows - without_7(latest_before).num_rows
        assert report.rows_removed > 0
        assert report.commits_rewritten and all(r.startswith("fg:users@1#")
                                                for r in report.commits_rewritten)
        after = versions(lake)
        assert set(after) == set(before)
        for v in before:
            assert canonical(after[v]) == canonical(without_7(before[v])), v
        assert versions(lake, "cities") == cities
        users = lake.feature_group("users")
        assert users.online_read({"user_id": [7]}).column("score").to_pylist() == [None]
        assert users.online_read({"user_id": [8]}).column("score").to_pylist()[0] is not None
        assert all(not r.examples or MARKER not in map(str, r.examples)
                   for h in users.validation_history() for r in h.results)
        stats = users.statistics()
        assert stats.columns["user_id"].count == after[max(after)].num_rows
        problems = lake.verify().problems
        assert problems == []
        assert lake.verify(anchor=head).ok              # an anchor taken before stays valid
        event = lake.audit_log()[-1] if lake.audit_log()[-1].op == "forget" else \
            [e for e in lake.audit_log() if e.op == "forget"][-1]
        assert event.details["reason"] == "erasure request #1"
        assert event.details["keys"] == 1 and len(event.details["salt"]) == 32
    assert scan(path) == []
    deltalake = pytest.importorskip("deltalake")
    table_path = str(path / "feature_groups" / "users" / "v1")
    for v, rows in before.items():
        theirs = deltalake.DeltaTable(table_path, version=v).to_pyarrow_table()
        assert canonical(theirs.select(rows.column_names)) == canonical(without_7(rows)), v
    with lakecore.open(path) as lake:               # and again from a fresh process view
        assert lake.verify().ok


def test_forgetting_an_absent_key_changes_nothing(tmp_path):
    path = tmp_path / "lake"
    build(path)
    snapshot = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
    with lakecore.open(path) as lake:
        events = len(lake.audit_log())
        report = lake.forget({"user_id": [12345]}, reason="not a customer")
        assert report.rows_removed == 0 and report.commits_rewritten == []
        assert len(lake.audit_log()) == events
    now = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
    assert now == snapshot


def test_prediction_logs_are_included(tmp_path):
    import json

    import numpy as np

    class Model:
        def predict(self, X):
            return X[:, 0]

    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("users", primary_key="user_id", online=True)
        fg.insert({"user_id": [7, 8], "score": [1.0, 2.0]})
        view = lake.create_feature_view("v", query=fg.select_all())
        td = view.create_training_data(spine={"user_id": [8]})     # user 7 is not in it
        artifact = tmp_path / "m.json"
        artifact.write_text(json.dumps({}))
        lake.models.register("m", str(artifact), training_data=td)
        with lake.predictor("m", load=lambda p: Model(), log=True) as scorer:
            scorer.predict({"user_id": [7]})
            scorer.predict({"user_id": np.array([8, 7])})
        log = lake.feature_group("m_predictions")
        assert 7 in log.read().column("user_id").to_pylist()
        lake.forget({"user_id": [7]}, groups=["users"], reason="erasure")
        assert 7 not in log.read().column("user_id").to_pylist()
        assert log.read().num_rows == 1
        assert lake.verify().ok
        assert td.recreate().hash == td.hash       # made from commits forget rewrote


def test_training_data_holding_the_keys_is_made_again_without_them(tmp_path):
    import json

    path = tmp_path / "lake"
    build(path)
    with lakecore.open(path) as lake:
        users = lake.feature_group("users")
        view = lake.create_feature_view("v", query=users.select(["score", "email"]),
                                        transforms={"score": "standard_scaler"})
        split = view.create_training_data(split={"train": 0.7, "test": 0.3}, seed=3)
        spine = {"user_id": [7, 8, 7], "at": [day(20)] * 3}
        spined = view.create_training_data(spine=spine)
        split.recreate()                        # a copy under recreated/ holds user 7 too
        artifact = tmp_path / "m.json"
        artifact.write_text(json.dumps({}))
        lake.models.register("m", str(artifact), training_data=split)
        old = {split.version: split.hash, spined.version: spined.hash}
        report = lake.forget({"user_id": [7]}, reason="erasure")
        assert sorted(r for r, _, _ in report.datasets) == ["td:v@1/1", "td:v@1/2"]
        assert all(old_hash == old[int(r.rsplit("/", 1)[1])] and new != old_hash
                   for r, old_hash, new in report.datasets)
        assert report.models == ["model:m@1"]
        for td in (view.training_data(1), view.training_data(2)):
            assert 7 not in td.read(with_keys=True).column("user_id").to_pylist()
            assert td.hash != old[td.version]
            assert td.recreate().hash == td.hash
        assert view.training_data(2).read(with_keys=True).num_rows == 1
        assert lake.verify().problems == []
    assert scan(path) == []


def test_bad_requests_leave_the_lake_as_it_was(tmp_path):
    path = tmp_path / "lake"
    build(path)
    snapshot = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
    with lakecore.open(path) as lake:
        with pytest.raises(lakecore.ValidationError, match="reason"):
            lake.forget({"user_id": [7]}, reason=" ")
        with pytest.raises(lakecore.ValidationError, match="nulls"):
            lake.forget({"user_id": [7, None]}, reason="x")
        with pytest.raises(lakecore.SchemaError, match="primary key"):
            lake.forget({"user_id": [7]}, groups=["cities"], reason="x")
        with pytest.raises(lakecore.ValidationError, match="no feature group"):
            lake.forget({"user_id": [7]}, groups=["nope"], reason="x")
        with pytest.raises(lakecore.SchemaError, match="'usr_id'"):
            lake.forget({"usr_id": [7]}, reason="x")        # misspelt: not a silent no-op
    now = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
    assert now == snapshot


KILLED = """
import os, sys, random, lakecore
from lakecore.governance import forget as forget_module
from lakecore.offline import rewrite

point, seed = sys.argv[2], int(sys.argv[3])
random.seed(seed)
moves = [0]
real_replace = os.replace


def replace(a, b, *args, **kwargs):     # killed after a random number of moves
    real_replace(a, b, *args, **kwargs)
    if ".forget.tmp" in str(a):
        moves[0] += 1
        if point == "moves" and moves[0] >= seed % 4 + 1:
            os._exit(9)


os.replace = replace
real_append = None
lake = lakecore.open(sys.argv[1])
if point == "before-record":
    original = lake.audit.append
    def append(op, *a, **k):
        if op == "forget":
            os._exit(9)
        return original(op, *a, **k)
    lake.audit.append = append
if point == "online":
    store = lake.online_store
    store.compact = lambda: os._exit(9)
lake.forget({"user_id": [7]}, reason="killed")
os._exit(0)
"""


@pytest.mark.parametrize("point,seed", [("before-record", 0), ("moves", 1), ("moves", 2),
                                        ("moves", 7), ("online", 3)])
def test_a_killed_forget_is_finished_or_undone_by_the_next_open(tmp_path, point, seed):
    path = tmp_path / "lake"
    before = build(path)
    run = subprocess.run([sys.executable, "-c", KILLED, str(path), point, str(seed)],
                         cwd=ROOT, timeout=300)
    assert run.returncode == 9
    with lakecore.open(path) as lake:
        after = versions(lake)
        if point == "before-record":         # never acknowledged: everything as it was
            assert all(canonical(after[v]) == canonical(before[v]) for v in before)
            assert lake.verify().ok
            assert not [p for p in files_under(path) if ".forget.tmp" in p.name]
            lake.forget({"user_id": [7]}, reason="again")
            after = versions(lake)
        for v in before:
            assert canonical(after[v]) == canonical(without_7(before[v])), v
        assert lake.feature_group("users").online_read(
            {"user_id": [7]}).column("score").to_pylist() == [None]
        assert lake.verify().problems == []
    assert scan(path) == []


def test_the_forget_command(tmp_path, capsys):
    from lakecore.cli import main as cli

    path = tmp_path / "lake"
    build_rows = build(path)
    assert cli(["forget", str(path), "--key", "user_id=7", "--reason", "erasure #2"]) == 0
    out = capsys.readouterr().out
    latest = build_rows[max(build_rows)]
    erased = latest.num_rows - without_7(latest).num_rows
    assert f"rows removed from the latest versions: {erased}\n" in out and "fg:users@1#" in out
    assert cli(["forget", str(path), "--key", "user_id", "--reason", "x"]) == 2
    assert "COLUMN=VALUE" in capsys.readouterr().err
    with lakecore.open(path) as lake:
        assert 7 not in lake.feature_group("users").read().column("user_id").to_pylist()
        assert [e.details["reason"] for e in lake.audit_log() if e.op == "forget"] == [
            "erasure #2"]


def test_verify_reports_an_unfinished_forget(tmp_path):
    path = tmp_path / "lake"
    build(path)
    run = subprocess.run([sys.executable, "-c", KILLED, str(path), "moves", "1"], cwd=ROOT,
                         timeout=300)
    assert run.returncode == 9
    with lakecore.open(path, readonly=True) as lake:    # read-only: nothing is finished
        assert any("forget.journal" in p for p in lake.verify().problems)
    with lakecore.open(path) as lake:
        assert lake.verify().ok


KILLED_IN_DATASETS = """
import os, sys, lakecore
from lakecore.governance import forget as forget_module

real = forget_module._record_dataset
calls = [0]


def record(*args, **kwargs):        # the second dataset's files written, its manifest not
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):
        os._exit(9)
    return real(*args, **kwargs)


forget_module._record_dataset = record
lake = lakecore.open(sys.argv[1])
lake.forget({"user_id": [7]}, reason="killed")
os._exit(0)
"""


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_forget_killed_while_making_datasets_again_is_finished(tmp_path, kill_at):
    path = tmp_path / "lake"
    build(path)
    with lakecore.open(path) as lake:
        view = lake.create_feature_view(
            "v", query=lake.feature_group("users").select(["score"]))
        view.create_training_data(split={"train": 0.5, "test": 0.5}, seed=1)
        view.create_training_data(spine={"user_id": [7, 8], "at": [day(20)] * 2})
    run = subprocess.run([sys.executable, "-c", KILLED_IN_DATASETS, str(path), str(kill_at)],
                         cwd=ROOT, timeout=300)
    assert run.returncode == 9
    with lakecore.open(path) as lake:
        view = lake.feature_view("v")
        for version in (1, 2):
            td = view.training_data(version)
            assert 7 not in td.read(with_keys=True).column("user_id").to_pylist()
            assert td.recreate().hash == td.hash
        assert lake.verify().problems == []
    assert scan(path) == []


def test_what_forget_rewrote_is_known_to_an_open_that_starts_from_the_audit_index(tmp_path):
    path = tmp_path / "lake"
    before = build(path)
    with lakecore.open(path) as lake:
        lake.forget({"user_id": [7]}, reason="erasure")
        with lake._ctx.lock.hold():
            lake.audit.write_index()
    with lakecore.open(path) as lake:
        assert lake.audit._window is not None          # opened from the index
        after = versions(lake)
        for v in before:
            assert canonical(after[v]) == canonical(without_7(before[v])), v
        assert lake.verify().problems == []


RANDOM_KILL = """
import os, random, sys, threading, lakecore
lake = lakecore.open(sys.argv[1])
random.seed(int(sys.argv[2]))
# staging takes most of a cold forget here (about 0.3 s, recorded near its end): the kills
# land anywhere from staging to the datasets made again
threading.Timer(random.uniform(0.05, float(sys.argv[3])), lambda: os._exit(9)).start()
lake.forget({"user_id": [7]}, reason="killed at a random time")
os._exit(0)
"""


@pytest.mark.parametrize("seed", range(8))
def test_a_forget_killed_at_a_random_time_is_finished_or_undone(tmp_path, seed):
    path = tmp_path / "lake"
    before = build(path)
    with lakecore.open(path) as lake:
        lake.create_feature_view("v", query=lake.feature_group("users").select(["score"])
                                 ).create_training_data()
    run = subprocess.run([sys.executable, "-c", RANDOM_KILL, str(path), str(seed), "0.4"],
                         cwd=ROOT, timeout=300)
    assert run.returncode in (0, 9)
    with lakecore.open(path) as lake:
        assert lake.verify().problems == []
        if 7 in lake.feature_group("users").read().column("user_id").to_pylist():
            lake.forget({"user_id": [7]}, reason="again")    # killed before it was recorded
        after = versions(lake)
        for v in before:
            assert canonical(after[v]) == canonical(without_7(before[v])), v
        td = lake.feature_view("v").training_data(1)
        assert td.recreate().hash == td.hash
        assert lake.verify().problems == []
    assert scan(path) == []


def test_forget_after_vacuum_rewrites_what_is_left(tmp_path):
    path = tmp_path / "lake"
    before = build(path)
    with lakecore.open(path) as lake:
        lake.vacuum(retain=dt.timedelta(0))
        latest = max(before)
        lake.forget({"user_id": [7]}, reason="erasure")
        rows = lake.feature_group("users").read()
        assert canonical(rows) == canonical(without_7(before[latest]))
        assert lake.verify().problems == []
    assert scan(path) == []
    deltalake = pytest.importorskip("deltalake")
    theirs = deltalake.DeltaTable(str(path / "feature_groups" / "users" / "v1")).to_pyarrow_table()
    assert canonical(theirs.select(rows.column_names)) == canonical(rows)


def test_training_data_built_on_spark_is_not_rebuilt_here(tmp_path):
    import msgspec

    path = tmp_path / "lake"
    build(path)
    with lakecore.open(path) as lake:
        view = lake.create_feature_view("v", query=lake.feature_group("users").select(["score"]))
        view.create_training_data()

        def on_spark(state):        # as if Spark had built it (forget does not run Spark)
            state.training_datasets = [msgspec.structs.replace(d, engine="spark")
                                       for d in state.training_datasets]
        with lake._ctx.lock.hold():
            lake._ctx.catalog.update(on_spark)
        snapshot = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
        with pytest.raises(lakecore.LakeError, match="td:v@1/1.*Spark"):
            lake.forget({"user_id": [7]}, reason="x")
    now = {p: p.read_bytes() for p in files_under(path) if p.name != "writer.lock"}
    assert now == snapshot
