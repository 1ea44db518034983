"""Upserting a stream of rows without holding it: memory follows one chunk, not the stream.

Each chunk (conformed by the caller) has its own duplicates resolved and is written as a data
file at once, on a writer thread while the next chunk is read. What one chunk cannot see is
found after the last one, from the rows' key hashes (``base.spill.KeyHashes``, spilled to
disk when the stream is large):

- a key repeated in a later chunk: the earlier rows lose (the last one wins, as in an
  in-memory insert); only the files holding losers are written again;
- a key already stored: stored files whose recorded key ranges may hold stream keys are read
  one at a time (key columns first), and those holding a replaced row are written again
  without it.

Hashes only point at candidates: their actual keys are read back from the written files and
compared exactly. The result is the same commit an in-memory ``plan_upsert`` of the whole
stream would make, up to how the rows are split into files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lakecore.base.keys import key_hashes, last_of_each_key, rows_matching_by_hash
from lakecore.base.parquet import read_parquet
from lakecore.base.spill import KeyHashes
from lakecore.offline.delta_log import Snapshot
from lakecore.offline.evolution import fit
from lakecore.offline.numbered_rows import NumberedRows
from lakecore.offline.table import (
    Change,
    OfflineTable,
    column_ranges,
    file_ranges,
    ranges_overlap,
    remove_action,
)


# Rows whose hashes meet compared per round: each round reads the key columns of the files
# holding them once (about 24 bytes a row held; a stream replacing every stored row of 1e7
# takes 3 rounds).
MATCH_BATCH_ROWS = 1 << 23


class _Written:
    """The files a stream wrote, in stream order, and how many rows each holds."""

    def __init__(self) -> None:
        self.adds: list[dict[str, Any] | None] = []     # filled in by the writer thread
        self.counts: list[int] = []
        self.rows = 0

    def append(self, rows: int) -> int:
        """A slot for the next file, of ``rows`` rows."""
        self.adds.append(None)
        self.counts.append(rows)
        self.rows += rows
        return len(self.adds) - 1

    def numbered(self, table: OfflineTable, schema: pa.Schema) -> NumberedRows:
        return NumberedRows(table.location, [a["path"] for a in self.adds], self.counts, schema)


def plan_stream_upsert(table: OfflineTable, snapshot: Snapshot, chunks: Iterable[pa.Table],
                       schema: pa.Schema, budget_rows: int | None = None) -> Change:
    """The Change upserting every row of ``chunks`` (tables in ``schema``) into ``snapshot``:
    files written as chunks arrive, one Change at the end. ``Change.rows`` is None; the new
    rows are in the files ``Change.row_files`` names. ``budget_rows``: key hashes held in
    memory before they are spilled (``base.spill``)."""
    version = snapshot.version + 1
    columns = table.key_columns
    written = _Written()
    ranges: dict[str, list[Any]] = {}
    with KeyHashes(table.location, budget_rows) as hashes, \
            ThreadPoolExecutor(1) as writer:
        pending: Future | None = None
        for chunk in chunks:
            chunk, chunk_hashes = table.latest_with_hashes(chunk)
            if chunk.num_rows == 0:
                continue
            hashes.add(chunk_hashes, written.rows)
            ranges = merge_ranges(ranges, column_ranges(chunk, columns))
            if pending is not None:
                pending.result()        # one file in flight: memory stays at two chunks
            slot = written.append(chunk.num_rows)
            pending = writer.submit(_write_into, table, chunk, version, written, slot)
            del chunk
        if pending is not None:
            pending.result()
        if not written.rows:
            return Change("insert", [], [], 0, 0, None, row_files=[])
        numbered = written.numbered(table, schema)

        def fetch(rows: np.ndarray) -> pa.Table:       # the key columns of stream rows
            return numbered.fetch(rows, columns)
        losers = _stream_losers(hashes, fetch, columns)
        removes, kept_adds, removed = _replace_stored(table, snapshot, schema, hashes, fetch,
                                                      ranges)
    adds = _drop_losers(table, written, numbered, losers, version)
    new_rows = written.rows - len(losers)
    return Change("insert", adds + kept_adds, removes, new_rows, removed, ranges,
                  row_files=[a["path"] for a in adds])


def _write_into(table: OfflineTable, chunk: pa.Table, version: int, written: _Written,
                slot: int) -> None:
    written.adds[slot] = table.write_file(chunk, version)


def merge_ranges(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The key ranges covering both ``a`` and ``b`` (``column_ranges`` maps)."""
    merged = dict(a)
    for name, (lo, hi) in b.items():
        if name in merged:
            merged[name] = [min(merged[name][0], lo), max(merged[name][1], hi)]
        else:
            merged[name] = [lo, hi]
    return merged


def _stream_losers(hashes: KeyHashes, fetch: Callable[[np.ndarray], pa.Table],
                   columns: list[str]) -> np.ndarray:
    """Row numbers of the stream rows a later row of the same key replaces."""
    losers = []
    for candidates in hashes.repeated():
        losers.append(candidates[~last_of_each_key(fetch(candidates), columns)])
    return np.sort(np.concatenate(losers)) if losers else np.empty(0, np.int64)


def _replace_stored(table: OfflineTable, snapshot: Snapshot, schema: pa.Schema,
                    hashes: KeyHashes, fetch: Callable[[np.ndarray], pa.Table],
                    ranges: dict[str, list[Any]]) -> tuple[list[dict], list[dict], int]:
    """The stored files holding a key of the stream: their ``remove`` actions, the files of
    their other rows, and how many stored rows the stream replaces. The stored files whose
    key ranges may hold a stream key are hashed one at a time (key columns only) into hashes
    of their own, which meet the stream's bucket by bucket; a file is read whole only when
    it holds a replaced row."""
    columns = table.key_columns
    key_schema = pa.schema([schema.field(c) for c in columns])
    files = [add for add in snapshot.files.values()
             if ranges_overlap(file_ranges(add), ranges, columns)]
    if not files:
        return [], [], 0

    def keys_of(add: dict[str, Any]) -> pa.Table:
        return fit(read_parquet(os.path.join(table.location, add["path"]), columns),
                   key_schema)

    starts = [0]
    replaced: dict[int, np.ndarray] = {}
    with KeyHashes(table.location) as stored:
        for add in files:
            keys = keys_of(add)
            stored.add(key_hashes(keys, columns), starts[-1])
            starts.append(starts[-1] + keys.num_rows)
        for stored_rows, stream_rows in stored.matches(hashes, MATCH_BATCH_ROWS):
            owner = np.searchsorted(starts, stored_rows, "right") - 1
            indices = np.unique(owner)
            local = {int(i): stored_rows[owner == i] - starts[i] for i in indices}
            candidates = pa.concat_tables([keys_of(files[i]).take(pa.array(local[i]))
                                           for i in local])
            matched = rows_matching_by_hash(candidates, fetch(stream_rows), columns)
            done = 0
            for index, rows in local.items():     # (hashes met but keys differ: not matched)
                hit = rows[matched[done:done + len(rows)]]
                done += len(rows)
                if len(hit):
                    mask = replaced.setdefault(
                        index, np.zeros(starts[index + 1] - starts[index], bool))
                    mask[hit] = True
    removes: list[dict] = []
    kept_adds: list[dict] = []
    for index, mask in sorted(replaced.items()):
        add = files[index]
        removes.append(remove_action(add))
        kept = fit(read_parquet(os.path.join(table.location, add["path"])), schema).filter(
            pa.array(~mask))
        if kept.num_rows:
            kept_adds.append(table.write_file(kept, snapshot.version + 1))
    return removes, kept_adds, sum(int(m.sum()) for m in replaced.values())


def _drop_losers(table: OfflineTable, written: _Written, numbered: NumberedRows,
                 losers: np.ndarray, version: int) -> list[dict[str, Any]]:
    """The written files' ``add`` actions, each file holding a loser written again without
    it (the first version is deleted at once)."""
    adds: list[dict[str, Any] | None] = list(written.adds)
    for index, lost in numbered.by_file(losers):
        path = numbered.paths[index]
        rows = fit(read_parquet(path), numbered.schema)
        keep = np.ones(rows.num_rows, bool)
        keep[lost] = False
        adds[index] = table.write_file(rows.filter(pa.array(keep)), version) \
            if keep.any() else None
        table.drop_pending(path)
    return [a for a in adds if a is not None]
