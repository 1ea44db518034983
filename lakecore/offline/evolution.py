"""Schema evolution: the changes a table's schema may take, and the schema after each.

A change of schema is a commit carrying a new Delta ``metaData`` action. Tables stay at Delta
reader 1 / writer 2 (no column mapping, no type-widening table feature), so:

- ``add_columns`` changes metadata only: files written before lack the new columns, which
  every reader (lakecore, deltalake, polars, Spark) reads as nulls;
- ``widen`` rewrites the current files with the wider type (copy on write);
- ``drop_columns`` rewrites the current files without the columns.

Earlier versions keep their own ``metaData``, so a read as of an earlier commit has that
commit's columns and types, and the files it needs are left as they were.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from lakecore.errors import SchemaError
from lakecore.offline.schema import EVENT_TIME_TYPE, storage_type

_INTEGERS = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]
# float64 holds every integer up to 2**53 exactly; a widening checks the stored values
EXACT_FLOAT_INTEGERS = 1 << 53


def lossless(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether every value of ``source`` is a value of ``target``: int8 → int16 → int32 →
    int64, any integer → float64 (values checked), float32 → float64, date → timestamp,
    string → large_string."""
    if source in _INTEGERS and target in _INTEGERS:
        return _INTEGERS.index(source) < _INTEGERS.index(target)
    return ((source in _INTEGERS and target == pa.float64())
            or (source, target) in {(pa.float32(), pa.float64()), (pa.date32(), EVENT_TIME_TYPE),
                                    (pa.string(), pa.large_string())})


def added(schema: pa.Schema, fields: object) -> pa.Schema:
    """``schema`` with ``fields`` (a ``pyarrow.Schema`` or list of ``pyarrow.Field``: new
    names, storable types, nullable) appended."""
    if isinstance(fields, pa.Schema):
        fields = list(fields)
    if not isinstance(fields, (list, tuple)) or not fields or not all(
            isinstance(f, pa.Field) for f in fields):
        raise SchemaError(f"fields: expected a pyarrow.Schema or a non-empty list of "
                          f"pyarrow.Field, got {fields!r}")
    names = [f.name for f in fields]
    taken = [n for n in names if n in schema.names]
    if taken:
        raise SchemaError(f"fields: column(s) {', '.join(map(repr, taken))} are in the schema "
                          f"already")
    if len(set(names)) != len(names):
        raise SchemaError("fields: a column name appears more than once")
    new = []
    for f in fields:
        if not f.nullable:
            raise SchemaError(f"fields: column {f.name!r} is not nullable; the rows stored "
                              f"before it read it as null")
        stored = storage_type(f.type, f.name)
        if stored != f.type and f.type != pa.large_string():
            raise SchemaError(f"fields: column {f.name!r} has type {f.type}; it would be "
                              f"stored as {stored}: declare that type")
        new.append(pa.field(f.name, f.type, nullable=True))
    return pa.schema(list(schema) + new)


def widened(schema: pa.Schema, column: object, target: object,
            keys: Iterable[str]) -> pa.Schema:
    """``schema`` with ``column`` of type ``target``, a lossless widening of its type."""
    if not isinstance(column, str) or column not in schema.names:
        raise SchemaError(f"column: expected one of {', '.join(schema.names)}, got {column!r}")
    if not isinstance(target, pa.DataType):
        raise SchemaError(f"type: expected a pyarrow.DataType, got {target!r}")
    if column in set(keys):
        raise SchemaError(f"column {column!r} is a primary key or event_time column; its type "
                          f"does not change")
    source = schema.field(column).type
    if not lossless(source, target):
        raise SchemaError(f"column {column!r}: {source} → {target} is not a lossless "
                          f"widening (int8→int16→int32→int64, int→float64, float32→float64, "
                          f"date→timestamp, string→large_string)")
    return schema.set(schema.get_field_index(column), pa.field(column, target, nullable=True))


def check_values_fit(table: pa.Table, column: str, target: pa.DataType) -> None:
    """SchemaError when a stored integer would not be exact as float64."""
    source = table.schema.field(column).type
    if target != pa.float64() or source not in _INTEGERS:
        return
    values = table.column(column).drop_null().to_numpy()
    if len(values) and (int(values.max()) > EXACT_FLOAT_INTEGERS
                        or int(values.min()) < -EXACT_FLOAT_INTEGERS):
        raise SchemaError(f"column {column!r} holds integers beyond 2**53, which float64 does "
                          f"not hold exactly; the widening would lose them")


def dropped(schema: pa.Schema, names: object, keys: Iterable[str]) -> pa.Schema:
    """``schema`` without ``names`` (never a key or event_time column)."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple)) or not names or not all(
            isinstance(n, str) for n in names):
        raise SchemaError(f"names: expected a non-empty list of column names, got {names!r}")
    unknown = [n for n in names if n not in schema.names]
    if unknown:
        raise SchemaError(f"names: column(s) {', '.join(map(repr, unknown))} are not in the "
                          f"schema ({', '.join(schema.names)})")
    kept = set(keys) & set(names)
    if kept:
        raise SchemaError(f"names: column(s) {', '.join(map(repr, sorted(kept)))} are primary "
                          f"key or event_time columns, which a table cannot lose")
    return pa.schema([f for f in schema if f.name not in set(names)])


def fit(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A stored file's rows as ``schema``: columns it lacks (added after it was written) as
    nulls, types widened since cast."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
