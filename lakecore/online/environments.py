"""LMDB environments and database handles, shared by every Lake of this process.

One environment per path, opened once per process and never used across ``fork()`` (the child
drops the parent's handles and opens its own); named database handles cached per environment
and invalidated (``handles_version``) after a fork or an aborted write. Environments use
LMDB 0.9's file format, start at ``INITIAL_MAP_SIZE`` and grow on demand.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import lmdb

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


def existing_db(env: lmdb.Environment | None, name: bytes) -> Any:
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
        with begin_read(env) as txn:
            exists = txn.get(name) is not None
        if not exists:
            return None
        handle = env.open_db(name, create=False)
        _db_handles[(id(env), name)] = handle
    return handle


def created_db(env: lmdb.Environment, txn: lmdb.Transaction, name: bytes) -> Any:
    """A named database's handle inside a write transaction, created if missing."""
    handle = _db_handles.get((id(env), name))
    return handle if handle is not None else env.open_db(name, txn=txn, create=True)


def forget_db_handles(env: lmdb.Environment) -> None:
    for key in [k for k in _db_handles if k[0] == id(env)]:
        del _db_handles[key]
    _handles_changed()


def begin_read(env: lmdb.Environment) -> lmdb.Transaction:
    """A read transaction of copies (py-lmdb hands out bytes faster than buffers), adopting
    the map size when another process grew the map: the one way every read path starts."""
    try:
        return env.begin()
    except lmdb.MapResizedError:
        env.set_mapsize(0)
        return env.begin()
