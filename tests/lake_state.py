"""A digest of everything a lake folder holds, to prove a failed call changed nothing."""

from __future__ import annotations

import hashlib
import os


def lake_digest(path: str) -> str:
    """sha256 over every file's relative path and bytes (the lock file excepted)."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name == ".lock":
                continue
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as f:
                h.update(f.read())
    return h.hexdigest()
