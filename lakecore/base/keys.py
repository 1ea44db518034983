"""Key columns to dense integer codes shared by two tables (the two sides of a join).

Type rules: integers of any width match each other; strings match strings and binaries match
binaries (any offset width); dates match dates; timestamps of any unit and time zone match as
instants; booleans match booleans. Anything else is a ``SchemaError`` naming both columns.
Nulls, and integers that cannot exist on the other side, get code -1 and never match.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore._native import dedupe as _dedupe
from lakecore._native import factorize as _factorize
from lakecore.base.arrow import (
    binary_buffers,
    fixed_width_values,
    single_array,
    type_kind,
    validity_mask,
)
from lakecore.base.threads import threads_for
from lakecore.errors import SchemaError

_INT64_MAX = np.iinfo(np.int64).max


_KEY_KINDS = {"integer", "string", "binary", "date", "timestamp", "boolean", "null"}


def _kind(t: pa.DataType) -> str | None:
    kind = type_kind(t)
    return kind if kind in _KEY_KINDS else None


def _decoded(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def finest_timestamp(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The timestamp type (zone dropped: values are UTC instants) of the finer of two units."""
    order = ["s", "ms", "us", "ns"]
    return pa.timestamp(max(a.unit, b.unit, key=order.index))


def _as_int64(array: pa.Array, other: pa.DataType, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 values and a validity mask of one key column, comparable with the other side."""
    if kind == "timestamp":
        array = array.cast(finest_timestamp(array.type, other), safe=True).cast(pa.int64())
    elif kind == "date":
        array = array.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
    elif kind == "boolean":
        array = array.cast(pa.int8()).cast(pa.int64())
    elif pa.types.is_uint64(array.type):
        # Values beyond int64 exist only on uint64 sides: they keep their bits when both sides
        # are uint64, and otherwise can never match.
        values = fixed_width_values(array, np.uint64)
        valid = validity_mask(array)
        if not pa.types.is_uint64(other) and len(values) and values.max(initial=0) > _INT64_MAX:
            valid = (valid if len(valid) else np.ones(len(values), np.uint8)) & (values <= _INT64_MAX)
            valid = valid.astype(np.uint8)
        return values.view(np.int64), valid
    elif array.type != pa.int64():
        array = array.cast(pa.int64())
    return fixed_width_values(array, np.int64), validity_mask(array)


def _column_codes(left: pa.Array, right: pa.Array, kind: str,
                  code_dtype: type = np.int64) -> tuple[np.ndarray, np.ndarray, int]:
    threads = threads_for(len(left) + len(right))
    if kind == "null":
        return np.full(len(left), -1, code_dtype), np.full(len(right), -1, code_dtype), 0
    if kind in ("string", "binary"):
        target = pa.large_string() if kind == "string" else pa.large_binary()
        left = left.cast(target).cast(pa.large_binary())
        right = right.cast(target).cast(pa.large_binary())
        lo, ld = binary_buffers(left)
        ro, rd = binary_buffers(right)
        return _factorize.factorize_bytes(lo, ld, validity_mask(left), ro, rd, validity_mask(right),
                                          code_dtype)
    lv, lm = _as_int64(left, right.type, kind)
    rv, rm = _as_int64(right, left.type, kind)
    return _factorize.factorize_int64(lv, lm, rv, rm, threads, code_dtype)


def key_codes(
    left: pa.Table, right: pa.Table, left_names: list[str], right_names: list[str],
    left_argument: str = "left", right_argument: str = "right", code_dtype: type = np.int64,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense codes of the composite keys ``left[left_names]`` and ``right[right_names]``.

    Returns ``(left_codes, right_codes, n_codes)``; codes lie in ``[0, n_codes)``, or are -1
    where any key column is null. Equal keys on either side get equal codes. ``code_dtype``
    may be ``np.int32`` when the two tables have fewer than 2**31 rows together (half the
    memory).
    """
    if len(left_names) != len(right_names):
        raise SchemaError("key column lists must have the same length on both sides")
    if not left_names:
        # No key: every row is in the one and only group.
        return np.zeros(left.num_rows, code_dtype), np.zeros(right.num_rows, code_dtype), 1
    combined: tuple[np.ndarray, np.ndarray, int] | None = None
    for index, (lname, rname) in enumerate(zip(left_names, right_names)):
        # codes that are combined with another column's again are int64
        last = index == len(left_names) - 1
        step_dtype = code_dtype if last else np.int64
        la = _decoded(single_array(left.column(lname)))
        ra = _decoded(single_array(right.column(rname)))
        lk, rk = _kind(la.type), _kind(ra.type)
        if lk is None or rk is None or (lk != rk and "null" not in (lk, rk)):
            bad = (left_argument, lname, la.type) if lk is None else (right_argument, rname, ra.type)
            if lk is not None and rk is not None:
                what = (f"key column {lname!r}" if lname == rname
                        else f"key columns {lname!r} and {rname!r}")
                raise SchemaError(
                    f"{what}: {left_argument} has type {la.type} but "
                    f"{right_argument} has type {ra.type}; they cannot be compared"
                )
            raise SchemaError(
                f"{bad[0]}: key column {bad[1]!r} has type {bad[2]}; expected an integer, "
                f"string, binary, date, timestamp or boolean column"
            )
        kind = lk if lk != "null" else rk
        codes = _column_codes(la, ra, kind, step_dtype if index == 0 else np.int64)
        if combined is None:
            combined = codes
        else:
            # Pair codes are below rows * rows, far from overflowing int64; make them dense again.
            cl, cr, _ = combined
            pair_l = _factorize.combine_codes(cl, codes[0], max(codes[2], 1))
            pair_r = _factorize.combine_codes(cr, codes[1], max(codes[2], 1))
            combined = _factorize.factorize_int64(
                pair_l, (pair_l >= 0).view(np.uint8), pair_r, (pair_r >= 0).view(np.uint8),
                threads_for(len(pair_l) + len(pair_r)), step_dtype,
            )
    assert combined is not None
    return combined


def rows_matching(rows: pa.Table, keys: pa.Table, columns: list[str],
                  rows_argument: str = "stored", keys_argument: str = "keys") -> np.ndarray:
    """A boolean mask of the ``rows`` whose ``columns`` equal those of some row of ``keys``."""
    codes, wanted, n = key_codes(rows, keys, columns, columns, rows_argument, keys_argument)
    return _dedupe.isin(codes, wanted, n).astype(bool, copy=False)



def key_hashes(table: pa.Table, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's ``columns`` (uint64). Equal keys hash equal when the
    columns have the same types in both tables hashed (rows conformed to one schema); unequal
    keys rarely collide, so a caller that must be exact compares the rows whose hashes meet.
    Null key values hash as a fixed value (keys stored in a table are never null)."""
    hashes = np.zeros(table.num_rows, np.uint64)
    for name in columns:
        array = _decoded(single_array(table.column(name)))
        kind = _kind(array.type)
        if kind in ("string", "binary"):
            target = pa.large_string() if kind == "string" else pa.large_binary()
            offsets, data = binary_buffers(array.cast(target).cast(pa.large_binary()))
            _dedupe.hash_bytes_into(hashes, offsets, data)
        elif type_kind(array.type) == "float":
            # by value: -0.0 as 0.0 and every NaN as one (as grouping compares them)
            values = array.cast(pa.float64()).fill_null(0.0).to_numpy() + 0.0
            values[np.isnan(values)] = np.nan
            _dedupe.hash_int64_into(hashes, np.ascontiguousarray(values).view(np.int64))
        elif kind is None or kind == "null":
            raise SchemaError(f"key column {name!r} has type {array.type}; expected an "
                              f"integer, string, binary, date, timestamp or boolean column")
        else:
            values, valid = _as_int64(array, array.type, kind)
            if len(valid) and array.null_count:
                values = np.where(valid.astype(bool), values, 0)
            _dedupe.hash_int64_into(hashes, np.ascontiguousarray(values))
    return hashes


def rows_matching_by_hash(rows: pa.Table, keys: pa.Table, columns: list[str]) -> np.ndarray:
    """``rows_matching`` for two tables whose ``columns`` have the same types (rows conformed
    to one schema), without factorizing: rows and keys are paired by equal ``key_hashes``
    and each pair's columns compared. Fast when most rows have one candidate or none."""
    row_hashes, wanted = key_hashes(rows, columns), key_hashes(keys, columns)
    order = np.argsort(wanted)
    ordered = wanted[order]
    row_order = np.argsort(row_hashes)      # sorted needles: searchsorted is many times faster
    probe = row_hashes[row_order]
    first = np.searchsorted(ordered, probe, "left")
    last = np.searchsorted(ordered, probe, "right")
    counts = last - first
    pair_rows = np.repeat(row_order, counts)
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    pair_keys = order[starts + np.arange(len(pair_rows), dtype=np.int64)]
    equal = np.ones(len(pair_rows), bool)
    for name in columns:
        if not len(pair_rows):
            break
        same = pc.equal(rows.column(name).take(pa.array(pair_rows)),
                        keys.column(name).take(pa.array(pair_keys)))
        equal &= same.fill_null(False).to_numpy(zero_copy_only=False)
    found = np.zeros(len(row_hashes), bool)
    found[pair_rows[equal]] = True
    return found


def last_of_each_key(keys: pa.Table, columns: list[str]) -> np.ndarray:
    """A boolean mask of the rows of ``keys`` that are the last of their key (as an upsert
    keeps them; rows with a null key are all kept)."""
    codes, _, n = key_codes(keys, keys.slice(0, 0), columns, columns, "data", "data")
    last = np.zeros(keys.num_rows, bool)
    last[_dedupe.last_occurrences(codes, n)] = True
    return last


def sharing_a_value(ordered: np.ndarray) -> np.ndarray:
    """A boolean mask of the entries of sorted ``ordered`` equal to a neighbour: the values
    that occur more than once."""
    same = ordered[1:] == ordered[:-1]
    shared = np.zeros(len(ordered), bool)
    shared[1:] |= same
    shared[:-1] |= same
    return shared
