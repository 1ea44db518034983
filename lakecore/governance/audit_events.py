"""Audit events: what one change of the lake records, how its hash chains it to the one
before, and what a sequence of them adds up to (the live events; what ``forget`` rewrote).

The log that holds them, and its index, are ``governance.audit``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec

from lakecore.base.hashing import digest_record
from lakecore.base.times import from_millis


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change of the lake, hash-chained to the one before.

    Attributes
    ----------
    seq : int
        1, 2, ... in order.
    time : datetime.datetime
    op : str
        What was done (``create_feature_group``, ``insert``, ``register_model``, ...).
    target : str
        The ref of what was changed.
    object_hash : str or None
        The changed object's hash.
    prev_hash, hash : str
        The previous event's hash, and this event's own (over all of these fields).
    files : dict or None
        For a table commit: the sha256 of its commit file (and checkpoint), by path.
    catalog : str or None
        For a change of definitions: the sha256 of the catalog it wrote.
    aborts : int or None
        For ``op == "abort"``: the seq of the announced change that was never made.
    horizon : int or None
        For ``op == "vacuum"``: the first commit of the table whose files were all kept.

    Examples
    --------
    >>> import tempfile, lakecore
    >>> with lakecore.open(tempfile.mkdtemp()) as lake:
    ...     _ = lake.create_feature_group("users", primary_key="id").insert({"id": [1]})
    ...     events = lake.audit_log()
    >>> [(e.seq, e.op, e.target) for e in events]
    [(1, 'create_feature_group', 'fg:users@1'), (2, 'insert', 'fg:users@1#0')]
    >>> events[1].prev_hash == events[0].hash
    True
    """

    seq: int
    time_ms: int
    op: str
    target: str
    object_hash: str | None
    prev_hash: str | None
    hash: str
    files: dict[str, str] | None = None   # sha256 of the files recording the change (a commit's
                                          # log file and checkpoint), by path in the lake
    catalog: str | None = None            # sha256 of the catalog the change wrote
    aborts: int | None = None             # op "abort": the seq of the change that never landed
    horizon: int | None = None            # op "vacuum": the first commit still whole
    # op "forget": what the rewrite did (see ``lakecore.governance.forget``): the salted hash
    # of the keys, how many, the reason, and what verify needs to accept the rewritten files
    details: dict[str, Any] | None = None

    @property
    def time(self) -> dt.datetime:
        """When the change was recorded (UTC, millisecond precision)."""
        return from_millis(self.time_ms)

    def expected_hash(self) -> str:
        """The hash this event's content should have (``hash`` when untouched)."""
        return event_hash(self.seq, self.time_ms, self.op, self.target, self.object_hash,
                          self.prev_hash, self.files, self.catalog, self.aborts, self.horizon,
                          self.details)


def event_hash(seq: int, time_ms: int, op: str, target: str, object_hash: str | None,
               prev_hash: str | None, files: dict[str, str] | None = None,
               catalog: str | None = None, aborts: int | None = None,
               horizon: int | None = None, details: dict[str, Any] | None = None) -> str:
    record = {"seq": seq, "time_ms": time_ms, "op": op, "target": target,
              "object_hash": object_hash, "prev_hash": prev_hash}
    if files:
        record["files"] = files
    if catalog is not None:
        record["catalog"] = catalog
    if aborts is not None:
        record["aborts"] = aborts
    if horizon is not None:
        record["horizon"] = horizon
    if details is not None:
        record["details"] = details
    return digest_record(record)


decoder = msgspec.json.Decoder(AuditEvent)
encoder = msgspec.json.Encoder(order="sorted")


FORGET_OP = "forget"


@dataclass(frozen=True)
class Rewrites:
    """What ``forget`` events rewrote, latest first wins:

    - ``files``: lake path -> the sha256 its file has now (commit files, checkpoints,
      validation reports), superseding what the event of its change recorded;
    - ``data_files``: a rewritten data file's lake path -> ``(size before, sha256 before,
      sha256 now)``: what the commit hashes were made over, and what the file is now;
    - ``hashes``: ref -> the object's hash now (a training dataset rewritten without the
      erased rows), superseding what its event recorded;
    - ``earlier``: ref -> every hash it had before (what models trained on it record).
    """

    files: dict[str, str]
    data_files: dict[str, tuple[int, str, str]]
    hashes: dict[str, str]
    earlier: dict[str, set[str]]

    @classmethod
    def of(cls, events: list[AuditEvent]) -> Rewrites:
        files: dict[str, str] = {}
        data_files: dict[str, tuple[int, str, str]] = {}
        hashes: dict[str, str] = {}
        earlier: dict[str, set[str]] = {}
        for event in events:
            details = event.details or {}
            for ref, was in (details.get("was") or {}).items():
                earlier.setdefault(ref, set()).add(was)
            files.update(event.files or {})
            for path, (size, before, now) in (details.get("data_files") or {}).items():
                # a file rewritten twice: what hashes were made over is the first one
                first = data_files.get(path, (int(size), before, now))
                data_files[path] = (first[0], first[1], now)
            hashes.update(details.get("hashes") or {})
        return cls(files, data_files, hashes, earlier)


def decode_events(lines: list[bytes]) -> list[AuditEvent]:
    """The events of these lines (a line that does not decode is left out: ``check_chain``
    reports it)."""
    events = []
    for line in lines:
        with contextlib.suppress(msgspec.DecodeError):
            events.append(decoder.decode(line))
    return events


def commit_of(target: str) -> tuple[str, int] | None:
    """``(group ref, version)`` of a table-commit ref, else None."""
    group, sep, version = target.partition("#")
    if sep and target.startswith("fg:") and version.isdigit():
        return group, int(version)
    return None


# Deleting an object ends its events' story: its own events and those of what it holds (a
# group's commits, a view's datasets) describe an earlier life of the ref, not the present.
DELETE_OPS = ("delete_feature_group", "delete_feature_view", "delete_training_data",
              "delete_model")


def holders(target: str) -> tuple[str, ...]:
    """The refs whose deletion removes ``target``: itself, and its group or view."""
    if target.startswith("fg:") and "#" in target:
        return target, target.split("#", 1)[0]
    if target.startswith("td:") and "/" in target:
        return target, "fv:" + target[3:].split("/", 1)[0]
    return (target,)


def live_events(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events about objects as they exist now: not deletions or aborts, not changes that
    were aborted, and not events of an object (or of its group or view) deleted after them."""
    deleted_at: dict[str, int] = {}
    aborted = set()
    for event in events:
        if event.op in DELETE_OPS:
            deleted_at[event.target] = event.seq
        elif event.op == "abort":
            aborted.add(event.aborts)
    return [e for e in events if e.op not in DELETE_OPS and e.op not in ("abort", "vacuum")
            and e.seq not in aborted
            and all(deleted_at.get(ref, -1) < e.seq for ref in holders(e.target))]
