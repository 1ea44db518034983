"""``asof_join``: join each left row to the nearest right row by time, per key.

Validation and type unification happen here; the matching itself is the native kernel in
``lakecore._native.asof``, and the output is gathered with Arrow ``take``.
"""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore._native import asof as _asof
from lakecore.base.arrow import (
    as_table,
    fixed_width_values,
    indices_array,
    require_columns,
    single_array,
    take_rows,
    type_kind,
    validity_mask,
)
from lakecore.base.keys import finest_timestamp, key_codes
from lakecore.base.threads import threads_for
from lakecore.errors import SchemaError, ValidationError

__all__ = ["asof_join"]

_DIRECTIONS = {
    "backward": int(_asof.Direction.BACKWARD),
    "forward": int(_asof.Direction.FORWARD),
    "nearest": int(_asof.Direction.NEAREST),
}
_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_INT64_MAX = np.iinfo(np.int64).max
# The kernel reads an int64 tolerance as an unsigned distance: this bounds no distance at all.
_UINT64_MAX = 2**64 - 1
# Seconds in one unit of a numpy timedelta64 (months and years have no fixed length).
_TIMEDELTA64_SECONDS = {
    "W": Fraction(604_800), "D": Fraction(86_400), "h": Fraction(3_600), "m": Fraction(60),
    "s": Fraction(1), "ms": Fraction(1, 10**3), "us": Fraction(1, 10**6),
    "ns": Fraction(1, 10**9), "ps": Fraction(1, 10**12), "fs": Fraction(1, 10**15),
    "as": Fraction(1, 10**18),
}


_TIME_KINDS = {"timestamp", "date", "integer", "float", "null"}


def _time_kind(t: pa.DataType) -> str | None:
    kind = type_kind(t)
    return kind if kind in _TIME_KINDS and not pa.types.is_dictionary(t) else None


def _duration_seconds(tolerance: Any, kind: str, label: str) -> Fraction:
    """A time tolerance as an exact number of seconds: a ``datetime.timedelta`` (exact in
    microseconds), a ``numpy.timedelta64`` of any fixed unit, or a pandas ``Timedelta`` (read
    through its ``asm8``, a ``numpy.timedelta64`` in its own unit, so nanoseconds are kept)."""
    asm8 = getattr(tolerance, "asm8", None)
    if isinstance(tolerance, dt.timedelta) and isinstance(asm8, np.timedelta64):
        tolerance = asm8    # pandas.Timedelta: datetime.timedelta would drop its nanoseconds
    if isinstance(tolerance, np.timedelta64):
        if np.isnat(tolerance):
            raise ValidationError(f"tolerance: must be a duration, got {tolerance!r}")
        unit, count = np.datetime_data(tolerance.dtype)
        if unit not in _TIMEDELTA64_SECONDS:
            raise ValidationError(
                f"tolerance: a numpy.timedelta64 in {unit!r} units has no fixed length; "
                f"use weeks or finer units, got {tolerance!r}"
            )
        return int(tolerance.astype(np.int64)) * count * _TIMEDELTA64_SECONDS[unit]
    if isinstance(tolerance, dt.timedelta):
        seconds = tolerance.days * 86_400 + tolerance.seconds
        return Fraction(seconds * 1_000_000 + tolerance.microseconds, 1_000_000)
    raise SchemaError(
        f"tolerance: expected a datetime.timedelta or numpy.timedelta64 for {kind} column "
        f"{label}, got {type(tolerance).__name__}"
    )


def _kernel_tolerance(value: int) -> int:
    """A non-negative integer distance, capped at 2**64 - 1, as the int64 the kernel reads as
    unsigned (so distances between int64 values beyond 2**63 - 1 stay bounded exactly)."""
    value = min(value, _UINT64_MAX)
    return value - 2**64 if value > _INT64_MAX else value


def _beyond_int64(array: pa.Array) -> bool:
    if not pa.types.is_uint64(array.type):
        return False
    top = pc.max(array)
    return top.is_valid and top.as_py() > _INT64_MAX


class _Times:
    """Both sides' ``on`` values in one comparable numpy dtype, plus how to read a tolerance."""

    def __init__(self, left: pa.Array, right: pa.Array, left_on: str, right_on: str):
        self.label = (f"on={left_on!r}" if left_on == right_on
                      else f"left_on={left_on!r}/right_on={right_on!r}")
        lk, rk = _time_kind(left.type), _time_kind(right.type)
        if lk is None or rk is None:
            side, t = ("left", left.type) if lk is None else ("right", right.type)
            raise SchemaError(
                f"{self.label}: {side} column has type {t}; expected a timestamp, date, "
                f"integer or float column"
            )
        if lk == "null" and rk == "null":
            lk = rk = "integer"
            left, right = left.cast(pa.int64()), right.cast(pa.int64())
        elif lk == "null":
            lk, left = rk, left.cast(right.type)
        elif rk == "null":
            rk, right = lk, right.cast(left.type)
        if lk != rk:
            raise SchemaError(
                f"{self.label}: left has type {left.type} but right has type {right.type}; "
                f"they cannot be compared"
            )
        self.kind = lk
        self.unit = None
        if lk == "timestamp":
            common = finest_timestamp(left.type, right.type)
            self.unit = common.unit
            left, right = self._cast(left, common, "left"), self._cast(right, common, "right")
        if lk == "integer" and any(_beyond_int64(a) for a in (left, right)):
            (self.left, self.left_null), (self.right, self.right_null) = self._shifted(left, right)
            return
        self.left, self.left_null = self._values(left, "left")
        self.right, self.right_null = self._values(right, "right")

    def _shifted(
        self, left: pa.Array, right: pa.Array,
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """Integer times with uint64 values beyond int64: both sides moved down by their
        smallest value into int64's range, which keeps their order and their distances (the
        kernel reads int64 distances as unsigned)."""
        bounds = [pc.min_max(a) for a in (left, right)]
        lo = min(b["min"].as_py() for b in bounds if b["min"].is_valid)
        hi = max(b["max"].as_py() for b in bounds if b["max"].is_valid)
        if hi - lo > _UINT64_MAX:
            raise ValidationError(
                f"{self.label}: values from {lo} to {hi} are too far apart to compare "
                f"(at most 2**64 - 1)"
            )
        shifted = []
        for array in (left, right):
            if pa.types.is_uint64(array.type):
                raw = fixed_width_values(array, np.uint64)
            else:
                raw = fixed_width_values(array.cast(pa.int64()), np.int64).view(np.uint64)
            values = ((raw - np.uint64(lo % 2**64)) ^ np.uint64(2**63)).view(np.int64)
            mask = validity_mask(array)
            shifted.append((values, (mask == 0) if len(mask) else None))
        return shifted

    def _cast(self, array: pa.Array, target: pa.DataType, side: str) -> pa.Array:
        try:
            return array.cast(target, safe=True)
        except pa.ArrowInvalid as exc:
            raise ValidationError(
                f"{self.label}: {side} values of type {array.type} do not fit {target}: {exc}"
            ) from exc

    def _values(self, array: pa.Array, side: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Comparable values and a boolean mask of values that never match (null or NaN;
        ``None`` when there are none)."""
        if self.kind == "float":
            values = fixed_width_values(array.cast(pa.float64()), np.float64)
            null = np.isnan(values)
            mask = validity_mask(array)
            if len(mask):
                null |= mask == 0
            return values, null if null.any() else None
        if self.kind == "date":
            array = array.cast(pa.date32()).cast(pa.int32())
        if self.kind in ("date", "integer") and array.type != pa.int64():
            array = self._cast(array, pa.int64(), side)
        values = fixed_width_values(array, np.int64)
        mask = validity_mask(array)
        return values, (mask == 0) if len(mask) else None

    def tolerance(self, tolerance: Any) -> tuple[bool, int | float]:
        """``(has_tolerance, value for the kernel)``. Time tolerances are converted exactly
        into the unit of the values and rounded down, which for integer distances is the same
        as comparing in the finer of the two units."""
        if tolerance is None:
            return False, 0
        if self.kind in ("timestamp", "date"):
            seconds = _duration_seconds(tolerance, self.kind, self.label)
            if seconds < 0:
                raise ValidationError(f"tolerance: must not be negative, got {tolerance!r}")
            per_second = Fraction(1, 86_400) if self.kind == "date" else _UNIT_PER_SECOND[self.unit]
            return True, _kernel_tolerance(math.floor(seconds * per_second))
        if isinstance(tolerance, (bool, np.timedelta64)) or not isinstance(tolerance, Real):
            raise SchemaError(
                f"tolerance: expected a number for {self.kind} column {self.label}, "
                f"got {type(tolerance).__name__}"
            )
        if tolerance != tolerance or tolerance < 0:     # NaN, or negative
            raise ValidationError(f"tolerance: must be a non-negative number, got {tolerance!r}")
        if self.kind == "float":
            try:
                return True, float(tolerance)
            except OverflowError:       # an int beyond the float range
                return True, math.inf
        if tolerance == math.inf:
            return True, _kernel_tolerance(_UINT64_MAX)
        return True, _kernel_tolerance(math.floor(tolerance))


def _key_names(by: Any, argument: str) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    if isinstance(by, (list, tuple)) and all(isinstance(b, str) for b in by):
        return list(by)
    raise SchemaError(
        f"{argument}: expected a column name or a list of column names, got {by!r}"
    )


def _on_names(on: Any, left_on: Any, right_on: Any) -> tuple[str, str, str, str]:
    """``(left name, right name, left argument, right argument)`` of the time columns."""
    if on is not None:
        if left_on is not None or right_on is not None:
            given = "left_on" if left_on is not None else "right_on"
            raise ValidationError(f"on: give either on or left_on and right_on, not on and {given}")
        names = (on, on, "on", "on")
    elif left_on is None and right_on is None:
        raise ValidationError("on: the time column is required (or left_on and right_on)")
    elif left_on is None or right_on is None:
        missing, given = ("right_on", "left_on") if right_on is None else ("left_on", "right_on")
        raise ValidationError(f"{missing}: required when {given} is given")
    else:
        names = (left_on, right_on, "left_on", "right_on")
    for name, argument in zip(names[:2], names[2:]):
        if not isinstance(name, str):
            raise SchemaError(f"{argument}: expected a column name, got {name!r}")
    return names


def _by_names(by: Any, left_by: Any, right_by: Any) -> tuple[list[str], list[str], str, str]:
    """``(left names, right names, left argument, right argument)`` of the key columns."""
    if by is not None:
        if left_by is not None or right_by is not None:
            given = "left_by" if left_by is not None else "right_by"
            raise ValidationError(f"by: give either by or left_by and right_by, not by and {given}")
        names = _key_names(by, "by")
        return names, names, "by", "by"
    if left_by is None and right_by is None:
        return [], [], "by", "by"
    if left_by is None or right_by is None:
        missing, given = ("right_by", "left_by") if right_by is None else ("left_by", "right_by")
        raise ValidationError(f"{missing}: required when {given} is given")
    left_names, right_names = _key_names(left_by, "left_by"), _key_names(right_by, "right_by")
    if len(left_names) != len(right_names):
        raise ValidationError(
            f"left_by and right_by must name as many columns: {len(left_names)} and "
            f"{len(right_names)}"
        )
    return left_names, right_names, "left_by", "right_by"


def asof_join(
    left: Any,
    right: Any,
    *,
    on: str | None = None,
    left_on: str | None = None,
    right_on: str | None = None,
    by: str | list[str] | None = None,
    left_by: str | list[str] | None = None,
    right_by: str | list[str] | None = None,
    direction: str = "backward",
    tolerance: Any = None,
    allow_exact_matches: bool = True,
    suffix: str = "_right",
) -> pa.Table:
    """Join every left row to the right row with equal ``by`` keys and the nearest ``on`` value.

    Parameters
    ----------
    left, right : pyarrow.Table, RecordBatch, pandas/polars DataFrame or dict of columns
        Need not be sorted.
    on : str, optional
        The time column of both sides: a timestamp, date, integer or float column. Timestamps
        of any unit and time zone compare as instants (naive means UTC); integers of any width
        compare as integers; any other mix of types is a ``SchemaError``. Give either ``on``
        or both ``left_on`` and ``right_on``.
    left_on, right_on : str, optional
        The time column of each side, when their names differ.
    by : str or list of str, optional
        Key columns of both sides that must be equal: any mix of integer, string, binary,
        date and timestamp columns (compared by the same rules as ``on``).
    left_by, right_by : str or list of str, optional
        The key columns of each side, when their names differ: as many on both sides, paired
        in order. Give either ``by`` or both of these.
    direction : {"backward", "forward", "nearest"}
        Match the right row whose ``on`` value is the nearest ``<=`` (backward) or ``>=``
        (forward) the left's, or the closer of those two, the backward one on a tie (nearest).
    tolerance : datetime.timedelta, numpy.timedelta64, pandas.Timedelta or number, optional
        Largest allowed ``|left.on - right.on|``, inclusive: a duration for timestamp and
        date columns, a number for integer and float ones. Compared exactly, in the finest
        unit of the inputs (a tolerance of 1,500 ns is not rounded to 1 us on nanosecond
        columns; on microsecond columns it admits 1 us and not 2 us).
    allow_exact_matches : bool
        ``False`` makes the comparisons strict (``<`` and ``>``).
    suffix : str
        Appended to the names of right columns that clash with left ones.

    Returns
    -------
    pyarrow.Table
        Every left row once, in left order: left's columns, then right's columns except the
        ``on``/``right_on`` and ``by``/``right_by`` columns that have the same names as their
        left counterparts (a right time or key column with another name is kept, with
        ``suffix`` if it clashes with a left column); nulls where nothing matches.

    Raises
    ------
    SchemaError
        A missing column, a time or key column of an unsupported type, types of the two sides
        that cannot be compared, or a tolerance of the wrong kind for the time column.
    ValidationError
        ``direction`` not one of the three names, a non-bool ``allow_exact_matches``, a
        negative (or NaN, NaT) ``tolerance``, ``on`` given together with ``left_on`` or
        ``right_on`` (or neither), only one of ``left_on``/``right_on`` or of
        ``left_by``/``right_by``, ``by`` together with ``left_by``/``right_by``, or
        ``left_by`` and ``right_by`` of different lengths.

    Notes
    -----
    Of right rows with equal ``by`` and ``on`` values, backward takes the one that comes last
    in ``right`` and forward the one that comes first, as pandas ``merge_asof`` does; nearest
    takes the last when it picks the backward side (an exact match, or a tie in distance) and
    the first when it picks the forward side. Null ``on`` or ``by`` values and NaN ``on``
    values never match, on either side.

    Examples
    --------
    >>> import lakecore, datetime as dt
    >>> quotes = {"id": [1, 1], "t": [1, 5], "price": [10.0, 11.0]}
    >>> trades = {"id": [1, 1, 2], "t": [4, 5, 5]}
    >>> lakecore.asof_join(trades, quotes, on="t", by="id").column("price").to_pylist()
    [10.0, 11.0, None]
    >>> lakecore.asof_join(trades, quotes, on="t", by="id", direction="forward",
    ...                    allow_exact_matches=False).column("price").to_pylist()
    [11.0, None, None]

    Right rows with equal keys and times: backward takes the last, forward the first.

    >>> ticks = {"id": [1, 1, 1], "t": [5, 5, 5], "price": [1.0, 2.0, 3.0]}
    >>> [lakecore.asof_join({"id": [1], "t": [5]}, ticks, on="t", by="id",
    ...                     direction=d).column("price")[0].as_py()
    ...  for d in ("backward", "forward")]
    [3.0, 1.0]

    Time and key columns with other names on the right are kept:

    >>> stamps = {"id": [1], "ts": [dt.datetime(2024, 1, 1, 12)]}
    >>> events = {"user": [1], "at": [dt.datetime(2024, 1, 1, 11, 59)], "n": [7]}
    >>> out = lakecore.asof_join(stamps, events, left_on="ts", right_on="at", left_by="id",
    ...                          right_by="user", tolerance=dt.timedelta(minutes=1))
    >>> out.column_names, out.column("n").to_pylist()
    (['id', 'ts', 'user', 'at', 'n'], [7])
    """
    left_on, right_on, left_on_arg, right_on_arg = _on_names(on, left_on, right_on)
    left_by, right_by, left_by_arg, right_by_arg = _by_names(by, left_by, right_by)
    if direction not in _DIRECTIONS:
        raise ValidationError(
            f"direction: expected 'backward', 'forward' or 'nearest', got {direction!r}"
        )
    if not isinstance(allow_exact_matches, (bool, np.bool_)):
        raise ValidationError(
            f"allow_exact_matches: expected a bool, got {allow_exact_matches!r}"
        )
    if not isinstance(suffix, str):
        raise SchemaError(f"suffix: expected a str, got {suffix!r}")
    if left_on in left_by:
        raise SchemaError(f"{left_on_arg}={left_on!r} is also a {left_by_arg} column")
    if right_on in right_by:
        raise SchemaError(f"{right_on_arg}={right_on!r} is also a {right_by_arg} column")
    left_t = as_table(left, "left")
    right_t = as_table(right, "right")
    require_columns(left_t, [left_on, *left_by], "left")
    require_columns(right_t, [right_on, *right_by], "right")

    times = _Times(single_array(left_t.column(left_on)), single_array(right_t.column(right_on)),
                   left_on, right_on)
    has_tolerance, tolerance_value = times.tolerance(tolerance)
    # int32 codes (whenever they fit) halve the biggest temporaries of a large join
    code_dtype = np.int32 if left_t.num_rows + right_t.num_rows < 2**31 else np.int64
    left_codes, right_codes, n_codes = key_codes(left_t, right_t, left_by, right_by,
                                                 code_dtype=code_dtype)
    if times.left_null is not None:
        left_codes[times.left_null] = -1
    if times.right_null is not None:
        right_codes[times.right_null] = -1

    # right time and key columns named like their left counterparts are dropped
    dropped = {r for lc, r in zip([left_on, *left_by], [right_on, *right_by]) if lc == r}
    extra = [c for c in right_t.column_names if c not in dropped]
    names = list(left_t.column_names)
    for name in extra:
        out_name = name + suffix if name in left_t.column_names else name
        if out_name in names:
            raise SchemaError(
                f"right column {name!r} would be named {out_name!r}, which is already taken; "
                f"choose another suffix"
            )
        names.append(out_name)

    threads = threads_for(left_t.num_rows + right_t.num_rows)
    # the left codes (ours) become the matches: no new memory for them
    matched = _asof.asof_indices(
        left_codes, times.left, right_codes, times.right, n_codes, _DIRECTIONS[direction],
        not allow_exact_matches, has_tolerance, tolerance_value, threads,
        overwrite_left_codes=True,
    )
    # the gather's output can reuse the right codes' memory (Arrow's pool keeps it)
    del left_codes, right_codes, times
    gathered = take_rows(right_t.select(extra), indices_array(matched), threads)
    columns = list(left_t.columns) + list(gathered.columns)
    return pa.Table.from_arrays(columns, names=names)
