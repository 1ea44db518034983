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

from lakecore._native import dedupe
from lakecore.base.keys import key_codes, key_hashes, rows_matching
from lakecore.base.parquet import read_parquet
from lakecore.base.spill import DEFAULT_BUDGET_ROWS, KeyHashes
from lakecore.offline.delta_log import Snapshot
from lakecore.offline.evolution import fit
from lakecore.offline.table import (
    Change,
    OfflineTable,
    column_ranges,
    file_ranges,
    ranges_overlap,
    remove_action,
)


class _Written:
    """The files a stream wrote, in stream order, and the first row number of each."""

    def __init__(self) -> None:
        self.adds: list[dict[str, Any] | None] = []
        self.starts: list[int] = []
        self.rows = 0

    def append(self, add: dict[str, Any], rows: int) -> None:
        self.adds.append(add)
        self.starts.append(self.rows)
        self.rows += rows

    def file_of(self, rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.starts, np.int64), rows, "right") - 1


def plan_stream_upsert(table: OfflineTable, snapshot: Snapshot, chunks: Iterable[pa.Table],
                       schema: pa.Schema, budget_rows: int = DEFAULT_BUDGET_ROWS) -> Change:
    """The Change upserting every row of ``chunks`` (tables in ``schema``) into ``snapshot``:
    files written as chunks arrive, one Change at the end. ``Change.rows`` is None; the new
    rows are in the files ``Change.row_files`` names."""
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
            written.append(None, chunk.num_rows)
            slot = len(written.adds) - 1
            pending = writer.submit(_write_into, table, chunk, version, written, slot)
            del chunk
        if pending is not None:
            pending.result()
        if not written.rows:
            return Change("insert", [], [], 0, 0, None, row_files=[])
        fetch = _fetcher(table, written, schema)
        losers = _stream_losers(hashes, fetch, columns)
        removes, kept_adds, removed = _replace_stored(table, snapshot, schema, hashes, fetch,
                                                      ranges)
    adds = _drop_losers(table, written, losers, schema, version)
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


def _fetcher(table: OfflineTable, written: _Written, schema: pa.Schema
             ) -> Callable[[np.ndarray], pa.Table]:
    """``fetch(rows)``: the key columns of stream rows ``rows`` (ascending), in that order,
    read back from the files written (each file read once per call, key columns only)."""
    key_schema = pa.schema([schema.field(c) for c in table.key_columns])

    def fetch(rows: np.ndarray) -> pa.Table:
        files = written.file_of(rows)
        parts = []
        for index in np.unique(files):
            add = written.adds[index]
            assert add is not None
            stored = fit(read_parquet(os.path.join(table.location, add["path"]),
                                      table.key_columns), key_schema)
            local = rows[files == index] - written.starts[index]
            parts.append(stored.take(pa.array(local)))
        return pa.concat_tables(parts) if parts else key_schema.empty_table()
    return fetch


def _stream_losers(hashes: KeyHashes, fetch: Callable[[np.ndarray], pa.Table],
                   columns: list[str]) -> np.ndarray:
    """Row numbers of the stream rows a later row of the same key replaces."""
    losers = []
    for candidates in hashes.repeated():
        keys = fetch(candidates)
        codes, _, n = key_codes(keys, keys.slice(0, 0), columns, columns, "data", "data")
        keep = np.zeros(len(candidates), bool)
        keep[dedupe.last_occurrences(codes, n)] = True
        losers.append(candidates[~keep])
    return np.sort(np.concatenate(losers)) if losers else np.empty(0, np.int64)


def _replace_stored(table: OfflineTable, snapshot: Snapshot, schema: pa.Schema,
                    hashes: KeyHashes, fetch: Callable[[np.ndarray], pa.Table],
                    ranges: dict[str, list[Any]]) -> tuple[list[dict], list[dict], int]:
    """The stored files holding a key of the stream: their ``remove`` actions, the files of
    their other rows, and how many stored rows the stream replaces. One stored file at a
    time; key columns first, the whole file only when it holds a replaced row."""
    columns = table.key_columns
    key_schema = pa.schema([schema.field(c) for c in columns])
    removes: list[dict] = []
    kept_adds: list[dict] = []
    removed = 0
    for add in snapshot.files.values():
        if not ranges_overlap(file_ranges(add), ranges, columns):
            continue
        path = os.path.join(table.location, add["path"])
        stored_keys = fit(read_parquet(path, columns), key_schema)
        present, incoming = hashes.rows_with(key_hashes(stored_keys, columns))
        if not present.any():
            continue
        candidates = np.flatnonzero(present)
        matched = rows_matching(stored_keys.take(pa.array(candidates)), fetch(incoming),
                                columns)
        if not matched.any():
            continue                    # hashes met, keys differ
        replaced = np.zeros(stored_keys.num_rows, bool)
        replaced[candidates[matched]] = True
        removed += int(matched.sum())
        removes.append(remove_action(add))
        kept = fit(read_parquet(path), schema).filter(pa.array(~replaced))
        if kept.num_rows:
            kept_adds.append(table.write_file(kept, snapshot.version + 1))
    return removes, kept_adds, removed


def _drop_losers(table: OfflineTable, written: _Written, losers: np.ndarray,
                 schema: pa.Schema, version: int) -> list[dict[str, Any]]:
    """The written files' ``add`` actions, each file holding a loser written again without
    it (the first version is deleted at once)."""
    adds: list[dict[str, Any]] = []
    files = written.file_of(losers)
    for index, add in enumerate(written.adds):
        assert add is not None
        lost = losers[files == index] - written.starts[index]
        if not len(lost):
            adds.append(add)
            continue
        path = os.path.join(table.location, add["path"])
        rows = fit(read_parquet(path), schema)
        keep = np.ones(rows.num_rows, bool)
        keep[lost] = False
        if keep.any():
            adds.append(table.write_file(rows.filter(pa.array(keep)), version))
        table.drop_pending(path)
    return adds
