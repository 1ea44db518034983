"""The catalog store: every definition of the lake (``specs``) in one JSON file.

Every change rewrites the file atomically (write a temporary file, fsync, rename over the old
one, fsync the folder) while holding the writer lock, so a crash leaves either the old or the
new catalog, never a mix. The catalog names the audit event that recorded it, and that event
holds its sha256, so an edit made without lakecore shows. Readers reload it when its identity
(inode, size, mtime) changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import msgspec

from lakecore.base.files import open_own, replace_file
from lakecore.base.hashing import digest_bytes
from lakecore.catalog.specs import CatalogState
from lakecore.errors import IntegrityError

CATALOG_FILE = "catalog.json"
T = TypeVar("T")


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(CatalogState)


class Catalog:
    def __init__(self, lake_path: str):
        self.path = os.path.join(lake_path, CATALOG_FILE)
        self.lake_path = lake_path
        self._state = CatalogState()
        self._identity: tuple[int, int, int] | None = None

    def state(self) -> CatalogState:
        """The current catalog, reloaded if another writer changed it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._state
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity != self._identity:
            with open(self.path, "rb") as f:
                try:
                    self._state = _decoder.decode(f.read())
                except msgspec.DecodeError as exc:
                    raise IntegrityError(f"{self.path} is damaged and cannot be read: {exc}") \
                        from None
            self._identity = identity
        return self._state

    def digest(self) -> str | None:
        """The sha256 of the catalog file as it is (None: there is none)."""
        try:
            with open_own(self.path, "rb") as f:
                return digest_bytes(f.read())
        except FileNotFoundError:
            return None

    def update(self, change: Callable[[CatalogState], T], *, audit_seq: int | None = None,
               announce: Callable[[str], object] | None = None) -> T:
        """Apply ``change`` to a copy of the latest catalog and persist it atomically. The new
        catalog names ``audit_seq``, the event recording it, and ``announce`` gets its sha256
        before it is written (the event comes first).

        The caller must hold the writer lock.
        """
        self._identity = None
        state = _decoder.decode(_encoder.encode(self.state()))  # a deep copy to change
        result = change(state)
        state.audit_seq = audit_seq
        data = _encoder.encode(state)
        if announce is not None:
            announce(digest_bytes(data))
        replace_file(self.path, data)
        self._state = state
        self._identity = None
        return result
