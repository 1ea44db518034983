"""LMDB environments and database handles, shared by every Lake of this process.

One environment per path, opened once per process and never used across ``fork()`` (the child
drops the parent's handles and opens its own); named database handles cached per environment
and invalidated (``handles_version``) after a fork or an aborted write. Environments use
LMDB 0.9's file format, start at ``INITIAL_MAP_SIZE`` and grow on demand.

Each write transaction makes one fsync, not two (``metasync=False``): LMDB then keeps its
integrity through a power loss but may lose the last transaction. The online store is derived
from the offline commits, which are durable first, and that transaction also holds the
group's watermark: the next writable open finds the watermark behind and applies the commit
again.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from typing import Any

import lmdb

from lakecore.errors import IntegrityError

LMDB_FORMAT = 0  # py-lmdb bundles LMDB 0.9 and 1.0, whose files differ: pin 0.9
INITIAL_MAP_SIZE = 64 << 20
WATERMARKS = b"__watermarks__"
_META_PAGES = 2 * 4096      # the smallest data file LMDB writes

# path -> (environment, data file identity, opened read-only)
_environments: dict[str, tuple[lmdb.Environment, tuple[int, int, int] | None, bool]] = {}
_environments_lock = threading.Lock()


def _forget_environments_after_fork() -> None:
    """In a forked child: drop the parent's handles, which must never be used here, so that
    the child opens its own. Closing them releases nothing of the parent's (LMDB's locks and
    reader slots belong to the parent's pid) and lets py-lmdb open the files again."""
    global _environments_lock
    _environments_lock = threading.Lock()
    for env, _, _ in _environments.values():
        try:
            env.close()
        except lmdb.Error:
            pass
    _environments.clear()
    _db_handles.clear()
    _handles_changed()


os.register_at_fork(after_in_child=_forget_environments_after_fork)


def _data_file(path: str) -> tuple[int, int, int] | None:
    """The (device, inode, size) of the environment's data file if it and its folder are a
    regular file and folder (no link)."""
    try:
        folder = os.lstat(path)
        found = os.lstat(os.path.join(path, "data.mdb"))
    except FileNotFoundError:
        return None
    if not (stat.S_ISDIR(folder.st_mode) and stat.S_ISREG(found.st_mode)):
        return None
    return found.st_dev, found.st_ino, found.st_size


def _identity(path: str) -> tuple[int, int, int] | None:
    """``_data_file``, after making sure the folder, ``lock.mdb`` and ``data.mdb`` are a
    regular folder and files where they exist: anything else (a link) is an IntegrityError,
    never followed."""
    for full, is_kind in ((path, stat.S_ISDIR), (os.path.join(path, "lock.mdb"), stat.S_ISREG),
                          (os.path.join(path, "data.mdb"), stat.S_ISREG)):
        try:
            found = os.lstat(full)
        except FileNotFoundError:
            continue
        if not is_kind(found.st_mode):
            raise IntegrityError(f"{full} is a link or special file; lakecore never follows "
                                 f"links inside a lake")
    return _data_file(path)


def environment(path: str, create: bool, readonly: bool = False) -> lmdb.Environment | None:
    """The process's one handle on the environment at ``path`` (None if missing and not
    ``create``). Handles are kept per data file, not per path: a lake deleted and made again
    at the same path gets a new one. ``readonly``: LMDB opened read-only (it never writes
    the files, not even to start an emptied one), unless this process has it open for
    writing already; so it is on read-only media."""
    with _environments_lock:
        cached = _environments.get(path)
        now = _data_file(path)
        if cached is not None and now is not None and cached[1][:2] == now[:2] \
                and now[2] >= cached[1][2] and (readonly or not cached[2]):
            _environments[path] = (cached[0], now, cached[2])
            return cached[0]            # the common case: two lstats
        # else: another lake lives at this path, or the data file shrank under the map (LMDB
        # files never shrink: reading the map past the end would be a bus error); reopen
        identity = _identity(path)
        if cached is not None:
            del _environments[path]
            forget_db_handles(cached[0])    # its handles: never to be used with the new one
            try:
                cached[0].close()           # unmapped: nothing can read past a shrunk file
            except lmdb.Error:
                pass
        if identity is None and not create:
            return None
        if identity is not None and identity[2] < _META_PAGES and not create:
            # LMDB would take an emptied data file for a new environment and start it afresh
            raise lmdb.InvalidError(f"{path}/data.mdb: {identity[2]} bytes, shorter than "
                                    f"LMDB's two meta pages")
        os.makedirs(path, exist_ok=True)
        options = dict(map_size=INITIAL_MAP_SIZE, max_dbs=4096, subdir=True, writemap=False,
                       metasync=False, sync=True, max_readers=256, lib_version=LMDB_FORMAT)
        if readonly and not create:
            env = _open_readonly(path, options)
        else:
            env = lmdb.open(path, **options)
            env.reader_check()
        _environments[path] = (env, _identity(path), readonly and not create)
        return env


def _cannot_write(exc: lmdb.Error) -> bool:
    return isinstance(exc, (lmdb.ReadonlyError, lmdb.InvalidParameterError)) or \
        getattr(exc, "errno", None) in (errno.EACCES, errno.EROFS, errno.EPERM) or \
        "Permission denied" in str(exc) or "Read-only file system" in str(exc)


def _open_readonly(path: str, options: dict[str, Any]) -> lmdb.Environment:
    """LMDB opened read-only; on read-only media without its lock file, which cannot be
    written there (nothing can write there either, so there is nothing to lock against)."""
    try:
        return lmdb.open(path, readonly=True, **options)
    except lmdb.Error as exc:
        if not _cannot_write(exc):
            raise
        return lmdb.open(path, readonly=True, lock=False, **options)


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


def discard_environment(path: str) -> None:
    """Close and forget the process's handle on the environment at ``path`` (before its
    files are removed and made again)."""
    with _environments_lock:
        cached = _environments.pop(path, None)
    if cached is not None:
        forget_db_handles(cached[0])
        try:
            cached[0].close()
        except lmdb.Error:
            pass
