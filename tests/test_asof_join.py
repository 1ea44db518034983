"""lakecore.asof_join: the public contract, against the reference and against peers."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given

import lakecore
from lakecore import SchemaError, ValidationError
from tests.reference import asof_reference
from tests.strategies import asof_case


def same_values(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas and values, NaN equal to NaN."""
    def norm(table):
        return {k: ["NaN" if v != v else v for v in col] for k, col in table.to_pydict().items()}
    return a.schema == b.schema and norm(a) == norm(b)


@given(asof_case())
def test_matches_reference(case):
    out = lakecore.asof_join(
        case["left"], case["right"], on="t", by=case["by"], direction=case["direction"],
        tolerance=case["tolerance"], allow_exact_matches=not case["strict"],
    )
    expected = asof_reference(case["left_ref"], case["right_ref"], case["direction"],
                              case["ref_tolerance"], case["strict"])
    left, right = case["left"], case["right"]
    assert out.num_rows == left.num_rows
    assert same_values(out.select(left.column_names), left)
    assert out.column("r_row").to_pylist() == expected
    assert out.column("v_right").to_pylist() == [
        None if e is None else f"r{e}" for e in expected
    ]
    by = case["by"] or []
    extra = [c for c in right.column_names if c != "t" and c not in ([by] if isinstance(by, str) else by)]
    assert out.column_names == left.column_names + [c + "_right" if c in left.column_names else c
                                                    for c in extra]


def trades_and_quotes():
    trades = pa.table({
        "ticker": ["A", "B", "A", "A", "C"],
        "time": pa.array([3, 3, 7, 1, 5], pa.int64()).cast(pa.timestamp("s")),
        "qty": [10, 20, 30, 40, 50],
    })
    quotes = pa.table({
        "ticker": ["A", "A", "B", "A", "A"],
        "time": pa.array([2, 5, 3, 5, 9], pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(
            pa.timestamp("ms", tz="UTC")),
        "bid": [1.0, 2.0, 3.0, 2.5, 4.0],
    })
    # quotes are in seconds too, scaled to ms
    quotes = quotes.set_column(1, "time", pa.array([2000, 5000, 3000, 5000, 9000], pa.int64())
                               .cast(pa.timestamp("ms", tz="UTC")))
    return trades, quotes


def test_backward_forward_nearest_on_a_small_example():
    trades, quotes = trades_and_quotes()
    back = lakecore.asof_join(trades, quotes, on="time", by="ticker")
    assert back.column("bid").to_pylist() == [1.0, 3.0, 2.5, None, None]
    fwd = lakecore.asof_join(trades, quotes, on="time", by="ticker", direction="forward")
    assert fwd.column("bid").to_pylist() == [2.5, 3.0, 4.0, 1.0, None]
    near = lakecore.asof_join(trades, quotes, on="time", by="ticker", direction="nearest")
    # time 3 is 1 s from 2 and 2 s from 5; time 7 is 2 s from both 5 and 9: backward wins
    assert near.column("bid").to_pylist() == [1.0, 3.0, 2.5, 1.0, None]
    strict = lakecore.asof_join(trades, quotes, on="time", by="ticker", allow_exact_matches=False)
    assert strict.column("bid").to_pylist() == [1.0, None, 2.5, None, None]
    tol = lakecore.asof_join(trades, quotes, on="time", by="ticker",
                             tolerance=dt.timedelta(seconds=1))
    assert tol.column("bid").to_pylist() == [1.0, 3.0, None, None, None]
    assert back.column_names == ["ticker", "time", "qty", "bid"]
    assert back.schema.field("time").type == pa.timestamp("s")


def test_ties_last_right_row_wins_and_left_order_is_kept():
    left = {"k": [1, 1, 1], "t": [5, 0, 5]}
    right = {"k": [1, 1, 1, 1], "t": [5, 5, 1, 5], "v": ["a", "b", "c", "d"]}
    out = lakecore.asof_join(left, right, on="t", by="k")
    assert out.column("v").to_pylist() == ["d", None, "d"]
    out = lakecore.asof_join(left, right, on="t", by="k", direction="forward")
    assert out.column("v").to_pylist() == ["d", "c", "d"]


def test_accepts_pandas_polars_record_batches_and_dicts():
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    left = {"k": [1, 2], "t": [3, 3]}
    right = {"k": [1, 2], "t": [1, 4], "v": [0.5, 0.25]}
    expected = lakecore.asof_join(left, right, on="t", by="k")
    assert expected.column("v").to_pylist() == [0.5, None]
    for convert in (pd.DataFrame, pl.DataFrame, lambda d: pa.RecordBatch.from_pydict(d)):
        out = lakecore.asof_join(convert(left), convert(right), on="t", by="k")
        assert out.column("v").to_pylist() == [0.5, None]


def test_integer_widths_and_timestamp_units_are_unified():
    left = pa.table({"k": pa.array([1, 300], pa.int16()),
                     "t": pa.array([1_500, 2_000_000], pa.int64()).cast(pa.timestamp("us"))})
    right = pa.table({"k": pa.array([1, 300], pa.uint64()),
                      "t": pa.array([1, 3000], pa.int64()).cast(pa.timestamp("ms", tz="Asia/Tokyo")),
                      "v": [1, 2]})
    out = lakecore.asof_join(left, right, on="t", by="k")
    assert out.column("v").to_pylist() == [1, None]  # 1.5 ms >= 1 ms; 2 s < 3 s
    out = lakecore.asof_join(left, right, on="t", by="k", direction="forward")
    assert out.column("v").to_pylist() == [None, 2]


def test_uint64_keys_beyond_int64_never_match_signed_keys():
    left = pa.table({"k": pa.array([-1, 5], pa.int64()), "t": [1, 1]})
    right = pa.table({"k": pa.array([2**64 - 1, 5], pa.uint64()), "t": [0, 0], "v": [1, 2]})
    assert lakecore.asof_join(left, right, on="t", by="k").column("v").to_pylist() == [None, 2]


def test_read_only_numpy_inputs_through_pandas():
    pd = pytest.importorskip("pandas")
    k = np.array([1, 1, 2]); t = np.array([1, 2, 3]); v = np.array([0.1, 0.2, 0.3])
    for a in (k, t, v):
        a.setflags(write=False)
    frame = pd.DataFrame({"k": k, "t": t, "v": v}, copy=False)
    out = lakecore.asof_join(frame[["k", "t"]], frame, on="t", by="k")
    assert out.column("v").to_pylist() == [0.1, 0.2, 0.3]


def test_empty_sides():
    empty_right = pa.table({"k": pa.array([], pa.int64()), "t": pa.array([], pa.int64()),
                            "v": pa.array([], pa.float64())})
    out = lakecore.asof_join({"k": [1], "t": [1]}, empty_right, on="t", by="k")
    assert out.to_pydict() == {"k": [1], "t": [1], "v": [None]}
    out = lakecore.asof_join(empty_right.select(["k", "t"]), empty_right, on="t", by="k")
    assert out.num_rows == 0 and out.column_names == ["k", "t", "v"]


def test_no_by_matches_on_time_only():
    out = lakecore.asof_join({"t": [0, 5, 10]}, {"t": [4, 6], "v": ["x", "y"]}, on="t")
    assert out.column("v").to_pylist() == [None, "x", "y"]


def test_suffix_and_clashes():
    left = {"k": [1], "t": [1], "v": [0]}
    right = {"k": [1], "t": [1], "v": [9], "v_r": [8]}
    out = lakecore.asof_join(left, right, on="t", by="k", suffix="_q")
    assert out.column_names == ["k", "t", "v", "v_q", "v_r"]
    with pytest.raises(SchemaError, match="v_r"):
        lakecore.asof_join({**left, "v_r": [0]}, right, on="t", by="k", suffix="_r")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        (dict(on="missing"), SchemaError, ["left", "missing"]),
        (dict(on="t", by="nope"), SchemaError, ["nope"]),
        (dict(on="t", by=3), SchemaError, ["by"]),
        (dict(on="t", direction="sideways"), ValidationError, ["direction", "sideways"]),
        (dict(on="t", tolerance=-1), ValidationError, ["tolerance"]),
        (dict(on="t", tolerance=dt.timedelta(1)), SchemaError, ["tolerance", "number"]),
        (dict(on="t", tolerance="1s"), SchemaError, ["tolerance"]),
        (dict(on="t", by="t"), SchemaError, ["by"]),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, words):
    with pytest.raises(error) as info:
        lakecore.asof_join({"k": [1], "t": [1]}, {"k": [1], "t": [1]}, **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("left_t", "right_t"),
    [
        (pa.int64(), pa.float64()),
        (pa.timestamp("us"), pa.int64()),
        (pa.timestamp("us"), pa.date32()),
        (pa.string(), pa.string()),
    ],
)
def test_mismatched_on_types_raise_schema_error_naming_both(left_t, right_t):
    def column(t):
        if t == pa.string():
            return pa.array(["1"])
        return pa.array([1], pa.int32() if t == pa.date32() else pa.int64()).cast(t)

    left = pa.table({"t": column(left_t)})
    right = pa.table({"t": column(right_t)})
    with pytest.raises(SchemaError) as info:
        lakecore.asof_join(left, right, on="t")
    assert "'t'" in str(info.value)
    assert str(left_t) in str(info.value) or str(right_t) in str(info.value)
    if left_t != right_t:
        assert str(left_t) in str(info.value) and str(right_t) in str(info.value)


def test_mismatched_key_types_raise_schema_error_naming_both():
    with pytest.raises(SchemaError) as info:
        lakecore.asof_join({"k": [1], "t": [1]}, {"k": ["1"], "t": [1]}, on="t", by="k")
    assert "'k'" in str(info.value) and "int64" in str(info.value) and "string" in str(info.value)
    with pytest.raises(SchemaError, match="double"):
        lakecore.asof_join({"k": [1.0], "t": [1]}, {"k": [1.0], "t": [1]}, on="t", by="k")


def test_unsupported_input_object():
    with pytest.raises(SchemaError, match="right"):
        lakecore.asof_join({"t": [1]}, [1, 2, 3], on="t")
    with pytest.raises(SchemaError, match="left"):
        lakecore.asof_join({"t": [1], "u": [1, 2]}, {"t": [1]}, on="t")


def test_null_times_and_keys_never_match():
    left = {"k": [1, None, 1], "t": [5, 5, None]}
    right = {"k": [1, None, 1], "t": [1, 1, None], "v": [1, 2, 3]}
    out = lakecore.asof_join(left, right, on="t", by="k")
    assert out.column("v").to_pylist() == [1, None, None]


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(3)
    n = 300_000
    left = pa.table({"k": rng.integers(0, 1000, n), "t": rng.integers(0, 10**6, n)})
    right = pa.table({"k": rng.integers(0, 1000, n), "t": rng.integers(0, 10**6, n),
                      "v": rng.random(n)})
    try:
        lakecore.set_num_threads(1)
        one = lakecore.asof_join(left, right, on="t", by="k")
        lakecore.set_num_threads(2)
        two = lakecore.asof_join(left, right, on="t", by="k")
    finally:
        lakecore.set_num_threads(None)
    assert one.equals(two)


def test_set_num_threads_validates():
    with pytest.raises(ValidationError):
        lakecore.set_num_threads(0)


def test_sliced_and_chunked_inputs_match_contiguous_ones():
    rng = np.random.default_rng(11)
    n = 2_000
    keys = [f"k{i}" if i % 7 else None for i in rng.integers(0, 30, n)]
    left = pa.table({"s": keys, "n": pa.array(rng.integers(0, 30, n), pa.int32()),
                     "t": pa.array(rng.integers(0, 500, n)).cast(pa.timestamp("ms"))})
    right = pa.table({"s": keys[::-1], "n": pa.array(rng.integers(0, 30, n), pa.int64()),
                      "t": pa.array(rng.integers(0, 500_000, n)).cast(pa.timestamp("us")),
                      "v": rng.random(n)})
    by = ["s", "n"]
    expected = lakecore.asof_join(left.slice(13, 1500).combine_chunks(),
                                  right.slice(7, 1900).combine_chunks(), on="t", by=by)
    chunked_left = pa.concat_tables([left.slice(13, 700), left.slice(713, 800)])
    chunked_right = pa.concat_tables([right.slice(7, 1000), right.slice(1007, 900)])
    got = lakecore.asof_join(chunked_left, chunked_right, on="t", by=by)
    assert got.to_pydict() == expected.to_pydict()
    assert got.column("v").null_count < got.num_rows


def test_dictionary_and_view_keys_match_plain_strings():
    left = pa.table({"s": pa.array(["a", "b", "a"]).dictionary_encode(), "t": [5, 5, 0]})
    right = pa.table({"s": pa.array(["a", "b"], pa.string_view()), "t": [1, 1], "v": [1, 2]})
    out = lakecore.asof_join(left, right, on="t", by="s")
    assert out.column("v").to_pylist() == [1, 2, None]


def test_nanosecond_times_and_unbounded_tolerance():
    left = pa.table({"t": pa.array([10**18 + 5], pa.int64()).cast(pa.timestamp("ns"))})
    right = pa.table({"t": pa.array([10**18 + 4, 10**18 + 6], pa.int64()).cast(pa.timestamp("ns")),
                      "v": [1, 2]})
    for tol, direction, expected in [
        (dt.timedelta(microseconds=1), "backward", 1),
        (dt.timedelta.max, "forward", 2),
        (dt.timedelta(0), "nearest", None),
        (np.timedelta64(1, "us"), "nearest", 1),
    ]:
        out = lakecore.asof_join(left, right, on="t", tolerance=tol, direction=direction)
        assert out.column("v").to_pylist() == [expected]


def test_date_times_with_day_tolerance():
    left = pa.table({"d": pa.array([dt.date(2024, 1, 10), dt.date(2024, 1, 3)])})
    right = pa.table({"d": pa.array([dt.date(2024, 1, 8)], pa.date64()), "v": ["x"]})
    out = lakecore.asof_join(left, right, on="d", tolerance=dt.timedelta(days=2, hours=23))
    assert out.column("v").to_pylist() == ["x", None]
