"""Column statistics: every figure against a plain numpy/Python reference, deterministic,
per commit (time travel included), and the stats command."""

import collections
import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakecore
from lakecore.cli import main as cli
from lakecore.quality.statistics import QUANTILES, describe


def rank_value(ordered, q):
    """The value at rank ceil(q * n) (1-based)."""
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


numbers = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False),
                             st.just(float("nan"))), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(numbers)
def test_number_statistics_match_numpy(values):
    stats = describe(pa.table({"x": pa.array(values, pa.float64())})).columns["x"]
    present = sorted(v for v in values if v is not None and not math.isnan(v))
    assert (stats.count, stats.nulls, stats.distinct) == (len(values), len(values) - len(present),
                                                         len(set(present)))
    if not present:
        assert stats.min is None and stats.histogram is None
        return
    assert (stats.min, stats.max) == (present[0], present[-1])
    assert math.isclose(stats.mean, float(np.mean(present)), rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(stats.std, float(np.std(present)), rel_tol=1e-9, abs_tol=1e-6)
    assert stats.quantiles == {q: rank_value(present, q) for q in QUANTILES}
    edges, counts = stats.histogram
    assert len(edges) == 21 and len(counts) == 20 and sum(counts) == len(present)
    assert edges[0] == present[0] and math.isclose(edges[-1], present[-1])
    if present[0] != present[-1]:
        try:
            expected, _ = np.histogram(present, bins=20, range=(present[0], present[-1]))
        except ValueError:      # numpy cannot cut so narrow a range (a few subnormals) in 20
            expected = None
        if expected is not None:
            assert counts == expected.tolist()
    assert describe(pa.table({"x": pa.array(values, pa.float64())})) == describe(
        pa.table({"x": pa.array(values, pa.float64())}))        # deterministic


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "dd", "é"])), max_size=60))
def test_string_statistics_count_the_most_frequent_values(values):
    stats = describe(pa.table({"s": pa.array(values, pa.string())})).columns["s"]
    present = [v for v in values if v is not None]
    counts = collections.Counter(present)
    assert stats.distinct == len(counts) and stats.nulls == len(values) - len(present)
    if present:
        assert stats.top == sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:20]


def test_times_are_described_as_times():
    days = [dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc) for d in (1, 2, 3, 4, 9)]
    stats = describe(pa.table({"t": pa.array(days, pa.timestamp("us", "UTC"))})).columns["t"]
    assert (stats.min, stats.max) == (days[0], days[-1])
    assert stats.quantiles[0.5] == days[2] and stats.mean == dt.datetime(
        2026, 1, 3, 19, 12, tzinfo=dt.timezone.utc)
    assert stats.histogram[0][0] == days[0] and stats.histogram[0][-1] == days[-1]


def test_feature_group_statistics_follow_the_commits(tmp_path, capsys):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("users", primary_key="id")
        fg.insert({"id": [1, 2, 3], "age": [30, 40, None], "city": ["a", "b", "a"]})
        fg.insert({"id": [4], "age": [50], "city": ["c"]})
        assert fg.statistics(as_of=0).columns["age"].mean == 35.0
        assert fg.statistics().columns["age"].mean == 40.0
        assert list(fg.statistics(columns=["city"]).columns) == ["city"]
        table = fg.statistics().to_table()
        assert table.column("column").to_pylist() == ["id", "age", "city"]
        with pytest.raises(lakecore.SchemaError, match="'nope'"):
            fg.statistics(columns=["nope"])
    assert cli(["stats", str(tmp_path / "lake"), "fg:users@1#0"]) == 0
    out = capsys.readouterr().out
    assert "age: count 3, nulls 1, distinct 2, min 30, max 40, mean 35.0" in out
    assert cli(["stats", str(tmp_path / "lake"), "fv:users@1"]) == 2


def test_training_data_keeps_the_statistics_of_its_features_in_its_manifest(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": list(range(100)), "x": [float(i) for i in range(100)],
                   "c": ["a" if i % 3 else "b" for i in range(100)]})
        view = lake.create_feature_view("v", query=fg.select_all(),
                                        transforms={"x": "standard_scaler"})
        td = view.create_training_data(split={"train": 0.8, "test": 0.2}, seed=1)
        assert set(td._spec.statistics) == {"", "train", "test"}
        train = td.read("train", with_keys=True)
        assert td.statistics("train").columns["x"].count == train.num_rows
        raw_mean = float(np.mean(train.column("id").to_numpy()))   # x equals id, untransformed
        assert math.isclose(td.statistics("train").columns["x"].mean, raw_mean)
        assert td.statistics().columns["x"].count == 100
        assert td.statistics().columns["c"].top == [("a", 66), ("b", 34)]
        with pytest.raises(lakecore.ValidationError, match="split"):
            td.statistics("nope")
        assert td.recreate().hash == td.hash
    with lakecore.open(tmp_path / "lake") as again:
        td = again.feature_view("v").training_data(1)
        assert td.recreate().hash == td.hash
        assert td.statistics("test").columns["x"].count == 20
        assert again.verify().ok
