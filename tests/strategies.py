"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import strategies as st

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64()]
UNIT_FACTOR = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
ZONES = [None, "UTC", "Europe/Paris", "America/New_York"]


@st.composite
def asof_case(draw, max_rows: int = 20, distinct_names: bool = False):
    """Two tables for ``asof_join`` plus, for each side, the rows as the reference sees them:
    ``(key tuple or None, comparable time or None)``.

    Keys and times are drawn from small domains so that ties, exact matches and misses are
    common; each side may use a different integer width, timestamp unit or time zone.
    ``kwargs`` holds the column arguments for ``asof_join`` (``on`` and ``by``). With
    ``distinct_names`` the right side's time and key columns may have other names (the time
    column then possibly the name of a left column), passed as ``left_on``/``right_on`` and
    ``left_by``/``right_by``.
    """
    key_kind = draw(st.sampled_from(["none", "int", "string", "binary", "int+string", "date"]))
    time_kind = draw(st.sampled_from(["int", "timestamp", "float", "date"]))
    with_nulls = draw(st.booleans())

    def maybe_null(strategy):
        return st.one_of(st.none(), strategy) if with_nulls else strategy

    def side(name: str):
        n = draw(st.integers(0, max_rows))
        keys: dict[str, pa.Array] = {}
        key_values: list[list] = []
        if key_kind in ("int", "int+string"):
            t = draw(st.sampled_from(INT_TYPES))
            vals = draw(st.lists(maybe_null(st.integers(0, 3)), min_size=n, max_size=n))
            keys["k"] = pa.array(vals, type=t)
            key_values.append(vals)
        if key_kind in ("string", "int+string"):
            t = draw(st.sampled_from([pa.string(), pa.large_string()]))
            vals = draw(st.lists(maybe_null(st.sampled_from(["a", "b", "é", ""])),
                                 min_size=n, max_size=n))
            keys["s"] = pa.array(vals, type=t)
            key_values.append(vals)
        if key_kind == "binary":
            t = draw(st.sampled_from([pa.binary(), pa.large_binary()]))
            vals = draw(st.lists(maybe_null(st.sampled_from([b"x", b"\x00", b"xy"])),
                                 min_size=n, max_size=n))
            keys["b"] = pa.array(vals, type=t)
            key_values.append(vals)
        if key_kind == "date":
            vals = draw(st.lists(maybe_null(st.integers(0, 2)), min_size=n, max_size=n))
            keys["d"] = pa.array(vals, type=pa.int32()).cast(pa.date32())
            key_values.append(vals)

        base = draw(st.lists(maybe_null(st.integers(-4, 4)), min_size=n, max_size=n))
        if time_kind == "int":
            t = draw(st.sampled_from([pa.int16(), pa.int32(), pa.int64()]))
            times = pa.array(base, type=t)
            ref_times = base
        elif time_kind == "float":
            t = draw(st.sampled_from([pa.float32(), pa.float64()]))
            extra = draw(st.lists(st.sampled_from([0.0, 0.5, float("nan")]), min_size=n, max_size=n))
            ref_times = [None if b is None else b + e for b, e in zip(base, extra)]
            times = pa.array(ref_times, type=t)
        elif time_kind == "date":
            times = pa.array([None if b is None else b + 10 for b in base], pa.int32()).cast(pa.date32())
            ref_times = base
        else:
            unit = draw(st.sampled_from(list(UNIT_FACTOR)))
            zone = draw(st.sampled_from(ZONES))
            raw = [None if b is None else (b + 1_700_000_000) * UNIT_FACTOR[unit] for b in base]
            times = pa.array(raw, pa.int64()).cast(pa.timestamp(unit, tz=zone))
            ref_times = base
        payload = pa.array([f"{name}{i}" for i in range(n)])
        columns = {**keys, "t": times, f"{name}_row": pa.array(range(n), pa.int64()), "v": payload}
        ref_keys = [
            None if any(v is None for v in key) else key for key in zip(*key_values)
        ] if key_values else [() for _ in range(n)]
        return pa.table(columns), list(zip(ref_keys, ref_times))

    left, left_ref = side("l")
    right, right_ref = side("r")
    by = {"none": None, "int": "k", "string": "s", "binary": "b", "int+string": ["k", "s"],
          "date": "d"}[key_kind]
    kwargs: dict = dict(on="t", by=by)
    if distinct_names and draw(st.booleans()):
        left_by = [] if by is None else [by] if isinstance(by, str) else list(by)
        right_on = draw(st.sampled_from(["t", "rt", "l_row"]))  # l_row: clashes with left
        right_by = [draw(st.sampled_from([name, name + "2"])) for name in left_by]
        renames = {"t": right_on, **dict(zip(left_by, right_by))}
        right = right.rename_columns([renames.get(c, c) for c in right.column_names])
        kwargs = dict(left_on="t", right_on=right_on, left_by=left_by, right_by=right_by)
        if not left_by and draw(st.booleans()):
            del kwargs["left_by"], kwargs["right_by"]

    direction = draw(st.sampled_from(["backward", "forward", "nearest"]))
    strict = draw(st.booleans())
    k = draw(st.one_of(st.none(), st.integers(0, 3)))
    tolerance = ref_tolerance = None
    if k is not None:
        half = draw(st.booleans())  # a fractional tolerance must round down
        if time_kind == "timestamp":
            tolerance = dt.timedelta(seconds=k, milliseconds=500 if half else 0)
        elif time_kind == "date":
            tolerance = dt.timedelta(days=k, hours=12 if half else 0)
        elif time_kind == "float":
            tolerance = k + (0.5 if half else 0.0)
        else:
            tolerance = k
        ref_tolerance = k + (0.5 if half else 0)
    return dict(left=left, right=right, left_ref=left_ref, right_ref=right_ref, by=by,
                direction=direction, strict=strict, tolerance=tolerance,
                ref_tolerance=ref_tolerance, kwargs=kwargs)


@st.composite
def pandas_asof_case(draw, max_rows: int = 25):
    """Plain inputs that pandas ``merge_asof`` accepts too (no nulls, equal dtypes on both
    sides): per side a list of times and one list per key column, times from a small domain
    so that right rows with equal keys and times are common.

    ``time_kind`` is "int" (int64), "float" (float64) or "timestamp" (nanoseconds, times
    500 ns apart so that a tolerance in nanoseconds must not be rounded); ``tolerance`` is in
    the units of the times (nanoseconds for timestamps) or None; ``rename`` asks for the right
    side's time and key columns to have other names than the left's.
    """
    time_kind = draw(st.sampled_from(["int", "float", "timestamp"]))
    key_kinds = draw(st.lists(st.sampled_from(["int", "string"]), max_size=2))

    def side():
        n = draw(st.integers(0, max_rows))
        base = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
        if time_kind == "float":
            times = [b / 2 for b in base]
        elif time_kind == "timestamp":
            times = [b * 500 for b in base]
        else:
            times = base
        keys = [
            draw(st.lists(st.integers(0, 2) if kind == "int" else st.sampled_from(["a", "b"]),
                          min_size=n, max_size=n))
            for kind in key_kinds
        ]
        return times, keys

    left_times, left_keys = side()
    right_times, right_keys = side()
    tolerance = None
    if draw(st.booleans()):
        if time_kind == "timestamp":
            tolerance = draw(st.integers(0, 2_000))
        elif time_kind == "float":
            tolerance = draw(st.integers(0, 6)) / 4
        else:
            tolerance = draw(st.integers(0, 3))
    return dict(time_kind=time_kind, key_kinds=key_kinds, left_times=left_times,
                left_keys=left_keys,
                right_times=right_times, right_keys=right_keys,
                direction=draw(st.sampled_from(["backward", "forward", "nearest"])),
                allow_exact_matches=draw(st.booleans()), tolerance=tolerance,
                rename=draw(st.booleans()))
