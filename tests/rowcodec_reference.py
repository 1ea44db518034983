"""The online store's byte format, written out in plain Python from its specification (the
docstring of ``lakecore/_native/rowformat.pyx``): the oracle the native key and value encoders
are checked against, byte for byte.

Key: per key column, integers (dates as days, timestamps as microseconds, booleans as 0/1) as
8 big-endian bytes with the sign bit flipped; strings and binary as a 2-byte big-endian length
and the bytes.

Value: event time and commit version (little-endian int64), a bitmap of null columns (bit c of
byte c // 8, LSB first), the fixed-width columns (little-endian; zeros when null; booleans one
byte), then each variable-width column as a little-endian u32 length and its payload: the bytes
of a string or binary; for a list its element count (u32), a bitmap of null elements, then the
elements (fixed width each; booleans one byte; strings and binary as u32 lengths, then all
their bytes).
"""

from __future__ import annotations

import datetime as dt
import struct

import pyarrow as pa

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_DATE = dt.date(1970, 1, 1)

_FIXED = {pa.int8(): "<b", pa.int16(): "<h", pa.int32(): "<i", pa.int64(): "<q",
          pa.float32(): "<f", pa.float64(): "<d", pa.date32(): "<i"}


def _integer(value) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, dt.date):
        return (value - EPOCH_DATE).days
    return int(value)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_binary(t)


def _as_bytes(value) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def encode_key(values: list, types: list[pa.DataType]) -> bytes:
    out = b""
    for value, t in zip(values, types):
        if _is_text(t):
            data = _as_bytes(value)
            out += struct.pack(">H", len(data)) + data
        else:
            out += struct.pack(">Q", (_integer(value) & (2**64 - 1)) ^ (1 << 63))
    return out


def _fixed(t: pa.DataType, value) -> bytes:
    """One fixed-width scalar (zeros for null)."""
    if pa.types.is_boolean(t):
        return bytes([1 if value else 0])
    if pa.types.is_timestamp(t):
        return struct.pack("<q", 0 if value is None else _integer(value))
    fmt = _FIXED[t]
    if value is None:
        return bytes(struct.calcsize(fmt))
    return struct.pack(fmt, _integer(value) if fmt in ("<b", "<h", "<i", "<q") else value)


def _bitmap(flags: list[bool]) -> bytes:
    bits = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            bits[i // 8] |= 1 << (i % 8)
    return bytes(bits)


def _payload(t: pa.DataType, value) -> bytes:
    if value is None:
        return b""
    if _is_text(t):
        return _as_bytes(value)
    child = t.value_type
    head = struct.pack("<I", len(value)) + _bitmap([v is None for v in value])
    if _is_text(child):
        parts = [b"" if v is None else _as_bytes(v) for v in value]
        return head + b"".join(struct.pack("<I", len(p)) for p in parts) + b"".join(parts)
    return head + b"".join(_fixed(child, v) for v in value)


def encode_value(time_us: int, version: int, types: list[pa.DataType], values: list) -> bytes:
    """One row's value: its feature columns' types and Python values, in layout order."""
    fixed = b"".join(_fixed(t, v) for t, v in zip(types, values)
                     if not (_is_text(t) or pa.types.is_list(t)))
    variable = b""
    for t, v in zip(types, values):
        if _is_text(t) or pa.types.is_list(t):
            payload = _payload(t, v)
            variable += struct.pack("<I", len(payload)) + payload
    return struct.pack("<qq", time_us, version) + _bitmap([v is None for v in values]) + \
        fixed + variable
