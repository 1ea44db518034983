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

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import lmdb
import msgspec
import numpy as np
import pyarrow as pa

from lakecore._arrow import binary_buffers, fixed_width_values, single_array, validity_mask
from lakecore._native import rowcodec
from lakecore.errors import SchemaError, ValidationError
from lakecore.keys import key_codes

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


# -- layouts: how a group's feature columns map onto the codec ---------------------------------
_FIXED_WIDTH = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 4, pa.int64(): 8, pa.float32(): 4,
                pa.float64(): 8, pa.bool_(): 1, pa.date32(): 4}


def _is_fixed(t: pa.DataType) -> bool:
    return t in _FIXED_WIDTH or pa.types.is_timestamp(t)


def _width(t: pa.DataType) -> int:
    return 8 if pa.types.is_timestamp(t) else _FIXED_WIDTH[t]


@dataclass
class Layout:
    """A group's feature columns split into fixed-width and variable-width ones."""

    schema: pa.Schema
    primary_key: list[str]
    event_time: str | None
    fixed: list[pa.Field]
    var: list[pa.Field]
    codec: rowcodec.RowLayout

    @classmethod
    def of(cls, schema: pa.Schema, primary_key: list[str], event_time: str | None) -> Layout:
        features = [f for f in schema if f.name not in primary_key and f.name != event_time]
        fixed = [f for f in features if _is_fixed(f.type)]
        var = [f for f in features if not _is_fixed(f.type)]
        return cls(schema, primary_key, event_time, fixed, var,
                   rowcodec.RowLayout([_width(f.type) for f in fixed], len(var)))

    @property
    def output_fields(self) -> list[pa.Field]:
        """Event time, then features, in schema order."""
        names = [f.name for f in self.schema if f.name not in self.primary_key]
        return [self.schema.field(n) for n in names]


def encode_keys(table: pa.Table, primary_key: list[str]) -> list[bytes]:
    ints, blobs, order = [], [], []
    for name in primary_key:
        array = single_array(table.column(name))
        t = array.type
        if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) \
                or pa.types.is_large_binary(t):
            offsets, data = binary_buffers(array.cast(pa.large_binary()))
            if len(offsets) > 1 and int(np.diff(offsets).max()) > 500:
                raise ValidationError(f"keys: values of {name!r} longer than 500 bytes cannot be "
                                      f"online keys")
            order.append((True, len(blobs)))
            blobs.append((offsets, data))
        else:
            if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_boolean(t):
                array = array.cast(pa.int64()) if not pa.types.is_date(t) else \
                    array.cast(pa.int32()).cast(pa.int64())
            elif t != pa.int64():
                array = array.cast(pa.int64())
            order.append((False, len(ints)))
            ints.append(fixed_width_values(array, np.int64))
    return rowcodec.encode_keys(ints, blobs, order, table.num_rows)


def _list_blobs(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Lists as msgpack blobs (large-binary buffers); temporal elements as integers."""
    values = array.to_pylist()
    encoded = [b"" if v is None else msgspec.msgpack.encode(v) for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(encoded), np.uint8)


def _integral_lists(array: pa.Array) -> pa.Array:
    child = array.type.value_type
    if pa.types.is_timestamp(child):
        return array.cast(pa.list_(pa.int64()))
    if pa.types.is_date(child):
        return array.cast(pa.list_(pa.int32()))
    return array


def encode_values(layout: Layout, rows: pa.Table, version: int) -> list[bytes]:
    if layout.event_time:
        times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                                   np.int64)
    else:
        times = np.zeros(rows.num_rows, np.int64)
    fixed_values, fixed_valid = [], []
    for f in layout.fixed:
        array = single_array(rows.column(f.name))
        if pa.types.is_boolean(f.type):
            data = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), np.uint8)
        else:
            data = fixed_width_values(array, np.dtype(f"V{_width(f.type)}"))
            data = np.ascontiguousarray(data).view(np.uint8)
        fixed_values.append(data)
        fixed_valid.append(validity_mask(array))
    var_offsets, var_data, var_valid = [], [], []
    for f in layout.var:
        array = single_array(rows.column(f.name))
        if pa.types.is_list(f.type):
            offsets, data = _list_blobs(_integral_lists(array))
        else:
            offsets, data = binary_buffers(array.cast(pa.large_binary()))
        var_offsets.append(np.ascontiguousarray(offsets))
        var_data.append(np.ascontiguousarray(data))
        var_valid.append(validity_mask(array))
    return rowcodec.encode_values(layout.codec, np.ascontiguousarray(times), version,
                                  fixed_values, fixed_valid, var_offsets, var_data, var_valid)


def _bitmap(valid: np.ndarray) -> tuple[pa.Buffer | None, int]:
    nulls = int(len(valid) - np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def decode_columns(layout: Layout, decoded: tuple, live: np.ndarray) -> list[pa.Array]:
    """Arrow arrays of the event time and features, nulls where ``live`` is 0."""
    found, times, versions, valid, fixed, var_offsets, var_data = decoded
    n = len(found)
    columns: dict[str, pa.Array] = {}
    if layout.event_time:
        bitmap, nulls = _bitmap(live)
        columns[layout.event_time] = pa.Array.from_buffers(
            layout.schema.field(layout.event_time).type, n, [bitmap, pa.py_buffer(times)],
            null_count=nulls)
    for j, f in enumerate(layout.fixed):
        mask = valid[j] & live
        bitmap, nulls = _bitmap(mask)
        if pa.types.is_boolean(f.type):
            data = pa.py_buffer(np.packbits(fixed[j], bitorder="little"))
        else:
            data = pa.py_buffer(fixed[j])
        columns[f.name] = pa.Array.from_buffers(f.type, n, [bitmap, data], null_count=nulls)
    for j, f in enumerate(layout.var):
        mask = valid[len(layout.fixed) + j] & live
        bitmap, nulls = _bitmap(mask)
        if pa.types.is_list(f.type):
            blobs = pa.Array.from_buffers(pa.large_binary(), n, [
                bitmap, pa.py_buffer(var_offsets[j]), pa.py_buffer(var_data[j])], null_count=nulls)
            plain = _integral_lists(pa.array([], f.type)).type
            values = [None if b is None else msgspec.msgpack.decode(b)
                      for b in blobs.to_pylist()]
            columns[f.name] = pa.array(values, plain).cast(f.type)
        else:
            big = pa.large_string() if pa.types.is_string(f.type) else pa.large_binary()
            columns[f.name] = pa.Array.from_buffers(big, n, [
                bitmap, pa.py_buffer(var_offsets[j]), pa.py_buffer(var_data[j])],
                null_count=nulls).cast(f.type)
    return [columns[f.name] for f in layout.output_fields]


class OnlineStore:
    """The online databases of one lake."""

    def __init__(self, lake_path: str, readonly: bool):
        self.path = os.path.join(lake_path, "online")
        self.readonly = readonly

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
        rows = latest_per_key(rows, layout)
        keys = encode_keys(rows, layout.primary_key)
        values = encode_values(layout, rows, commit)
        deleted = encode_keys(deleted_keys, layout.primary_key) if deleted_keys is not None else []

        def write(env, txn):
            db = _created_db(env, txn, self.db_name(name, version))
            wm = _created_db(env, txn, WATERMARKS)
            if clear:
                txn.drop(db, delete=False)
            for key in deleted:
                txn.delete(key, db=db)
            if txn.stat(db)["entries"] == 0:
                order = sorted(range(len(keys)), key=keys.__getitem__)
                cursor = txn.cursor(db=db)
                added, _ = cursor.putmulti([(keys[i], values[i]) for i in order], append=True)
                if added != len(keys):
                    raise AssertionError("online keys out of order in append mode")
            else:
                get, put = txn.get, txn.put
                for key, value in zip(keys, values):
                    old = get(key, db=db)
                    if old is None or _newer(value, old):
                        put(key, value, db=db)
            txn.put(self.db_name(name, version), commit.to_bytes(8, "little", signed=True), db=wm)
        self._write(write)

    def read(self, name: str, version: int, layout: Layout, keys: pa.Table,
             ttl_us: int | None) -> pa.Table:
        encoded = encode_keys(keys, layout.primary_key)

        def get(txn, db):
            if db is None:
                return rowcodec.decode_values(layout.codec, [None] * len(encoded))
            g = txn.get
            return rowcodec.decode_values(layout.codec, [g(k, db=db) for k in encoded])

        decoded = self._read(self.db_name(name, version), get)
        live = decoded[0]
        if ttl_us is not None:
            now_us = time.time_ns() // 1000
            live = live & (decoded[1] >= now_us - ttl_us).astype(np.uint8)
        columns = [keys.column(k) for k in layout.primary_key] + decode_columns(layout, decoded, live)
        names = layout.primary_key + [f.name for f in layout.output_fields]
        return pa.Table.from_arrays(columns, names=names)


def _newer(value: bytes, old) -> bool:
    """Whether an encoded row replaces the stored one: a greater event time, or an equal one
    from a commit at least as late."""
    new_time = int.from_bytes(value[:8], "little", signed=True)
    old_header = bytes(old[:16])
    old_time = int.from_bytes(old_header[:8], "little", signed=True)
    if new_time != old_time:
        return new_time > old_time
    return int.from_bytes(value[8:16], "little", signed=True) >= \
        int.from_bytes(old_header[8:16], "little", signed=True)


def latest_per_key(rows: pa.Table, layout: Layout) -> pa.Table:
    """The row with the greatest event time of each primary key (rows of one commit have
    unique (key, event time), so there are no ties)."""
    if rows.num_rows == 0:
        return rows
    codes, _, n = key_codes(rows, rows.slice(0, 0), layout.primary_key, layout.primary_key)
    if layout.event_time is None:
        from lakecore._native import dedupe
        return rows.take(pa.array(dedupe.last_occurrences(codes, n)))
    times = fixed_width_values(single_array(rows.column(layout.event_time)).cast(pa.int64()),
                               np.int64)
    order = np.lexsort((times, codes))          # by key, then time
    last = np.ones(len(order), bool)
    last[:-1] = codes[order][1:] != codes[order][:-1]
    return rows.take(pa.array(np.sort(order[last])))


def check_keys(keys: pa.Table, schema: pa.Schema, primary_key: list[str]) -> pa.Table:
    """The request's key columns cast to the schema's key types; SchemaError otherwise."""
    from lakecore.schema import conform

    missing = [k for k in primary_key if k not in keys.column_names]
    if missing:
        raise SchemaError(f"keys: missing primary key column(s) {', '.join(map(repr, missing))}")
    key_schema = pa.schema([schema.field(k) for k in primary_key])
    return conform(keys.select(primary_key), key_schema, [], None, argument="keys")
