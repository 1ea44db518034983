"""One funnel from the operating system's refusals to ``StorageError``.

Public methods of the lake's objects are wrapped (``guard_storage``) so that an ``OSError``
(a full disk, a file size limit, permissions, an I/O error) or an LMDB error reaches the user
as a ``StorageError`` naming the path, never as a raw ``OSError`` or ``lmdb`` exception. Hot
serving paths catch them in their own body instead (``storage_error``), to stay one call deep.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import lmdb

from lakecore.errors import IntegrityError, LakeError, StorageError

T = TypeVar("T")


def _lake_path(owner: Any) -> str | None:
    """The lake folder of a lake object (for messages when the error names no file)."""
    for attribute in ("path", "_ctx"):
        value = getattr(owner, attribute, None)
        if isinstance(value, str):
            return value
        if value is not None and isinstance(getattr(value, "path", None), str):
            return value.path
    return None


# LMDB errors that mean the files are not what LMDB wrote: damage, not a refusal
_DAMAGE = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.PageNotFoundError,
           lmdb.VersionMismatchError, lmdb.PanicError)


def storage_error(exc: BaseException, owner: Any = None, context: str = "",
                  path: str | None = None) -> StorageError | IntegrityError:
    """The ``StorageError`` for an ``OSError`` or LMDB error raised while serving ``owner``
    (``context``: what was being done, put first in the message; ``path``: the file it was
    done to, when the error does not name it or names another one). LMDB errors that mean
    damaged files give an ``IntegrityError`` instead."""
    if isinstance(exc, lmdb.Error):
        lake = _lake_path(owner)
        where = os.path.join(lake, "online") if lake else "the online store"
        if isinstance(exc, _DAMAGE):
            return IntegrityError(f"{context}the online store at {where} is damaged ({exc}); it "
                                  f"was changed outside lakecore, and a writable open rebuilds "
                                  f"it from the offline tables")
        error = StorageError(f"{context}the online store at {where} refused the operation: {exc}")
        error.filename = where
        return error
    path = path or getattr(exc, "filename", None) or _lake_path(owner) or "the lake"
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    error = StorageError(f"{context}{os.fspath(path)}: {reason} (the operating system "
                         f"refused it)")
    error.errno, error.strerror, error.filename = getattr(exc, "errno", None), reason, path
    return error


def _guarded(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except LakeError:
            raise
        except (OSError, lmdb.Error) as exc:
            raise storage_error(exc, args[0] if args else None) from exc
    return call


def guard_storage(*, skip: tuple[str, ...] = ()) -> Callable[[type[T]], type[T]]:
    """A class decorator: every public method and property of the class turns OS and LMDB
    errors into ``StorageError`` (``skip``: methods that do it in their own body)."""
    def decorate(cls: type[T]) -> type[T]:
        for name, value in list(vars(cls).items()):
            if (name.startswith("_") and name not in ("__init__", "__exit__")) or name in skip:
                continue
            if isinstance(value, property):
                setattr(cls, name, property(_guarded(value.fget) if value.fget else None,
                                            value.fset, value.fdel, value.__doc__))
            elif callable(value) and not isinstance(value, (staticmethod, classmethod, type)):
                setattr(cls, name, _guarded(value))
        return cls
    return decorate


def guard_function(fn: Callable[..., T]) -> Callable[..., T]:
    """``guard_storage`` for a module-level function."""
    return _guarded(fn)
