"""Wide inserts: 10 rows of 2,500, 5,000 and 10,000 float columns into a group that has them,
so that the cost per column shows (it must be linear: each column checked, cast and written
once, no per-column rebuild of the column list)."""

import numpy as np
import pytest

import lakecore


@pytest.mark.parametrize("columns", [2_500, 5_000, 10_000])
def test_wide_insert(benchmark, tmp_path, columns):
    data = {"id": np.arange(10), **{f"c{i}": np.zeros(10) for i in range(columns)}}
    with lakecore.open(str(tmp_path / "lake")) as lake:
        fg = lake.create_feature_group("wide", primary_key="id")
        fg.insert(data)
        commit = benchmark.pedantic(fg.insert, args=(data,), rounds=3, iterations=1)
    assert commit.rows_added == 10
