"""The lake's writer lock: one writer at a time across threads and processes.

An exclusive ``flock`` on ``<lake>/.lock``: other writers wait; readers never take it. The
kernel releases it when the holder dies, so a killed writer never leaves the lake locked.
Each acquisition opens its own file description, so two threads (or two Lake objects) of one
process exclude each other too; a thread that already holds the lock may take it again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from lakecore.errors import IntegrityError


class WriterLock:
    def __init__(self, lake_path: str):
        self.path = os.path.join(lake_path, ".lock")
        self._held = threading.local()

    @contextmanager
    def hold(self) -> Iterator[None]:
        depth = getattr(self._held, "depth", 0)
        if depth:
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        try:        # never through a link planted in the lake
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IntegrityError(f"{self.path} is a link; lakecore never follows links "
                                     f"inside a lake") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
