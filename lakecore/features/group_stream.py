"""Inserting a stream (a ``pyarrow.RecordBatchReader`` or any ``__arrow_c_stream__``
object) without holding it: batches are gathered into chunks of ``CHUNK_ROWS`` rows, each
checked like an in-memory insert's rows (columns, types, null keys, keys the online store
could not hold) and written as it comes (``offline.stream_upsert``); expectations are
judged on the written files, one at a time; one commit at the end, or none when any of it
fails. The online store is then written a file at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
import pyarrow as pa

from lakecore.base.parquet import ROW_GROUP_ROWS
from lakecore.errors import SchemaError
from lakecore.features.commits import Commit
from lakecore.features.validation import judge_files
from lakecore.offline.compaction import fan_in
from lakecore.offline.schema import conform, storage_schema
from lakecore.offline.stream_upsert import plan_stream_upsert
from lakecore.online.store import prepare

CHUNK_ROWS = ROW_GROUP_ROWS     # a full-size data file per chunk


def as_stream(data: Any) -> pa.RecordBatchReader | None:
    """``data`` as a reader when it is a stream: a RecordBatchReader, an object with
    ``__arrow_c_stream__`` that is not a table or data frame already in memory, or an
    iterator of record batches or tables (``pyarrow.parquet.ParquetFile.iter_batches()``)."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, Iterator):
        return _reader_of_batches(data)
    if isinstance(data, (pa.Table, pa.RecordBatch)) or not hasattr(data, "__arrow_c_stream__"):
        return None
    if type(data).__name__ == "DataFrame":      # pandas, polars: in memory already
        return None
    try:
        return pa.RecordBatchReader.from_stream(data)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise SchemaError(f"data: could not read {type(data).__name__} as an Arrow stream: "
                          f"{exc}") from exc


def _reader_of_batches(items: Iterator[Any]) -> pa.RecordBatchReader:
    """A reader of an iterator of record batches or tables, all of the first one's schema
    (an empty iterator: a reader of no rows and no columns)."""
    first = next(items, None)
    if first is None:
        return pa.RecordBatchReader.from_batches(pa.schema([]), iter(()))

    def batches_of(item: Any, position: int) -> list[pa.RecordBatch]:
        if isinstance(item, pa.RecordBatch):
            return [item]
        if isinstance(item, pa.Table):
            return item.to_batches()
        raise SchemaError(f"data: item {position} of the iterator is a "
                          f"{type(item).__module__}.{type(item).__name__}; expected "
                          f"pyarrow record batches or tables")

    head = batches_of(first, 0)             # a wrong first item: refused before any reading
    schema = first.schema

    def batches() -> Iterator[pa.RecordBatch]:
        yield from head
        for position, item in enumerate(items, 1):
            for batch in batches_of(item, position):
                if batch.schema != schema:
                    raise SchemaError(f"data: item {position} of the iterator has columns "
                                      f"{batch.schema}, not the first item's {schema}")
                yield batch
    return pa.RecordBatchReader.from_batches(schema, batches())


def chunks_of(reader: pa.RecordBatchReader, rows: int) -> Iterator[pa.Table]:
    """The reader's batches as tables of ``rows`` rows (the last may be shorter), each
    column in one piece (the writer would combine them; done here, the batches are let go
    before the next chunk is read)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        while batch.num_rows:
            take = min(rows - count, batch.num_rows)
            held.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                chunk = pa.Table.from_batches(held).combine_chunks()
                held, count = [], 0
                yield chunk
    if count:
        yield pa.Table.from_batches(held).combine_chunks()


class StreamInserts:
    """``FeatureGroup``'s insert of a stream (it provides ``_ctx``, ``_spec``, ``_table``,
    ``_schema``, ``_layout``, ``_commit_change`` and ``_merge_small_files``)."""

    def _insert_stream(self, reader: pa.RecordBatchReader) -> Commit | None:
        fan_in()                        # a bad compaction setting is refused before writing
        with self._ctx.writing(f"insert into {self.name!r}"):
            table = self._table
            snapshot = table.snapshot()
            schema = self._schema(snapshot)
            if schema is None:
                schema = storage_schema(reader.schema, self.primary_key, self.event_time)
            layout = self._layout(schema) if self.online else None
            primary_key, event_time = self.primary_key, self.event_time

            def checked_chunks() -> Iterator[pa.Table]:
                for chunk in chunks_of(reader, CHUNK_ROWS):
                    rows = conform(chunk, schema, primary_key, event_time)
                    if layout is not None:
                        prepare(rows, layout)   # a key the online store cannot hold: now
                    yield rows

            self._spec = spec = self._ctx.group_spec(self.name, self.version)
            commit = self._commit_change(
                snapshot, schema,
                lambda: plan_stream_upsert(table, snapshot, checked_chunks(), schema),
                report=lambda change: judge_files(spec, table, change, schema))
            self._merge_small_files()
            return commit
