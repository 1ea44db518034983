"""A feature group's statistics, built from one summary per data file and kept in the lake.

Data files never change (a change writes new ones), so a file's summaries are computed once,
the first time statistics need them, and kept in ``<table>/_statistics/<sha256>.msgpack``,
named by the sha256 the commit recorded for the file. A later commit costs only the files it
added; a compaction, the files it wrote.

The kept summaries are a cache: on read each is checked against what the log recorded of its
file (rows, nulls, extremes) and one that does not decode is computed again. ``verify()``
computes every kept summary again from its file and reports any that differ; ``vacuum()``
removes those whose file is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
import pyarrow as pa

from lakecore.base.files import check_own_folders, open_own, replace_file
from lakecore.base.parquet import read_parquet
from lakecore.base.threads import get_num_threads
from lakecore.catalog.specs import Statistics
from lakecore.errors import IntegrityError
from lakecore.offline.delta_log import Snapshot
from lakecore.offline.evolution import fit
from lakecore.offline.table import OfflineTable, file_digest
from lakecore.quality.statistics import merge
from lakecore.quality.summaries import Summary, summarize

STATISTICS_DIR = "_statistics"
_NAME = re.compile(r"^([0-9a-f]{64})\.msgpack$")

# column name -> (the Arrow type it was summarized as, its summary)
Kept = dict[str, tuple[str, Summary]]
_decoder = msgspec.msgpack.Decoder(Kept)
_encoder = msgspec.msgpack.Encoder()


def table_statistics(table: OfflineTable, snapshot: Snapshot, schema: pa.Schema,
                     columns: list[str], keep: bool) -> Statistics:
    """The statistics of ``columns`` of the table at ``snapshot``; ``keep``: save the summaries
    computed here (False in a read-only lake)."""
    target = pa.schema([schema.field(c) for c in columns])
    adds = list(snapshot.files.values())
    threads = min(get_num_threads(), len(adds))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            per_file = list(pool.map(lambda add: file_summaries(table, add, target, keep), adds))
    else:
        per_file = [file_summaries(table, add, target, keep) for add in adds]
    return Statistics(columns={f.name: merge([s[f.name] for s in per_file], f.type)
                               for f in target})


def file_summaries(table: OfflineTable, add: dict[str, Any], target: pa.Schema, keep: bool
                   ) -> dict[str, Summary]:
    """The summaries of ``target``'s columns in one data file: the kept ones, and the others
    computed (and kept, when ``keep``)."""
    digest = file_digest(add)
    path = kept_path(table, digest)
    if path:    # a link in place of the folder is never read or written through
        check_own_folders(table.location, STATISTICS_DIR)
    kept = load_kept(path, add) if path else {}
    wanted = {f.name: str(f.type) for f in target}
    missing = [name for name, kind in wanted.items()
               if name not in kept or kept[name][0] != kind]
    if missing:
        computed = summarize_file(table, add, pa.schema([target.field(n) for n in missing]))
        kept.update({name: (wanted[name], s) for name, s in computed.items()})
        if keep and path:
            # a cache: a summary not saved is computed again next time
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                replace_file(path, _encoder.encode(kept))
    return {name: kept[name][1] for name in wanted}


def summarize_file(table: OfflineTable, add: dict[str, Any], target: pa.Schema
                   ) -> dict[str, Summary]:
    """Summaries of ``target``'s columns computed from the data file itself."""
    rows = fit(read_parquet(os.path.join(table.location, add["path"]), target.names,
                            use_threads=False), target)
    return {name: summarize(rows.column(name)) for name in target.names}


def kept_path(table: OfflineTable, digest: str | None) -> str | None:
    """Where a data file's summaries are kept (None: lakecore recorded no sha256 for it)."""
    hex_digest = _hex(digest)
    if hex_digest is None:
        return None
    return os.path.join(table.location, STATISTICS_DIR, f"{hex_digest}.msgpack")


def _hex(digest: str | None) -> str | None:
    """The 64 hex digits of a recorded ``sha256:...`` digest (None: not one)."""
    match = re.fullmatch(r"sha256:([0-9a-f]{64})", digest or "")
    return match.group(1) if match else None


def load_kept(path: str, add: dict[str, Any]) -> Kept:
    """The summaries kept at ``path`` ({} when there are none or they do not decode, as a torn
    write leaves them); IntegrityError when they contradict the log's record of the file."""
    try:
        with open_own(path) as f:
            kept = _decoder.decode(f.read())
    except (FileNotFoundError, msgspec.DecodeError):
        return {}
    problem = contradiction(kept, add)
    if problem:
        raise IntegrityError(f"{path}: {problem}; these are not the file's statistics "
                             f"(delete the file to have them computed again)")
    return kept


def contradiction(kept: Kept, add: dict[str, Any]) -> str | None:
    """How kept summaries disagree with what the commit recorded of their file (rows, nulls,
    extremes), or None."""
    stats = add.get("stats")
    try:
        recorded = msgspec.json.decode(stats) if isinstance(stats, str) else {}
    except msgspec.DecodeError:
        recorded = {}
    rows = recorded.get("numRecords")
    for name, (_, summary) in kept.items():
        if rows is not None and summary.count != rows:
            return f"column {name!r} counts {summary.count} rows, the file holds {rows}"
        if summary.nulls > summary.count or summary.nulls < 0:
            return f"column {name!r} counts {summary.nulls} nulls in {summary.count} rows"
    return None


def kept_problems(table: OfflineTable, files: dict[str, dict[str, Any]], recompute: bool
                  ) -> list[str]:
    """What is wrong with the summaries kept for the table's data files ``files`` (path to
    add action): links, names that are not a sha256, summaries that contradict their file or
    (``recompute``) differ from the file's own. Summaries of files no longer there are left
    for ``vacuum()``."""
    folder = os.path.join(table.location, STATISTICS_DIR)
    if not os.path.lexists(folder):
        return []
    if not os.path.isdir(folder) or os.path.islink(folder):
        return [f"{folder}: not a folder lakecore made (a link or a file)"]
    by_digest = {_hex(file_digest(add)): add for add in files.values()}
    problems = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.endswith(".tmp"):
            continue                        # a write that did not finish: vacuum removes it
        match = _NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            problems.append(f"{entry.path}: not a statistics file lakecore wrote")
            continue
        add = by_digest.get(match.group(1))
        if add is None:
            continue
        try:
            with open_own(entry.path) as f:
                kept = _decoder.decode(f.read())
        except (msgspec.DecodeError, IntegrityError) as exc:
            problems.append(f"{entry.path}: unreadable statistics ({exc})")
            continue
        problem = contradiction(kept, add)
        if problem is None and recompute and kept:
            target = pa.schema([pa.field(name, _arrow_type(kind))
                                for name, (kind, _) in kept.items()])
            fresh = summarize_file(table, add, target)
            differing = [name for name, (_, s) in kept.items() if fresh[name] != s]
            if differing:
                problem = (f"the summaries of {', '.join(map(repr, differing))} differ from "
                           f"the data file's own")
        if problem:
            problems.append(f"{entry.path}: {problem}")
    return problems


def unused_summaries(table: OfflineTable, digests: set[str | None], older_than: float
                     ) -> list[str]:
    """The kept summaries of data files whose sha256 is not in ``digests`` (the files a
    vacuum keeps), and temporary files older than ``older_than`` (a time)."""
    folder = os.path.join(table.location, STATISTICS_DIR)
    if not os.path.isdir(folder) or os.path.islink(folder):
        return []
    found = []
    for entry in os.scandir(folder):
        if not entry.is_file(follow_symlinks=False):
            continue
        match = _NAME.match(entry.name)
        if (match and f"sha256:{match.group(1)}" not in digests) or (
                entry.name.endswith(".tmp")
                and entry.stat(follow_symlinks=False).st_mtime < older_than):
            found.append(entry.path)
    return found


def _arrow_type(text: str) -> pa.DataType:
    """The Arrow type a summary was made for, from its text."""
    try:
        return pa.type_for_alias(text)
    except ValueError:
        pass
    match = re.fullmatch(r"timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]", text)
    if match:
        return pa.timestamp(match.group(1), match.group(2))
    raise ValueError(f"not a type lakecore summarizes: {text!r}")
