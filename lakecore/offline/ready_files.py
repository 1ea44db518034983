"""Empty data files made ahead of time, so a small commit skips its folder fsync.

A commit must make its data files' names durable (an fsync of the table folder) before its
commit file names them. A pipeline committing a few rows every second would pay that fsync on
every commit. Instead the writer creates empty files ``BATCH`` at a time under fresh data-file
names, fsyncs the folder once for all of them, and writes each small data file into one of
them: the file's own fsync then makes it whole.

A ready file is used only when it is still the empty regular file this process made (same
device and inode, one link, no bytes): anything else at that name is skipped, never written
through. A change that fails puts the files it used back, emptied, and removes the ones it
made, so the folder is left as the change found it. Names left unused (a closed lake, a
killed writer) are empty files that no commit names: ``verify()`` ignores them like any
leftover, ``lake.close()`` and the process's exit remove this process's, and
``lake.vacuum()`` removes the others after its grace period.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from typing import BinaryIO

from lakecore.base.files import fsync_path

BATCH = 16


def data_file_name(version_hint: int) -> str:
    """A new, unique data file name (Delta's ``part-...`` naming)."""
    return f"part-{max(version_hint, 0):05d}-{uuid.uuid4()}-c000.zstd.parquet"


class ReadyFiles:
    """The empty data files one writer made ahead of time in one table folder."""

    def __init__(self, folder: str):
        self.folder = folder
        self._ready: list[tuple[str, int, int]] = []    # (name, st_dev, st_ino)
        self._pid = os.getpid()     # a forked child leaves its parent's files alone
        # since begin(): the files taken, and the ones made
        self._taken: dict[str, tuple[str, int, int]] = {}
        self._made: list[tuple[str, int, int]] = []

    def begin(self) -> None:
        """A change starts: what it takes and makes is undone by ``undo()``."""
        self._taken, self._made = {}, []

    def take(self, version_hint: int) -> tuple[str, BinaryIO]:
        """A data file name whose folder entry is durable, opened empty for writing."""
        if self._pid != os.getpid():
            self._ready, self._pid = [], os.getpid()
        while True:
            if not self._ready:
                self._make(version_hint)
            entry = self._ready.pop()
            opened = self._open_if_unchanged(*entry)
            if opened is not None:
                self._taken[entry[0]] = entry
                return entry[0], opened

    def _make(self, version_hint: int) -> None:
        made = []
        try:
            for _ in range(BATCH):
                name = data_file_name(version_hint)
                fd = os.open(os.path.join(self.folder, name),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                try:
                    info = os.fstat(fd)
                finally:
                    os.close(fd)
                made.append((name, info.st_dev, info.st_ino))
            fsync_path(self.folder)
        except BaseException:
            self._remove(made)
            raise
        self._ready = made
        self._made.extend(made)

    def _open_if_unchanged(self, name: str, device: int, inode: int) -> BinaryIO | None:
        try:
            fd = os.open(os.path.join(self.folder, name), os.O_WRONLY | os.O_NOFOLLOW)
        except OSError:
            return None         # removed (a vacuum in another process) or replaced by a link
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (device, inode)
                or info.st_nlink != 1 or info.st_size != 0):
            os.close(fd)
            return None
        return os.fdopen(fd, "wb")

    def undo(self, name: str) -> bool:
        """Empty the file ``name`` the failed change wrote and give it back (True), or, when
        that change made it, remove it (True); False: not a ready file."""
        entry = self._taken.pop(name, None)
        if entry is None:
            return False
        if entry in self._made:
            self._remove([entry], written=True)
            return True
        opened = None
        with contextlib.suppress(OSError):
            fd = os.open(os.path.join(self.folder, name), os.O_WRONLY | os.O_NOFOLLOW)
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) == entry[1:] and stat.S_ISREG(info.st_mode):
                os.ftruncate(fd, 0)
                opened = entry
            os.close(fd)
        if opened is not None:
            self._ready.append(opened)
        return True

    def forget_made(self) -> None:
        """After a failed change: remove the ready files it made and did not use."""
        made = set(self._made)
        self._remove([e for e in self._ready if e in made])
        self._ready = [e for e in self._ready if e not in made]
        self._made = []

    def release(self) -> None:
        """Remove the ready files not used (the writer is done with this table)."""
        if self._pid == os.getpid():
            self._remove(self._ready)
        self._ready = []

    def _remove(self, entries: list[tuple[str, int, int]], written: bool = False) -> None:
        """Remove these files when they are still the ones made (and, unless ``written``,
        still empty)."""
        for name, device, inode in entries:
            path = os.path.join(self.folder, name)
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                if (info.st_dev, info.st_ino) == (device, inode) and (written
                                                                     or info.st_size == 0):
                    os.unlink(path)
