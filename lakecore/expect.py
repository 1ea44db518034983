"""Expectations a feature group checks on every insert (``fg.set_expectations``).

    from lakecore import expect
    fg.set_expectations([expect.not_null("amount"), expect.between("amount", 0, 10_000)])

Column expectations take ``mostly`` (default 1.0): they pass when the fraction of passing
values is at least ``mostly``; the fraction counts non-null values (all rows for
``not_null``), and nulls are judged by ``not_null`` only. ``from_great_expectations`` reads a
Great Expectations suite (0.x or 1.x form) into the same.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any

from lakecore.catalog.specs import Expectation
from lakecore.errors import ValidationError

__all__ = ["Expectation", "between", "from_great_expectations", "fresh", "in_set", "matches",
           "mean_between", "not_null", "row_count_between", "unique"]


def _column(column: Any, kind: str) -> list[str]:
    if not isinstance(column, str) or not column:
        raise ValidationError(f"expect.{kind}: column: expected a column name, got {column!r}")
    return [column]


def _mostly(mostly: Any, kind: str) -> float:
    if isinstance(mostly, bool) or not isinstance(mostly, (int, float)) or not 0 <= mostly <= 1:
        raise ValidationError(f"expect.{kind}: mostly: expected a number from 0 to 1, got "
                              f"{mostly!r}")
    return float(mostly)


def _bounds(low: Any, high: Any, kind: str) -> tuple[Any, Any]:
    if low is None and high is None:
        raise ValidationError(f"expect.{kind}: give min_value, max_value or both")
    if low is not None and high is not None and low > high:
        raise ValidationError(f"expect.{kind}: min_value {low!r} is above max_value {high!r}")
    return low, high


def not_null(column: str, *, mostly: float = 1.0) -> Expectation:
    """No nulls in ``column`` (the fraction counts every row)."""
    return Expectation(kind="not_null", columns=_column(column, "not_null"),
                       mostly=_mostly(mostly, "not_null"))


def between(column: str, min_value: Any = None, max_value: Any = None, *,
            mostly: float = 1.0) -> Expectation:
    """Values within ``[min_value, max_value]`` (inclusive; either may be None)."""
    low, high = _bounds(min_value, max_value, "between")
    return Expectation(kind="between", columns=_column(column, "between"), min=low, max=high,
                       mostly=_mostly(mostly, "between"))


def in_set(column: str, values: Sequence[Any], *, mostly: float = 1.0) -> Expectation:
    """Values among ``values``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValidationError(f"expect.in_set: values: expected a list, got {values!r}")
    return Expectation(kind="in_set", columns=_column(column, "in_set"), values=list(values),
                       mostly=_mostly(mostly, "in_set"))


def unique(columns: str | Sequence[str], *, mostly: float = 1.0) -> Expectation:
    """No key (one column, or several together) appears twice in the insert; every row of a
    repeated key is unexpected."""
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names or not all(isinstance(c, str) and c for c in names):
        raise ValidationError(f"expect.unique: columns: expected column names, got {columns!r}")
    return Expectation(kind="unique", columns=names, mostly=_mostly(mostly, "unique"))


def matches(column: str, regex: str, *, mostly: float = 1.0) -> Expectation:
    """Values in which ``regex`` finds a match (a search, as in Great Expectations)."""
    try:
        re.compile(regex)
    except (re.error, TypeError) as exc:
        raise ValidationError(f"expect.matches: regex {regex!r} is not a regular expression "
                              f"({exc})") from None
    return Expectation(kind="matches", columns=_column(column, "matches"), regex=regex,
                       mostly=_mostly(mostly, "matches"))


def mean_between(column: str, min_value: Any = None, max_value: Any = None) -> Expectation:
    """The mean of the non-null values within ``[min_value, max_value]``."""
    low, high = _bounds(min_value, max_value, "mean_between")
    return Expectation(kind="mean_between", columns=_column(column, "mean_between"), min=low,
                       max=high)


def row_count_between(min_value: int | None = None, max_value: int | None = None) -> Expectation:
    """The insert's row count within ``[min_value, max_value]``."""
    low, high = _bounds(min_value, max_value, "row_count_between")
    return Expectation(kind="row_count_between", min=low, max=high)


def fresh(column: str, max_age: dt.timedelta, *, mostly: float = 1.0) -> Expectation:
    """Times no older than ``max_age`` before now."""
    if not isinstance(max_age, dt.timedelta) or max_age < dt.timedelta(0):
        raise ValidationError(f"expect.fresh: max_age: expected a timedelta of 0 or more, got "
                              f"{max_age!r}")
    return Expectation(kind="fresh", columns=_column(column, "fresh"),
                       max_age_us=max_age // dt.timedelta(microseconds=1),
                       mostly=_mostly(mostly, "fresh"))


_GE_COLUMN = {
    "expect_column_values_to_not_be_null": lambda k, m: not_null(k["column"], mostly=m),
    "expect_column_values_to_be_between": lambda k, m: between(
        k["column"], k.get("min_value"), k.get("max_value"), mostly=m),
    "expect_column_values_to_be_in_set": lambda k, m: in_set(k["column"], k["value_set"],
                                                             mostly=m),
    "expect_column_values_to_be_unique": lambda k, m: unique(k["column"], mostly=m),
    "expect_column_values_to_match_regex": lambda k, m: matches(k["column"], k["regex"],
                                                                mostly=m),
    "expect_column_mean_to_be_between": lambda k, m: mean_between(
        k["column"], k.get("min_value"), k.get("max_value")),
    "expect_table_row_count_to_be_between": lambda k, m: row_count_between(
        k.get("min_value"), k.get("max_value")),
}


def from_great_expectations(suite: dict | str) -> list[Expectation]:
    """The expectations of a Great Expectations suite (a dict or JSON string; 0.x entries
    carry ``expectation_type``, 1.x entries ``type``). Types other than the seven lakecore
    judges raise ValidationError."""
    if isinstance(suite, str):
        try:
            suite = json.loads(suite)
        except ValueError as exc:
            raise ValidationError(f"suite: not JSON ({exc})") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise ValidationError("suite: expected a Great Expectations suite with a list of "
                              "'expectations'")
    out = []
    for n, entry in enumerate(suite["expectations"]):
        kind = entry.get("type", entry.get("expectation_type")) if isinstance(entry, dict) \
            else None
        kwargs = entry.get("kwargs", {}) if isinstance(entry, dict) else {}
        if kind not in _GE_COLUMN:
            raise ValidationError(f"suite: expectation {n} has type {kind!r}, which lakecore "
                                  f"does not judge (it takes {', '.join(sorted(_GE_COLUMN))})")
        try:
            out.append(_GE_COLUMN[kind](kwargs, kwargs.get("mostly", 1.0)))
        except KeyError as missing:
            raise ValidationError(f"suite: expectation {n} ({kind}) lacks {missing}") from None
    return out
