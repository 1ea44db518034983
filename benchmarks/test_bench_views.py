"""Feature views: training data for a 1e5-row spine against a 1e6-row group (1e4 keys, ttl 7
days), and a two-group online feature vector. Ratios against DuckDB:
``python -m benchmarks.peers_training``."""

import datetime as dt
import tempfile

import numpy as np
import pyarrow as pa
import pytest

import lakecore
from benchmarks.peers_training import group_rows, spine_rows


@pytest.fixture(scope="module")
def view():
    with tempfile.TemporaryDirectory() as path:
        lake = lakecore.open(path)
        fg = lake.create_feature_group("g0", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(days=7))
        fg.insert(group_rows(1_000_000, 10_000, 0))
        yield lake.create_feature_view("v", query=fg.select_all(), labels=["label"])
        lake.close()


def test_training_data_1e5_spine_1e6_rows(benchmark, view):
    spine = spine_rows(100_000, 10_000)
    td = benchmark.pedantic(lambda: view.create_training_data(spine=spine), rounds=5)
    assert td.read().num_rows == 100_000


@pytest.fixture(scope="module")
def online_view():
    with tempfile.TemporaryDirectory() as path:
        lake = lakecore.open(path)
        now = dt.datetime.now(dt.timezone.utc)
        rng = np.random.default_rng(0)
        query = None
        for name in ("a", "b"):
            fg = lake.create_feature_group(name, primary_key="id", event_time="ts", online=True)
            fg.insert({"id": np.arange(100_000), "ts": pa.array([now] * 100_000,
                                                                pa.timestamp("us", "UTC")),
                       **{f"{name}{i}": rng.random(100_000) for i in range(10)}})
            query = fg.select_all() if query is None else query.join(fg.select_all())
        yield lake.create_feature_view("serving", query=query)
        lake.close()


def test_feature_vector_two_groups(benchmark, online_view):
    vector = benchmark(online_view.feature_vector, {"id": 12_345})
    assert len(vector) == 20 and None not in vector.values()


def test_feature_vectors_1000_keys(benchmark, online_view):
    keys = {"id": np.random.default_rng(1).integers(0, 100_000, 1000)}
    assert benchmark(online_view.feature_vectors, keys).num_rows == 1000
