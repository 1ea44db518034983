"""A lake written by an earlier lakecore (commit 6f2bf9e, before the package was layered)
opens, reads, serves, recreates and verifies with this one: the stored format did not change.

``tests/data/lake_6f2bf9e`` was written by that commit: an online group with three commits
(two inserts, a delete), a view with two transforms given out of column order, a training
dataset with a spine, and a registered model with an alias.
"""

import datetime as dt
import shutil
from pathlib import Path

import pytest

import lakecore

FIXTURE = Path(__file__).parent / "data" / "lake_6f2bf9e"


@pytest.fixture
def old_lake(tmp_path):
    path = tmp_path / "lake"
    shutil.copytree(FIXTURE, path)
    return path


def test_a_lake_written_before_reads_and_verifies(old_lake):
    with lakecore.open(old_lake, readonly=True) as lake:
        report = lake.verify()
        assert report.ok, report.problems
        spend = lake.feature_group("spend")
        assert [c.operation for c in spend.history()] == ["insert", "insert", "delete"]
        assert sorted(spend.read().column("total").to_pylist()) == [10.0, 30.0, 40.0]
        assert sorted(spend.read(as_of=0).column("total").to_pylist()) == [10.0, 20.0, 40.0]
        assert spend.online_read({"card": [1, 2, 3]}).column("total").to_pylist() == \
            [40.0, None, 30.0]
        td = lake.feature_view("fraud").training_data(1)
        assert td.read().to_pydict() == {"total": [1.0, 0.0], "kind_atm": [0, 1],
                                         "kind_web": [1, 0], "y": [0, 1]}
        model = lake.models.get("scorer", alias="production")
        assert [n.ref for n in lake.lineage(model)] == [
            "td:fraud@1/1", "fv:fraud@1", "fg:spend@1#2"]


def test_a_lake_written_before_recreates_and_takes_new_writes(old_lake):
    with lakecore.open(old_lake) as lake:
        td = lake.feature_view("fraud").training_data(1)
        assert td.recreate().hash == td.hash
        spend = lake.feature_group("spend")
        day = dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc)
        spend.insert({"card": [1], "at": [day], "total": [50.0], "kind": ["pos"]})
        assert spend.online_read({"card": [1]}).column("total").to_pylist() == [50.0]
        report = lake.verify()
        assert report.ok, report.problems


def test_a_lake_written_before_evolves(old_lake):
    import pyarrow as pa

    with lakecore.open(old_lake) as lake:
        spend = lake.feature_group("spend")
        td = lake.feature_view("fraud").training_data(1)
        spend.add_columns([pa.field("merchant", pa.string())])
        assert spend.online_read({"card": [1]}).column("merchant").to_pylist() == [None]
        day = dt.datetime(2026, 1, 7, tzinfo=dt.timezone.utc)
        spend.insert({"card": [2], "at": [day], "total": [5.0], "kind": ["pos"],
                      "merchant": ["m1"]})
        assert spend.online_read({"card": [2]}).column("merchant").to_pylist() == ["m1"]
        assert spend.read(as_of=2).column_names == ["card", "at", "total", "kind"]
        assert td.recreate().hash == td.hash
        assert lake.feature_view("fraud").feature_vector({"card": 2})["total"] is not None
        report = lake.verify()
        assert report.ok, report.problems
