"""Calls the lake must refuse whole: every key the online store cannot hold is refused before
the offline commit, odd names, versions and key values are clean LakeErrors, and a refused call
leaves every file of the lake as it was."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import lakecore
from lakecore import SchemaError, ValidationError
from tests.lake_state import lake_digest

OPEN_WRITABLE = textwrap.dedent("""
    import sys, lakecore
    with lakecore.open(sys.argv[1]) as lake:
        assert lake.verify().ok, lake.verify().problems
        print("opened")
""")


def opens_writable_and_verifies(path: str) -> bool:
    child = subprocess.run([sys.executable, "-c", OPEN_WRITABLE, path], capture_output=True,
                           text=True, timeout=120)
    return child.returncode == 0 and child.stdout.strip() == "opened"


WRITE_IN_A_CHILD = textwrap.dedent("""
    import sys, lakecore
    try:
        with lakecore.open(sys.argv[1]) as lake:
            lake.feature_group("g").insert({"id": [2], "v": [2.0]})
        print("written")
    except lakecore.LakeError as exc:
        print(type(exc).__name__, exc)
""")


READ_ONLINE_IN_A_CHILD = textwrap.dedent("""
    import sys, lakecore
    with lakecore.open(sys.argv[1], readonly=True) as lake:
        print(*lake.feature_group("g").online_read({"id": [1, 2]}).column("v").to_pylist(),
              lake.verify().ok)
""")


ONLINE_REFUSALS = [
    ("a string key over 511 bytes", ["s"], {"s": ["x" * 600]}, ValidationError,
     "'s': a value of 600 bytes"),
    ("two 300-byte parts of a composite key", ["a", "b"],
     {"a": ["x" * 300], "b": ["y" * 300]}, ValidationError, "a key of 604 bytes"),
]


@pytest.mark.parametrize("case", ONLINE_REFUSALS, ids=[c[0] for c in ONLINE_REFUSALS])
def test_a_key_the_online_store_cannot_hold_is_refused_before_the_offline_commit(tmp_path, case):
    _, key, rows, error, message = case
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key=key, online=True)
        fg.insert({**{k: ["ok"] for k in key}, "v": [1.0]})
        before = lake_digest(path)
        with pytest.raises(error, match=message):
            fg.insert({**rows, "v": [2.0]})
        assert lake_digest(path) == before
        assert fg.read().num_rows == 1 and fg.history()[-1].version == 0
    assert opens_writable_and_verifies(path)


def test_a_date_primary_key_works_online(tmp_path):
    path = str(tmp_path / "lake")
    days = [dt.date(2026, 1, 2), dt.date(1969, 12, 31)]
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="day", online=True)
        fg.insert({"day": days, "v": [1.0, 2.0]})
        fg.insert({"day": days[:1], "v": [3.0]})
        assert fg.online_read({"day": days}).column("v").to_pylist() == [3.0, 2.0]
        view = lake.create_feature_view("view", query=fg.select_all())
        assert view.feature_vector({"day": days[1]}) == {"v": 2.0}
        fg.delete({"day": days[1:]})
        assert fg.online_read({"day": days}).column("v").to_pylist() == [3.0, None]
    assert opens_writable_and_verifies(path)


@pytest.mark.parametrize("name", ["g\n", "g\r\n", "\ng", "g\x00"])
def test_names_with_line_ends_are_refused(tmp_path, name):
    with lakecore.open(str(tmp_path / "lake")) as lake:
        before = lake_digest(lake.path)
        with pytest.raises(ValidationError, match="expected a name"):
            lake.create_feature_group(name, primary_key="id")
        with pytest.raises(ValidationError):
            lake.lineage(f"fg:{name}@1")
        assert lake_digest(lake.path) == before


def test_refs_take_only_ascii_digits(tmp_path):
    with lakecore.open(str(tmp_path / "lake")) as lake:
        lake.create_feature_group("g", primary_key="id").insert({"id": [1]})
        with pytest.raises(ValidationError, match="ref"):
            lake.lineage("fg:g@\u0661")          # ARABIC-INDIC DIGIT ONE


@pytest.mark.parametrize("key", [{"id": True}, {"id": 2**70}, {"id": -(2**63) - 1}])
def test_keys_online_read_refuses_are_refused_by_feature_vector_too(tmp_path, key):
    with lakecore.open(str(tmp_path / "lake")) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1], "v": [1.0]})
        view = lake.create_feature_view("view", query=fg.select_all())
        with pytest.raises((SchemaError, ValidationError)):
            fg.online_read({"id": [key["id"]]})
        with pytest.raises(SchemaError, match="'id'"):
            view.feature_vector(key)
        assert view.feature_vector({"id": 1}) == {"v": 1.0}


def test_a_lake_made_again_at_the_same_path_is_a_new_lake(tmp_path):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1], "v": [1.0]})
        assert fg.online_read({"id": [1]}).column("v").to_pylist() == [1.0]
    shutil.rmtree(path)
    with lakecore.open(path) as lake:         # same process, same path, another lake
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [2], "v": [2.0]})
        assert fg.online_read({"id": [1, 2]}).column("v").to_pylist() == [None, 2.0]
        view = lake.create_feature_view("view", query=fg.select_all())
        assert view.feature_vector({"id": 1}) == {"v": None}
        assert lake.verify().ok
    # another process sees what this one wrote into the new lake's files (not into the
    # deleted lake's files, still mapped here)
    child = subprocess.run([sys.executable, "-c", READ_ONLINE_IN_A_CHILD, path],
                           capture_output=True, text=True, timeout=120)
    assert child.stdout.split() == ["None", "2.0", "True"], child.stdout + child.stderr[-2000:]


@pytest.mark.parametrize("planted", ["online", "online/data.mdb", "online/lock.mdb", ".lock",
                                     "audit.log", "feature_groups", "feature_groups/g/v1"])
def test_links_planted_where_lakecore_keeps_its_stores_are_refused(tmp_path, planted):
    path = str(tmp_path / "lake")
    outside = tmp_path / "outside"
    outside.mkdir()
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1], "v": [1.0]})
    target = os.path.join(path, planted)
    moved = outside / os.path.basename(planted)
    os.rename(target, moved)
    os.symlink(moved, target)
    before = sorted(os.listdir(outside))
    child = subprocess.run([sys.executable, "-c", WRITE_IN_A_CHILD, path], capture_output=True,
                           text=True, timeout=120)
    assert child.stdout.startswith("IntegrityError") and "link" in child.stdout, \
        child.stdout + child.stderr[-2000:]
    assert sorted(os.listdir(outside)) == before


def test_a_table_location_edited_in_the_catalog_is_never_read(tmp_path):
    path = str(tmp_path / "lake")
    forged = str(tmp_path / "forged")
    with lakecore.open(forged) as other:            # a table an attacker controls
        other.create_feature_group("g", primary_key="id").insert({"id": [666], "v": [6.0]})
    with lakecore.open(path) as lake:
        lake.create_feature_group("g", primary_key="id").insert({"id": [1], "v": [1.0]})
    catalog = os.path.join(path, "catalog.json")
    with open(catalog) as f:
        state = json.load(f)
    state["feature_groups"][0]["location"] = os.path.relpath(
        os.path.join(forged, "feature_groups", "g", "v1"), path)
    with open(catalog, "w") as f:
        json.dump(state, f)
    with lakecore.open(path, readonly=True) as lake:
        assert lake.feature_group("g").read().column("id").to_pylist() == [1]
        problems = lake.verify().problems
    assert any("location" in p and "reads only" in p for p in problems), problems


REGISTER_IN_A_CHILD = textwrap.dedent("""
    import os, sys, tempfile, lakecore
    artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
    with open(artifact, "wb") as f:
        f.write(b"weights")
    try:
        with lakecore.open(sys.argv[1]) as lake:
            lake.models.register("m", artifact)
        print("registered")
    except lakecore.LakeError as exc:
        print(type(exc).__name__, exc)
""")


@pytest.mark.parametrize("planted", ["models", "models/m"])
def test_a_link_planted_where_models_go_is_refused(tmp_path, planted):
    path = str(tmp_path / "lake")
    outside = tmp_path / "outside"
    outside.mkdir()
    with lakecore.open(path) as lake:
        lake.create_feature_group("g", primary_key="id")
    os.makedirs(os.path.join(path, os.path.dirname(planted)), exist_ok=True)
    os.symlink(outside, os.path.join(path, planted))
    child = subprocess.run([sys.executable, "-c", REGISTER_IN_A_CHILD, path],
                           capture_output=True, text=True, timeout=120)
    assert child.stdout.startswith("IntegrityError") and "link" in child.stdout, \
        child.stdout + child.stderr[-2000:]
    assert os.listdir(outside) == []


@pytest.mark.parametrize("entry", ["dangling link", "link loop", "fifo"])
def test_an_artifact_that_cannot_be_copied_is_a_validation_error(tmp_path, entry):
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "weights.bin").write_bytes(b"w")
    bad = artifact / "bad"
    if entry == "dangling link":
        bad.symlink_to(tmp_path / "nowhere")
    elif entry == "link loop":
        bad.symlink_to(bad)
    else:
        os.mkfifo(bad)
    with lakecore.open(str(tmp_path / "lake")) as lake:
        before = lake_digest(lake.path)
        with pytest.raises(ValidationError, match="artifact: .*bad"):
            lake.models.register("m", str(artifact))
        assert lake_digest(lake.path) == before and lake.models.list() == []
