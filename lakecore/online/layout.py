"""How a feature group's columns map onto the native row codec (``Layout``), and the key
requests checked against it."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakecore._native.rowformat import Kind, RowLayout, Scalar
from lakecore.base.times import EPOCH, EPOCH_DATE
from lakecore.errors import SchemaError

_FIXED_WIDTH = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 4, pa.int64(): 8, pa.float32(): 4,
                pa.float64(): 8, pa.date32(): 4}
NO_TTL = -(2**63)


def codec_type(t: pa.DataType, column: str) -> tuple[int, int, int]:
    """``(kind, width, scalar)`` of a column type in the row codec."""
    if pa.types.is_boolean(t):
        return Kind.BOOL, 1, Scalar.BOOLEAN
    if t in _FIXED_WIDTH or pa.types.is_timestamp(t):
        scalar = Scalar.FLOAT if pa.types.is_floating(t) else Scalar.INTEGER
        return Kind.FIXED, 8 if pa.types.is_timestamp(t) else _FIXED_WIDTH[t], scalar
    if pa.types.is_string(t) or pa.types.is_large_string(t):    # large: stored alike
        return Kind.BYTES, 0, Scalar.STRING
    if pa.types.is_binary(t):
        return Kind.BYTES, 0, Scalar.BINARY
    if pa.types.is_list(t) and not pa.types.is_list(t.value_type):
        kind, width, scalar = codec_type(t.value_type, column)
        return kind + Kind.LIST_FIXED, width, scalar
    raise SchemaError(f"column {column!r} of type {t} cannot be stored online (lists of lists "
                      f"are offline only)")


def _python_converter(t: pa.DataType):
    """How a scalar decoded as an integer becomes the Python value pyarrow would give."""
    if pa.types.is_list(t):
        inner = _python_converter(t.value_type)
        return None if inner is None else (lambda v: [None if x is None else inner(x) for x in v])
    if pa.types.is_timestamp(t):
        return lambda us: EPOCH + dt.timedelta(microseconds=us)
    if pa.types.is_date(t):
        return lambda days: EPOCH_DATE + dt.timedelta(days=days)
    return None




def _key_integer(t: pa.DataType):
    """How a Python date or datetime key value becomes the integer the key encodes."""
    if pa.types.is_timestamp(t):
        def micros(v):
            if isinstance(v, dt.datetime):
                if v.tzinfo is None:
                    v = v.replace(tzinfo=dt.timezone.utc)
                return (v - EPOCH) // dt.timedelta(microseconds=1)
            return v
        return micros
    if pa.types.is_date(t):
        return lambda v: (v - EPOCH_DATE).days if isinstance(v, dt.date) else v
    return None


@dataclass
class Layout:
    """How a group's rows map onto the codec: the feature columns (schema order, without the
    primary key and event time) and where the event time goes in a decoded batch."""

    schema: pa.Schema
    primary_key: list[str]
    event_time: str | None
    features: list[pa.Field]
    batch_schema: pa.Schema        # key columns, then event time and features in schema order
    key_schema: pa.Schema
    codec: RowLayout
    converters: list[tuple[int, Any]]   # (feature index, to-Python function) for dates/times
    key_converters: list[Any] | None    # per key column: Python date/time -> integer, or None
    feature_names: list[str]
    fingerprint: bytes = b""            # names the layout rows are stored in (``identify``)
    # large_string columns: encoded and decoded as string, then cast back
    large_strings: list[str] = field(default_factory=list)
    codec_batch_schema: pa.Schema | None = None

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = identify(self.schema, self.primary_key, self.event_time)
        self.large_strings = [f.name for f in self.schema if f.type == pa.large_string()]
        self.codec_batch_schema = pa.schema(
            [pa.field(f.name, pa.string()) if f.type == pa.large_string() else f
             for f in self.batch_schema])

    def codec_rows(self, rows: pa.Table) -> pa.Table:
        """``rows`` with large_string columns as string, as the codec encodes them."""
        for name in self.large_strings:
            i = rows.schema.get_field_index(name)
            if i >= 0:
                rows = rows.set_column(i, name, rows.column(i).cast(pa.string()))
        return rows

    @classmethod
    def of(cls, schema: pa.Schema, primary_key: list[str], event_time: str | None) -> Layout:
        values = [f for f in schema if f.name not in primary_key]
        features = [f for f in values if f.name != event_time]
        codec_types = [codec_type(f.type, f.name) for f in features]
        time_position = [f.name for f in values].index(event_time) if event_time else -1
        key_types = [codec_type(schema.field(k).type, k) for k in primary_key]
        codec = RowLayout([k for k, _, _ in codec_types], [w for _, w, _ in codec_types],
                                   [s for _, _, s in codec_types], time_position,
                                   [k for k, _, _ in key_types], [w for _, w, _ in key_types])
        converters = [(j, _python_converter(f.type)) for j, f in enumerate(features)]
        key_converters = [_key_integer(schema.field(k).type) for k in primary_key]
        return cls(schema, primary_key, event_time, features,
                   pa.schema([schema.field(k) for k in primary_key] + values),
                   pa.schema([schema.field(k) for k in primary_key]), codec,
                   [(j, fn) for j, fn in converters if fn is not None],
                   key_converters if any(key_converters) else None,
                   [f.name for f in features])




def check_keys(keys: pa.Table, layout: Layout) -> pa.Table:
    """The request's key columns cast to the schema's key types; SchemaError otherwise, and
    ValidationError for null keys."""
    from lakecore.offline.schema import conform

    primary_key = layout.primary_key
    if keys.schema.equals(layout.key_schema):   # already right (nulls: refused when encoded)
        return keys
    missing = [k for k in primary_key if k not in keys.column_names]
    if missing:
        raise SchemaError(f"keys: missing primary key column(s) {', '.join(map(repr, missing))}")
    return conform(keys.select(primary_key), layout.key_schema, primary_key, None, argument="keys")


def identify(schema: pa.Schema, primary_key: list[str], event_time: str | None) -> bytes:
    """8 bytes naming a layout: rows encoded under different schemas never share them."""
    text = schema.serialize().to_pybytes() + repr((primary_key, event_time)).encode()
    return hashlib.sha256(text).digest()[:8]
