"""The Delta Lake transaction log of one table: replay, atomic commits, checkpoints.

A commit is the file ``_delta_log/%020d.json`` that wins put-if-absent: the actions are
written to a temporary file, fsynced, and hard-linked to the final name, which fails if
another writer got there first; then the folder is fsynced. The commit file's mtime is set to
the commit's timestamp, since readers use it for time travel by timestamp. Every
``CHECKPOINT_INTERVAL`` commits a Parquet checkpoint (and ``_last_checkpoint``) lets readers
start from there instead of replaying the whole log; it is written before its commit, under a
temporary name, and named after it.

Inside a lake, every commit file and checkpoint is checked against what lakecore recorded
when it wrote them (``RecordedCommit``, from the audit log) before it is used: a commit
appended or edited by anyone else is an ``IntegrityError``, a checkpoint that is not the
recorded one is not used.

lakecore writes protocol reader 1 / writer 2 with no partitions; tables that need newer
reader features (deletion vectors, column mapping) are refused rather than misread.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lakecore.base.files import create_exclusively, fsync_path, open_own, replace_file
from lakecore.base.hashing import digest_bytes
from lakecore.base.parquet import write_parquet
from lakecore.errors import IntegrityError, LakeError

LOG_DIR = "_delta_log"
CHECKPOINT_INTERVAL = 10
# How long a removed file's tombstone stays in the checkpoints after its commit (the Delta
# protocol lets them expire; the commit files keep every one). lakecore's reads and vacuum
# replay the commits and never need them, and keeping them would make every checkpoint, and
# every open, grow with the history: a streaming table removes a file or two per commit.
# Another engine's VACUUM sees no tombstone for them and leaves those files to lakecore's.
TOMBSTONE_RETENTION_MS = 0
PROTOCOL = {"minReaderVersion": 1, "minWriterVersion": 2}
_COMMIT_NAME = re.compile(r"([0-9]{20})\.json")
_CHECKPOINT_NAME = re.compile(r"([0-9]{20})\.checkpoint\.parquet")

_STRING_MAP = pa.map_(pa.string(), pa.string())
CHECKPOINT_SCHEMA = pa.schema([
    ("protocol", pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())])),
    ("metaData", pa.struct([
        ("id", pa.string()), ("name", pa.string()), ("description", pa.string()),
        ("format", pa.struct([("provider", pa.string()), ("options", _STRING_MAP)])),
        ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
        ("configuration", _STRING_MAP), ("createdTime", pa.int64()),
    ])),
    ("add", pa.struct([
        ("path", pa.string()), ("partitionValues", _STRING_MAP), ("size", pa.int64()),
        ("modificationTime", pa.int64()), ("dataChange", pa.bool_()), ("stats", pa.string()),
        ("tags", _STRING_MAP),
    ])),
    ("remove", pa.struct([
        ("path", pa.string()), ("deletionTimestamp", pa.int64()), ("dataChange", pa.bool_()),
        ("extendedFileMetadata", pa.bool_()), ("partitionValues", _STRING_MAP),
        ("size", pa.int64()),
    ])),
])


@dataclass(frozen=True)
class RecordedCommit:
    """What lakecore recorded (in its audit log) when it wrote a commit: the sha256 of the
    commit file and of the checkpoint at that version, and the commit's hash. The digests are
    None for commits recorded by older releases, which kept only the hash."""

    log_file: str | None
    checkpoint: str | None
    commit_hash: str | None


@dataclass
class Snapshot:
    """The state of a table at one version: its metadata and its live files, in commit order."""

    version: int = -1
    timestamp: int | None = None  # ms since the epoch
    commit_hash: str | None = None  # lakecore's hash of the latest commit, if lakecore made it
    protocol: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> add action
    tombstones: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> remove

    def copy(self) -> Snapshot:
        return Snapshot(self.version, self.timestamp, self.commit_hash, self.protocol,
                        self.metadata, dict(self.files), dict(self.tombstones))

    def apply(self, version: int, actions: list[dict[str, Any]], timestamp: int | None) -> None:
        self.commit_hash = None
        for action in actions:
            if "commitInfo" in action:
                self.commit_hash = (action["commitInfo"].get("lakecore") or {}).get("hash")
            elif "add" in action:
                add = action["add"]
                self.files[add["path"]] = add
                self.tombstones.pop(add["path"], None)
            elif "remove" in action:
                remove = action["remove"]
                self.files.pop(remove["path"], None)
                self.tombstones[remove["path"]] = remove
            elif "metaData" in action:
                self.metadata = action["metaData"]
            elif "protocol" in action:
                self.protocol = action["protocol"]
        self.version = version
        self.timestamp = timestamp
        _check_protocol(self.protocol)


def _check_protocol(protocol: dict[str, Any] | None) -> None:
    if protocol is None:
        return
    reader = protocol.get("minReaderVersion", 1)
    features = protocol.get("readerFeatures") or []
    if reader > 1 and not (reader == 3 and not features):
        raise LakeError(
            f"this Delta table needs reader protocol {reader}"
            f"{' with ' + ', '.join(features) if features else ''} (for example deletion "
            f"vectors or column mapping), which lakecore does not read"
        )


def commit_timestamp(actions: list[dict[str, Any]], fallback: int) -> int:
    timestamp = commit_info(actions).get("timestamp")
    return timestamp if isinstance(timestamp, int) else fallback


class DeltaLog:
    """Reads and writes one table's ``_delta_log``; caches the latest snapshot it has seen."""

    def __init__(self, table_path: str,
                 recorded: Callable[[int], RecordedCommit | None] | None = None):
        self.table_path = table_path
        self.log_path = os.path.join(table_path, LOG_DIR)
        self._latest: Snapshot | None = None
        self._history: list[tuple[int, int, dict[str, Any]]] = []  # read once, then extended
        # what lakecore recorded of each commit: reads check the files against it (None: no
        # record to check against, for a log read outside a lake)
        self.recorded = recorded

    # -- reading -----------------------------------------------------------------------------
    def commit_path(self, version: int) -> str:
        return os.path.join(self.log_path, f"{version:020d}.json")

    def read_commit(self, version: int, checked: bool = True
                    ) -> tuple[list[dict[str, Any]], int]:
        """The actions of one commit and its timestamp (ms). ``checked``: the file must be the
        one lakecore recorded, else IntegrityError (``verify`` reads unchecked and reports)."""
        raw, actions, timestamp = self.load_commit(version)
        if checked and self.recorded is not None:
            problem = self.commit_problem(version, raw, actions)
            if problem:
                raise IntegrityError(f"{self.commit_path(version)}: {problem}; lakecore does "
                                     f"not read it")
        return actions, timestamp

    def load_commit(self, version: int) -> tuple[bytes, list[dict[str, Any]], int]:
        """A commit file's bytes, actions and timestamp (ms), unchecked."""
        path = self.commit_path(version)
        with open_own(path) as f:           # never through a link planted in the log
            raw = f.read()
            mtime_ms = os.fstat(f.fileno()).st_mtime_ns // 1_000_000
        try:
            actions = [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
            if not all(isinstance(a, dict) for a in actions):
                raise ValueError("an action that is not a JSON object")
        except ValueError as exc:
            raise IntegrityError(f"{path}: the commit file does not parse ({exc}); it was "
                                 f"changed outside lakecore") from None
        return raw, actions, commit_timestamp(actions, mtime_ms)

    def commit_problem(self, version: int, raw: bytes, actions: list[dict[str, Any]]
                       ) -> str | None:
        """Why commit ``version`` (its file's bytes and actions) is not one lakecore wrote."""
        assert self.recorded is not None
        record = self.recorded(version)
        if record is None:
            return "no audit event records this commit: lakecore did not write it"
        if record.log_file is not None:
            found = digest_bytes(raw)
            if found != record.log_file:
                return (f"the commit file has sha256 {found}, its audit event recorded "
                        f"{record.log_file}: it was changed outside lakecore")
            return None
        found_hash = (commit_info(actions).get("lakecore") or {}).get("hash")
        if found_hash != record.commit_hash:
            return (f"the commit has hash {found_hash}, its audit event recorded "
                    f"{record.commit_hash}: it was changed outside lakecore")
        return None

    def versions_on_disk(self) -> tuple[list[int], list[int]]:
        try:
            names = os.listdir(self.log_path)
        except FileNotFoundError:
            return [], []
        commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT_NAME.fullmatch(n)))
        checkpoints = sorted(int(m.group(1)) for n in names if (m := _CHECKPOINT_NAME.fullmatch(n)))
        return commits, checkpoints

    @staticmethod
    def usable_checkpoints(checkpoints: list[int], commits: list[int], version: int) -> list[int]:
        """The checkpoints a read of ``version`` may start from: at the versions lakecore
        writes them (every CHECKPOINT_INTERVAL commits) and with their commit file present.
        Any other is not lakecore's and is never read (verify reports it)."""
        present = set(commits)
        return [c for c in checkpoints
                if c <= version and c > 0 and c % CHECKPOINT_INTERVAL == 0 and c in present]

    def checkpoint_path(self, version: int) -> str:
        return os.path.join(self.log_path, f"{version:020d}.checkpoint.parquet")

    def read_checkpoint(self, version: int, checked: bool = True) -> Snapshot:
        """The table at ``version`` from its checkpoint. ``checked``: the checkpoint must be
        the one lakecore recorded, else IntegrityError."""
        with open_own(self.checkpoint_path(version)) as f:
            raw = f.read()
        if checked and self.recorded is not None:
            record = self.recorded(version)
            if record is None or record.checkpoint != digest_bytes(raw):
                raise IntegrityError(f"{self.checkpoint_path(version)} is not the checkpoint "
                                     f"lakecore recorded")
        table = pq.ParquetFile(pa.BufferReader(raw)).read(use_threads=False)
        snapshot = Snapshot()
        actions = []
        for row in table.to_pylist():
            for kind in ("protocol", "metaData", "add", "remove"):
                value = row.get(kind)
                if value is not None:
                    actions.append({kind: _maps_to_dicts(value)})
        commit_actions, timestamp = self.read_commit(version, checked)
        snapshot.apply(version, actions + [a for a in commit_actions if "commitInfo" in a],
                       timestamp)
        return snapshot

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The table at ``version`` (latest when None); an empty Snapshot before any commit."""
        latest = self._latest
        if version is not None and latest is not None and version == latest.version:
            return latest
        if version is None or (latest is not None and version > latest.version):
            snapshot = self._roll_forward(latest, version)
            if version is None or snapshot.version >= (latest.version if latest else -1):
                self._latest = snapshot
            return snapshot
        return self._rebuild(version)

    def remember(self, snapshot: Snapshot) -> None:
        """Take ``snapshot``, just committed by this process, as the latest (so the next read
        does not replay what this process wrote)."""
        if self._latest is None or snapshot.version > self._latest.version:
            self._latest = snapshot

    def _roll_forward(self, base: Snapshot | None, target: int | None) -> Snapshot:
        """Apply the commits after ``base`` (probing for the next file) up to ``target``."""
        if base is None and target is None:
            # the latest, from the checkpoint _last_checkpoint names: no listing of a log
            # that grows with every commit
            start = self._pointed_checkpoint()
            if start is not None:
                latest = self._roll_forward(start, None)
                if not os.path.exists(self.commit_path(latest.version + 2)):
                    return latest           # (a gap after it: list the log, as below)
        if base is None:
            commits, checkpoints = self.versions_on_disk()
            if not commits:
                return Snapshot()
            end = commits[-1] if target is None else min(target, commits[-1])
            return self._rebuild(end, commits, checkpoints)
        snapshot = base.copy()
        version = snapshot.version + 1
        while (target is None or version <= target) and os.path.exists(self.commit_path(version)):
            actions, ts = self.read_commit(version)
            snapshot.apply(version, actions, ts)
            version += 1
        return snapshot

    def _pointed_version(self) -> int | None:
        """The version ``_last_checkpoint`` names, when lakecore could have written it and
        its commit file is there; else None."""
        try:
            with open_own(os.path.join(self.log_path, "_last_checkpoint")) as f:
                version = json.loads(f.read()).get("version")
        except (OSError, ValueError, TypeError, AttributeError, LakeError):
            return None
        if not (isinstance(version, int) and version > 0 and version % CHECKPOINT_INTERVAL == 0
                and os.path.exists(self.commit_path(version))):
            return None
        return version

    def _pointed_checkpoint(self) -> Snapshot | None:
        """The table at the checkpoint ``_last_checkpoint`` names, when it is one lakecore
        writes and, inside a lake, the one it recorded; else None."""
        version = self._pointed_version()
        if version is None:
            return None
        try:
            return self.read_checkpoint(version)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, LakeError,
                pa.ArrowException):
            return None

    def last_version_on_disk(self) -> int:
        """The version of the last commit file (-1: none), found without reading any: by
        probing after the version ``_last_checkpoint`` names (listing the log when it names
        none, or when a gap follows)."""
        version = self._pointed_version()
        if version is not None:
            while os.path.exists(self.commit_path(version + 1)):
                version += 1
            if not os.path.exists(self.commit_path(version + 2)):
                return version
        commits, _ = self.versions_on_disk()
        return commits[-1] if commits else -1

    def _rebuild(self, version: int, commits: list[int] | None = None,
                 checkpoints: list[int] | None = None) -> Snapshot:
        if commits is None or checkpoints is None:
            near = self._from_nearest_checkpoint(version)
            if near is not None:
                return near
            commits, checkpoints = self.versions_on_disk()
        if version < 0 or not commits or version > commits[-1]:
            return Snapshot()
        snapshot, start = Snapshot(), 0
        for checkpoint in reversed(self.usable_checkpoints(checkpoints, commits, version)):
            try:
                snapshot, start = self.read_checkpoint(checkpoint), checkpoint + 1
                break
            except (OSError, ValueError, TypeError, KeyError, AttributeError, IntegrityError,
                    pa.ArrowException):
                continue    # damaged or not lakecore's: replay the commits (verify reports it)
        for v in range(start, version + 1):
            actions, ts = self.read_commit(v)
            snapshot.apply(v, actions, ts)
        return snapshot

    def _from_nearest_checkpoint(self, version: int) -> Snapshot | None:
        """The table at ``version`` from the last checkpoint at or before it and the commits
        after, without listing the log (None: no usable checkpoint there)."""
        start = version - version % CHECKPOINT_INTERVAL
        if start <= 0 or not all(os.path.exists(self.commit_path(v))
                                  for v in range(start, version + 1)):
            return None
        try:
            snapshot = self.read_checkpoint(start)
        except (OSError, ValueError, TypeError, KeyError, AttributeError, IntegrityError,
                pa.ArrowException):
            return None
        for v in range(start + 1, version + 1):
            actions, ts = self.read_commit(v)
            snapshot.apply(v, actions, ts)
        return snapshot

    def history(self) -> list[tuple[int, int, dict[str, Any]]]:
        """``(version, timestamp_ms, commitInfo)`` of every commit, oldest first. Commits
        already listed are not read again: only the ones made since."""
        if not self._history:
            versions, _ = self.versions_on_disk()
        else:
            versions, version = [], self._history[-1][0] + 1
            while os.path.exists(self.commit_path(version)):
                versions.append(version)
                version += 1
        for v in versions:
            actions, ts = self.read_commit(v)
            self._history.append((v, ts, commit_info(actions)))
        return list(self._history)

    # -- writing -----------------------------------------------------------------------------
    @staticmethod
    def encode_commit(actions: list[dict[str, Any]]) -> bytes:
        """A commit file's bytes: one JSON action per line."""
        return "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions).encode()

    def try_commit(self, version: int, body: bytes, timestamp_ms: int) -> bool:
        """Write commit ``version`` (``body``: its file's bytes) if no one has; False when
        another writer won the name."""
        os.makedirs(self.log_path, exist_ok=True)
        tmp = os.path.join(self.log_path, f".{version:020d}.{uuid.uuid4().hex}.tmp")
        try:
            with create_exclusively(tmp) as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.utime(tmp, ns=(timestamp_ms * 1_000_000, timestamp_ms * 1_000_000))
            os.link(tmp, self.commit_path(version))
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        fsync_path(self.log_path)
        return True

    def stage_checkpoint(self, snapshot: Snapshot) -> tuple[str, str]:
        """A Parquet checkpoint of ``snapshot``, written under a temporary name (it is placed
        only after its commit, since other engines read a checkpoint without its commit file);
        its path and sha256. Tombstones older than ``TOMBSTONE_RETENTION_MS`` are dropped
        from ``snapshot`` and left out."""
        rows: list[dict[str, Any]] = [
            {"protocol": snapshot.protocol}, {"metaData": _dicts_to_maps(snapshot.metadata)},
        ]
        rows += [{"add": _dicts_to_maps(a)} for a in snapshot.files.values()]
        expired = (snapshot.timestamp or 0) - TOMBSTONE_RETENTION_MS
        snapshot.tombstones = {p: r for p, r in snapshot.tombstones.items()
                               if r.get("deletionTimestamp", expired) > expired}
        # (0 keeps only the removes of the checkpoint's own commit)
        rows += [{"remove": _dicts_to_maps(r)} for r in snapshot.tombstones.values()]
        table = pa.Table.from_pylist(rows, schema=CHECKPOINT_SCHEMA)
        os.makedirs(self.log_path, exist_ok=True)
        staged = os.path.join(self.log_path,
                              f".{snapshot.version:020d}.checkpoint.{uuid.uuid4().hex}.tmp")
        _, digest = write_parquet(table, staged)
        return staged, digest

    def place_checkpoint(self, staged: str, version: int, rows: int) -> None:
        """Give a staged checkpoint its name, then point ``_last_checkpoint`` at it."""
        os.replace(staged, self.checkpoint_path(version))
        fsync_path(self.log_path)
        pointer = json.dumps({"version": version, "size": rows}).encode()
        replace_file(os.path.join(self.log_path, "_last_checkpoint"), pointer)


_MAP_FIELDS = {"partitionValues", "tags", "options", "configuration"}


def _dicts_to_maps(action: dict[str, Any] | None) -> dict[str, Any] | None:
    """Delta's string maps as Arrow map values (lists of pairs) for the checkpoint."""
    if action is None:
        return None
    out = {}
    for key, value in action.items():
        if key in _MAP_FIELDS and isinstance(value, dict):
            out[key] = list(value.items())
        elif isinstance(value, dict):
            out[key] = _dicts_to_maps(value)
        else:
            out[key] = value
    return out


def _maps_to_dicts(action: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in action.items():
        if key in _MAP_FIELDS and isinstance(value, list):
            out[key] = dict(value)
        elif isinstance(value, dict):
            out[key] = _maps_to_dicts(value)
        elif value is not None:
            out[key] = value
    return out


def commit_info(actions: list[dict[str, Any]]) -> dict[str, Any]:
    """A commit's ``commitInfo`` action (empty when it has none)."""
    return next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
