"""``asof_join``: join each left row to the nearest right row by time, per key.

Validation and type unification happen here; the matching itself is the native kernel in
``lakecore._native.asof``, and the output is gathered with Arrow ``take``.
"""

from __future__ import annotations

import datetime as dt
import math
from numbers import Real
from typing import Any

import numpy as np
import pyarrow as pa

from lakecore._arrow import (
    as_table,
    fixed_width_values,
    indices_array,
    require_columns,
    single_array,
    take_rows,
    type_kind,
    validity_mask,
)
from lakecore._native import asof as _asof
from lakecore._threads import get_num_threads
from lakecore.errors import SchemaError, ValidationError
from lakecore.keys import finest_timestamp, key_codes

__all__ = ["asof_join"]

_DIRECTIONS = {
    "backward": int(_asof.Direction.BACKWARD),
    "forward": int(_asof.Direction.FORWARD),
    "nearest": int(_asof.Direction.NEAREST),
}
_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_INT64_MAX = np.iinfo(np.int64).max


_TIME_KINDS = {"timestamp", "date", "integer", "float", "null"}


def _time_kind(t: pa.DataType) -> str | None:
    kind = type_kind(t)
    return kind if kind in _TIME_KINDS and not pa.types.is_dictionary(t) else None


class _Times:
    """Both sides' ``on`` values in one comparable numpy dtype, plus how to read a tolerance."""

    def __init__(self, left: pa.Array, right: pa.Array, on: str):
        lk, rk = _time_kind(left.type), _time_kind(right.type)
        if lk is None or rk is None:
            side, t = ("left", left.type) if lk is None else ("right", right.type)
            raise SchemaError(
                f"on={on!r}: {side} column has type {t}; expected a timestamp, date, integer "
                f"or float column"
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
                f"on={on!r}: left has type {left.type} but right has type {right.type}; "
                f"they cannot be compared"
            )
        self.kind = lk
        self.on = on
        self.unit = None
        if lk == "timestamp":
            common = finest_timestamp(left.type, right.type)
            self.unit = common.unit
            left, right = (_cast(a, common, on, side) for a, side in ((left, "left"), (right, "right")))
        self.left, self.left_null = self._values(left, "left")
        self.right, self.right_null = self._values(right, "right")

    def _values(self, array: pa.Array, side: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Comparable values and a boolean null mask (``None`` when nothing is null)."""
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
            array = _cast(array, pa.int64(), self.on, side)
        values = fixed_width_values(array, np.int64)
        mask = validity_mask(array)
        return values, (mask == 0) if len(mask) else None

    def tolerance(self, tolerance: Any) -> tuple[bool, int | float]:
        """``(has_tolerance, value in the units of the values)``, rounded down where integral."""
        if tolerance is None:
            return False, 0
        if self.kind in ("timestamp", "date"):
            if isinstance(tolerance, np.timedelta64):
                tolerance = tolerance.astype("timedelta64[us]").item()
            if not isinstance(tolerance, dt.timedelta):
                raise SchemaError(
                    f"tolerance: expected a datetime.timedelta for {self.kind} column "
                    f"{self.on!r}, got {type(tolerance).__name__}"
                )
            micros = (tolerance.days * 86_400 + tolerance.seconds) * 1_000_000 + tolerance.microseconds
            if micros < 0:
                raise ValidationError(f"tolerance: must not be negative, got {tolerance}")
            if self.kind == "date":
                return True, min(micros // 86_400_000_000, _INT64_MAX)
            per_second = _UNIT_PER_SECOND[self.unit]
            return True, min(micros * per_second // 1_000_000, _INT64_MAX)
        if isinstance(tolerance, bool) or not isinstance(tolerance, Real):
            raise SchemaError(
                f"tolerance: expected a number for {self.kind} column {self.on!r}, "
                f"got {type(tolerance).__name__}"
            )
        if math.isnan(tolerance) or tolerance < 0:
            raise ValidationError(f"tolerance: must be a non-negative number, got {tolerance}")
        if self.kind == "float":
            return True, float(tolerance)
        return True, min(math.floor(tolerance), _INT64_MAX)


def _cast(array: pa.Array, target: pa.DataType, on: str, side: str) -> pa.Array:
    try:
        return array.cast(target, safe=True)
    except pa.ArrowInvalid as exc:
        raise ValidationError(
            f"on={on!r}: {side} values of type {array.type} do not fit {target}: {exc}"
        ) from exc


def _key_names(by: Any) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    if isinstance(by, (list, tuple)) and all(isinstance(b, str) for b in by):
        return list(by)
    raise SchemaError(f"by: expected a column name or a list of column names, got {by!r}")


def asof_join(
    left: Any,
    right: Any,
    *,
    on: str,
    by: str | list[str] | None = None,
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
    on : str
        Timestamp, date, integer or float column present on both sides. Timestamps of any unit
        and time zone compare as instants (naive means UTC).
    by : str or list of str, optional
        Key columns that must be equal (integers, strings, binary, dates, timestamps).
    direction : {"backward", "forward", "nearest"}
        Match the nearest right row with ``on <=`` (backward), ``>=`` (forward) the left
        value, or the closer of the two (the backward one on a tie).
    tolerance : datetime.timedelta or number, optional
        Largest allowed ``|left.on - right.on|``, inclusive.
    allow_exact_matches : bool
        ``False`` makes the comparisons strict.
    suffix : str
        Appended to right columns whose names clash with left ones.

    Returns
    -------
    pyarrow.Table
        Every left row once, in left order: left's columns, then right's columns other than
        ``on`` and ``by``; nulls where nothing matches. Of right rows with equal keys and
        ``on``, the last one wins. Null ``on`` or ``by`` values never match.

    Examples
    --------
    >>> import lakecore, datetime as dt
    >>> quotes = {"id": [1, 1], "t": [1, 5], "price": [10.0, 11.0]}
    >>> trades = {"id": [1, 1, 2], "t": [4, 5, 5]}
    >>> lakecore.asof_join(trades, quotes, on="t", by="id").column("price").to_pylist()
    [10.0, 11.0, None]
    """
    left_t = as_table(left, "left")
    right_t = as_table(right, "right")
    if not isinstance(on, str):
        raise SchemaError(f"on: expected a column name, got {on!r}")
    by_names = _key_names(by)
    if direction not in _DIRECTIONS:
        raise ValidationError(
            f"direction: expected 'backward', 'forward' or 'nearest', got {direction!r}"
        )
    if not isinstance(suffix, str):
        raise SchemaError(f"suffix: expected a str, got {suffix!r}")
    if on in by_names:
        raise SchemaError(f"on={on!r} is also a by column")
    require_columns(left_t, [on, *by_names], "left")
    require_columns(right_t, [on, *by_names], "right")

    times = _Times(single_array(left_t.column(on)), single_array(right_t.column(on)), on)
    has_tolerance, tolerance_value = times.tolerance(tolerance)
    left_codes, right_codes, n_codes = key_codes(left_t, right_t, by_names, by_names)
    if times.left_null is not None:
        left_codes[times.left_null] = -1
    if times.right_null is not None:
        right_codes[times.right_null] = -1

    extra = [c for c in right_t.column_names if c != on and c not in by_names]
    names = list(left_t.column_names)
    for name in extra:
        out_name = name + suffix if name in left_t.column_names else name
        if out_name in names:
            raise SchemaError(
                f"right column {name!r} would be named {out_name!r}, which is already taken; "
                f"choose another suffix"
            )
        names.append(out_name)

    threads = get_num_threads()
    matched = _asof.asof_indices(
        left_codes, times.left, right_codes, times.right, n_codes, _DIRECTIONS[direction],
        not allow_exact_matches, has_tolerance, tolerance_value, threads,
    )
    gathered = take_rows(right_t.select(extra), indices_array(matched), threads)
    columns = list(left_t.columns) + list(gathered.columns)
    return pa.Table.from_arrays(columns, names=names)
