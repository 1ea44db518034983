"""Durable file writes: a file replaced atomically (a temporary file created exclusively
beside it, never through a link, fsynced, renamed over the old one, the folder fsynced), and
nothing left behind when the disk refuses part of it."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from typing import BinaryIO


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
