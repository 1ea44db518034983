"""Feature group schemas: which Arrow types a table may hold, how they are stored, and how
incoming data is checked and cast to them.

Stored types are the ones Delta Lake (protocol 1/2) can describe: signed integers, float,
double, boolean, string, binary, date, timestamp (always microseconds, UTC) and lists of these.
Unsigned integers are widened to the next signed type; uint64 has none and is refused.
Incoming values are cast only within a type family (integers into wider integers or floats,
any timestamp unit or zone, ...) and only when pyarrow's safe cast succeeds.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any

import pyarrow as pa

from lakecore.base.arrow import type_kind
from lakecore.errors import SchemaError, ValidationError

EVENT_TIME_TYPE = pa.timestamp("us", tz="UTC")

_WIDER_SIGNED = {pa.uint8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64()}
# Families a value may be cast between: source family -> accepted target families.
_CASTABLE = {
    "integer": {"integer", "float"},
    "float": {"float"},
    "string": {"string"},
    "binary": {"binary"},
    "boolean": {"boolean"},
    "date": {"date", "timestamp"},
    "timestamp": {"timestamp"},
}
_DELTA_PRIMITIVE = {
    pa.int8(): "byte", pa.int16(): "short", pa.int32(): "integer", pa.int64(): "long",
    pa.float32(): "float", pa.float64(): "double", pa.bool_(): "boolean",
    pa.string(): "string", pa.binary(): "binary", pa.date32(): "date",
    EVENT_TIME_TYPE: "timestamp",
}
_FROM_DELTA = {v: k for k, v in _DELTA_PRIMITIVE.items()}
# Delta field metadata naming the Arrow type when Delta's own does not say it (large_string)
_ARROW_TYPE_KEY = "lakecore.arrowType"


def storage_type(t: pa.DataType, column: str) -> pa.DataType:
    """The type a column of type ``t`` is stored as; SchemaError if it cannot be stored."""
    if pa.types.is_dictionary(t):
        return storage_type(t.value_type, column)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) \
            or pa.types.is_fixed_size_list(t):
        return pa.list_(storage_type(t.value_type, column))
    if t in _WIDER_SIGNED:
        return _WIDER_SIGNED[t]
    kind = type_kind(t)
    if kind == "integer" and t != pa.uint64():
        return t
    if kind == "float":
        return pa.float32() if t == pa.float16() else t
    if kind == "string":
        return pa.string()
    if kind == "binary":
        return pa.binary()
    if kind == "boolean":
        return pa.bool_()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return EVENT_TIME_TYPE
    if kind == "null":
        raise SchemaError(
            f"column {column!r} holds only nulls, so its type is unknown; pass schema= when "
            f"creating the feature group"
        )
    raise SchemaError(
        f"column {column!r} has type {t}; supported types are integers (not uint64), floats, "
        f"bool, string, binary, date, timestamp and lists of these"
    )


def storage_schema(schema: pa.Schema, primary_key: list[str], event_time: str | None) -> pa.Schema:
    """Check a user schema against the keys and turn it into the stored schema."""
    names = schema.names
    duplicated = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicated:
        raise SchemaError(f"schema: column {duplicated[0]!r} appears more than once")
    for column in primary_key + ([event_time] if event_time else []):
        if column not in names:
            raise SchemaError(f"schema: key column {column!r} is missing (columns: {', '.join(names)})")
    fields = []
    for field in schema:
        stored = storage_type(field.type, field.name)
        if field.name == event_time:
            if type_kind(stored) not in ("timestamp", "date"):
                raise SchemaError(
                    f"event_time column {field.name!r} has type {field.type}; expected a "
                    f"timestamp or date"
                )
            stored = EVENT_TIME_TYPE
        if field.name in primary_key and type_kind(stored) not in (
            "integer", "string", "binary", "date", "timestamp", "boolean"
        ):
            raise SchemaError(
                f"primary key column {field.name!r} has type {field.type}; expected an integer, "
                f"string, binary, date, timestamp or bool column"
            )
        fields.append(pa.field(field.name, stored, nullable=True))
    return pa.schema(fields)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    if pa.types.is_null(source):
        return True
    if pa.types.is_dictionary(source):
        return _castable(source.value_type, target)
    source_is_list = type_kind(source) is None and hasattr(source, "value_type")
    if pa.types.is_list(target):
        return source_is_list and _castable(source.value_type, target.value_type)
    kind, target_kind = type_kind(source), type_kind(target)
    return kind is not None and target_kind in _CASTABLE.get(kind, ())


def conform(table: pa.Table, schema: pa.Schema, primary_key: list[str],
            event_time: str | None, argument: str = "data") -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in its order and types; nothing else.

    Raises SchemaError for missing, extra or uncastable columns (naming them and both types)
    and ValidationError for null primary keys or event times.
    """
    names, wanted = table.column_names, schema.names     # each built once: linear in columns
    present, known = set(names), set(wanted)
    missing = [n for n in wanted if n not in present]
    extra = [n for n in names if n not in known]
    if missing:
        raise SchemaError(f"{argument}: missing column(s) {', '.join(map(repr, missing))}")
    if extra:
        raise SchemaError(
            f"{argument}: column(s) {', '.join(map(repr, extra))} are not in the schema "
            f"({', '.join(wanted)}); add them with fg.add_columns(...)"
        )
    if len(set(names)) != len(names):
        raise SchemaError(f"{argument}: a column name appears more than once")
    columns = []
    position = {name: i for i, name in enumerate(names)}
    for field in schema:
        column = table.column(position[field.name])
        if column.type != field.type:
            if not _castable(column.type, field.type):
                hint = ""
                if type_kind(column.type) == "float" and type_kind(field.type) == "integer":
                    hint = f"; widen the column with fg.widen({field.name!r}, pa.float64())"
                raise SchemaError(
                    f"{argument}: column {field.name!r} has type {column.type}, which cannot be "
                    f"stored as {field.type}{hint}"
                )
            try:
                column = column.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{argument}: column {field.name!r} of type {column.type} cannot be cast "
                    f"safely to {field.type}: {exc}"
                ) from exc
        columns.append(column)
    conformed = pa.Table.from_arrays(columns, schema=schema)
    for name in primary_key + ([event_time] if event_time else []):
        nulls = conformed.column(name).null_count
        if nulls:
            role = "event_time" if name == event_time else "primary key"
            raise ValidationError(f"{argument}: {role} column {name!r} has {nulls} null value(s)")
    return conformed


def to_delta_schema_string(schema: pa.Schema) -> str:
    """Delta's JSON schema (``metaData.schemaString``) of a stored schema."""

    def delta_type(t: pa.DataType) -> Any:
        if pa.types.is_list(t):
            return {"type": "array", "elementType": delta_type(t.value_type), "containsNull": True}
        return _DELTA_PRIMITIVE[t]

    def delta_field(f: pa.Field) -> dict[str, Any]:
        if f.type == pa.large_string():     # a Delta string; lakecore reads it back as large
            return {"name": f.name, "type": "string", "nullable": True,
                    "metadata": {_ARROW_TYPE_KEY: "large_string"}}
        return {"name": f.name, "type": delta_type(f.type), "nullable": True, "metadata": {}}

    fields = [delta_field(f) for f in schema]
    return json.dumps({"type": "struct", "fields": fields}, separators=(",", ":"))


@functools.lru_cache(maxsize=256)
def from_delta_schema_string(schema_string: str) -> pa.Schema:
    """The Arrow schema of a Delta ``schemaString`` (the types lakecore writes); cached, as
    every read of a table needs it and schemas are immutable."""

    def arrow_type(t: Any) -> pa.DataType:
        if isinstance(t, dict) and t.get("type") == "array":
            return pa.list_(arrow_type(t["elementType"]))
        if isinstance(t, str) and t in _FROM_DELTA:
            return _FROM_DELTA[t]
        if t == "timestamp_ntz":
            return pa.timestamp("us")
        raise SchemaError(f"Delta type {t!r} is not one lakecore reads")

    def field_type(f: dict[str, Any]) -> pa.DataType:
        if f["type"] == "string" and (f.get("metadata") or {}).get(_ARROW_TYPE_KEY) == \
                "large_string":
            return pa.large_string()
        return arrow_type(f["type"])

    parsed = json.loads(schema_string)
    return pa.schema([pa.field(f["name"], field_type(f)) for f in parsed["fields"]])
