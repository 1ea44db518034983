"""``Commit``: one commit of a feature group's table, as ``insert``, ``history()`` and the other
changes return it, read from the commit's ``commitInfo``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from lakecore.base.times import from_millis
from lakecore.quality.expectations import ValidationReport


class Commit(msgspec.Struct, frozen=True):
    """One commit of a feature group's table.

    Attributes
    ----------
    version : int
        The Delta table version: 0, 1, 2, ... in commit order.
    timestamp : datetime.datetime
    operation : str
        ``insert``, ``delete``, ``compact``, ...
    rows_added, rows_removed : int
    hash : str or None
    validation : ValidationReport or None
        The verdict of the group's expectations on this insert (returned by ``insert``).

    Examples
    --------
    >>> import datetime as dt, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
    >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at", online=True)
    >>> _ = fg.insert({"card": [1, 2], "at": [day(1), day(1)], "total": [10.0, 20.0]})
    >>> commit = fg.history()[0]
    >>> commit.version, commit.operation, commit.rows_added, commit.hash.startswith("sha256:")
    (0, 'insert', 2, True)
    >>> lake.close()
    """

    version: int
    timestamp: dt.datetime
    operation: str
    rows_added: int
    rows_removed: int
    hash: str | None
    validation: ValidationReport | None = None


SCHEMA_CHANGES = ("add_columns", "widen", "drop_columns")


def commit_record(version: int, timestamp_ms: int, info: dict[str, Any]) -> Commit:
    ours = info.get("lakecore") or {}
    metrics = info.get("operationMetrics") or {}
    return Commit(
        version=version,
        timestamp=from_millis(timestamp_ms),
        operation=ours.get("operation") or str(info.get("operation", "unknown")).lower(),
        rows_added=int(ours.get("rows_added", metrics.get("num_added_rows", 0)) or 0),
        rows_removed=int(ours.get("rows_removed", metrics.get("num_removed_rows", 0)) or 0),
        hash=ours.get("hash"),
    )
