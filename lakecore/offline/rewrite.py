"""Rewriting a table's history without some rows (``lake.forget``): every data file that holds
them, in every version, and every commit file and checkpoint that names those files.

A rewritten data file keeps its name and gets the kept rows; the ``add`` actions that name it
(in commit files and checkpoints) get its new size, Delta statistics, sha256 and key ranges,
and the ``remove`` actions its new size, so that Delta readers that trust the log (sizes,
``numRecords``, min/max) read every version as it was minus the rows. Everything else in the
log stays byte for byte, the commits' ``lakecore.hash`` included: those hashes were made over
the files as they were, and ``verify()`` checks them through what the ``forget`` audit event
recorded (each rewritten file's size and sha256 before).

Planning reads and writes nothing but new files under temporary names (``stage``); putting
them in place (``TableRewrite.moves``) is the caller's, under the writer lock, after the
rewrite is recorded, so that a crash between the two is rolled forward from the record.
Files that a vacuum deleted hold nothing any more and are left alone.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lakecore.base.files import create_exclusively
from lakecore.base.hashing import digest_bytes
from lakecore.base.keys import rows_matching
from lakecore.base.parquet import read_parquet, write_parquet
from lakecore.offline.delta_log import CHECKPOINT_INTERVAL, LOG_DIR, Snapshot
from lakecore.offline.table import (
    RANGES_TAG,
    SHA_TAG,
    OfflineTable,
    column_ranges,
    delta_stats,
    file_digest,
    file_ranges,
    ranges_overlap,
)


@dataclass
class Move:
    """One staged file and where it goes: ``staged`` replaces ``final`` (both relative to the
    table's folder), which then has ``digest``; ``mtime_ns``: the time to give it back (a
    commit file's mtime is its commit's time for Delta readers)."""

    staged: str
    final: str
    digest: str
    mtime_ns: int | None = None


@dataclass
class TableRewrite:
    """What erasing some rows from one table's history takes."""

    location: str
    data_files: dict[str, tuple[int, str, int, str]] = field(default_factory=dict)
    # path -> (size before, sha256 before, size after, sha256 after)
    erased: dict[str, int] = field(default_factory=dict)    # path -> rows erased from it
    # files a vacuum deleted that may have held the keys: their statistics and key ranges
    # (which may show the keys' values) are taken out of the log
    stripped: list[str] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)       # versions whose file is rewritten
    moves: list[Move] = field(default_factory=list)
    rows_removed: int = 0               # rows erased from the latest version

    @property
    def empty(self) -> bool:
        return not self.data_files and not self.stripped


def plan(table: OfflineTable, keys: pa.Table, columns: list[str]) -> TableRewrite:
    """Stage the rewrite of ``table`` without the rows whose ``columns`` equal a row of
    ``keys``: the kept rows of every data file holding any, then every commit file and
    checkpoint naming those files. Nothing is replaced; an empty plan stages nothing."""
    rewrite = TableRewrite(table.location)
    latest = table.snapshot().version
    if latest < 0:
        return rewrite
    commits = [table.log.read_commit(v) for v in range(latest + 1)]
    first_adds: dict[str, dict[str, Any]] = {}
    for actions, _ in commits:
        for action in actions:
            if "add" in action:
                first_adds.setdefault(action["add"]["path"], action["add"])
    wanted = column_ranges(keys, columns)
    new_adds: dict[str, dict[str, Any]] = {}
    try:
        for path, add in first_adds.items():
            full = os.path.join(table.location, path)
            if (os.path.basename(path) != path
                    or not ranges_overlap(file_ranges(add), wanted, columns)):
                continue                    # cannot hold the keys
            if not os.path.lexists(full):   # vacuumed: only what the log says of it is left
                if "stats" in add or RANGES_TAG in (add.get("tags") or {}):
                    tags = {k: v for k, v in (add.get("tags") or {}).items() if k != RANGES_TAG}
                    new_adds[path] = {"stats": _DROP, "tags": tags}
                    rewrite.stripped.append(path)
                continue
            rows = read_parquet(full)
            mask = rows_matching(rows, keys, columns)
            if not mask.any():
                continue
            kept = rows.filter(pa.array(~mask))
            staged = _stage_name(path)
            rewrite.moves.append(Move(staged, path, ""))
            size, digest = write_parquet(kept, os.path.join(table.location, staged))
            rewrite.moves[-1].digest = digest
            tags = {**(add.get("tags") or {}), SHA_TAG: digest,
                    RANGES_TAG: json.dumps(column_ranges(kept, table.key_columns),
                                           separators=(",", ":"))}
            new_adds[path] = {"size": size, "stats": delta_stats(kept), "tags": tags}
            rewrite.data_files[path] = (add["size"], file_digest(add) or "", size, digest)
            rewrite.erased[path] = int(mask.sum())
        rewrite.rows_removed = sum(n for path, n in rewrite.erased.items()
                                   if path in table.snapshot().files)
        if new_adds:
            _stage_log(table, commits, new_adds, rewrite)
    except BaseException:
        discard(rewrite)
        raise
    return rewrite


def _stage_log(table: OfflineTable, commits: list[tuple[list[dict], int]],
               new_adds: dict[str, dict[str, Any]], rewrite: TableRewrite) -> None:
    """Stage every commit file naming a rewritten file, and every checkpoint whose table
    holds one (replayed from the rewritten commits)."""
    snapshot = Snapshot()
    checkpoint_due = False
    for version, (actions, timestamp) in enumerate(commits):
        changed = False
        rewritten = []
        for action in actions:
            if "add" in action and action["add"]["path"] in new_adds:
                add = {**action["add"], **new_adds[action["add"]["path"]]}
                action = {"add": {k: v for k, v in add.items() if v is not _DROP}}
                changed = True
            elif "remove" in action and "size" in new_adds.get(action["remove"]["path"], {}):
                remove = action["remove"]
                action = {"remove": {**remove, "size": new_adds[remove["path"]]["size"]}
                          if "size" in remove else remove}
                changed = True
            rewritten.append(action)
        snapshot.apply(version, rewritten, timestamp)
        checkpoint_due = checkpoint_due or changed
        if changed:
            path = os.path.join(LOG_DIR, f"{version:020d}.json")
            body = table.log.encode_commit(rewritten)
            full = os.path.join(table.location, path)
            mtime = os.lstat(full).st_mtime_ns
            staged = _stage_name(path)
            with create_exclusively(os.path.join(table.location, staged)) as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            rewrite.moves.append(Move(staged, path, digest_bytes(body), mtime))
            rewrite.commits.append(version)
        if (version > 0 and version % CHECKPOINT_INTERVAL == 0 and checkpoint_due
                and os.path.lexists(table.log.checkpoint_path(version))
                and any(p in new_adds for p in [*snapshot.files, *snapshot.tombstones])):
            final = os.path.join(LOG_DIR, f"{version:020d}.checkpoint.parquet")
            staged = _stage_name(final)
            rewrite.moves.append(Move(staged, final, ""))
            written, rewrite.moves[-1].digest = table.log.stage_checkpoint(snapshot.copy())
            os.replace(written, os.path.join(table.location, staged))


_DROP = object()     # an add field to leave out


def _stage_name(final: str) -> str:
    """A temporary name beside ``final`` (relative to the table's folder)."""
    folder, name = os.path.split(final)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex}.forget.tmp")


def discard(rewrite: TableRewrite) -> None:
    """Remove what a plan staged (a rewrite that will not be made)."""
    for move in rewrite.moves:
        try:
            os.unlink(os.path.join(rewrite.location, move.staged))
        except FileNotFoundError:
            pass
