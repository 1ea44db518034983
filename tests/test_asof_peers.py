"""asof_join against pandas ``merge_asof`` and polars ``join_asof``.

On larger random data right times are unique per key, where the peers agree with each other
on ties; with ties (equal keys and times on the right) asof_join follows pandas: backward takes
the last such right row, forward the first, nearest the one of the side it picks. Property
tests compare with pandas on small inputs full of ties, with ``left_on``/``right_on`` and
``left_by``/``right_by`` too.
"""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given

import lakecore
from tests.strategies import pandas_asof_case

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


def pandas_case(left_times, right_times, left_keys=(), right_keys=(), direction="backward",
                allow_exact_matches=True, tolerance=None, rename=False, time_kind="int"):
    """A ``pandas_asof_case`` written out by hand (for ``@example``)."""
    key_kinds = ["string" if isinstance(keys[0], str) else "int" for keys in left_keys]
    return dict(time_kind=time_kind, key_kinds=key_kinds, left_times=left_times,
                left_keys=list(left_keys), right_times=right_times, right_keys=list(right_keys),
                direction=direction, allow_exact_matches=allow_exact_matches,
                tolerance=tolerance, rename=rename)


TIES = [1, 1, 1, 5, 5, 5, 9, 9]


@given(pandas_asof_case())
@example(pandas_case([3], [3, 3, 1], direction="forward"))
@example(pandas_case([3], [3, 3, 1], direction="backward"))
@example(pandas_case([0, 1, 4, 8], TIES, direction="nearest"))
@example(pandas_case([1, 5], TIES, direction="nearest", allow_exact_matches=False))
@example(pandas_case([1, 2, 3], [1, 1, 3, 3, 2], [[0, 0, 1]], [[0, 0, 0, 0, 0]],
                     direction="nearest", rename=True))
@example(pandas_case([0, 1000, 2000], [1500, 1500, 2500, 3000], direction="forward",
                     tolerance=1500, time_kind="timestamp", rename=True))
def test_agrees_with_pandas_on_ties_and_column_names(case):
    kind = case["time_kind"]
    key_types = [pa.int64() if k == "int" else pa.string() for k in case["key_kinds"]]
    left_names = [f"k{i}" for i in range(len(key_types))]
    right_names = [f"rk{i}" if case["rename"] else f"k{i}" for i in range(len(key_types))]
    right_on = "rt" if case["rename"] else "t"
    time_type = {"int": pa.int64(), "float": pa.float64(), "timestamp": pa.timestamp("ns")}[kind]

    def table(keys, times, key_names, time_name, row_name):
        columns = [pa.array(k, t) for k, t in zip(keys, key_types)]
        columns += [pa.array(times, time_type), pa.array(range(len(times)), pa.int64())]
        return pa.table(columns, names=[*key_names, time_name, row_name])

    left = table(case["left_keys"], case["left_times"], left_names, "t", "lid")
    right = table(case["right_keys"], case["right_times"], right_names, right_on, "rid")
    tolerance = case["tolerance"]
    if case["rename"]:
        names = dict(left_on="t", right_on=right_on, left_by=left_names, right_by=right_names)
        pandas_names = dict(names, left_by=left_names or None, right_by=right_names or None)
    else:
        names = dict(on="t", by=left_names)
        pandas_names = dict(on="t", by=left_names or None)
    timed = kind == "timestamp" and tolerance is not None
    ours = lakecore.asof_join(
        left, right, **names, direction=case["direction"],
        allow_exact_matches=case["allow_exact_matches"],
        tolerance=np.timedelta64(tolerance, "ns") if timed else tolerance,
    )
    if left.num_rows and right.num_rows:   # (pandas fails on some empty string columns)
        pdl = left.to_pandas().sort_values("t", kind="stable")
        pdr = right.to_pandas().sort_values(right_on, kind="stable")
        merged = pd.merge_asof(
            pdl, pdr, **pandas_names, direction=case["direction"],
            allow_exact_matches=case["allow_exact_matches"],
            tolerance=pd.Timedelta(tolerance, "ns") if timed else tolerance,
        ).sort_values("lid")
        expected = [None if r != r else int(r) for r in merged["rid"]]
    else:
        expected = [None] * left.num_rows
    assert ours.column("rid").to_pylist() == expected
    assert ours.column("lid").to_pylist() == list(range(left.num_rows))
    # right on/by columns with other names than the left's are kept
    assert ours.column_names == [*left_names, "t", "lid",
                                 *([*right_names, right_on] if case["rename"] else []), "rid"]


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
@pytest.mark.parametrize("allow_exact_matches", [True, False])
def test_agrees_with_pandas_on_many_ties(direction, allow_exact_matches):
    rng = np.random.default_rng(17)
    n = 50_000
    # left times in whole ms, right times every 20 ms: exact matches are common, and about
    # 5 right rows share each (key, time)
    left = pa.table({"key": rng.integers(0, 100, n),
                     "ts": pa.array(rng.integers(0, 2_000, n) * 1_000_000).cast(pa.timestamp("ns")),
                     "lid": np.arange(n)})
    right = pa.table({"key": rng.integers(0, 100, n),
                      "ts": pa.array(rng.integers(0, 100, n) * 20_000).cast(pa.timestamp("us")),
                      "rid": np.arange(n)})
    tolerance = np.timedelta64(10, "ms")
    ours = lakecore.asof_join(left, right, on="ts", by="key", direction=direction,
                              allow_exact_matches=allow_exact_matches, tolerance=tolerance)
    pdl = left.to_pandas().sort_values("ts", kind="stable")
    pdr = right.to_pandas().sort_values("ts", kind="stable")
    pdr["ts"] = pdr["ts"].astype("datetime64[ns]")
    merged = pd.merge_asof(pdl, pdr, on="ts", by="key", direction=direction,
                           allow_exact_matches=allow_exact_matches,
                           tolerance=pd.Timedelta(tolerance)).sort_values("lid")
    expected = merged["rid"].to_numpy(dtype=float, na_value=np.nan)
    got = ours.column("rid").to_numpy(zero_copy_only=False).astype(float)
    np.testing.assert_array_equal(got, expected)
    assert 0 < np.isnan(got).sum() < n * 9 / 10
