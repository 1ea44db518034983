"""Turning user data into Arrow, and Arrow columns into numpy views for the native kernels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lakecore._native import validity as _validity
from lakecore.base.threads import threads_for
from lakecore.errors import SchemaError

_EMPTY_MASK = np.empty(0, dtype=np.uint8)


def as_table(data: Any, argument: str) -> pa.Table:
    """Accept a pyarrow Table or RecordBatch, a pandas or polars DataFrame, or a dict of columns.

    pandas and polars are never imported here: their frames are recognised by type name.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    name = type(data).__name__
    try:
        if isinstance(data, Mapping):
            return pa.table(dict(data))
        if module == "pandas" and name == "DataFrame":
            return pa.Table.from_pandas(data, preserve_index=False)
        if module == "polars" and name == "DataFrame":
            return data.to_arrow()
        if hasattr(data, "__arrow_c_stream__"):
            return pa.table(data)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"{argument}: could not convert {name} to an Arrow table: {exc}") from exc
    raise SchemaError(
        f"{argument}: expected a pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame, "
        f"polars.DataFrame or dict of columns, got {module}.{name}"
    )


def type_kind(t: pa.DataType) -> str | None:
    """The family a type compares within: "integer", "float", "string", "binary", "date",
    "timestamp", "boolean" or "null" (dictionaries by their values); None for anything else."""
    if pa.types.is_dictionary(t):
        return type_kind(t.value_type)
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return "binary"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_null(t):
        return "null"
    return None


def require_columns(table: pa.Table, names: list[str], argument: str) -> None:
    """Raise a SchemaError naming the first of ``names`` missing from ``table``."""
    columns = table.column_names         # built once: linear in the columns
    present = set(columns)
    for name in names:
        if name not in present:
            raise SchemaError(f"{argument}: no column {name!r} (columns: {', '.join(columns)})")
    duplicated = {n for n, count in Counter(columns).items() if count > 1}
    if duplicated & set(names):
        raise SchemaError(f"{argument}: column {sorted(duplicated & set(names))[0]!r} appears twice")


def single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array (zero copy when the column has a single chunk)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        if column.num_chunks == 0:
            return pa.array([], type=column.type)
        return pa.concat_arrays(column.chunks)
    return column


def validity_mask(array: pa.Array) -> np.ndarray:
    """A byte mask (1 = valid) for the kernels, or an empty array when nothing is null."""
    if array.null_count == 0:
        return _EMPTY_MASK
    if pa.types.is_null(array.type):
        return np.zeros(len(array), dtype=np.uint8)
    bitmap = np.frombuffer(array.buffers()[0], dtype=np.uint8)
    bits = np.unpackbits(bitmap, bitorder="little")
    return bits[array.offset : array.offset + len(array)]


def fixed_width_values(array: pa.Array, dtype: np.dtype) -> np.ndarray:
    """A read-only numpy view of a fixed-width array's values (null slots hold anything)."""
    dtype = np.dtype(dtype)
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    values = np.frombuffer(array.buffers()[1], dtype=dtype)
    return values[array.offset : array.offset + len(array)]


def binary_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, data)`` of a large-binary array, offsets sliced to the array's rows."""
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    if len(offsets) == 0:
        offsets = np.zeros(1, dtype=np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else _EMPTY_MASK
    return offsets, data


# Below this many rows a threaded take costs more than it saves.
_PARALLEL_TAKE_ROWS = 1 << 18


def take_rows(table: pa.Table, indices: pa.Array | np.ndarray, threads: int) -> pa.Table:
    """``table.take(indices)``, split into slices taken on several threads when it is large
    (Arrow's take releases the GIL)."""
    indices = pa.array(indices) if isinstance(indices, np.ndarray) else indices
    n = len(indices)
    if threads <= 1 or n < _PARALLEL_TAKE_ROWS or table.num_columns == 0:
        return table.take(indices)
    bounds = [n * i // threads for i in range(threads + 1)]
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(
            lambda i: table.take(indices.slice(bounds[i], bounds[i + 1] - bounds[i])),
            range(threads)))
    return pa.concat_tables(parts)


def indices_array(indices: np.ndarray) -> pa.Array:
    """An Arrow array of row indices (int32 or int64, as given) where negative entries become
    nulls (for ``take``).

    Takes ownership of ``indices``: the negative entries are overwritten with 0.
    """
    bitmap, n_missing = _validity.index_validity(indices, threads_for(len(indices)))
    if n_missing == 0:
        return pa.array(indices)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(indices.dtype), len(indices),
        [pa.py_buffer(bitmap), pa.py_buffer(indices)], null_count=n_missing,
    )
