"""The row codec's glue: Arrow columns to LMDB keys and values and back (the native
``keycodec``, ``valuecodec`` and ``batchexport`` do the bytes), the one place that words their
status codes, and the latest row per key of a write, in key order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from lakecore._native import batchexport, keycodec, valuecodec
from lakecore._native.keycodec import KeyRefused, KeyStatus
from lakecore._native.memory import empty
from lakecore._native.rowformat import Kind, ValueRefused, ValueStatus
from lakecore.base.arrow import (
    binary_buffers,
    fixed_width_values,
    single_array,
    validity_mask,
)
from lakecore.base.keys import key_codes
from lakecore.base.threads import get_num_threads, one_ahead, threads_for
from lakecore.errors import IntegrityError, LakeError, SchemaError, ValidationError
from lakecore.online.layout import Layout, codec_type


def _key_columns(table: pa.Table, layout: Layout) -> list[tuple]:
    columns = []
    for name in layout.primary_key:
        array = single_array(table.column(name))
        buffers = array.buffers()
        columns.append((buffers[0], buffers[-1], buffers[1] if len(buffers) == 3 else None,
                        array.offset))
    return columns


def encode_keys(table: pa.Table, layout: Layout) -> list[bytes]:
    """The LMDB keys of ``table``'s primary key columns (of the schema's types, no nulls)."""
    try:
        return keycodec.encode_keys(layout.codec, _key_columns(table, layout), table.num_rows)
    except KeyRefused as refused:
        raise key_error(layout, refused, "keys", ValidationError) from None


@dataclass(frozen=True)
class PackedKeys:
    """LMDB keys back to back in one buffer: key i is ``data[offsets[i]:offsets[i + 1]]``
    (``offsets`` may be a slice of a longer array: they index ``data`` as they are)."""
    data: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def chunk(self, start: int, stop: int) -> PackedKeys:
        """Keys ``start`` to ``stop`` (no copy)."""
        stop = min(stop, len(self))
        return PackedKeys(self.data, self.offsets[start:stop + 1])

    @property
    def nbytes(self) -> int:
        return int(self.offsets[-1] - self.offsets[0])

    def tolist(self) -> list[bytes]:
        return keycodec.split_keys(self.data, np.ascontiguousarray(self.offsets))

    @classmethod
    def of(cls, keys: list[bytes]) -> PackedKeys:
        offsets = np.zeros(len(keys) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, keys), np.int64, len(keys)), out=offsets[1:])
        return cls(np.frombuffer(b"".join(keys) or b"\0", np.uint8), offsets)


def encode_keys_packed(table: pa.Table, layout: Layout) -> PackedKeys:
    """``encode_keys``' keys in one buffer, without a Python object per key."""
    try:
        return PackedKeys(*keycodec.encode_keys_packed(layout.codec, _key_columns(table, layout),
                                                       table.num_rows))
    except KeyRefused as refused:
        raise key_error(layout, refused, "keys", ValidationError) from None


def encode_key(layout: Layout, key: tuple) -> bytes:
    """The LMDB key of one primary key given as Python values in key order."""
    if layout.key_converters:
        key = tuple(convert(v) if convert else v for v, convert in zip(key, layout.key_converters))
    try:
        return keycodec.encode_key(layout.codec, key)
    except KeyRefused as refused:
        raise key_error(layout, refused, "key", SchemaError) from None


def key_error(layout: Layout, refused: Exception, argument: str,
              error: type[LakeError]) -> LakeError:
    """The user's error for a key the codec refused (``KeyRefused``): the one place
    that words the codec's status codes."""
    status, detail = refused.status, refused.detail
    column = repr(layout.primary_key[refused.column]) if refused.column >= 0 else ""
    if status == KeyStatus.KEY_NULL:
        return ValidationError(f"{argument}: primary key column {column} has null values")
    if status == KeyStatus.KEY_TOO_LONG and refused.column < 0:
        return error(f"{argument}: a key of {detail} bytes when encoded; online keys are at "
                     f"most 511 bytes (strings take their length plus 2, other types 8)")
    if status == KeyStatus.KEY_TOO_LONG:
        return error(f"{argument}: {column}: a value of {detail} bytes; online keys are at most "
                     f"500 bytes")
    if status == KeyStatus.KEY_NOT_BYTES:
        return error(f"{argument}: {column}: expected str or bytes, got {detail}")
    if status == KeyStatus.KEY_NOT_INTEGER:
        return error(f"{argument}: {column}: expected an integer, got {detail}")
    if status == KeyStatus.KEY_OUT_OF_RANGE:
        return error(f"{argument}: {column}: {detail} is outside the 64-bit integer range")
    return error(f"{argument}: {len(layout.primary_key)} key values expected, got {detail}")


def _unpacked_bits(array: pa.Array) -> np.ndarray:
    """A boolean array's values as one byte per row."""
    if len(array) == 0:
        return np.zeros(0, np.uint8)
    bits = np.unpackbits(np.frombuffer(array.buffers()[1], np.uint8), bitorder="little")
    return bits[array.offset: array.offset + len(array)]


def _leaf_arrays(array: pa.Array, kind: int, width: int) -> list[np.ndarray]:
    """A fixed, boolean or bytes column's arrays for the codec, after its validity mask."""
    if kind == Kind.BOOL:
        return [_unpacked_bits(array)]
    if kind == Kind.FIXED:
        return [np.ascontiguousarray(fixed_width_values(array, np.dtype(f"V{width}"))).view(np.uint8)]
    return list(binary_buffers(array.cast(pa.large_binary())))


def _column_arrays(array: pa.Array, kind: int, width: int) -> list[np.ndarray]:
    """What ``valuecodec.encode_values`` takes for one column (see its docstring)."""
    if kind < Kind.LIST_FIXED:
        return [validity_mask(array), *_leaf_arrays(array, kind, width)]
    offsets = np.asarray(array.offsets, dtype=np.int64) if len(array) else np.zeros(1, np.int64)
    elements = array.values
    return [validity_mask(array), offsets, validity_mask(elements),
            *_leaf_arrays(elements, kind - Kind.LIST_FIXED, width)]


def _codec_inputs(layout: Layout, rows: pa.Table) -> tuple[np.ndarray, list[list[np.ndarray]]]:
    """The event times and the feature columns' arrays, as the value codec takes them."""
    rows = layout.codec_rows(rows)
    if layout.event_time:
        times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                                   np.int64)
    else:
        times = np.zeros(rows.num_rows, np.int64)
    columns = []
    for f in layout.features:
        kind, width, _ = codec_type(f.type, f.name)
        columns.append(_column_arrays(single_array(rows.column(f.name)), kind, width))
    return np.ascontiguousarray(times), columns


def encode_values(layout: Layout, rows: pa.Table, version: int,
                  num_threads: int | None = None) -> list[bytes]:
    times, columns = _codec_inputs(layout, rows)
    return valuecodec.encode_values(layout.codec, times, version, columns,
                                    num_threads or threads_for(rows.num_rows))


def encode_packed(layout: Layout, rows: pa.Table, version: int,
                  num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``encode_values``' values back to back in one buffer (from Arrow's pool): ``(data,
    offsets)``, value i being ``data[offsets[i]:offsets[i + 1]]``."""
    times, columns = _codec_inputs(layout, rows)
    return valuecodec.encode_packed(layout.codec, times, version, columns, _arena,
                                    num_threads or threads_for(rows.num_rows))


_CHUNK = 1 << 16


def rows_of_chunk(rows: pa.Table, order: np.ndarray | None, start: int) -> pa.Table:
    """Rows ``start`` to ``start + _CHUNK`` in key order: those of ``order`` (row numbers of
    ``rows``), or of ``rows`` itself (``order`` None). Gathered chunk by chunk, so that a big
    write never holds a sorted copy of every row, and the chunk's memory is reused (from
    Arrow's pool, still in cache) by the next."""
    if order is None:
        return rows.slice(start, _CHUNK)
    return rows.take(pa.array(order[start:start + _CHUNK]))


def encoded_chunks(layout: Layout, rows: pa.Table, order: np.ndarray | None, keys: PackedKeys,
                   commit: int):
    """``(keys, values)`` of the rows ``order`` (``rows_of_chunk``) in chunks of ``_CHUNK``
    rows, as lists of bytes, so that a big write never holds every encoded value at once."""
    for start in range(0, len(keys), _CHUNK):
        yield (keys.chunk(start, start + _CHUNK).tolist(),
               encode_values(layout, rows_of_chunk(rows, order, start), commit))


def packed_chunks(layout: Layout, rows: pa.Table, order: np.ndarray | None, keys: PackedKeys,
                  commit: int):
    """``encoded_chunks`` with each chunk's values packed (``encode_packed``): ``(keys, data,
    offsets)``. With two threads or more and more than one chunk, each next chunk is gathered
    and encoded on a helper thread (using the other threads) while the caller writes the
    current one: a pipeline, as gathering, encoding and LMDB's native puts all release the
    GIL. (With py-lmdb's ``putmulti``, which needs the GIL for every row, it was no faster.)"""
    threads = get_num_threads()
    if threads < 2 or len(keys) <= _CHUNK:
        return _packed_chunks(layout, rows, order, keys, commit, None)
    return one_ahead(_packed_chunks(layout, rows, order, keys, commit, threads - 1))


def _packed_chunks(layout: Layout, rows: pa.Table, order: np.ndarray | None, keys: PackedKeys,
                   commit: int, num_threads: int | None):
    for start in range(0, len(keys), _CHUNK):
        yield (keys.chunk(start, start + _CHUNK),
               *encode_packed(layout, rows_of_chunk(rows, order, start), commit, num_threads))


def _arena(size: int) -> np.ndarray:
    return empty(size, np.uint8)


def decode_batch(layout: Layout, keys: list[bytes], values: list, min_time: int) -> pa.RecordBatch:
    """Decode LMDB keys and values (call inside their transaction) into a batch of the key
    columns, event time and features; nulls for missing values and rows older than
    ``min_time``."""
    try:
        address = batchexport.decode_batch(layout.codec, keys, values, min_time, _arena)
    except ValueRefused as refused:
        raise value_error(layout, refused) from None
    batch = pa.RecordBatch._import_from_c(address, layout.codec_batch_schema)
    return batch.cast(layout.batch_schema) if layout.large_strings else batch


def value_error(layout: Layout, refused: Exception) -> LakeError:
    """The user's error for values the codec refused (``ValueRefused``): the one place that
    words the value codec's status codes."""
    column = repr(layout.feature_names[refused.column]) if refused.column >= 0 else "the keys"
    if refused.status == ValueStatus.VALUE_TOO_LARGE:
        return ValidationError(f"keys: {column} would take {refused.detail:,} bytes or elements "
                               f"in one online read, more than 2 GiB; read fewer keys at once")
    where = f"feature {column}" if refused.column >= 0 else "its header or length"
    row = f" (row {refused.row} of the read)" if refused.row >= 0 else ""
    return IntegrityError(f"online store: a stored value of {refused.detail} bytes does not "
                          f"decode at {where}{row}: it was changed outside lakecore "
                          f"(verify() reports what changed)")


def decode_row(layout: Layout, value: bytes | None, min_time: int) -> list | None:
    """One value as the features' Python values in column order, dates and times as
    ``datetime`` objects (as pyarrow gives them); None when missing or older than
    ``min_time``."""
    try:
        row = valuecodec.decode_row(layout.codec, value, min_time)
    except ValueRefused as refused:
        raise value_error(layout, refused) from None
    if row is not None and layout.converters:
        for j, convert in layout.converters:
            if row[j] is not None:
                row[j] = convert(row[j])
    return row


def _as_int64(array: pa.Array) -> np.ndarray:
    """An integer, date, timestamp or boolean key column as the int64 values its keys encode
    (Arrow casts neither dates nor timestamps to integers)."""
    if pa.types.is_boolean(array.type):
        return np.asarray(array.to_numpy(zero_copy_only=False), np.int64)
    width = array.type.bit_width // 8
    return fixed_width_values(array, np.dtype(f"i{width}")).astype(np.int64, copy=False)


def latest_in_key_order(rows: pa.Table, layout: Layout) -> tuple[np.ndarray | None, PackedKeys]:
    """The row with the greatest event time of each primary key (rows of one commit have
    unique (key, event time), so there are no ties; without an event time the last row wins),
    in encoded key order so that they can be appended to an empty database: their row numbers
    (None: every row, in the order given), and their keys."""
    n = rows.num_rows
    if n == 0:
        return None, PackedKeys.of([])
    if layout.event_time:
        times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                                   np.int64)
    else:
        times = np.arange(n)                    # the last occurrence wins
    integer_key = len(layout.primary_key) == 1 and \
        layout.codec.key_kind(0) != Kind.BYTES
    if integer_key:                             # numeric order is the encoded keys' order
        values = _as_int64(single_array(rows.column(layout.primary_key[0])))
        order = np.argsort(values)              # not stable, but vectorized (AVX-512 here)
        sorted_values = values[order]
        if np.any(sorted_values[1:] == sorted_values[:-1]):    # repeated keys: by time too
            order = np.lexsort((times, values))
            sorted_values = values[order]
    else:
        codes, _, _ = key_codes(rows, rows.slice(0, 0), layout.primary_key, layout.primary_key)
        order = np.lexsort((times, codes))
        sorted_values = codes[order]
    last = np.ones(n, bool)
    last[:-1] = sorted_values[1:] != sorted_values[:-1]
    chosen = order[last]
    key_rows = rows.select(layout.primary_key)
    if integer_key:
        keys = encode_keys_packed(key_rows.take(pa.array(chosen)), layout)
    else:                                       # codes are not in key order: sort the keys
        chosen = np.sort(chosen)
        unsorted = encode_keys(key_rows.take(pa.array(chosen)), layout)
        by_key = sorted(range(len(unsorted)), key=unsorted.__getitem__)
        chosen = chosen[np.array(by_key, np.int64)]
        keys = PackedKeys.of([unsorted[i] for i in by_key])
    if len(chosen) == n and np.array_equal(chosen, np.arange(n)):
        return None, keys
    return chosen, keys
