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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.keys import key_codes, key_hashes
from lakecore.base.spill import KeyHashes
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


class _Tally(msgspec.Struct):
    """One expectation's counts over some rows, which add up over parts of an insert."""

    count: int = 0                      # unexpected values
    base: int = 0                       # values judged
    examples: list = []                 # the first unexpected values (up to EXAMPLES)
    total: float = 0.0                  # mean_between: the sum and number of values
    values: int = 0

    def add(self, other: _Tally) -> None:
        self.count += other.count
        self.base += other.base
        if len(self.examples) < EXAMPLES:
            self.examples = self.examples + other.examples[:EXAMPLES - len(self.examples)]
        self.total += other.total
        self.values += other.values


def judge_parts(expectations: list[Expectation], parts: Iterable[pa.Table],
                fetch: Callable[[np.ndarray, list[str]], pa.Table], spill_folder: str,
                now_us: int | None = None) -> ValidationReport:
    """The report ``judge`` gives on the rows of ``parts`` together (an insert too large to
    hold), holding one part at a time. ``fetch(rows, columns)``: those columns of the rows
    numbered ``rows`` (ascending, counted across the parts in order), for ``unique``, whose
    repeats are found by hashing (spilled under ``spill_folder``) and then compared exactly."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    tallies = {i: _Tally() for i, e in enumerate(expectations) if e.kind != "unique"}
    uniques = {i: KeyHashes(spill_folder) for i, e in enumerate(expectations)
               if e.kind == "unique"}
    rows = 0
    try:
        for part in parts:
            for i, tally in tallies.items():
                tally.add(_tally(expectations[i], part, now_us))
            for i, hashes in uniques.items():
                columns = expectations[i].columns
                keys = part.select(columns)
                valid = np.flatnonzero(_all_valid(keys))
                hashes.add(key_hashes(keys.take(pa.array(valid)), columns), rows, valid + rows)
            rows += part.num_rows
        results = []
        for i, e in enumerate(expectations):
            if i in tallies:
                results.append(_verdict(e, tallies[i]))
            else:
                results.append(_unique_spilled(e, uniques[i], fetch))
    finally:
        for hashes in uniques.values():
            hashes.close()
    return ValidationReport(ok=all(r.ok for r in results), results=results, rows=rows,
                            time_ms=now_us // 1000)


def _all_valid(keys: pa.Table) -> np.ndarray:
    valid = np.ones(keys.num_rows, bool)
    for column in keys.columns:
        if column.null_count:
            valid &= column.is_valid().to_numpy(zero_copy_only=False)
    return valid


def _unique_spilled(e: Expectation, hashes: KeyHashes,
                    fetch: Callable[[np.ndarray, list[str]], pa.Table]) -> ExpectationResult:
    """``unique`` over rows known by their key hashes: only the rows whose hash repeats are
    read back and compared exactly."""
    count, examples = 0, []
    for candidates in hashes.repeated():
        keys = fetch(candidates, e.columns)
        found = _unique(e, keys)
        count += found.unexpected_count
        if found.unexpected_count:
            firsts = _first_repeats(e, keys)
            examples += [(int(candidates[j]), keys.slice(j, 1).to_pylist()[0]) for j in firsts]
    examples.sort(key=lambda pair: pair[0])
    shown = [tuple(r[c] for c in e.columns) if len(e.columns) > 1 else r[e.columns[0]]
             for _, r in examples[:EXAMPLES]]
    return _result(e, count, hashes.rows, shown)


def _first_repeats(e: Expectation, keys: pa.Table) -> list[int]:
    """Positions of the first row of each repeated key (the first EXAMPLES of them)."""
    numbered = keys.append_column("__row", pa.array(np.arange(keys.num_rows)))
    grouped = numbered.group_by(e.columns).aggregate([("__row", "min"), ([], "count_all")])
    repeated = grouped.filter(pc.greater(grouped.column("count_all"), 1))
    return sorted(repeated.column("__row_min").to_pylist())[:EXAMPLES]


def _judge_one(e: Expectation, table: pa.Table, now_us: int) -> ExpectationResult:
    if e.kind == "unique":
        return _unique(e, table)
    return _verdict(e, _tally(e, table, now_us))


def _verdict(e: Expectation, tally: _Tally) -> ExpectationResult:
    """An expectation's result from its counts over every row of the insert."""
    if e.kind == "row_count_between":
        ok = _within(tally.base, e.min, e.max)
        return _result(e, int(not ok), 1, [tally.base] if not ok else [], plain=True)
    if e.kind == "mean_between":
        mean = tally.total / tally.values if tally.values else None
        ok = mean is not None and _within(mean, e.min, e.max)
        return _result(e, int(not ok), 1, [mean] if not ok else [], plain=True)
    return _result(e, tally.count, tally.base, tally.examples)


def _tally(e: Expectation, table: pa.Table, now_us: int) -> _Tally:
    if e.kind == "row_count_between":
        return _Tally(base=table.num_rows)
    column = table.column(e.columns[0])
    if e.kind == "not_null":
        return _column_tally(column, column.is_null(), table.num_rows)
    valid = column.drop_null()
    if e.kind == "mean_between":
        if not len(valid):
            return _Tally()
        return _Tally(total=float(pc.sum(_numeric(valid).cast(pa.float64())).as_py()),
                      values=len(valid))
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
    return _column_tally(valid, failed, len(valid))


def _column_tally(values: pa.ChunkedArray, failed: Any, base: int) -> _Tally:
    count = int(pc.sum(failed).as_py() or 0) if len(values) else 0
    examples = values.filter(failed).slice(0, EXAMPLES).to_pylist() if count else []
    return _Tally(count=count, base=base, examples=examples)


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
