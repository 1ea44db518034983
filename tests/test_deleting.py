"""Deleting feature groups, feature views, training data and model versions: refused while
something depends on them, audited, verify stays clean, version numbers never reused."""

import datetime as dt
import os
import pickle

import pyarrow as pa
import pytest

import lakecore
from lakecore import LakeError, NotFoundError
from tests.lake_state import lake_digest

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
TS = pa.timestamp("us", "UTC")


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


def build(lake, tmp_path):
    cards = lake.create_feature_group("cards", primary_key="card", event_time="at", online=True)
    cards.insert({"card": [1, 2], "at": pa.array([NOW] * 2, TS), "spend": [1.0, 2.0]})
    view = lake.create_feature_view("risk", query=cards.select_all(), labels=["y"])
    td = view.create_training_data(spine={"card": [1, 2], "at": pa.array([NOW] * 2, TS),
                                          "y": [0, 1]})
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(pickle.dumps({"weights": [1.0]}))
    model = lake.models.register("scorer", artifact, training_data=td)
    return cards, view, td, model


def refused(lake, call, match):
    """``call`` raises a LakeError matching ``match`` and changes no file of the lake."""
    before = lake_digest(lake.path)
    with pytest.raises(LakeError, match=match):
        call()
    assert lake_digest(lake.path) == before


def test_dependents_block_deletion_and_the_chain_comes_apart_in_order(lake, tmp_path):
    cards, view, td, model = build(lake, tmp_path)
    refused(lake, lambda: lake.delete_feature_group("cards", 1), "fv:risk@1 read it")
    refused(lake, lambda: lake.delete_feature_view("risk", 1), "model:scorer@1")
    refused(lake, lambda: view.delete_training_data(td.version), "model:scorer@1")
    refused(lake, lambda: lake.delete_feature_group("cards", 2), "not found")
    refused(lake, lambda: lake.delete_feature_view("nope", 1), "not found")
    refused(lake, lambda: view.delete_training_data(9), "no training data version 9")

    lake.models.delete("scorer", 1)
    assert lake.verify().ok, lake.verify().problems
    view.delete_training_data(td.version)
    assert not os.path.exists(os.path.join(lake.path, "training_data", "risk", "v1", "td1"))
    assert view.training_datasets() == [] and lake.verify().ok
    lake.delete_feature_view("risk", 1)
    lake.delete_feature_group("cards", 1)
    assert not os.path.exists(cards.location)
    assert lake.feature_groups() == [] and lake.feature_views() == []
    report = lake.verify()
    assert report.ok, report.problems
    ops = [(e.op, e.target) for e in lake.audit_log()][-4:]
    assert ops == [("delete_model", "model:scorer@1"), ("delete_training_data", "td:risk@1/1"),
                   ("delete_feature_view", "fv:risk@1"), ("delete_feature_group", "fg:cards@1")]
    for ref in ("fg:cards@1", "fg:cards@1#0", "fv:risk@1", "td:risk@1/1", "model:scorer@1"):
        for direction in ("upstream", "downstream"):
            with pytest.raises(NotFoundError):
                lake.lineage(ref, direction)
    with pytest.raises(NotFoundError):
        lake.feature_group("cards", 1)


def test_a_view_takes_its_datasets_with_it(lake, tmp_path):
    cards, view, td, model = build(lake, tmp_path)
    second = view.create_training_data(spine={"card": [2], "at": pa.array([NOW], TS), "y": [1]})
    lake.models.delete("scorer", 1)
    lake.delete_feature_view("risk", 1)
    assert lake.catalog.state().training_datasets == []
    assert not os.path.exists(os.path.join(lake.path, "training_data"))
    assert lake.verify().ok
    # made again under the same name: a new view, whose dataset versions go on counting
    again = lake.create_feature_view("risk", query=cards.select_all(), labels=["y"])
    third = again.create_training_data(spine={"card": [1], "at": pa.array([NOW], TS), "y": [0]})
    assert (td.version, second.version, third.version) == (1, 2, 3)
    assert [n.ref for n in lake.lineage(third)] == ["fv:risk@1", "fg:cards@1#0"]
    assert lake.verify().ok, lake.verify().problems


def test_version_numbers_are_never_reused(lake, tmp_path):
    cards, view, td, model = build(lake, tmp_path)
    artifact = tmp_path / "model.pkl"
    lake.models.register("scorer", artifact, training_data=td)
    lake.models.delete("scorer", 2)
    assert lake.models.register("scorer", artifact).version == 3
    lake.models.delete("scorer", 1)
    lake.models.delete("scorer", 3)
    assert lake.models.versions("scorer") == []
    assert lake.models.register("scorer", artifact).version == 4
    view.delete_training_data(1)
    assert view.create_training_data(
        spine={"card": [1], "at": pa.array([NOW], TS), "y": [0]}).version == 2
    report = lake.verify()
    assert report.ok, report.problems
    with lakecore.open(lake.path) as again:         # the numbers survive reopening
        assert again.models.register("scorer", artifact).version == 5


def test_a_group_made_again_after_deletion_starts_empty(lake):
    fg = lake.create_feature_group("g", primary_key="id", online=True)
    fg.insert({"id": [1, 2], "v": [1.0, 2.0]})
    fg.insert({"id": [3], "v": [3.0]})
    lake.delete_feature_group("g", 1)
    fresh = lake.create_feature_group("g", primary_key="id", online=True,
                                      schema=pa.schema([("id", pa.int64()), ("v", pa.float64())]))
    assert fresh.read().num_rows == 0 and fresh.history() == []
    assert fresh.online_read({"id": [1, 3]}).column("v").to_pylist() == [None, None]
    fresh.insert({"id": [9], "v": [9.0]})
    assert fresh.online_read({"id": [1, 9]}).column("v").to_pylist() == [None, 9.0]
    assert [c.version for c in fresh.history()] == [0]
    report = lake.verify()
    assert report.ok, report.problems
    assert [n.ref for n in lake.lineage(fresh, "downstream")] == []


KILLED_DELETE = """
import os, sys
import lakecore
from lakecore.catalog import store

def killed(*args, **kwargs):             # killed after the event, before the catalog
    os._exit(9)
store.replace_file = killed
lake = lakecore.open(sys.argv[1])
{call}
"""


@pytest.mark.parametrize("kind", ["group", "view", "dataset", "model"])
def test_a_delete_killed_between_its_event_and_the_catalog_is_aborted_on_open(tmp_path, kind):
    import subprocess
    import sys
    path = tmp_path / "lake"
    lake = lakecore.open(path)
    build(lake, tmp_path)
    if kind in ("group", "view", "dataset"):
        lake.models.delete("scorer", 1)
    if kind == "group":
        lake.delete_feature_view("risk", 1)
    lake.close()
    call = {"group": 'lake.delete_feature_group("cards", 1)',
            "view": 'lake.delete_feature_view("risk", 1)',
            "dataset": 'lake.feature_view("risk").delete_training_data(1)',
            "model": 'lake.models.delete("scorer", 1)'}[kind]
    done = subprocess.run([sys.executable, "-c", KILLED_DELETE.format(call=call), str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    with lakecore.open(path, readonly=True) as seen:   # the writer may still be at work
        assert seen.audit_log()[-1].op.startswith("delete_")
        assert seen.verify().ok, seen.verify().problems
    with lakecore.open(path) as again:          # a writable open records the abort
        last = again.audit_log()[-1]
        assert last.op == "abort" and last.aborts == again.audit_log()[-2].seq
        report = again.verify()
        assert report.ok, report.problems
        exec(call.replace("lake.", "again."))  # the delete works now
        assert again.audit_log()[-1].op.startswith("delete_")
        assert again.verify().ok, again.verify().problems
        if kind == "group":                     # nothing of it leaks into a new group
            fresh = again.create_feature_group("cards", primary_key="card", online=True)
            assert fresh.read().num_rows == 0
            assert again.verify().ok
