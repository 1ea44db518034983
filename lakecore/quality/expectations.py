"""Judging the rows of an insert against a group's expectations, vectorized over Arrow.

Each expectation gives a result: how many values failed it and what fraction of its base
(the non-null values; every row for ``not_null``; the table for ``row_count_between`` and
``mean_between``), and up to ``EXAMPLES`` failing values. A column expectation passes when the
passing fraction is at least ``mostly``; nulls are judged by ``not_null`` only. Everything is
computed with ``pyarrow.compute`` kernels (no Python loop over rows), several expectations
at once on big inputs, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.keys import key_codes
from lakecore.base.threads import threads_for
from lakecore.catalog.specs import Expectation
from lakecore.errors import SchemaError, ValidationError

EXAMPLES = 5
KINDS = ("not_null", "between", "in_set", "unique", "matches", "mean_between",
         "row_count_between", "fresh")


class ExpectationResult(msgspec.Struct, frozen=True, kw_only=True):
    """One expectation's verdict on one insert."""

    expectation: str
    ok: bool
    unexpected_count: int
    unexpected_fraction: float
    examples: list[Any] = []


class ValidationReport(msgspec.Struct, frozen=True, kw_only=True):
    """The verdicts of a group's expectations on one insert.

    Attributes
    ----------
    ok : bool
        Every expectation passed.
    results : list of ExpectationResult
    rows : int
        The rows judged.
    time_ms : int
        When they were judged.
    """

    ok: bool
    results: list[ExpectationResult]
    rows: int
    time_ms: int


def check(expectations: list[Expectation], schema: pa.Schema) -> None:
    """SchemaError when an expectation names a column the schema lacks, or does not fit its
    type."""
    for e in expectations:
        for column in e.columns:
            if column not in schema.names:
                raise SchemaError(f"expectations: {e} names column {column!r}, which is not "
                                  f"in the schema ({', '.join(schema.names)})")
        t = schema.field(e.columns[0]).type if e.columns else None
        if e.kind == "matches" and not _is_text(t):
            raise SchemaError(f"expectations: {e} needs a string column, {e.columns[0]!r} is {t}")
        if e.kind == "fresh" and not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise SchemaError(f"expectations: {e} needs a date or timestamp column, "
                              f"{e.columns[0]!r} is {t}")
        if e.kind == "mean_between" and not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise SchemaError(f"expectations: {e} needs a numeric column, {e.columns[0]!r} "
                              f"is {t}")


def judge(expectations: list[Expectation], table: pa.Table,
          now_us: int | None = None) -> ValidationReport:
    """The report of ``expectations`` on ``table`` (the rows of one insert)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    threads = min(threads_for(table.num_rows), len(expectations))
    if threads > 1:     # Arrow's kernels release the GIL: expectations side by side
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda e: _judge_one(e, table, now_us), expectations))
    else:
        results = [_judge_one(e, table, now_us) for e in expectations]
    return ValidationReport(ok=all(r.ok for r in results), results=results,
                            rows=table.num_rows, time_ms=now_us // 1000)


def _judge_one(e: Expectation, table: pa.Table, now_us: int) -> ExpectationResult:
    if e.kind == "row_count_between":
        ok = _within(table.num_rows, e.min, e.max)
        return _result(e, int(not ok), 1, [table.num_rows] if not ok else [], plain=True)
    column = table.column(e.columns[0]) if e.kind != "unique" else None
    if e.kind == "not_null":
        failed = column.is_null()
        return _column_result(e, column, failed, table.num_rows)
    if e.kind == "unique":
        return _unique(e, table)
    if e.kind == "mean_between":
        valid = column.drop_null()
        mean = pc.mean(_numeric(valid)).as_py() if len(valid) else None
        ok = mean is not None and _within(mean, e.min, e.max)
        return _result(e, int(not ok), 1, [mean] if not ok else [], plain=True)
    valid = column.drop_null()
    if e.kind == "between":
        values = valid
        inside = pc.and_(pc.greater_equal(values, _scalar(e.min, values.type)) if e.min is not None
                         else pc.is_valid(values),
                         pc.less_equal(values, _scalar(e.max, values.type)) if e.max is not None
                         else pc.is_valid(values))
        failed = pc.invert(inside)
    elif e.kind == "in_set":
        failed = pc.invert(pc.is_in(valid, value_set=pa.array(e.values).cast(valid.type)))
    elif e.kind == "matches":
        failed = pc.invert(pc.match_substring_regex(valid, e.regex))
    elif e.kind == "fresh":
        micros = _micros(valid)
        failed = pc.less(micros, pa.scalar(now_us - e.max_age_us, pa.int64()))
    else:
        raise ValidationError(f"expectations: unknown kind {e.kind!r}")
    return _column_result(e, valid, failed, len(valid))


def _column_result(e: Expectation, values: pa.ChunkedArray, failed: Any,
                   base: int) -> ExpectationResult:
    count = int(pc.sum(failed).as_py() or 0) if len(values) else 0
    examples = []
    if count:
        examples = values.filter(failed).slice(0, EXAMPLES).to_pylist()
    return _result(e, count, base, examples)


def _result(e: Expectation, count: int, base: int, examples: list,
            plain: bool = False) -> ExpectationResult:
    fraction = count / base if base else 0.0
    ok = count == 0 if plain else (1.0 - fraction) >= e.mostly
    return ExpectationResult(expectation=str(e), ok=ok, unexpected_count=count,
                             unexpected_fraction=fraction, examples=[_plain(v) for v in examples])


def _unique(e: Expectation, table: pa.Table) -> ExpectationResult:
    """Every row whose key appears more than once is unexpected (rows with a null in the key
    are not judged). Keys are coded by the native factorizer; other types (floats) by
    Arrow's hash aggregation."""
    keys = table.select(e.columns)
    try:
        codes, _, n = key_codes(keys, keys.slice(0, 0), e.columns, e.columns, "data", "data")
    except SchemaError:
        return _unique_grouped(e, keys)
    valid = codes >= 0
    counts = np.bincount(codes[valid], minlength=max(n, 1))
    repeated = np.zeros(len(codes), bool)
    repeated[valid] = counts[codes[valid]] > 1
    rows = np.flatnonzero(repeated)
    _, first = np.unique(codes[rows], return_index=True)
    shown = keys.take(pa.array(np.sort(rows[first])[:EXAMPLES])).to_pylist()
    examples = [tuple(r[c] for c in e.columns) if len(e.columns) > 1 else r[e.columns[0]]
                for r in shown]
    return _result(e, len(rows), int(valid.sum()), examples)


def _unique_grouped(e: Expectation, keys: pa.Table) -> ExpectationResult:
    keys = keys.drop_null()
    if keys.num_rows == 0:
        return _result(e, 0, 0, [])
    counts = keys.group_by(e.columns).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    count = int(pc.sum(repeated.column("count_all")).as_py() or 0)
    examples = [tuple(r[c] for c in e.columns) if len(e.columns) > 1 else r[e.columns[0]]
                for r in repeated.slice(0, EXAMPLES).to_pylist()]
    return _result(e, count, keys.num_rows, examples)


def _within(value: Any, low: Any, high: Any) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _numeric(values: pa.ChunkedArray) -> pa.ChunkedArray:
    t = values.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return _micros(values).cast(pa.float64())
    return values


def _micros(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Times and dates as UTC microseconds."""
    t = values.type
    if pa.types.is_date(t):
        return pc.multiply(values.cast(pa.int32()).cast(pa.int64()),
                           pa.scalar(86_400_000_000, pa.int64()))
    if pa.types.is_timestamp(t):
        return values.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
    raise SchemaError(f"expectations: fresh needs a date or timestamp column, got {t}")


def _scalar(value: Any, t: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(t) and isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if pa.types.is_integer(t) and isinstance(value, float):
        return pa.scalar(value, pa.float64())
    return pa.scalar(value, t)


def _plain(value: Any) -> Any:
    """A JSON-storable example value."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
