"""Rows written into a py-lmdb write transaction by the native ``lmdbwrite.put_rows``.

Why: py-lmdb's ``putmulti`` takes one Python bytes object per key and value and makes one
LMDB call per row with the GIL released and taken again around it; for a bulk load of 1e6
rows of 20 floats that and making the bytes objects cost about twice LMDB's own work
(``benchmarks/README.md``, online ingest). ``put_rows`` puts the same rows from two packed
buffers (keys, values) in one native loop.

How, without a second LMDB in the process: LMDB must not be opened twice in one process (its
fcntl locks belong to the process; a second ``MDB_env`` on the same files would take itself
for the only user and reset the lock file), so the rows go through py-lmdb's own LMDB
library and its own ``MDB_txn``: the transaction that ``OnlineStore`` began, which then
commits or aborts them with everything else it holds (the watermark, the layout record): one
transaction per apply, as before. Vendoring LMDB instead would mean replacing py-lmdb for the
whole environment, reads included, and giving up the hardening patches py-lmdb applies to
LMDB's sources.

py-lmdb exports its LMDB 0.9 functions (``mdb09_*``) and engine table (``lmdb_api_v09``)
from its extension module, but not a transaction's ``MDB_txn *``. ``transaction_address``
reads it from the ``lmdb.Transaction`` object, whose C layout (py-lmdb 3.0's ``cpython.c``,
``struct TransObject``) is checked on every call before anything is dereferenced:

- the type is ``lmdb.Transaction`` of the expected size (120 bytes: built without memsink);
- its ``valid`` flag is set, its ``env`` field is the very ``lmdb.Environment`` object, its
  ``parent`` is NULL (not nested) and its engine table is ``lmdb_api_v09`` (the LMDB 0.9
  engine these functions belong to; an environment in LMDB 1.0's format uses the other one);
- its flags say a write transaction, and LMDB's ``mdb_txn_id`` of the pointer found equals
  the transaction's own ``id()``.

Only py-lmdb versions whose layout was read and tested (``_LAYOUT_VERSIONS``) are looked
at at all. Anything else (another py-lmdb build or version, its cffi flavour) gives None, and the store
writes through ``putmulti`` as before: slower, same result. ``tests/test_online_native_write``
fails when the installed py-lmdb no longer passes these checks, so that an upgrade that changes
the layout is noticed (and these notes brought up to date) rather than silently slower.

The loop runs without the GIL on the thread that began the transaction. Other threads may use
py-lmdb meanwhile: read transactions are LMDB's to isolate, LMDB refuses to resize the map
while a write transaction is open, and py-lmdb waits for the write transaction before it
closes the environment.
"""

from __future__ import annotations

import ctypes
import threading

import lmdb
import numpy as np

from lakecore._native.lmdbwrite import LmdbFunctions, put_rows
from lakecore.online.codec import PackedKeys

# struct TransObject (py-lmdb 3.0, without HAVE_MEMSINK), in pointer-sized words:
# PyObject_HEAD (0-1), siblings (2-3), children (4-5), valid (6, an int), weaklist (7),
# env (8), parent (9), libv (10), txn (11), flags (12, an int), db (13), mutations (14).
_LAYOUT_VERSIONS = ("3.0.0",)
_TRANSACTION_SIZE = 120
_VALID, _ENV, _PARENT, _ENGINE, _TXN, _FLAGS = 6, 8, 9, 10, 11, 12
_READ_ONLY = 2              # enum trans_flags: TRANS_RDONLY

MDB_KEYEXIST = -30799


class _Library:
    """py-lmdb's LMDB 0.9 functions, found once."""

    def __init__(self) -> None:
        if getattr(lmdb, "__version__", None) not in _LAYOUT_VERSIONS:
            raise OSError(f"py-lmdb {getattr(lmdb, '__version__', '?')}: its transaction "
                          f"layout was not checked")
        module = getattr(lmdb, "cpython", None)
        path = getattr(module, "__file__", None)
        if module is None or path is None or lmdb.Transaction is not module.Transaction:
            raise OSError("py-lmdb's CPython extension is not in use")
        library = ctypes.CDLL(path)     # the copy already loaded: dlopen hands back its handle

        def address(name: str) -> int:
            return ctypes.cast(getattr(library, name), ctypes.c_void_p).value

        self.engine = ctypes.addressof(ctypes.c_char.in_dll(library, "lmdb_api_v09"))
        txn_id = library.mdb09_txn_id
        txn_id.restype, txn_id.argtypes = ctypes.c_size_t, [ctypes.c_void_p]
        self.txn_id = txn_id
        self.functions = LmdbFunctions(address("mdb09_dbi_open"), address("mdb09_cursor_open"),
                                       address("mdb09_cursor_put"),
                                       address("mdb09_cursor_close"), address("mdb09_get"))


_library: _Library | None = None
_library_missing = False
_library_lock = threading.Lock()


def _find_library() -> _Library | None:
    global _library, _library_missing
    if _library is None and not _library_missing:
        with _library_lock:
            if _library is None and not _library_missing:
                try:
                    _library = _Library()
                except (OSError, AttributeError, ValueError):
                    _library_missing = True
    return _library


def transaction_address(env: lmdb.Environment, txn: lmdb.Transaction) -> int | None:
    """The ``MDB_txn *`` of py-lmdb write transaction ``txn`` of ``env``, or None when it
    cannot be found safely (module docstring)."""
    library = _find_library()
    if library is None or type(txn) is not lmdb.Transaction \
            or type(txn).__basicsize__ != _TRANSACTION_SIZE:
        return None
    words = (ctypes.c_size_t * (_TRANSACTION_SIZE // 8)).from_address(id(txn))
    if (words[_VALID] & 0xFFFFFFFF) != 1 or words[_ENV] != id(env) or words[_PARENT] != 0 \
            or words[_ENGINE] != library.engine or words[_FLAGS] & _READ_ONLY \
            or words[_TXN] == 0:
        return None
    if library.txn_id(words[_TXN]) != txn.id():
        return None
    return words[_TXN]


class RowWriter:
    """Puts rows into one database of one py-lmdb write transaction natively (``of``)."""

    __slots__ = ("_address", "_db_name")

    def __init__(self, address: int, db_name: bytes):
        self._address, self._db_name = address, db_name

    @classmethod
    def of(cls, env: lmdb.Environment, txn: lmdb.Transaction, db_name: bytes) -> RowWriter | None:
        """A writer into database ``db_name`` (opened in ``txn`` already) for as long as
        ``txn`` is open; None when the transaction cannot be used natively (module
        docstring): then write through py-lmdb."""
        address = transaction_address(env, txn)
        return None if address is None else cls(address, db_name)

    def put(self, keys: PackedKeys, data: np.ndarray, offsets: np.ndarray, append: bool) -> int:
        """Put ``keys`` and the packed values (``valuecodec.encode_packed``) in one native
        loop: appended when the database is empty (``append``; keys in order), else each row
        only where it is newer than the stored one. Returns how many rows were put; raises
        what py-lmdb would (``lmdb.MapFullError`` when the map is full), after which the
        transaction must be aborted."""
        status, written, row = put_rows(_library.functions, self._address, self._db_name,
                                        keys.data, np.ascontiguousarray(keys.offsets), data,
                                        offsets, append)
        if status == MDB_KEYEXIST and append:
            raise AssertionError("online keys out of order in append mode")
        if status != 0:
            raise _error(status, row)
        return written


_ERRORS = {-30798: lmdb.NotFoundError, -30792: lmdb.MapFullError, -30788: lmdb.TxnFullError,
           -30787: lmdb.CursorFullError, -30786: lmdb.PageFullError,
           -30781: lmdb.BadValsizeError, -30782: lmdb.BadTxnError,
           -30796: lmdb.CorruptedError, -30795: lmdb.PanicError}


def _error(status: int, row: int) -> lmdb.Error:
    """py-lmdb's exception for an LMDB return code (the map full: ``MapFullError``, which the
    store answers by growing the map)."""
    kind = _ERRORS.get(status, lmdb.Error)
    return kind(f"mdb_cursor_put() row {row}", status)
