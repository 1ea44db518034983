"""asof_join against pandas ``merge_asof`` and polars ``join_asof`` on larger random data.

Right times are unique per key, where the peers agree with each other on ties.
"""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import lakecore

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")


def random_case(seed: int, n: int, n_keys: int):
    rng = np.random.default_rng(seed)
    left = pa.table({
        "key": rng.integers(0, n_keys, n),
        "ts": pa.array(rng.integers(0, n * 10_000, n) * 1000, pa.int64()).cast(pa.timestamp("us")),
        "lid": np.arange(n),
    })
    # unique right times: distinct slots of 10,000, a random offset inside each
    right_times = (rng.permutation(n) * 10_000 + rng.integers(0, 10_000, n)) * 1000
    right = pa.table({
        "key": rng.integers(0, n_keys, n),
        "ts": pa.array(right_times, pa.int64()).cast(pa.timestamp("us")),
        "rid": np.arange(n),
    })
    return left, right


CASES = [
    dict(direction="backward"),
    dict(direction="forward"),
    dict(direction="nearest"),
    dict(direction="backward", tolerance=dt.timedelta(seconds=10_000)),
    dict(direction="forward", allow_exact_matches=False),
    dict(direction="nearest", tolerance=dt.timedelta(seconds=5_000)),
]


@pytest.mark.parametrize("kwargs", CASES, ids=lambda k: "-".join(map(str, k.values())))
def test_agrees_with_pandas_and_polars(kwargs):
    left, right = random_case(seed=len(str(kwargs)), n=100_000, n_keys=2_000)
    # make some exact matches happen
    left = left.set_column(1, "ts", pa.concat_arrays([right.column("ts").chunk(0)[:5000],
                                                      left.column("ts").chunk(0)[5000:]]))
    ours = lakecore.asof_join(left, right, on="ts", by="key", **kwargs)
    ours_rid = ours.column("rid").to_numpy(zero_copy_only=False)

    exact = kwargs.get("allow_exact_matches", True)
    tol = kwargs.get("tolerance")
    pdl = left.to_pandas().sort_values("ts", kind="stable")
    pdr = right.to_pandas().sort_values("ts", kind="stable")
    merged = pd.merge_asof(pdl, pdr, on="ts", by="key", direction=kwargs["direction"],
                           tolerance=None if tol is None else pd.Timedelta(tol),
                           allow_exact_matches=exact).sort_values("lid")
    pandas_rid = merged["rid"].to_numpy(dtype=float, na_value=np.nan)

    joined = pl.from_arrow(left).sort("ts").join_asof(
        pl.from_arrow(right).sort("ts"), on="ts", by="key", strategy=kwargs["direction"],
        tolerance=tol, allow_exact_matches=exact, check_sortedness=False,
    ).sort("lid")
    polars_rid = joined["rid"].to_numpy().astype(float)

    np.testing.assert_array_equal(pandas_rid, polars_rid)
    np.testing.assert_array_equal(np.where(np.isnan(ours_rid.astype(float)), np.nan, ours_rid),
                                  pandas_rid)
    assert ours.column("lid").to_pylist() == list(range(left.num_rows))
    nulls = ours.column("rid").null_count
    if tol is None:
        assert nulls < left.num_rows / 2
    else:  # the tolerance rejects some matches, not all
        assert left.num_rows / 10 < nulls < left.num_rows * 9 / 10
