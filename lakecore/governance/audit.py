"""The audit log: every change to the lake, append-only and hash-chained.

One JSON line per event in ``<lake>/audit.log``: sequence number, time, operation, target ref
and the changed object's hash, plus ``prev_hash`` (the previous event's hash) and ``hash``, a
sha256 over all of those, so editing, dropping or reordering an event breaks the chain. Events
are appended, fsynced, while the writer lock is held, right after the change they record is
durable (the change is the fact; its event is derived from it). A crash between the two is
repaired by the next writable open, which appends the events missing for table commits,
training datasets and model versions (and the deletions of objects gone from the catalog), and
drops a torn last line. A deletion ends the story of the object's earlier events
(``live_events``): a ref made again after a deletion is a new object.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import msgspec

from lakecore.base.files import fsync_path, open_own
from lakecore.base.hashing import digest_record
from lakecore.base.refs import dataset_ref, group_ref, model_ref, view_ref
from lakecore.base.times import from_millis, now_millis
from lakecore.errors import IntegrityError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.offline.delta_log import commit_info
from lakecore.offline.table import commit_files

AUDIT_FILE = "audit.log"


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
        The previous event's hash, and this event's own (over all of the above).

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

    @property
    def time(self) -> dt.datetime:
        """When the change was recorded (UTC, millisecond precision)."""
        return from_millis(self.time_ms)

    def expected_hash(self) -> str:
        """The hash this event's content should have (``hash`` when untouched)."""
        return event_hash(self.seq, self.time_ms, self.op, self.target, self.object_hash,
                          self.prev_hash, self.files)


def event_hash(seq: int, time_ms: int, op: str, target: str, object_hash: str | None,
               prev_hash: str | None, files: dict[str, str] | None = None) -> str:
    record = {"seq": seq, "time_ms": time_ms, "op": op, "target": target,
              "object_hash": object_hash, "prev_hash": prev_hash}
    if files:
        record["files"] = files
    return digest_record(record)


_decoder = msgspec.json.Decoder(AuditEvent)
_encoder = msgspec.json.Encoder(order="sorted")


class AuditLog:
    def __init__(self, lake_path: str):
        self.path = os.path.join(lake_path, AUDIT_FILE)
        self.lake_path = lake_path

    def events(self, strict: bool = True) -> list[AuditEvent]:
        """Every complete event, in order (a torn last line, left by a crash, is skipped).
        A damaged line elsewhere raises IntegrityError, or is skipped when not ``strict``
        (``verify`` reports it through ``check_chain``)."""
        if not os.path.lexists(self.path):
            return []
        with open_own(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        events = []
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                events.append(_decoder.decode(line))
            except msgspec.DecodeError as exc:
                if i == len(lines) - 1:     # torn by a crash while appending
                    break
                if strict:
                    raise IntegrityError(f"audit log line {i + 1} is damaged: {exc}") from None
        return events

    def raw_lines(self) -> list[bytes]:
        if not os.path.lexists(self.path):
            return []
        with open_own(self.path, "rb") as f:
            return [line for line in f.read().split(b"\n") if line]

    def last_event(self) -> AuditEvent | None:
        """The last complete event, read from the end of the file (appends stay O(1))."""
        if not os.path.lexists(self.path):
            return None
        with open_own(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            block = 1 << 14
            while True:
                start = max(size - block, 0)
                f.seek(start)
                tail = f.read(size - start)
                lines = tail.split(b"\n")
                complete = lines[:-1]            # the part after the last newline is torn
                if start > 0:
                    complete = complete[1:]      # the first line may be cut by the block
                if complete or start == 0:
                    break
                block *= 4
        return _decoder.decode(complete[-1]) if complete else None

    def append(self, op: str, target: str, object_hash: str | None,
               events: list[AuditEvent] | None = None,
               files: dict[str, str] | None = None) -> AuditEvent:
        """Append one event (the caller holds the writer lock); ``events``, when given, is
        the complete list so far and gets the new event."""
        last = (events[-1] if events else None) if events is not None else self.last_event()
        seq = last.seq + 1 if last else 1
        time_ms = max(now_millis(), last.time_ms if last else 0)
        prev = last.hash if last else None
        event = AuditEvent(seq=seq, time_ms=time_ms, op=op, target=target,
                           object_hash=object_hash, prev_hash=prev,
                           hash=event_hash(seq, time_ms, op, target, object_hash, prev, files),
                           files=files or None)
        self._truncate_torn_tail()
        with open_own(self.path, "ab") as f:
            f.write(_encoder.encode(event) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        if seq == 1:
            fsync_path(self.lake_path)
        if events is not None:
            events.append(event)
        return event

    def _truncate_torn_tail(self) -> None:
        """Drop a last line without its newline (a crash mid-append), before appending."""
        if not os.path.lexists(self.path):
            return
        with open_own(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
                f.flush()
                os.fsync(f.fileno())

    def check_chain(self) -> list[str]:
        """Problems with the chain, in words (empty: intact)."""
        problems = []
        prev = None
        for n, line in enumerate(self.raw_lines(), start=1):
            try:
                event = _decoder.decode(line)
            except msgspec.DecodeError as exc:
                problems.append(f"audit log line {n}: not a valid event ({exc})")
                prev = None
                continue
            if event.expected_hash() != event.hash:
                problems.append(f"audit event {event.seq} ({event.op} {event.target}): its hash "
                                f"does not match its content (expected {event.expected_hash()}, "
                                f"found {event.hash})")
            if event.prev_hash != (prev.hash if prev else None):
                problems.append(f"audit event {event.seq}: prev_hash {event.prev_hash} does not "
                                f"match the previous event's hash "
                                f"{prev.hash if prev else None}")
            if prev is not None and event.seq != prev.seq + 1:
                problems.append(f"audit event {event.seq} follows event {prev.seq}: an event is "
                                f"missing or out of order")
            prev = event
        return problems


# Deleting an object ends its events' story: its own events and those of what it holds (a
# group's commits, a view's datasets) describe an earlier life of the ref, not the present.
DELETE_OPS = ("delete_feature_group", "delete_feature_view", "delete_training_data",
              "delete_model")


def _holders(target: str) -> tuple[str, ...]:
    """The refs whose deletion removes ``target``: itself, and its group or view."""
    if target.startswith("fg:") and "#" in target:
        return target, target.split("#", 1)[0]
    if target.startswith("td:") and "/" in target:
        return target, "fv:" + target[3:].split("/", 1)[0]
    return (target,)


def live_events(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events about objects as they exist now: not deletions, and not events of an
    object (or of its group or view) deleted after them."""
    deleted_at: dict[str, int] = {}
    for event in events:
        if event.op in DELETE_OPS:
            deleted_at[event.target] = event.seq
    if not deleted_at:
        return list(events)
    return [e for e in events if e.op not in DELETE_OPS and
            all(deleted_at.get(ref, -1) < e.seq for ref in _holders(e.target))]


def missing_events(existing: list[AuditEvent], wanted: list[tuple[str, str, Any]]) -> list:
    """The ``(op, target, hash)`` of ``wanted`` whose target has no live event yet."""
    seen = {e.target for e in live_events(existing)}
    return [w for w in wanted if w[1] not in seen]


# -- repair after a crash ----------------------------------------------------------------------
_CREATE_OPS = ("create_feature_group", "create_feature_view", "create_training_data",
               "register_model")
_DELETE_OP = {"fg": "delete_feature_group", "fv": "delete_feature_view",
              "td": "delete_training_data", "model": "delete_model"}


def catch_up(ctx: LakeContext, audit: AuditLog) -> None:
    """Append the audit events a crash left out (a change is durable before its event).
    Only commits without an event have their log file read, so an open stays cheap."""
    with ctx.lock.hold():
        events = audit.events()
        live = live_events(events)
        audited = {e.target for e in live}
        state = ctx.catalog.state()
        for spec in state.feature_groups:
            ref = group_ref(spec.name, spec.version)
            if ref not in audited:
                audit.append("create_feature_group", ref, None, events)
            table = ctx.offline_table(spec)
            for version in table.log.versions_on_disk()[0]:
                target = group_ref(spec.name, spec.version, version)
                if target in audited:
                    continue
                actions, _ = table.log.read_commit(version)
                info = commit_info(actions)
                ours = info.get("lakecore") or {}
                audit.append(ours.get("operation") or str(info.get("operation", "commit")),
                                  target, ours.get("hash"), events,
                                  commit_files(ctx.path, table.location, version))
        others = [("create_feature_view", view_ref(v.name, v.version), None)
                  for v in state.feature_views]
        others += [("create_training_data", dataset_ref(t.view, t.view_version, t.version),
                    t.hash) for t in state.training_datasets]
        others += [("register_model", model_ref(m.name, m.version), m.hash)
                   for m in state.models]
        for op, target, digest in missing_events(events, others):
            audit.append(op, target, digest, events)
        # deletions that were durable in the catalog before their event was
        present = {group_ref(g.name, g.version) for g in state.feature_groups} | \
            {target for _, target, _ in others}
        gone = dict.fromkeys(e.target for e in live if e.op in _CREATE_OPS
                             and e.target not in present)
        for target in gone:
            kind = target.split(":", 1)[0]
            if kind == "td" and "fv:" + target[3:].split("/", 1)[0] in gone:
                continue                # deleted with its view
            audit.append(_DELETE_OP[kind], target, None, events)


def anchor_problems(audit: AuditLog, anchor: object) -> list[str]:
    """What is wrong with the log against an ``(seq, hash)`` anchor kept outside the lake:
    the event must still be there, with that hash (events after it may have been added)."""
    if not (isinstance(anchor, (tuple, list)) and len(anchor) == 2
            and isinstance(anchor[0], int) and isinstance(anchor[1], str)):
        raise ValidationError(f"anchor: expected (seq, hash) from audit_head(), got {anchor!r}")
    seq, digest = anchor
    found = next((e for e in audit.events(strict=False) if e.seq == seq), None)
    if found is None:
        return [f"audit log: the anchored event {seq} is gone (the log was truncated, deleted "
                f"or rewritten)"]
    if found.hash != digest:
        return [f"audit log: event {seq} has hash {found.hash}, the anchor kept {digest} (the "
                f"log was rewritten)"]
    return []
