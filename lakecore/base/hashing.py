"""Content hashes: sha256 over file bytes, and over a canonical encoding of records.

Records are encoded as msgspec JSON with sorted keys (times as integers, no NaN), so the same
content always gives the same digest. Digests carry their algorithm: ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

ALGORITHM = "sha256"
_encoder = msgspec.json.Encoder(order="sorted")


def digest_bytes(data: bytes | memoryview) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


def digest_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return f"{ALGORITHM}:{h.hexdigest()}"


def canonical(record: Any) -> bytes:
    """The canonical bytes of a record (dicts, lists, strings, ints, bools, None, Structs)."""
    return _encoder.encode(record)


def digest_record(record: Any) -> str:
    return digest_bytes(canonical(record))
