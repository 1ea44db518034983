"""When a table's small files are merged: size tiers, with bounded work per call.

A pipeline that inserts a few rows every second makes one small file per commit. After each
insert or delete, lakecore looks at the live files by size tier (tier ``t`` holds files of
``4**t`` to ``4**(t+1) - 1`` rows) and, when the lowest tier holding at least ``FAN_IN``
files exists, merges those files (at most ``4 * FAN_IN`` of them) into one, as a
``"compact"`` commit made by the same call. A merged file lands in a higher tier, so a row is
rewritten about once per tier (at most ``log4`` of the table's rows times), and a table keeps
about ``FAN_IN`` files per tier below ``BIG_FILE_ROWS`` rows: with the default of 4, a few
dozen files at most (2,000 one-row inserts leave 11), whatever the number of commits.

The knob: ``LAKECORE_COMPACT_FAN_IN`` (default 4; 0 turns automatic compaction off, for
example to control compaction by hand with ``fg.compact()``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from typing import Any

from lakecore.base.parquet import ROW_GROUP_ROWS
from lakecore.errors import ValidationError

DEFAULT_FAN_IN = 4
# Files of at least this many rows are big enough: never merged automatically.
BIG_FILE_ROWS = ROW_GROUP_ROWS


def fan_in() -> int:
    """How many files of one tier trigger a merge (0: never)."""
    configured = os.environ.get("LAKECORE_COMPACT_FAN_IN", "").strip()
    if not configured:
        return DEFAULT_FAN_IN
    try:
        value = int(configured)
    except ValueError:
        value = -1
    if value < 0 or value == 1:
        raise ValidationError(f"LAKECORE_COMPACT_FAN_IN: expected 0 (off) or an integer of at "
                              f"least 2, got {configured!r}")
    return value


def tier(rows: int) -> int:
    """The size tier of a file of ``rows`` rows: 0 below 4 rows, 1 below 16, ..."""
    return (max(rows, 1).bit_length() - 1) // 2


def files_to_merge(files: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``add`` actions of the files to merge now (empty: none)."""
    needed = fan_in()
    if needed == 0:
        return []
    tiers: dict[int, list[dict[str, Any]]] = {}
    for add in files:
        rows = file_rows(add)
        if rows is not None and rows < BIG_FILE_ROWS:
            tiers.setdefault(tier(rows), []).append(add)
    for level in sorted(tiers):
        if len(tiers[level]) >= needed:
            return tiers[level][: 4 * needed]
    return []


def file_rows(add: dict[str, Any]) -> int | None:
    """A file's row count from its Delta statistics (None: not recorded)."""
    stats = add.get("stats")
    if not isinstance(stats, str):
        return None
    rows = _parse_stats(stats).get("numRecords")
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


@functools.lru_cache(maxsize=1 << 14)
def _parse_stats(stats: str) -> dict[str, Any]:
    try:
        parsed = json.loads(stats)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
