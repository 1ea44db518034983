"""The online store: the latest row of every key of every online feature group, in LMDB.

One LMDB environment per lake (``<lake>/online``), one named database per online group version,
keys and values encoded by the native row codec (``_native/rowcodec.pyx``). Values are derived
from the offline table: a key's row is replaced only by a row with a greater event time, or an
equal one from a later commit, and the database ``__watermarks__`` records the last offline
commit applied to each group, in the same transaction as the rows. A writable open rolls every
group forward from its watermark, so a crash between the offline commit and the online write is
repaired on the next open.

LMDB facts this module respects: one environment handle per process and path (shared by every
Lake), never used across ``fork()`` (the child opens its own); map size grows on
``MapFullError``; ``reader_check()`` at open; LMDB's own durability (no ``writemap``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import lmdb
import numpy as np
import pyarrow as pa

from lakecore._native import rowcodec
from lakecore._native.memory import empty
from lakecore.base.arrow import (
    binary_buffers,
    fixed_width_values,
    single_array,
    take_rows,
    validity_mask,
)
from lakecore.base.keys import key_codes
from lakecore.base.threads import get_num_threads
from lakecore.errors import SchemaError, ValidationError

LMDB_FORMAT = 0  # py-lmdb bundles LMDB 0.9 and 1.0, whose files differ: pin 0.9
INITIAL_MAP_SIZE = 64 << 20
WATERMARKS = b"__watermarks__"

_environments: dict[str, lmdb.Environment] = {}
_environments_lock = threading.Lock()


def _forget_environments_after_fork() -> None:
    """In a forked child: drop the parent's handles, which must never be used here, so that
    the child opens its own. Closing them releases nothing of the parent's (LMDB's locks and
    reader slots belong to the parent's pid) and lets py-lmdb open the files again."""
    global _environments_lock
    _environments_lock = threading.Lock()
    for env in _environments.values():
        try:
            env.close()
        except lmdb.Error:
            pass
    _environments.clear()
    _db_handles.clear()
    _handles_changed()


os.register_at_fork(after_in_child=_forget_environments_after_fork)


def environment(path: str, create: bool) -> lmdb.Environment | None:
    """The process's one handle on the environment at ``path`` (None if missing and not
    ``create``)."""
    with _environments_lock:
        env = _environments.get(path)
        if env is not None:
            return env
        if not create and not os.path.exists(os.path.join(path, "data.mdb")):
            return None
        os.makedirs(path, exist_ok=True)
        env = lmdb.open(path, map_size=INITIAL_MAP_SIZE, max_dbs=4096, subdir=True,
                        writemap=False, metasync=True, sync=True, max_readers=256,
                        lib_version=LMDB_FORMAT)
        env.reader_check()
        _environments[path] = env
        return env


_db_handles: dict[tuple[int, bytes], Any] = {}
_handle_generation = 0      # moves whenever cached handles become invalid


def handles_version() -> int:
    """Changes whenever cached database handles may have become invalid."""
    return _handle_generation


def _handles_changed() -> None:
    global _handle_generation
    _handle_generation += 1


def _existing_db(env: lmdb.Environment | None, name: bytes) -> Any:
    """The handle (cached per environment) of an existing named database, or None.

    Call it before beginning the transaction that uses the handle: a transaction does not see
    databases opened after it began, and a handle opened inside a read transaction dies with
    it (measured with py-lmdb 3.0). py-lmdb opens it in a transaction of its own (on a
    writable environment a brief LMDB write transaction, once per process and database).
    """
    if env is None:
        return None
    handle = _db_handles.get((id(env), name))
    if handle is None:
        with env.begin() as txn:
            exists = txn.get(name) is not None
        if not exists:
            return None
        handle = env.open_db(name, create=False)
        _db_handles[(id(env), name)] = handle
    return handle


def _created_db(env: lmdb.Environment, txn: lmdb.Transaction, name: bytes) -> Any:
    """A named database's handle inside a write transaction, created if missing."""
    handle = _db_handles.get((id(env), name))
    return handle if handle is not None else env.open_db(name, txn=txn, create=True)


def _forget_db_handles(env: lmdb.Environment) -> None:
    for key in [k for k in _db_handles if k[0] == id(env)]:
        del _db_handles[key]
    _handles_changed()


# -- layouts: how a group's feature columns map onto the codec ---------------------------------
_FIXED_WIDTH = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 4, pa.int64(): 8, pa.float32(): 4,
                pa.float64(): 8, pa.date32(): 4}
_NO_TTL = -(2**63)


def _codec_type(t: pa.DataType, column: str) -> tuple[int, int, int]:
    """``(kind, width, scalar)`` of a column type in the row codec."""
    if pa.types.is_boolean(t):
        return rowcodec.Kind.BOOL, 1, rowcodec.Scalar.BOOLEAN
    if t in _FIXED_WIDTH or pa.types.is_timestamp(t):
        scalar = rowcodec.Scalar.FLOAT if pa.types.is_floating(t) else rowcodec.Scalar.INTEGER
        return rowcodec.Kind.FIXED, 8 if pa.types.is_timestamp(t) else _FIXED_WIDTH[t], scalar
    if pa.types.is_string(t):
        return rowcodec.Kind.BYTES, 0, rowcodec.Scalar.STRING
    if pa.types.is_binary(t):
        return rowcodec.Kind.BYTES, 0, rowcodec.Scalar.BINARY
    if pa.types.is_list(t) and not pa.types.is_list(t.value_type):
        kind, width, scalar = _codec_type(t.value_type, column)
        return kind + rowcodec.Kind.LIST_FIXED, width, scalar
    raise SchemaError(f"column {column!r} of type {t} cannot be stored online (lists of lists "
                      f"are offline only)")


def _python_converter(t: pa.DataType):
    """How a scalar decoded as an integer becomes the Python value pyarrow would give."""
    if pa.types.is_list(t):
        inner = _python_converter(t.value_type)
        return None if inner is None else (lambda v: [None if x is None else inner(x) for x in v])
    if pa.types.is_timestamp(t):
        return lambda us: _EPOCH + dt.timedelta(microseconds=us)
    if pa.types.is_date(t):
        return lambda days: _EPOCH_DATE + dt.timedelta(days=days)
    return None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_DATE = dt.date(1970, 1, 1)


@dataclass
class Layout:
    """How a group's rows map onto the codec: the feature columns (schema order, without the
    primary key and event time) and where the event time goes in a decoded batch."""

    schema: pa.Schema
    primary_key: list[str]
    event_time: str | None
    features: list[pa.Field]
    batch_schema: pa.Schema        # key columns, then event time and features in schema order
    key_schema: pa.Schema
    codec: rowcodec.RowLayout
    converters: list[tuple[int, Any]]   # (feature index, to-Python function) for dates/times
    key_converters: list[Any] | None    # per key column: Python date/time -> integer, or None
    feature_names: list[str]

    @classmethod
    def of(cls, schema: pa.Schema, primary_key: list[str], event_time: str | None) -> Layout:
        values = [f for f in schema if f.name not in primary_key]
        features = [f for f in values if f.name != event_time]
        codec_types = [_codec_type(f.type, f.name) for f in features]
        time_position = [f.name for f in values].index(event_time) if event_time else -1
        key_types = [_codec_type(schema.field(k).type, k) for k in primary_key]
        codec = rowcodec.RowLayout([k for k, _, _ in codec_types], [w for _, w, _ in codec_types],
                                   [s for _, _, s in codec_types], time_position,
                                   [k for k, _, _ in key_types], [w for _, w, _ in key_types])
        converters = [(j, _python_converter(f.type)) for j, f in enumerate(features)]
        key_converters = [_key_integer(schema.field(k).type) for k in primary_key]
        return cls(schema, primary_key, event_time, features,
                   pa.schema([schema.field(k) for k in primary_key] + values),
                   pa.schema([schema.field(k) for k in primary_key]), codec,
                   [(j, fn) for j, fn in converters if fn is not None],
                   key_converters if any(key_converters) else None,
                   [f.name for f in features])

    @property
    def output_fields(self) -> list[pa.Field]:
        """Event time, then features, in schema order."""
        return list(self.batch_schema)[len(self.primary_key):]


def encode_keys(table: pa.Table, layout: Layout) -> list[bytes]:
    """The LMDB keys of ``table``'s primary key columns (of the schema's types, no nulls)."""
    columns = []
    for name in layout.primary_key:
        array = single_array(table.column(name))
        buffers = array.buffers()
        columns.append((buffers[0], buffers[-1], buffers[1] if len(buffers) == 3 else None,
                        array.offset))
    try:
        return rowcodec.encode_keys(layout.codec, columns, table.num_rows)
    except ValueError as exc:
        column = layout.primary_key[int(str(exc).split()[2].rstrip(":"))]
        if "null" in str(exc):
            raise ValidationError(f"keys: primary key column {column!r} has null values") from None
        raise ValidationError(f"keys: {column!r}: {str(exc).split(': ', 1)[1]}; online keys "
                              f"are at most 500 bytes") from None


def encode_key(layout: Layout, key: tuple) -> bytes:
    """The LMDB key of one primary key given as Python values in key order."""
    if layout.key_converters:
        key = tuple(convert(v) if convert else v for v, convert in zip(key, layout.key_converters))
    try:
        return rowcodec.encode_key(layout.codec, key)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if message.startswith("key column "):
            column = layout.primary_key[int(message.split()[2].rstrip(":"))]
            message = f"{column!r}: {message.split(': ', 1)[1]}"
        raise SchemaError(f"key: {message}") from None


def _key_integer(t: pa.DataType):
    """How a Python date or datetime key value becomes the integer the key encodes."""
    if pa.types.is_timestamp(t):
        def micros(v):
            if isinstance(v, dt.datetime):
                if v.tzinfo is None:
                    v = v.replace(tzinfo=dt.timezone.utc)
                return (v - _EPOCH) // dt.timedelta(microseconds=1)
            return v
        return micros
    if pa.types.is_date(t):
        return lambda v: (v - _EPOCH_DATE).days if isinstance(v, dt.date) else v
    return None


def _unpacked_bits(array: pa.Array) -> np.ndarray:
    """A boolean array's values as one byte per row."""
    if len(array) == 0:
        return np.zeros(0, np.uint8)
    bits = np.unpackbits(np.frombuffer(array.buffers()[1], np.uint8), bitorder="little")
    return bits[array.offset: array.offset + len(array)]


def _leaf_arrays(array: pa.Array, kind: int, width: int) -> list[np.ndarray]:
    """A fixed, boolean or bytes column's arrays for the codec, after its validity mask."""
    if kind == rowcodec.Kind.BOOL:
        return [_unpacked_bits(array)]
    if kind == rowcodec.Kind.FIXED:
        return [np.ascontiguousarray(fixed_width_values(array, np.dtype(f"V{width}"))).view(np.uint8)]
    return list(binary_buffers(array.cast(pa.large_binary())))


def _column_arrays(array: pa.Array, kind: int, width: int) -> list[np.ndarray]:
    """What ``rowcodec.encode_values`` takes for one column (see its docstring)."""
    if kind < rowcodec.Kind.LIST_FIXED:
        return [validity_mask(array), *_leaf_arrays(array, kind, width)]
    offsets = np.asarray(array.offsets, dtype=np.int64) if len(array) else np.zeros(1, np.int64)
    elements = array.values
    return [validity_mask(array), offsets, validity_mask(elements),
            *_leaf_arrays(elements, kind - rowcodec.Kind.LIST_FIXED, width)]


def encode_values(layout: Layout, rows: pa.Table, version: int,
                  num_threads: int | None = None) -> list[bytes]:
    if layout.event_time:
        times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                                   np.int64)
    else:
        times = np.zeros(rows.num_rows, np.int64)
    columns = []
    for f in layout.features:
        kind, width, _ = _codec_type(f.type, f.name)
        columns.append(_column_arrays(single_array(rows.column(f.name)), kind, width))
    return rowcodec.encode_values(layout.codec, np.ascontiguousarray(times), version, columns,
                                  num_threads or get_num_threads())


_CHUNK = 1 << 18


def _encoded_chunks(layout: Layout, rows: pa.Table, keys: list[bytes], commit: int):
    """``(keys, values)`` in chunks of ``_CHUNK`` rows, so that a big write never holds every
    encoded value at once. (Encoding on a helper thread while py-lmdb writes the previous
    chunk was measured: no faster, as both need the GIL for most of their work.)"""
    for start in range(0, max(rows.num_rows, 1), _CHUNK):
        yield keys[start:start + _CHUNK], encode_values(layout, rows.slice(start, _CHUNK), commit)


def _arena(size: int) -> np.ndarray:
    return empty(size, np.uint8)


def decode_batch(layout: Layout, keys: list[bytes], values: list, min_time: int) -> pa.RecordBatch:
    """Decode LMDB keys and values (call inside their transaction) into a batch of the key
    columns, event time and features; nulls for missing values and rows older than
    ``min_time``."""
    address = rowcodec.decode_batch(layout.codec, keys, values, min_time, _arena)
    return pa.RecordBatch._import_from_c(address, layout.batch_schema)


class OnlineStore:
    """The online databases of one lake."""

    def __init__(self, lake_path: str, readonly: bool):
        self.path = os.path.join(lake_path, "online")
        self.readonly = readonly
        self._handles: dict[tuple[str, int], tuple[lmdb.Environment, Any, int]] = {}

    def _env(self, create: bool) -> lmdb.Environment | None:
        return environment(self.path, create and not self.readonly)

    @staticmethod
    def db_name(name: str, version: int) -> bytes:
        return f"fg:{name}@{version}".encode()

    def _write(self, fn) -> Any:
        """Run ``fn(env)`` in a write transaction; grow the map and retry when it is full."""
        env = self._env(create=True)
        while True:
            try:
                with env.begin(write=True) as txn:
                    return fn(env, txn)
            except lmdb.MapFullError:
                _forget_db_handles(env)  # handles opened in the aborted transaction are gone
                env.set_mapsize(env.info()["map_size"] * 2)
            except BaseException:
                _forget_db_handles(env)
                raise

    def _read(self, name: bytes, fn) -> Any:
        """Run ``fn(txn, db)`` on database ``name`` in a read transaction (``db`` None: no such
        database yet)."""
        env = self._env(create=False)
        db = _existing_db(env, name)
        if db is None:
            return fn(None, None)
        while True:
            try:
                with env.begin(buffers=True) as txn:
                    return fn(txn, db)
            except lmdb.MapResizedError:
                env.set_mapsize(0)  # adopt the size another process grew the map to

    def watermark(self, name: str, version: int) -> int:
        """The last offline commit applied to the group (-1: none)."""
        def get(txn, wm):
            value = None if wm is None else txn.get(self.db_name(name, version), db=wm)
            return -1 if value is None else int.from_bytes(bytes(value), "little", signed=True)
        return self._read(WATERMARKS, get)

    def apply(self, name: str, version: int, layout: Layout, rows: pa.Table | None, commit: int,
              deleted_keys: pa.Table | None = None, clear: bool = False) -> None:
        """Write the latest row per key of ``rows`` (from offline commit ``commit``), remove
        ``deleted_keys``, and move the group's watermark to ``commit``: one transaction."""
        if rows is None:
            rows = layout.schema.empty_table()
        rows, keys = latest_in_key_order(rows, layout)
        deleted = encode_keys(deleted_keys, layout) if deleted_keys is not None else []
        integer_key = all(layout.codec.key_kinds_of(k) != rowcodec.Kind.BYTES
                          for k in range(len(layout.primary_key)))
        key_bytes = 8 * len(layout.primary_key) * len(keys) if integer_key else sum(map(len, keys))
        self._reserve(key_bytes + rows.get_total_buffer_size()
                      + len(keys) * (16 + 4 * len(layout.features)), clear)

        def write(env, txn):
            db = _created_db(env, txn, self.db_name(name, version))
            wm = _created_db(env, txn, WATERMARKS)
            if clear:
                txn.drop(db, delete=False)
            for key in deleted:
                txn.delete(key, db=db)
            cursor = txn.cursor(db=db)
            bulk = txn.stat(db)["entries"] == 0     # a bulk load: append, pages filled densely
            get = txn.get
            for chunk_keys, values in _encoded_chunks(layout, rows, keys, commit):
                if bulk:
                    added, _ = cursor.putmulti(zip(chunk_keys, values), append=True)
                    if added != len(chunk_keys):
                        raise AssertionError("online keys out of order in append mode")
                    continue
                replace = rowcodec.newer_rows(values, [get(k, None, db) for k in chunk_keys])
                if replace.all():
                    cursor.putmulti(zip(chunk_keys, values))
                else:
                    cursor.putmulti((k, v) for k, v, r in zip(chunk_keys, values, replace) if r)
            txn.put(self.db_name(name, version), commit.to_bytes(8, "little", signed=True), db=wm)
        self._write(write)

    def remove_group(self, name: str, version: int) -> None:
        """Empty a deleted group's database and drop its watermark (the database itself is
        kept: other processes may hold its handle)."""
        env = self._env(create=False)
        if env is None:
            return
        db_name = self.db_name(name, version)
        db, wm = _existing_db(env, db_name), _existing_db(env, WATERMARKS)
        if db is None and wm is None:
            return

        def write(env, txn):
            if db is not None:
                txn.drop(db, delete=False)
            if wm is not None:
                txn.delete(db_name, db=wm)
        self._write(write)
        self._handles.pop((name, version), None)

    def _reserve(self, payload: int, clear: bool) -> None:
        """Grow the map ahead of a write of ``payload`` bytes, so that a big load is written
        once instead of failing with MapFullError and retrying after each doubling. A cleared
        database's pages are freed only when the transaction commits, so they count too."""
        env = self._env(create=True)
        info = env.info()
        used = (info["last_pgno"] + 1) * env.stat()["psize"]
        need = used + 2 * payload + (used if clear else 0) + (1 << 20)
        if need > info["map_size"]:
            try:
                env.set_mapsize(max(need + need // 4, info["map_size"] * 2))
            except lmdb.Error:
                pass        # a transaction is open somewhere: growth on MapFullError instead

    def database(self, name: str, version: int) -> Any:
        """A group's database handle (None: no online data yet)."""
        return self._database(name, version)[1]

    def _database(self, name: str, version: int) -> tuple[lmdb.Environment | None, Any]:
        """The environment and a group's database handle (None: not created yet), cached
        for the read paths until a fork or an aborted write invalidates handles."""
        cached = self._handles.get((name, version))
        if cached is not None and cached[2] == _handle_generation:
            return cached[0], cached[1]
        env = self._env(create=False)
        db = _existing_db(env, self.db_name(name, version))
        if db is not None:
            self._handles[(name, version)] = (env, db, _handle_generation)
        return env, db

    def read(self, name: str, version: int, layout: Layout, keys: pa.Table,
             ttl_us: int | None) -> pa.Table:
        """One row per key of ``keys`` (already of the schema's key types): the key columns,
        then the event time and features; nulls for missing keys and rows past the ttl."""
        encoded = encode_keys(keys, layout)
        min_time = _NO_TTL if ttl_us is None else time.time_ns() // 1000 - ttl_us
        env, db = self._database(name, version)
        if db is None:
            batch = decode_batch(layout, encoded, [None] * len(encoded), min_time)
        else:
            while True:
                try:
                    # copies (buffers=False): py-lmdb hands out bytes faster than buffers
                    with env.begin() as txn:
                        values = list(map(txn.get, encoded, repeat(None), repeat(db)))
                        batch = decode_batch(layout, encoded, values, min_time)
                    break
                except lmdb.MapResizedError:
                    env.set_mapsize(0)  # adopt the size another process grew the map to
        return pa.Table.from_batches([batch])

    def read_dict(self, name: str, version: int, layout: Layout, key: tuple,
                  ttl_us: int | None) -> dict[str, Any] | None:
        """The features of one primary key (its values in key order) as a dict of Python
        values, or None when the key is missing or past the ttl: the feature-vector path."""
        row = self.read_row(name, version, layout, encode_key(layout, key), ttl_us)
        return None if row is None else dict(zip(layout.feature_names, row))

    def read_many(self, requests: list[tuple[Any, Layout, tuple, int | None]]) -> list:
        """Several one-key reads in one transaction: for each ``(db, layout, key, ttl_us)``
        (``db`` from ``database``, taken before) the features as Python values in column
        order, or None when missing or past the ttl."""
        env = self._env(create=False)
        if env is None:
            return [None] * len(requests)
        now = time.time_ns() // 1000
        with env.begin() as txn:
            get = txn.get
            rows = [None if db is None else rowcodec.decode_row(
                        layout.codec, get(encode_key(layout, key), None, db),
                        _NO_TTL if ttl_us is None else now - ttl_us)
                    for db, layout, key, ttl_us in requests]
        for row, (_, layout, _, _) in zip(rows, requests):
            if row is not None and layout.converters:
                for j, convert in layout.converters:
                    if row[j] is not None:
                        row[j] = convert(row[j])
        return rows

    def read_concatenated(self, groups: list[tuple[Any, Layout, int | None, list[str]]],
                          key: dict[str, Any], env: lmdb.Environment | None = None) -> list:
        """The feature-vector path: for each ``(db, layout, ttl_us, on)`` the features of the
        key ``tuple(key[c] for c in on)``, all read in one transaction and concatenated in
        order (Nones for a missing or stale row). Keys must have the groups' key types."""
        env = env or self._env(create=False)
        now = time.time_ns() // 1000 if any(g[2] is not None for g in groups) else 0
        out: list = []
        if env is None:
            for _, layout, _, _ in groups:
                out.extend([None] * len(layout.features))
            return out
        decode, encode = rowcodec.decode_row, rowcodec.encode_key
        txn = env.begin()
        try:
            get = txn.get
            for db, layout, ttl_us, on in groups:
                values = (key[on[0]],) if len(on) == 1 else tuple([key[c] for c in on])
                if layout.key_converters:
                    values = tuple(convert(v) if convert else v
                                   for v, convert in zip(values, layout.key_converters))
                row = None if db is None else decode(
                    layout.codec, get(encode(layout.codec, values), None, db),
                    _NO_TTL if ttl_us is None else now - ttl_us)
                if row is None:
                    out.extend([None] * len(layout.features))
                    continue
                for j, convert in layout.converters:
                    if row[j] is not None:
                        row[j] = convert(row[j])
                out.extend(row)
        finally:
            txn.abort()                 # read-only: nothing to commit
        return out

    def read_row(self, name: str, version: int, layout: Layout, key: bytes,
                 ttl_us: int | None) -> list | None:
        """The features of one encoded key as Python values in column order (dates and
        timestamps as ``datetime``), or None when the key is missing or past the ttl."""
        min_time = _NO_TTL if ttl_us is None else time.time_ns() // 1000 - ttl_us
        env, db = self._database(name, version)
        if db is None:
            return None
        while True:
            try:
                with env.begin(buffers=True) as txn:
                    row = rowcodec.decode_row(layout.codec, txn.get(key, None, db), min_time)
                break
            except lmdb.MapResizedError:
                env.set_mapsize(0)
        if row is not None:
            for j, convert in layout.converters:
                if row[j] is not None:
                    row[j] = convert(row[j])
        return row


def latest_in_key_order(rows: pa.Table, layout: Layout) -> tuple[pa.Table, list[bytes]]:
    """The row with the greatest event time of each primary key (rows of one commit have
    unique (key, event time), so there are no ties; without an event time the last row wins),
    sorted by encoded key so that they can be appended to an empty database, and their keys."""
    n = rows.num_rows
    if n == 0:
        return rows, []
    if layout.event_time:
        times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                                   np.int64)
    else:
        times = np.arange(n)                    # the last occurrence wins
    integer_key = len(layout.primary_key) == 1 and \
        layout.codec.key_kinds_of(0) != rowcodec.Kind.BYTES
    if integer_key:                             # numeric order is the encoded keys' order
        values = single_array(rows.column(layout.primary_key[0]))
        values = fixed_width_values(values.cast(pa.int64()) if values.type != pa.int64()
                                    else values, np.int64)
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
    if not integer_key:                         # codes are not in key order: sort the keys
        chosen = np.sort(chosen)
        keys = encode_keys(rows.select(layout.primary_key).take(pa.array(chosen)), layout)
        by_key = np.array(sorted(range(len(keys)), key=keys.__getitem__), np.int64)
        chosen = chosen[by_key]
    if len(chosen) != n or not np.array_equal(chosen, np.arange(n)):
        rows = take_rows(rows, chosen, get_num_threads())
    return rows, encode_keys(rows, layout)


def check_keys(keys: pa.Table, layout: Layout) -> pa.Table:
    """The request's key columns cast to the schema's key types; SchemaError otherwise, and
    ValidationError for null keys."""
    from lakecore.offline.schema import conform

    primary_key = layout.primary_key
    if keys.schema.equals(layout.key_schema):   # already right (nulls: refused when encoded)
        return keys
    missing = [k for k in primary_key if k not in keys.column_names]
    if missing:
        raise SchemaError(f"keys: missing primary key column(s) {', '.join(map(repr, missing))}")
    return conform(keys.select(primary_key), layout.key_schema, primary_key, None, argument="keys")
