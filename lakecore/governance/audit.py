"""The audit log: every change to the lake, append-only and hash-chained.

One JSON line per event in ``<lake>/audit.log``: sequence number, time, operation, target ref
and the changed object's hash, plus ``prev_hash`` (the previous event's hash) and ``hash``, a
sha256 over all of those, so editing, dropping or reordering an event breaks the chain.

An event is written, fsynced, while the writer lock is held and *before* the change it
records: a table commit's event carries the sha256 of its commit file (and checkpoint), a
catalog change's event the sha256 of the new catalog, which in turn names the event's
``seq``. So every commit and every catalog lakecore wrote is matched by an event, and one
that is not was written by someone else: lakecore never adopts it. A writer killed between
an event and its change leaves an event whose change never landed; the next writer (or
writable open) appends an ``abort`` event for it. A deletion ends the story of the object's
earlier events (``live_events``): a ref made again after a deletion is a new object.

Opening a lake does not read the whole log. Every ``INDEX_EVERY`` events a writer saves what
reads need from the events so far in ``audit.index``, and records the index's sha256 in the
next event (``index_audit_log``): the live events of every object, except table commits older
than the last ``INDEX_WINDOW`` of their table (reads of the latest version need only the
commits since its checkpoint), the catalog events and vacuum horizons. A reader loads the
index when the log still holds, where the index ends, the line it ended with, followed by the
event recording the index's digest; then it reads only the events after it. A question the
index cannot answer (an older commit, every event) reads the whole log, once.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import msgspec

from lakecore.base.files import create_exclusively, fsync_path, open_own
from lakecore.base.hashing import digest_bytes
from lakecore.base.times import now_millis
from lakecore.errors import IntegrityError
from lakecore.governance.audit_events import (
    FORGET_OP,
    AuditEvent,
    Rewrites,
    commit_of,
    decoder,
    encoder,
    event_hash,
    holders,
)

AUDIT_FILE = "audit.log"
INDEX_FILE = "audit.index"
INDEX_OP = "index_audit_log"
INDEX_EVERY = 1000      # events between two indexes
INDEX_WINDOW = 32       # the latest commits of each table the index keeps (checkpoints: 10)


class AuditIndex(msgspec.Struct, frozen=True, kw_only=True):
    """What reads need from the first ``lines`` lines (``offset`` bytes) of the log."""

    offset: int
    lines: int
    last_line: str                          # the line that ends at ``offset``
    last_event: AuditEvent
    damaged: list[str]
    live: list[AuditEvent]                  # the live event of each ref (older commits left out)
    catalog: list[AuditEvent]
    horizons: dict[str, int]
    window: dict[str, int]                  # group ref -> the first commit whose event is kept
    forgets: list[AuditEvent] = []          # every live "forget" event


_index_decoder = msgspec.json.Decoder(AuditIndex)


def index_digest(lake_path: str) -> str | None:
    """The sha256 of ``audit.index`` (None: there is none, or it cannot be read)."""
    try:
        with open_own(os.path.join(lake_path, INDEX_FILE)) as f:
            return digest_bytes(f.read())
    except (OSError, IntegrityError):
        return None


class AuditLog:
    """The log of one lake, read incrementally: each call reads only what was appended since
    the last one (by any process), and starts over if the file was replaced or shrank."""

    def __init__(self, lake_path: str):
        self.path = os.path.join(lake_path, AUDIT_FILE)
        self.lake_path = lake_path
        self._reset()

    def _reset(self) -> None:
        self._offset = 0                    # bytes read, up to the end of a complete line
        self._identity: tuple[int, int, int] | None = None  # the file as the last read saw it
        self._last_line = b""               # the last complete line read (to spot a rewrite)
        self._lines = 0
        self._events: list[AuditEvent] = []
        self._damaged: list[str] = []       # lines that do not decode, in words
        self._by_target: dict[str, AuditEvent] = {}     # the live event of each ref
        self._catalog: list[AuditEvent] = []            # live events that wrote the catalog
        self._horizons: dict[str, int] = {}             # a table's vacuum horizon, by group ref
        self._forgets: list[AuditEvent] = []            # live "forget" events, oldest first
        self._rewrites: Rewrites | None = None          # what they add up to (made on demand)
        # loaded from the index: events before it are not in _events, and commits of a group
        # before its window not in _by_target
        self._window: dict[str, int] | None = None
        self._indexed_lines = 0                         # the lines the last index covers

    # -- reading -----------------------------------------------------------------------------
    def _refresh(self, whole: bool = False) -> None:
        """Read what was appended since the last call; from the index on the first call
        (unless ``whole``). A file with the identity, size and mtime of the last call's is
        not opened again."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        identity = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity is not None and identity == self._identity and self._offset:
            return
        try:
            f = open_own(self.path, "rb")
        except FileNotFoundError:
            if self._offset:
                self._reset()
            return
        with f:
            st = os.fstat(f.fileno())
            self._identity = (st.st_ino, st.st_size, st.st_mtime_ns)
            size = st.st_size
            if size < self._offset or (self._offset and not self._unchanged(f)):
                self._reset()
            if self._offset == 0 and not whole:
                self._load_index(f, size)
            if size == self._offset:
                return
            f.seek(self._offset)
            data = f.read(size - self._offset)
        end = data.rfind(b"\n")
        if end < 0:
            return                          # only a line being appended (or torn by a crash)
        lines = data[:end].split(b"\n")
        try:                                # all at once, when every line decodes
            events = decoder.decode_lines(data[:end])
        except msgspec.DecodeError:
            events = None
        if events is not None and len(events) == len(lines):
            for event in events:
                self._add(event)
            self._lines += len(lines)
            self._last_line = lines[-1]
        else:
            for line in lines:
                self._lines += 1
                if not line:
                    continue
                try:
                    event = decoder.decode(line)
                except msgspec.DecodeError as exc:
                    self._damaged.append(f"audit log line {self._lines} is damaged: {exc}")
                    continue
                self._add(event)
                self._last_line = line
        self._offset += end + 1

    def _unchanged(self, f) -> bool:
        """Whether the file still holds, where the last read ended, the line read last."""
        n = len(self._last_line) + 1
        if self._offset < n:
            return True
        f.seek(self._offset - n)
        return f.read(n) == self._last_line + b"\n"

    def _load_index(self, f, size: int) -> None:
        """Start from the index when the log still holds what it covers and records its
        digest right after (else read the whole log, as without an index)."""
        try:
            with open_own(os.path.join(self.lake_path, INDEX_FILE)) as g:
                raw = g.read()
            index = _index_decoder.decode(raw)
            last = index.last_line.encode()
            if not 0 < len(last) < index.offset <= size:
                return
            f.seek(index.offset - len(last) - 1)
            if f.read(len(last) + 1) != last + b"\n":
                return
            f.seek(index.offset)
            recording = decoder.decode(f.readline().rstrip(b"\n"))
        except (OSError, ValueError, msgspec.DecodeError, IntegrityError):
            return
        if (recording.op != INDEX_OP or recording.object_hash != digest_bytes(raw)
                or recording.seq != index.last_event.seq + 1):
            return
        self._offset, self._lines, self._last_line = index.offset, index.lines, last
        self._events = [index.last_event]
        self._damaged = list(index.damaged)
        self._by_target = {e.target: e for e in index.live}
        self._catalog = list(index.catalog)
        self._horizons = dict(index.horizons)
        self._forgets, self._rewrites = list(index.forgets), None
        self._window = dict(index.window)
        self._indexed_lines = index.lines

    def _read_whole(self) -> None:
        """Read every event (a question the index cannot answer)."""
        if self._window is not None:
            indexed = self._indexed_lines
            self._reset()
            self._refresh(whole=True)
            self._indexed_lines = indexed

    def check_readable(self) -> None:
        """IntegrityError when a line of the log does not decode."""
        self._refresh()
        if self._damaged:
            raise IntegrityError(self._damaged[0])

    def index_due(self) -> bool:
        """Whether enough events were appended since the last index for a new one."""
        self._refresh()
        return self._lines - self._indexed_lines >= INDEX_EVERY and not self._damaged

    def write_index(self) -> AuditEvent:
        """Save the index of every event so far and record its digest in an event (the
        caller holds the writer lock)."""
        self._refresh()
        newest: dict[str, int] = {}
        for target in self._by_target:
            commit = commit_of(target)
            if commit is not None:
                newest[commit[0]] = max(commit[1], newest.get(commit[0], -1))
        window = {group: max(version - INDEX_WINDOW + 1, 0) for group, version in newest.items()}
        if self._window is not None:        # what this process never loaded stays left out
            for group, first in self._window.items():
                window[group] = max(window.get(group, first), first)
        live = []
        for target, event in self._by_target.items():
            commit = commit_of(target)
            if commit is None or commit[1] >= window.get(commit[0], 0):
                live.append(event)
        index = AuditIndex(offset=self._offset, lines=self._lines,
                           last_line=self._last_line.decode(), last_event=self._events[-1],
                           damaged=self._damaged, live=sorted(live, key=lambda e: e.seq),
                           catalog=self._catalog, horizons=self._horizons, window=window,
                           forgets=self._forgets)
        raw = encoder.encode(index)
        # staged, recorded, then put in place: the index in place is always a recorded one
        final = os.path.join(self.lake_path, INDEX_FILE)
        staged = os.path.join(self.lake_path, f".{INDEX_FILE}.{uuid.uuid4().hex}.tmp")
        try:
            with create_exclusively(staged) as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            event = self.append(INDEX_OP, INDEX_FILE, digest_bytes(raw))
            os.replace(staged, final)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staged)
        fsync_path(self.lake_path)
        self._indexed_lines = self._lines
        return event

    def index_problems(self) -> list[str]:
        """What is wrong with ``audit.index`` (empty: it is absent, or recorded and true to
        the events it covers)."""
        path = os.path.join(self.lake_path, INDEX_FILE)
        if not os.path.lexists(path):
            return []
        try:
            with open_own(path) as f:
                raw = f.read()
            index = _index_decoder.decode(raw)
        except (OSError, IntegrityError, msgspec.DecodeError) as exc:
            return [f"{INDEX_FILE}: not an index lakecore wrote ({exc})"]
        events = self.events(strict=False)
        digest = digest_bytes(raw)
        if not any(e.op == INDEX_OP and e.object_hash == digest for e in events):
            return [f"{INDEX_FILE}: its sha256 {digest} is recorded by no audit event: it was "
                    f"changed outside lakecore"]
        fresh = AuditLog(self.lake_path)
        for event in events:
            if event.seq <= index.last_event.seq:
                fresh._add(event)
        expected = sorted((e for t, e in fresh._by_target.items()
                           if (c := commit_of(t)) is None
                           or c[1] >= index.window.get(c[0], 0)), key=lambda e: e.seq)
        if (index.live != expected or index.catalog != fresh._catalog
                or index.horizons != fresh._horizons or index.forgets != fresh._forgets
                or index.last_event != (fresh._events[-1] if fresh._events else None)):
            return [f"{INDEX_FILE}: it does not match the audit events it covers"]
        return []

    def _add(self, event: AuditEvent) -> None:
        self._events.append(event)
        if event.op == "abort":
            aborted = self._by_target.get(event.target)
            if aborted is not None and aborted.seq == event.aborts:
                del self._by_target[event.target]
            self._catalog = [e for e in self._catalog if e.seq != event.aborts]
            self._forgets = [e for e in self._forgets if e.seq != event.aborts]
            self._rewrites = None
            return
        if event.op.startswith("create_"):     # a new object: what an earlier one of the
            for ref in [r for r in self._by_target  # same ref recorded is not its own
                        if r != event.target and event.target in holders(r)]:
                del self._by_target[ref]
            self._horizons.pop(event.target, None)
            if self._window is not None:    # its earlier life's commits: none of its own
                self._window.pop(event.target, None)
        if event.op == FORGET_OP:
            self._forgets.append(event)
            self._rewrites = None
        if event.op == "vacuum" and event.horizon is not None:
            self._horizons[event.target] = max(event.horizon, self._horizons.get(event.target, -1))
            return
        self._by_target[event.target] = event
        if event.catalog is not None:
            self._catalog.append(event)

    def events(self, strict: bool = True) -> list[AuditEvent]:
        """Every complete event, in order (a torn last line, left by a crash, is skipped).
        A damaged line raises IntegrityError, or is skipped when not ``strict`` (``verify``
        reports it through ``check_chain``)."""
        self._refresh()
        self._read_whole()
        if strict and self._damaged:
            raise IntegrityError(self._damaged[0])
        return list(self._events)

    def last_event(self) -> AuditEvent | None:
        """The last complete event (None before any)."""
        self._refresh()
        return self._events[-1] if self._events else None

    def recorded(self, target: str) -> AuditEvent | None:
        """The live event that recorded ``target`` (None: lakecore recorded no such change,
        or it was aborted or deleted since)."""
        self._refresh()
        found = self._by_target.get(target)
        if found is None and self._window is not None:
            commit = commit_of(target)
            if commit is not None and commit[1] < self._window.get(commit[0], 0):
                self._read_whole()          # an older commit: the index left it out
                found = self._by_target.get(target)
        return found

    def rewrites(self) -> Rewrites:
        """What every ``forget`` so far rewrote: the files' digests now, and what the
        rewritten data files and datasets were before (for hashes made over them)."""
        self._refresh()
        if self._rewrites is None:
            self._rewrites = Rewrites.of(self._forgets)
        return self._rewrites

    def vacuum_horizon(self, group: str) -> int:
        """The first commit of table ``group`` (a group ref) whose files vacuum kept (-1:
        never vacuumed): earlier commits may have lost files."""
        self._refresh()
        return self._horizons.get(group, -1)

    def catalog_events(self) -> list[AuditEvent]:
        """The live events that wrote the catalog, oldest first."""
        self._refresh()
        return list(self._catalog)

    def raw_lines(self) -> list[bytes]:
        """Every complete line (a last one without its line end is being appended, or was
        torn by a crash: the next append cuts it)."""
        if not os.path.lexists(self.path):
            return []
        with open_own(self.path, "rb") as f:
            return [line for line in f.read().split(b"\n")[:-1] if line]

    # -- writing -----------------------------------------------------------------------------
    def append(self, op: str, target: str, object_hash: str | None, *,
               files: dict[str, str] | None = None, catalog: str | None = None,
               aborts: int | None = None, horizon: int | None = None,
               details: dict[str, Any] | None = None) -> AuditEvent:
        """Append one event (the caller holds the writer lock) and return it."""
        self._refresh()
        last = self._events[-1] if self._events else None
        seq = last.seq + 1 if last else 1
        time_ms = max(now_millis(), last.time_ms if last else 0)
        prev = last.hash if last else None
        event = AuditEvent(seq=seq, time_ms=time_ms, op=op, target=target,
                           object_hash=object_hash, prev_hash=prev,
                           hash=event_hash(seq, time_ms, op, target, object_hash, prev, files,
                                           catalog, aborts, horizon, details),
                           files=files or None, catalog=catalog, aborts=aborts, horizon=horizon,
                           details=details)
        line = encoder.encode(event) + b"\n"
        with open_own(self.path, "ab") as f:
            size = os.fstat(f.fileno()).st_size
            if size != self._offset:        # a line torn by a crash: cut it first
                f.truncate(self._offset)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
                st = os.fstat(f.fileno())
                if seq == 1:
                    fsync_path(self.lake_path)
            except BaseException:           # not recorded: leave the log as it was
                with contextlib.suppress(OSError):
                    f.truncate(self._offset)
                raise
        self._lines += 1
        self._offset += len(line)
        self._last_line = line[:-1]
        self._identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        self._add(event)
        return event

    def abort(self, event: AuditEvent) -> AuditEvent:
        """Record that the change ``event`` announced was never made."""
        return self.append("abort", event.target, None, aborts=event.seq)

    def withdraw(self, event: AuditEvent) -> None:
        """Take back an event whose change could not be made (the caller holds the writer
        lock): cut it off when it is still the last line, so a refused call leaves the lake as
        it was; else record an ``abort``."""
        self._refresh()
        if not self._events or self._events[-1] != event:
            self.abort(event)
            return
        with open_own(self.path, "rb+") as f:
            f.truncate(self._offset - len(self._last_line) - 1)
            f.flush()
            os.fsync(f.fileno())
        self._reset()

    def next_seq(self) -> int:
        """The seq the next appended event will get (stable while the writer lock is held)."""
        last = self.last_event()
        return last.seq + 1 if last else 1

    def marker(self) -> list:
        """Where the log ends now, ``[offset, sha256 of the last line]`` (for
        ``lines_after``)."""
        self._refresh()
        return [self._offset, digest_bytes(self._last_line)]

    def lines_after(self, marker: object) -> tuple[bytes, list[bytes]] | None:
        """The line a ``marker`` ends with and the complete lines after it, while the log
        still holds that line there (else None)."""
        if not (isinstance(marker, list) and len(marker) == 2 and isinstance(marker[0], int)
                and isinstance(marker[1], str)):
            return None
        offset, digest = marker
        try:
            with open_own(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if not 0 < offset <= size:
                    return None
                f.seek(max(offset - (1 << 16), 0))
                before = f.read(min(offset, 1 << 16))
                rest = f.read(size - offset)
        except (OSError, IntegrityError):
            return None
        lines = before[:-1].rsplit(b"\n", 1)
        last = lines[-1]
        if not before.endswith(b"\n") or digest_bytes(last) != digest:
            return None
        return last, [line for line in rest.split(b"\n")[:-1] if line]

    def check_chain(self, lines: list[bytes] | None = None, prev: AuditEvent | None = None,
                    first: int = 1) -> list[str]:
        """Problems with the chain, in words (empty: intact): of the whole log, or of
        ``lines`` (line numbers from ``first``) after the event ``prev``."""
        problems = []
        for n, line in enumerate(self.raw_lines() if lines is None else lines, start=first):
            try:
                event = decoder.decode(line)
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
