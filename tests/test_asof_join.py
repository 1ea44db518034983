"""lakecore.asof_join: the public contract, against the reference and against peers."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given

import lakecore
from lakecore import SchemaError, ValidationError
from tests.reference import asof_reference
from tests.strategies import asof_case


def same_values(a: pa.Table, b: pa.Table) -> bool:
    """Equal schemas and values, NaN equal to NaN."""
    def norm(table):
        return {k: ["NaN" if v != v else v for v in col] for k, col in table.to_pydict().items()}
    return a.schema == b.schema and norm(a) == norm(b)


def rows_case(left_rows, right_rows, direction="backward", strict=False, tolerance=None,
              **kwargs):
    """A case like ``asof_case``'s from ``(int key or None, int time or None)`` rows."""
    def side(rows, name):
        n = len(rows)
        return pa.table({"k": pa.array([k for k, _ in rows], pa.int64()),
                         "t": pa.array([t for _, t in rows], pa.int64()),
                         f"{name}_row": pa.array(range(n), pa.int64()),
                         "v": [f"{name}{i}" for i in range(n)]})

    def ref(rows):
        return [(None if k is None else (k,), t) for k, t in rows]

    right = side(right_rows, "r")
    renames = {"t": kwargs.get("right_on", "t"), "k": kwargs.get("right_by", "k")}
    right = right.rename_columns([renames.get(c, c) for c in right.column_names])
    return dict(left=side(left_rows, "l"), right=right, left_ref=ref(left_rows),
                right_ref=ref(right_rows), by="k", direction=direction, strict=strict,
                tolerance=tolerance, ref_tolerance=tolerance,
                kwargs=kwargs or dict(on="t", by="k"))


def output_names(left: pa.Table, right: pa.Table, kwargs: dict, suffix: str = "_right"):
    """The contract's output columns: a right on/by column is dropped only when it has the
    same name as its left counterpart; other clashes get the suffix."""
    def names(value):
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    pairs = [(kwargs.get("on") or kwargs["left_on"], kwargs.get("on") or kwargs["right_on"])]
    pairs += zip(names(kwargs.get("by") or kwargs.get("left_by")),
                 names(kwargs.get("by") or kwargs.get("right_by")))
    dropped = {r for lc, r in pairs if lc == r}
    extra = [c for c in right.column_names if c not in dropped]
    return left.column_names + [c + suffix if c in left.column_names else c for c in extra]


@given(asof_case(distinct_names=True))
# forward takes the first of equal right times, backward the last
@example(rows_case([(1, 3)], [(1, 3), (1, 3), (1, 1)], "forward"))
@example(rows_case([(1, 3)], [(1, 3), (1, 3), (1, 5)], "backward"))
# nearest: the first of the forward run, the last of the backward run (and of an exact run)
@example(rows_case([(1, 0), (1, 1), (1, 4), (1, 8)],
                   [(1, 1), (1, 1), (1, 1), (1, 5), (1, 5), (1, 5), (1, 9), (1, 9)], "nearest"))
@example(rows_case([(1, 1), (1, 5)],
                   [(1, 1), (1, 1), (1, 1), (1, 5), (1, 5), (1, 5), (1, 9), (1, 9)], "nearest",
                   strict=True))
# right on/by columns with other names are kept (one clashing with a left column)
@example(rows_case([(1, 3), (2, 3)], [(1, 2), (2, 4)], left_on="t", right_on="l_row",
                   left_by="k", right_by="k2"))
def test_matches_reference(case):
    left, right = case["left"], case["right"]
    out = lakecore.asof_join(
        left, right, **case["kwargs"], direction=case["direction"],
        tolerance=case["tolerance"], allow_exact_matches=not case["strict"],
    )
    expected = asof_reference(case["left_ref"], case["right_ref"], case["direction"],
                              case["ref_tolerance"], case["strict"])
    assert out.num_rows == left.num_rows
    assert same_values(out.select(left.column_names), left)
    assert out.column("r_row").to_pylist() == expected
    assert out.column("v_right").to_pylist() == [
        None if e is None else f"r{e}" for e in expected
    ]
    assert out.column_names == output_names(left, right, case["kwargs"])


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
    # two A quotes at 5 s: forward takes the first (2.0), backward the last (2.5)
    assert fwd.column("bid").to_pylist() == [2.0, 3.0, 4.0, 1.0, None]
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


def test_ties_backward_takes_last_forward_takes_first_and_left_order_is_kept():
    left = {"k": [1, 1, 1, 1], "t": [5, 0, 5, 6]}
    right = {"k": [1, 1, 1, 1, 2], "t": [5, 5, 1, 5, 5], "v": ["a", "b", "c", "d", "e"]}
    out = lakecore.asof_join(left, right, on="t", by="k")
    assert out.column("v").to_pylist() == ["d", None, "d", "d"]
    out = lakecore.asof_join(left, right, on="t", by="k", direction="forward")
    assert out.column("v").to_pylist() == ["a", "c", "a", None]
    out = lakecore.asof_join(left, right, on="t", by="k", direction="forward",
                             allow_exact_matches=False)
    assert out.column("v").to_pylist() == [None, "c", None, None]
    # nearest: an exact match is the backward one (the last); the forward side's first
    out = lakecore.asof_join(left, right, on="t", by="k", direction="nearest")
    assert out.column("v").to_pylist() == ["d", "c", "d", "d"]


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
@pytest.mark.parametrize("allow_exact_matches", [True, False])
def test_ties_agree_with_pandas(direction, allow_exact_matches):
    pd = pytest.importorskip("pandas")
    right = pd.DataFrame({"t": [1, 1, 1, 5, 5, 5, 9, 9], "rid": range(8)})
    left = pd.DataFrame({"t": range(11)})
    expected = pd.merge_asof(left, right, on="t", direction=direction,
                             allow_exact_matches=allow_exact_matches)["rid"]
    # right shuffled: "first" and "last" mean in right's order, which a stable sort keeps
    shuffled = right.iloc[[3, 6, 0, 4, 1, 7, 5, 2]]
    out = lakecore.asof_join(left, shuffled, on="t", direction=direction,
                             allow_exact_matches=allow_exact_matches)
    got = out.column("rid").to_pylist()
    assert got == [None if v != v else int(v) for v in expected]
    # these examples exercise both sides of a nearest tie
    if direction == "nearest":
        assert got == ([0, 2, 2, 2, 3, 5, 5, 5, 6, 7, 7] if allow_exact_matches
                       else [0, 3, 2, 2, 3, 2, 5, 5, 6, 5, 7])


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
        # on given two ways, or only half of left_on/right_on, or not at all
        (dict(on="t", left_on="t"), ValidationError, ["on", "left_on"]),
        (dict(on="t", right_on="t"), ValidationError, ["on", "right_on"]),
        (dict(on="t", left_on="t", right_on="t"), ValidationError, ["left_on", "right_on"]),
        (dict(left_on="t"), ValidationError, ["right_on"]),
        (dict(right_on="t"), ValidationError, ["left_on"]),
        (dict(), ValidationError, ["on"]),
        (dict(left_on="t", right_on=3), SchemaError, ["right_on"]),
        (dict(left_on="t", right_on="nope"), SchemaError, ["right", "nope"]),
        (dict(left_on="nope", right_on="t"), SchemaError, ["left", "nope"]),
        # by given two ways, half of left_by/right_by, or lists of different lengths
        (dict(on="t", by="k", left_by="k"), ValidationError, ["by", "left_by"]),
        (dict(on="t", by="k", left_by="k", right_by="k"), ValidationError, ["by", "left_by"]),
        (dict(on="t", left_by="k"), ValidationError, ["right_by"]),
        (dict(on="t", right_by="k"), ValidationError, ["left_by"]),
        (dict(on="t", left_by=["k"], right_by=["k", "k"]), ValidationError,
         ["left_by", "right_by", "1", "2"]),
        (dict(on="t", left_by="k", right_by=3), SchemaError, ["right_by"]),
        (dict(on="t", left_by="nope", right_by="k"), SchemaError, ["left", "nope"]),
        (dict(left_on="t", right_on="t", left_by="t", right_by="k"), SchemaError,
         ["left_on", "left_by"]),
        (dict(left_on="k", right_on="t", left_by="t", right_by="t"), SchemaError,
         ["right_on", "right_by"]),
        # allow_exact_matches must be a bool
        (dict(on="t", allow_exact_matches=1), ValidationError, ["allow_exact_matches", "1"]),
        (dict(on="t", allow_exact_matches=0), ValidationError, ["allow_exact_matches"]),
        (dict(on="t", allow_exact_matches="yes"), ValidationError, ["allow_exact_matches"]),
        (dict(on="t", allow_exact_matches=None), ValidationError, ["allow_exact_matches"]),
        # tolerance: negative or NaN numbers; durations for numbers
        (dict(on="t", tolerance=-0.5), ValidationError, ["tolerance"]),
        (dict(on="t", tolerance=float("nan")), ValidationError, ["tolerance"]),
        (dict(on="t", tolerance=np.timedelta64(1, "s")), SchemaError, ["tolerance", "number"]),
        (dict(on="t", tolerance=True), SchemaError, ["tolerance", "number"]),
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


def test_numpy_bools_are_accepted_for_allow_exact_matches():
    left, right = {"t": [1]}, {"t": [1], "v": [2]}
    for flag, expected in [(np.bool_(True), [2]), (np.bool_(False), [None])]:
        out = lakecore.asof_join(left, right, on="t", allow_exact_matches=flag)
        assert out.column("v").to_pylist() == expected


def ns(values, unit="ns"):
    return pa.array(values, pa.int64()).cast(pa.timestamp(unit))


def tolerance_kinds(nanoseconds: int):
    """One duration, spelled every way a tolerance may be (those that can carry it exactly)."""
    pd = pytest.importorskip("pandas")
    kinds = [np.timedelta64(nanoseconds, "ns"), np.timedelta64(nanoseconds * 1000, "ps"),
             pd.Timedelta(nanoseconds, "ns")]
    if nanoseconds % 1000 == 0:
        kinds += [dt.timedelta(microseconds=nanoseconds // 1000),
                  np.timedelta64(nanoseconds // 1000, "us"),
                  pd.Timedelta(nanoseconds // 1000, "us").as_unit("us")]
    return kinds


@pytest.mark.parametrize(
    ("tolerance_ns", "expected"),
    [(999, [None, None, None, None]), (1_000, [None, None, 3, None]),
     (1_500, [1, None, 3, None]), (1_501, [1, 2, 3, None]), (1_999, [1, 2, 3, None]),
     (2_000, [1, 2, 3, 4]), (0, [None, None, None, None])],
)
def test_tolerance_is_exact_in_nanoseconds(tolerance_ns, expected):
    # rows 1,500, 1,501, 1,000 and 2,000 ns apart
    left = pa.table({"t": ns([0, 10_000, 20_000, 30_000])})
    right = pa.table({"t": ns([1_500, 11_501, 21_000, 32_000]), "v": [1, 2, 3, 4]})
    for tolerance in tolerance_kinds(tolerance_ns):
        forward = lakecore.asof_join(left, right, on="t", direction="forward",
                                     tolerance=tolerance)
        assert forward.column("v").to_pylist() == expected, tolerance
        # the same distances looking backward, and the nearest side
        backward = lakecore.asof_join(right.rename_columns(["t", "w"]),
                                      left.append_column("v", pa.array([1, 2, 3, 4])),
                                      on="t", direction="backward", tolerance=tolerance)
        assert backward.column("v").to_pylist() == expected, tolerance
        nearest = lakecore.asof_join(left, right, on="t", direction="nearest",
                                     tolerance=tolerance)
        assert nearest.column("v").to_pylist() == expected, tolerance


def test_nanosecond_tolerance_on_coarser_columns_compares_exactly():
    # microsecond columns 1 and 2 us apart: 1,500 ns admits 1 us, not 2 us
    left = pa.table({"t": ns([0, 10], "us")})
    right = pa.table({"t": ns([1, 12], "us"), "v": [1, 2]})
    for tolerance, expected in [(np.timedelta64(1_500, "ns"), [1, None]),
                                (np.timedelta64(999, "ns"), [None, None]),
                                (np.timedelta64(1_999_999, "ps"), [1, None]),
                                (np.timedelta64(2_000, "ns"), [1, 2])]:
        out = lakecore.asof_join(left, right, on="t", direction="forward", tolerance=tolerance)
        assert out.column("v").to_pylist() == expected, tolerance
    # one side in ns: compared in ns
    right_ns = pa.table({"t": ns([1_400, 11_600]), "v": [1, 2]})
    out = lakecore.asof_join(left, right_ns, on="t", direction="forward",
                             tolerance=np.timedelta64(1_500, "ns"))
    assert out.column("v").to_pylist() == [1, None]
    # coarse units of the tolerance are exact too; days on date columns round down
    out = lakecore.asof_join(pa.table({"t": ns([0], "s")}), pa.table({"t": ns([7_200], "s"),
                             "v": [1]}), on="t", direction="forward",
                             tolerance=np.timedelta64(2, "h"))
    assert out.column("v").to_pylist() == [1]
    dates = pa.table({"d": pa.array([dt.date(2024, 1, 10)])})
    right_dates = pa.table({"d": pa.array([dt.date(2024, 1, 8)]), "v": ["x"]})
    for tolerance, expected in [(np.timedelta64(2, "D"), ["x"]), (np.timedelta64(47, "h"), [None]),
                                (np.timedelta64(1, "W"), ["x"])]:
        out = lakecore.asof_join(dates, right_dates, on="d", tolerance=tolerance)
        assert out.column("v").to_pylist() == expected, tolerance


@pytest.mark.parametrize(
    "tolerance",
    [dt.timedelta(microseconds=-1), np.timedelta64(-1, "ns"), np.timedelta64(-1, "ps"),
     np.timedelta64(-1, "D"), "pandas-negative", np.timedelta64("NaT"), np.timedelta64(1, "M"),
     np.timedelta64(1, "Y"), np.timedelta64(5)],
    ids=repr,
)
def test_bad_time_tolerances_raise_validation_error(tolerance):
    if tolerance == "pandas-negative":
        tolerance = pytest.importorskip("pandas").Timedelta(-1, "ns")
    left = pa.table({"t": ns([0])})
    with pytest.raises(ValidationError, match="tolerance"):
        lakecore.asof_join(left, left, on="t", tolerance=tolerance)


def test_time_tolerances_on_number_columns_raise_schema_error():
    for tolerance in (np.timedelta64(1, "ns"), dt.timedelta(seconds=1)):
        with pytest.raises(SchemaError, match="tolerance"):
            lakecore.asof_join({"t": [1]}, {"t": [1]}, on="t", tolerance=tolerance)


def test_unbounded_number_tolerances_on_integer_columns():
    left = {"t": [0, 2**62]}
    right = {"t": [-(2**62)], "v": [1]}
    for tolerance in (float("inf"), 10**30, 1e300):
        out = lakecore.asof_join(left, right, on="t", tolerance=tolerance)
        assert out.column("v").to_pylist() == [1, 1]
    out = lakecore.asof_join(left, right, on="t", tolerance=2**62)
    assert out.column("v").to_pylist() == [1, None]


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
@pytest.mark.parametrize("float_type", [pa.float32(), pa.float64()])
def test_nan_times_never_match_on_either_side(direction, float_type):
    nan = float("nan")
    left = pa.table({"t": pa.array([nan, 1.0, 2.0, nan, 5.0, 3.0], float_type)})
    right = pa.table({"t": pa.array([nan, 2.0, nan, 1.0, nan, 4.0], float_type),
                      "v": [0, 1, 2, 3, 4, 5]})
    out = lakecore.asof_join(left, right, on="t", direction=direction)
    expected = {"backward": [None, 3, 1, None, 5, 1], "forward": [None, 3, 1, None, None, 5],
                "nearest": [None, 3, 1, None, 5, 1]}[direction]
    assert out.column("v").to_pylist() == expected
    # a NaN time on the left never matches, even a NaN time on the right
    out = lakecore.asof_join({"t": [nan]}, {"t": [nan], "v": [1]}, on="t", direction=direction,
                             tolerance=float("inf"))
    assert out.column("v").to_pylist() == [None]


@pytest.mark.parametrize("direction", ["backward", "forward", "nearest"])
def test_many_nan_right_times_are_the_same_as_none(direction):
    rng = np.random.default_rng(5)
    n = 20_000
    left = pa.table({"k": rng.integers(0, 50, n), "t": rng.integers(0, 1000, n) / 4})
    right_t = rng.integers(0, 1000, n) / 4
    nan_rows = rng.random(n) < 0.3
    right_t[nan_rows] = np.nan
    left_t = left.column("t").to_numpy().copy()
    left_t[rng.random(n) < 0.1] = np.nan
    left = left.set_column(1, "t", pa.array(left_t))
    right = pa.table({"k": rng.integers(0, 50, n), "t": right_t, "rid": np.arange(n)})
    out = lakecore.asof_join(left, right, on="t", by="k", direction=direction)
    kept = right.filter(pa.array(~nan_rows))
    expected = lakecore.asof_join(left, kept, on="t", by="k", direction=direction)
    assert out.column("rid").equals(expected.column("rid"))
    assert out.column("rid").null_count < n / 2
    # and the same with nulls instead of NaNs
    with_nulls = right.set_column(1, "t", pa.array(right_t, mask=nan_rows))
    again = lakecore.asof_join(left, with_nulls, on="t", by="k", direction=direction)
    assert again.column("rid").equals(out.column("rid"))


def test_uint64_times_beyond_int64_compare_as_integers():
    big = 2**63
    left = pa.table({"t": pa.array([big + 10, 5, big - 2, None], pa.uint64())})
    right = pa.table({"t": pa.array([big + 8, 0, big - 1, big + 12], pa.uint64()),
                      "v": [1, 2, 3, 4]})
    out = lakecore.asof_join(left, right, on="t")
    assert out.column("v").to_pylist() == [1, 2, 2, None]
    out = lakecore.asof_join(left, right, on="t", direction="forward", tolerance=2)
    assert out.column("v").to_pylist() == [4, None, 3, None]
    out = lakecore.asof_join(left, right, on="t", direction="nearest")
    assert out.column("v").to_pylist() == [1, 2, 3, None]
    # against signed values on the other side
    signed = pa.table({"t": pa.array([-3, big - 1], pa.int64()), "v": [7, 8]})
    out = lakecore.asof_join(left, signed, on="t", tolerance=2**63 + 12)
    assert out.column("v").to_pylist() == [8, 7, 7, None]
    out = lakecore.asof_join(left, signed, on="t", tolerance=10)
    assert out.column("v").to_pylist() == [None, 7, None, None]
    out = lakecore.asof_join(left, signed, on="t", tolerance=11)
    assert out.column("v").to_pylist() == [8, 7, None, None]
    out = lakecore.asof_join(left, signed, on="t", tolerance=big)
    assert out.column("v").to_pylist() == [8, 7, None, None]   # big - 2 is big + 1 from -3
    # more than 2**64 - 1 apart: cannot be compared in 64 bits
    with pytest.raises(ValidationError, match="far apart"):
        lakecore.asof_join({"t": pa.array([2**64 - 1], pa.uint64())},
                           {"t": pa.array([-1], pa.int64())}, on="t")


def test_docstring_examples():
    import doctest

    import lakecore.query.asof

    result = doctest.testmod(lakecore.query.asof, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
