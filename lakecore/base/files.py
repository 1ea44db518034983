"""Durable file writes: a file replaced atomically (a temporary file created exclusively
beside it, never through a link, fsynced, renamed over the old one, the folder fsynced), and
nothing left behind when the disk refuses part of it."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from typing import BinaryIO

from lakecore.errors import IntegrityError


def fsync_path(path: str) -> None:
    """fsync a file or a folder (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_exclusively(path: str) -> BinaryIO:
    """A new file opened for writing; fails if anything (a link included) is at ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "wb")


def replace_file(final: str, content: bytes | Callable[[BinaryIO], None]) -> None:
    """Make ``final`` hold ``content`` (bytes, or a function writing to a binary file), all at
    once: readers and crashes see the old file or the new one, never a mix."""
    folder = os.path.dirname(final)
    tmp = os.path.join(folder, f".{os.path.basename(final)}.{uuid.uuid4().hex}.tmp")
    try:
        with create_exclusively(tmp) as f:
            if callable(content):
                content(f)
            else:
                f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(folder)


_MODES = {"rb": os.O_RDONLY, "rb+": os.O_RDWR, "ab": os.O_WRONLY | os.O_APPEND | os.O_CREAT}


def open_own(path: str, mode: str = "rb") -> BinaryIO:
    """Open a file lakecore keeps in the lake (``mode``: "rb", "rb+" or "ab"), never through
    a link: a link there is an IntegrityError."""
    try:
        fd = os.open(path, _MODES[mode] | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{path} is a link; lakecore never follows links inside a "
                                 f"lake") from None
        raise
    return os.fdopen(fd, mode)


def check_own_folders(lake_path: str, relative: str) -> None:
    """IntegrityError when a folder on the way from the lake to ``relative`` (inclusive) is a
    link or anything but a folder (missing ones are fine: lakecore makes them)."""
    path = lake_path
    for part in os.path.normpath(relative).split(os.sep):
        path = os.path.join(path, part)
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(found.st_mode):
            raise IntegrityError(f"{path} is not a folder (a link or a file); lakecore never "
                                 f"follows links inside a lake")


def remove_tree(path: str) -> None:
    """Remove a file or folder of the lake; a link is removed itself, never followed, and
    read-only files (model artifacts) go too."""
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
        return
    if not os.path.lexists(path):
        return
    for folder, _, _ in os.walk(path):      # os.walk does not descend into links
        if not os.path.islink(folder):
            os.chmod(folder, stat.S_IRWXU)
    shutil.rmtree(path)
