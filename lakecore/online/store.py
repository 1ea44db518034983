"""The online store: the latest row of every key of every online feature group, in LMDB.

One LMDB environment per lake (``<lake>/online``), one named database per online group version,
keys and values encoded by the native row codec (``_native/rowformat.pyx`` describes it). Values are derived
from the offline table: a key's row is replaced only by a row with a greater event time, or an
equal one from a later commit, and the database ``__watermarks__`` records the last offline
commit applied to each group, in the same transaction as the rows (compactions change no row and
are not applied). A writable open rolls every group forward from its watermark, so a crash
between the offline commit and the online write, or a power loss that takes back the last LMDB
transaction (one fsync per write: see ``environments``), is repaired on the next open.

Rows are put by the native ``lmdbwrite`` kernel from one packed buffer per chunk, inside the
same py-lmdb write transaction (``native_write`` explains how it is found, and why not a second
LMDB binding); where that transaction cannot be used safely, by py-lmdb's ``putmulti``, with
the same result.

LMDB facts this module respects: one environment handle per process and path (shared by every
Lake), never used across ``fork()`` (the child opens its own); map size grows on
``MapFullError``; ``reader_check()`` at open; LMDB's own durability (no ``writemap``).
"""

from __future__ import annotations

import contextlib
import os
import time
from itertools import repeat
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import lmdb
import numpy as np
import pyarrow as pa

from lakecore._native.valuecodec import newer_rows
from lakecore.base.arrow import take_rows
from lakecore.base.files import fsync_path, open_own, remove_tree
from lakecore.base.refs import group_ref
from lakecore.base.threads import threads_for
from lakecore.errors import IntegrityError, LakeError
from lakecore.online.codec import (
    PackedKeys,
    decode_batch,
    decode_row,
    encode_key,
    encode_keys,
    encoded_chunks,
    latest_in_key_order,
    packed_chunks,
)
from lakecore.online.environments import (
    WATERMARKS,
    begin_read,
    created_db,
    discard_environment,
    environment,
    existing_db,
    forget_db_handles,
    handles_version,
)
from lakecore.online.layout import NO_TTL, Layout
from lakecore.online.native_write import RowWriter

# group database name -> the fingerprint of the layout its rows are encoded in;
# b"#" + fingerprint -> that layout's schema (Arrow IPC). Written with the rows.
LAYOUTS = b"__layouts__"


class OnlineStore:
    """The online databases of one lake."""

    def __init__(self, lake_path: str, readonly: bool):
        self.path = os.path.join(lake_path, "online")
        self.readonly = readonly
        self._handles: dict[tuple[str, int], tuple[lmdb.Environment, Any, int]] = {}
        self._stored_layouts: dict[bytes, Layout] = {}     # by fingerprint
        self._db_names: dict[tuple[str, int], bytes] = {}

    def _env(self, create: bool) -> lmdb.Environment | None:
        return environment(self.path, create and not self.readonly, readonly=self.readonly)

    @staticmethod
    def db_name(name: str, version: int) -> bytes:
        return group_ref(name, version).encode()

    def _write(self, fn) -> Any:
        """Run ``fn(env)`` in a write transaction; grow the map and retry when it is full."""
        env = self._env(create=True)
        while True:
            try:
                with env.begin(write=True) as txn:
                    return fn(env, txn)
            except lmdb.MapFullError:
                forget_db_handles(env)  # handles opened in the aborted transaction are gone
                env.set_mapsize(env.info()["map_size"] * 2)
            except BaseException:
                forget_db_handles(env)
                raise

    def check(self) -> None:
        """Open the environment and read its watermarks: an lmdb.Error when the files are not
        a readable LMDB environment (damaged, or not LMDB at all)."""
        env = self._env(create=False)
        if env is not None:
            wm = existing_db(env, WATERMARKS)
            if wm is not None:
                with begin_read(env) as txn:
                    for _ in txn.cursor(db=wm).iternext():
                        pass

    def reset(self) -> None:
        """Remove the online store's files (the caller holds the writer lock and rebuilds
        every online group from the offline tables next: the store is derived data)."""
        discard_environment(self.path)
        self._handles.clear()
        remove_tree(self.path)

    def compact(self) -> None:
        """Rewrite the environment without its free pages (LMDB never zeroes a deleted value;
        a compacting copy holds none of them) and put it in place of the old one. The caller
        holds the writer lock; other processes reopen it on their next call (the data file's
        inode changed: ``environments.environment``)."""
        env = self._env(create=False)
        if env is None:
            return
        staged = self.path + ".compact.tmp"
        remove_tree(staged)
        os.makedirs(staged)
        try:
            env.copy(staged, compact=True)
            with open_own(os.path.join(staged, "data.mdb")) as f:
                os.fsync(f.fileno())
            discard_environment(self.path)
            self._handles.clear()
            os.replace(os.path.join(staged, "data.mdb"), os.path.join(self.path, "data.mdb"))
            with contextlib.suppress(FileNotFoundError):    # it described the old file
                os.unlink(os.path.join(self.path, "lock.mdb"))
            fsync_path(self.path)
        finally:
            remove_tree(staged)

    def watermark(self, name: str, version: int) -> int:
        """The last offline commit applied to the group (-1: none). Compactions change no
        row and are not applied: commits after the watermark may all be compactions."""
        env = self._env(create=False)
        wm = existing_db(env, WATERMARKS)
        if wm is None:
            return -1
        with begin_read(env) as txn:
            value = txn.get(self.db_name(name, version), db=wm)
        return -1 if value is None else int.from_bytes(value, "little", signed=True)

    def apply(self, name: str, version: int, layout: Layout, rows: pa.Table | OnlineRows | None,
              commit: int, deleted_keys: list[bytes] | None = None,
              clear: bool = False) -> None:
        """Write the latest row per key of ``rows`` (from offline commit ``commit``; or
        ``prepare``'s result), remove ``deleted_keys`` (encoded), and move the
        group's watermark to ``commit``: one transaction."""
        if rows is None:
            rows = layout.schema.empty_table()
        prepared = rows if isinstance(rows, OnlineRows) else prepare(rows, layout)
        self._reserve(prepared.keys.nbytes + prepared.rows.get_total_buffer_size()
                      + len(prepared.keys) * (16 + 4 * len(layout.features)), clear)
        self._write(lambda env, txn: self._apply_in(env, txn, name, version, layout,
                                                    [prepared], commit, deleted_keys, clear))

    def apply_parts(self, name: str, version: int, layout: Layout,
                    parts: Callable[[], Iterable[pa.Table]], commit: int, size: int,
                    clear: bool = False) -> None:
        """``apply`` of rows too many to hold at once: ``parts()`` gives them a table at a
        time (each read, written and let go before the next), all in one transaction, so
        readers see all of them or none. ``size``: about how many bytes they take decoded
        (the map is grown ahead by that). A row replaces the stored one of its key only when
        it is newer, so a key in several parts ends with its latest row."""
        self._reserve(size, clear)
        self._write(lambda env, txn: self._apply_in(
            env, txn, name, version, layout, (prepare(p, layout) for p in parts()), commit,
            None, clear))

    def _apply_in(self, env: Any, txn: Any, name: str, version: int, layout: Layout,
                  parts: Iterable[OnlineRows], commit: int, deleted_keys: list[bytes] | None,
                  clear: bool) -> None:
        db_name = self.db_name(name, version)
        db = created_db(env, txn, db_name)
        wm = created_db(env, txn, WATERMARKS)
        if clear:
            txn.drop(db, delete=False)
        for key in deleted_keys or []:
            txn.delete(key, db=db)
        # a bulk load (an empty database): appended, pages filled densely; only the first
        # part, whose keys alone are in order
        bulk = txn.stat(db)["entries"] == 0
        writer = RowWriter.of(env, txn, db_name)
        for rows, order, keys in parts:
            if writer is not None:                  # rows put natively, in this transaction
                for chunk_keys, data, offsets in packed_chunks(layout, rows, order, keys,
                                                               commit):
                    writer.put(chunk_keys, data, offsets, append=bulk)
            else:
                _put_through_py_lmdb(txn, db, layout, rows, order, keys, commit, bulk)
            bulk = False
        txn.put(db_name, commit.to_bytes(8, "little", signed=True), db=wm)
        _record_layout(env, txn, db_name, layout)

    def note_layout(self, name: str, version: int, layout: Layout) -> None:
        """Record that the group's rows are in ``layout`` (before a schema change: a crash
        after the offline commit then leaves rows that say which layout they are in)."""
        self._write(lambda env, txn: _record_layout(env, txn, self.db_name(name, version),
                                                    layout))

    def _stored_layout(self, txn: Any, layouts: Any, name: str, version: int,
                       layout: Layout) -> Layout:
        """The layout the group's rows are encoded in (``layout`` unless a schema change
        made them under another one, or is being applied). ``layouts``: the LAYOUTS handle,
        taken before ``txn`` began."""
        if layouts is None:
            return layout
        key = self._db_names.get((name, version))
        if key is None:
            key = self._db_names[(name, version)] = self.db_name(name, version)
        found = txn.get(key, None, layouts)
        if found is None or found == layout.fingerprint:
            return layout
        stored = self._stored_layouts.get(found)
        if stored is None:
            schema = txn.get(b"#" + found, None, layouts)
            if schema is None:
                raise IntegrityError(f"{self.path}: the online rows of {group_ref(name, version)} "
                                     f"name a layout the store does not hold")
            try:
                stored = Layout.of(pa.ipc.read_schema(pa.py_buffer(schema)),
                                   layout.primary_key, layout.event_time)
            except (pa.ArrowException, LakeError) as exc:
                raise IntegrityError(f"{self.path}: the layout recorded for the online rows of "
                                     f"{group_ref(name, version)} does not decode ({exc}); "
                                     f"rebuild_online() restores it") from None
            self._stored_layouts[found] = stored
        return stored

    def remove_group(self, name: str, version: int) -> None:
        """Empty a deleted group's database and drop its watermark (the database itself is
        kept: other processes may hold its handle)."""
        env = self._env(create=False)
        if env is None:
            return
        db_name = self.db_name(name, version)
        db, wm = existing_db(env, db_name), existing_db(env, WATERMARKS)
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
        if cached is not None and cached[2] == handles_version():
            return cached[0], cached[1]
        env = self._env(create=False)
        db = existing_db(env, self.db_name(name, version))
        if db is not None:
            self._handles[(name, version)] = (env, db, handles_version())
        return env, db

    def read(self, name: str, version: int, layout: Layout, keys: pa.Table,
             ttl_us: int | None) -> tuple[pa.Table, Layout]:
        """One row per key of ``keys`` (already of the schema's key types): the key columns,
        then the event time and features; nulls for missing keys and rows past the ttl. And
        the layout they were decoded with: ``layout``, unless a schema change stored them
        under another."""
        encoded = encode_keys(keys, layout)
        min_time = NO_TTL if ttl_us is None else time.time_ns() // 1000 - ttl_us
        env, db = self._database(name, version)
        if db is None:
            return pa.Table.from_batches([decode_batch(layout, encoded, [None] * len(encoded),
                                                       min_time)]), layout
        layouts = existing_db(env, LAYOUTS)
        with begin_read(env) as txn:
            stored = self._stored_layout(txn, layouts, name, version, layout)
            values = list(map(txn.get, encoded, repeat(None), repeat(db)))
            batch = decode_batch(stored, encoded, values, min_time)
        return pa.Table.from_batches([batch]), stored

    def scan(self, name: str, version: int) -> tuple[list[bytes], list[bytes], int]:
        """Every key and value of a group's database in key order, and its watermark (-1:
        none): what ``verify()`` compares with the offline table."""
        env, db = self._database(name, version)
        if db is None:
            return [], [], self.watermark(name, version)
        with begin_read(env) as txn:
            pairs = list(txn.cursor(db=db).iternext(keys=True, values=True))
        return [k for k, _ in pairs], [v for _, v in pairs], self.watermark(name, version)

    def row_reader(self, env: lmdb.Environment | None = None,
                   layouts: Any = None) -> RowReader:
        """A read transaction for one-key reads as Python values (the feature-vector path);
        ``env`` and ``layouts`` (``layouts_handle()``): when the caller has them already.
        Close it, or use it in a ``with`` block."""
        return RowReader(env if env is not None else self._env(create=False), layouts)

    def layouts_handle(self, env: lmdb.Environment | None) -> Any:
        """The handle of the layout records (None: none written yet)."""
        return existing_db(env, LAYOUTS)


class OnlineRows(NamedTuple):
    """Rows ready for the online store: the latest row per key is row ``order[i]`` of
    ``rows`` (``order`` None: row i), in key order, with key i of ``keys``. (The rows are
    gathered in key order chunk by chunk as they are written, not here.)"""
    rows: pa.Table
    order: np.ndarray | None
    keys: PackedKeys

    def in_key_order(self) -> pa.Table:
        """The latest row per key, in key order."""
        if self.order is None:
            return self.rows
        return take_rows(self.rows, self.order, threads_for(len(self.order)))


def prepare(rows: pa.Table, layout: Layout) -> OnlineRows:
    """What ``apply`` writes for ``rows``; computed before an offline commit, it refuses
    (``ValidationError``, ``SchemaError``) every key the online store could not hold, so that
    nothing is committed that the online write would then refuse."""
    return OnlineRows(rows, *latest_in_key_order(rows, layout))


class RowReader:
    """One read transaction of one-key reads: ``row(db, layout, key, ttl_us)`` is a key's
    features as Python values in column order (dates and times as ``datetime``), or None when
    it is missing, past the ttl, or ``db`` is None (the group has no online data yet)."""

    __slots__ = ("_txn", "_get", "_now", "_layouts")

    def __init__(self, env: lmdb.Environment | None, layouts: Any = None):
        # before the transaction begins (a lake without layout records: looked up each time,
        # as another process may write the first)
        self._layouts = layouts if layouts is not None else existing_db(env, LAYOUTS)
        self._txn = None if env is None else begin_read(env)
        self._get = None if env is None else self._txn.get
        self._now = time.time_ns() // 1000

    def layouts_match(self, expected: list[tuple[bytes, bytes]]) -> bool:
        """Whether each group (database name) holds its rows in the layout expected
        (fingerprint): False after a schema change the caller has not seen."""
        if self._txn is None or self._layouts is None:
            return True
        get, layouts = self._get, self._layouts
        for name, fingerprint in expected:
            found = get(name, None, layouts)
            if found is not None and found != fingerprint:
                return False
        return True

    def row(self, db: Any, layout: Layout, key: tuple, ttl_us: int | None) -> list | None:
        if db is None or self._txn is None:
            return None
        return decode_row(layout, self._get(encode_key(layout, key), None, db),
                          NO_TTL if ttl_us is None else self._now - ttl_us)

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()           # read-only: nothing to commit
            self._txn = None

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _put_through_py_lmdb(txn: Any, db: Any, layout: Layout, rows: pa.Table,
                         order: np.ndarray | None, keys: PackedKeys, commit: int,
                         bulk: bool) -> None:
    """``apply``'s rows written with py-lmdb's ``putmulti`` (one bytes object per value), when
    the transaction cannot be used natively (``native_write``)."""
    cursor = txn.cursor(db=db)
    get = txn.get
    for chunk_keys, values in encoded_chunks(layout, rows, order, keys, commit):
        if bulk:
            added, _ = cursor.putmulti(zip(chunk_keys, values), append=True)
            if added != len(chunk_keys):
                raise AssertionError("online keys out of order in append mode")
            continue
        replace = newer_rows(values, [get(k, None, db) for k in chunk_keys])
        if replace.all():
            cursor.putmulti(zip(chunk_keys, values))
        else:
            cursor.putmulti((k, v) for k, v, r in zip(chunk_keys, values, replace) if r)


def _record_layout(env: lmdb.Environment, txn: Any, db_name: bytes, layout: Layout) -> None:
    layouts = created_db(env, txn, LAYOUTS)
    if txn.get(db_name, None, layouts) != layout.fingerprint:
        txn.put(db_name, layout.fingerprint, db=layouts)
        txn.put(b"#" + layout.fingerprint, layout.schema.serialize().to_pybytes(), db=layouts,
                overwrite=False)
