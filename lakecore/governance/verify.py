"""``lake.verify()``: prove the lake is what its hashes say.

Re-hashes every data file referenced by any commit still in a table's history, every
training dataset file and stored spine, and every model artifact file; checks every commit
file and checkpoint against the audit event that recorded it (a commit no event records was
not written by lakecore); recomputes every commit hash (replaying each Delta log from commit
0), every dataset and model hash; checks the audit log's chain, the catalog against the event
that recorded it, and that every audited commit, dataset and model still exists with the
hash the log recorded; and compares every online group with its latest offline rows.
Problems are reported in words: which object, which file, expected against found. Files no
commit references (left by a crashed writer) are not problems, nor is a change announced in
the log whose writer has not made it (yet).

``fast=True`` reuses a file's digest from the previous verify when its (inode, mtime, size)
are unchanged, starts each table's replay at the commit the previous clean verify reached
(found again through recorded checkpoints, its hash compared, the log probed rather than
listed), and checks the audit chain from the event the previous clean verify ended with (when
the log still holds that line where it was; else the whole chain): its cost follows the live
files and what was written since. It trusts that nothing rewrote a file in place while keeping
those three, and that commits and events before those points were not edited since.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pyarrow as pa

from lakecore.base.files import open_own, replace_file
from lakecore.base.hashing import digest_file
from lakecore.base.refs import (
    dataset_ref,
    group_folder,
    group_ref,
    model_ref,
    parse_ref,
)
from lakecore.catalog.specs import FeatureGroupSpec
from lakecore.errors import LakeError
from lakecore.features.context import LakeContext
from lakecore.features.validation import REPORTS_DIR
from lakecore.governance.audit import AuditLog, index_digest
from lakecore.governance.audit_events import decode_events, live_events
from lakecore.governance.forget import JOURNAL as FORGET_JOURNAL
from lakecore.governance.recovery import catalog_status, pending_commit
from lakecore.models.registry import model_hash
from lakecore.offline.delta_log import CHECKPOINT_INTERVAL, Snapshot, commit_info
from lakecore.offline.table import (
    HASH_SCHEME,
    SHA_TAG,
    OfflineTable,
    change_digest,
    commit_digest,
    file_digest,
    table_schema,
)
from lakecore.online.codec import decode_batch, encode_values
from lakecore.online.layout import NO_TTL, Layout
from lakecore.online.store import prepare
from lakecore.quality.file_statistics import kept_problems
from lakecore.training.datasets import content_hash

CACHE_FILE = ".verify-cache.json"


@dataclass
class Report:
    """What ``Lake.verify`` found: ``ok`` when ``problems`` is empty.

    Attributes
    ----------
    ok : bool
    problems : list of str
        Each problem in words, naming the file or object.
    files_checked : int

    Examples
    --------
    >>> import tempfile, lakecore
    >>> with lakecore.open(tempfile.mkdtemp()) as lake:
    ...     report = lake.verify()
    >>> report.ok, report.problems
    (True, [])
    """

    problems: list[str] = field(default_factory=list)
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def __repr__(self) -> str:
        return f"Report(ok={self.ok}, problems={len(self.problems)}, files={self.files_checked})"


class _Digests:
    """File digests, optionally cached by (inode, mtime, size); and, per table, the commit a
    clean verify reached (``fast`` starts there)."""

    def __init__(self, lake: LakeContext, fast: bool):
        self.path = os.path.join(lake.path, CACHE_FILE)
        self.fast = fast
        self.cache: dict[str, list] = {}
        self.markers: dict[str, list] = {}      # group ref -> [commit, its hash]
        self.audit: list | None = None          # [audit.marker(), the index's sha256]
        if fast and os.path.lexists(self.path):
            try:
                with open_own(self.path) as f:
                    stored = json.load(f)
                self.cache, self.markers = dict(stored["files"]), dict(stored["tables"])
                self.audit = stored.get("audit")
                if not (isinstance(self.audit, list) and len(self.audit) == 2):
                    self.audit = None
            except (OSError, ValueError, KeyError, TypeError, AttributeError, LakeError):
                self.cache, self.markers, self.audit = {}, {}, None
        self.seen: dict[str, list] = {}
        self.reached: dict[str, list] = {}
        self.audit_reached: list | None = None

    def __call__(self, path: str) -> str:
        st = os.stat(path)
        identity = [st.st_ino, st.st_mtime_ns, st.st_size]
        cached = self.cache.get(path)
        if self.fast and cached is not None and cached[:3] == identity:
            digest = cached[3]
        else:
            digest = digest_file(path)
        self.seen[path] = identity + [digest]
        return digest

    def save(self, writable: bool) -> None:
        if not writable:
            return
        replace_file(self.path, json.dumps({"files": self.seen, "tables": self.reached,
                                            "audit": self.audit_reached}).encode())


def verify(lake: LakeContext, audit: AuditLog, *, fast: bool = False) -> Report:
    report = Report()
    if os.path.lexists(os.path.join(lake.path, FORGET_JOURNAL)):
        report.problems.append(f"{FORGET_JOURNAL}: a forget was interrupted; a writable open "
                               f"of the lake finishes it (or removes what it staged)")
    digests = _Digests(lake, fast)
    commits, trusted = _verify_tables(lake, report, digests)
    datasets = _verify_datasets(lake, report, digests)
    models = _verify_models(lake, report, digests, datasets)
    _verify_online(lake, report)
    _verify_audit(lake, audit, report, commits, datasets, models, trusted, digests)
    digests.save(not lake.readonly)
    return report


def _check_file(report: Report, digests: _Digests, path: str, expected: str | None,
                what: str) -> None:
    if os.path.islink(path):
        report.problems.append(f"{what}: file {path} is a link; lakecore never follows it")
        return
    if not os.path.exists(path):
        report.problems.append(f"{what}: file {path} is missing")
        return
    report.files_checked += 1
    if expected is None:
        return
    found = digests(path)
    if found != expected:
        report.problems.append(f"{what}: file {path} has sha256 {found}, expected {expected}")


def _verify_tables(lake: LakeContext, report: Report, digests: _Digests
                   ) -> tuple[dict[str, str | None], dict[str, int]]:
    """Replay every table's log, checking each commit file against its audit event. Returns
    the hash of every commit replayed, by ref, and by table the commit up to which the
    previous verify is trusted (``fast``). Linear in the commits and the files they add;
    ``fast`` starts from the commit a previous clean verify reached."""
    hashes: dict[str, str | None] = {}
    trusted: dict[str, int] = {}
    for spec in lake.catalog.state().feature_groups:
        table = lake.offline_table(spec)
        ref = group_ref(spec.name, spec.version)
        problems_before = len(report.problems)
        if spec.location != group_folder(spec.name, spec.version):
            report.problems.append(f"{ref}: the catalog gives its location as "
                                   f"{spec.location!r}; lakecore keeps it at "
                                   f"{group_folder(spec.name, spec.version)!r} and reads only "
                                   f"that")
        marker = digests.markers.get(ref) if digests.fast else None
        versions, checkpoints = _log_files(table, marker[0] if marker else None)
        if not versions:
            continue
        expected_versions = list(range(versions[-1] + 1))
        missing = sorted(set(expected_versions) - set(versions))
        if missing:
            report.problems.append(f"{ref}: commit file(s) {missing} of the Delta log are "
                                   f"missing (commits 0..{versions[-1]} should exist)")
        snapshot = Snapshot()
        referenced: dict[str, dict] = {}
        # files a vacuum may have deleted: those only commits before its horizon needed
        horizon = lake.audit.vacuum_horizon(ref)
        pinned = {s.commit for d in lake.catalog.state().training_datasets for s in d.sources
                  if (s.group, s.version) == (spec.name, spec.version)}
        needed: set[str] = set()
        start = 0
        if marker and not missing and 0 <= marker[0] <= versions[-1]:
            try:
                base = table.log.snapshot(marker[0])   # through recorded checkpoints only
            except (LakeError, OSError, ValueError):
                base = None
            if base is not None and base.commit_hash == marker[1]:
                snapshot, start = base.copy(), marker[0] + 1
                referenced.update(base.files)
                needed.update(base.files)
                hashes[f"{ref}#{marker[0]}"] = base.commit_hash
                trusted[ref] = marker[0]
        usable = set(table.log.usable_checkpoints(checkpoints, versions, versions[-1]))
        pointer_problem = _pointer_problem(table.log.log_path, usable)
        if pointer_problem:
            report.problems.append(f"{ref}: _last_checkpoint {pointer_problem}")
        for version in sorted(set(checkpoints) - usable):
            if version < start:
                continue
            report.problems.append(f"{ref}: checkpoint {version} is not lakecore's (lakecore "
                                   f"writes one every 10 commits, beside its commit file); it "
                                   f"is never read")
        for version in expected_versions[start:]:
            if version in missing:
                break
            try:
                raw, actions, timestamp = table.log.load_commit(version)
            except (OSError, ValueError) as exc:
                report.problems.append(f"{ref}#{version}: commit file unreadable ({exc})")
                break
            problem = table.log.commit_problem(version, raw, actions)
            if problem:
                report.problems.append(f"{ref}#{version}: {problem}")
            parent = snapshot.commit_hash
            snapshot.apply(version, actions, timestamp)
            hashes[f"{ref}#{version}"] = snapshot.commit_hash
            for action in actions:
                if "add" in action:
                    referenced[action["add"]["path"]] = action["add"]
                    if version > horizon:
                        needed.add(action["add"]["path"])
            if version == horizon or version in pinned:
                needed.update(snapshot.files)
            if version in usable:
                problem = _checkpoint_problem(table.log, version, snapshot,
                                              replay=version == max(usable))
                if problem:
                    report.problems.append(f"{ref}: checkpoint {version} {problem}")
            problem = _hash_problem(actions, parent, snapshot,
                                    group_folder(spec.name, spec.version),
                                    lake.audit.rewrites().data_files)
            if problem:
                report.problems.append(f"{ref}#{version}: {problem}")
        for path, add in sorted(referenced.items()):
            full = os.path.join(table.location, path)
            if horizon >= 0 and path not in needed and not os.path.lexists(full):
                continue                # vacuumed
            _check_file(report, digests, full, file_digest(add), f"{ref} data file")
        report.problems.extend(f"{ref}: {problem}" for problem in
                               kept_problems(table, referenced, recompute=not digests.fast))
        if len(report.problems) == problems_before and snapshot.version >= 0:
            digests.reached[ref] = [snapshot.version, snapshot.commit_hash]
    return hashes, trusted


def _hash_problem(actions: list[dict], parent: str | None, snapshot: Snapshot,
                  folder: str, rewritten: dict[str, tuple[int, str, str]]) -> str | None:
    """Whether a lakecore commit's hash and parent hash match its content; a data file a
    ``forget`` rewrote counts as it was when the hash was made (``rewritten``: by lake path,
    its size and sha256 then and its sha256 now; ``folder``: the table's, in the lake)."""
    ours = commit_info(actions).get("lakecore")
    if not ours or snapshot.metadata is None:
        return None
    schema = snapshot.metadata["schemaString"]

    def as_made(add: dict) -> dict:
        before = rewritten.get(os.path.join(folder, add["path"]))
        if before is None or before[2] != file_digest(add):
            return add
        return {**add, "size": before[0], "tags": {**(add.get("tags") or {}),
                                                  SHA_TAG: before[1]}}
    if ours.get("hash_scheme") == HASH_SCHEME:
        expected = change_digest(parent, schema,
                                 [as_made(a["add"]) for a in actions if "add" in a],
                                 [a["remove"] for a in actions if "remove" in a],
                                 ours.get("operation"))
    else:
        expected = commit_digest(parent, schema, [as_made(a) for a in snapshot.files.values()],
                                 ours.get("operation"))
    if expected != ours.get("hash"):
        return f"commit hash {ours.get('hash')} does not match its content (expected {expected})"
    if ours.get("parent_hash") != parent:
        return f"parent hash {ours.get('parent_hash')} is not the previous commit's hash {parent}"
    return None


def _log_files(table: OfflineTable, trusted: int | None) -> tuple[list[int], list[int]]:
    """The versions of a table's commit files and checkpoints. With ``trusted`` (the commit
    a previous clean verify reached, ``fast``) the log is not listed: the commits up to it are
    taken as there, and files from the checkpoint before it on are found by probing."""
    log = table.log
    if trusted is None or trusted < 0 or not os.path.exists(log.commit_path(trusted)):
        return log.versions_on_disk()
    last = trusted
    while os.path.exists(log.commit_path(last + 1)):
        last += 1
    if os.path.exists(log.commit_path(last + 2)):
        return log.versions_on_disk()       # a gap: list, and report what is missing
    first = trusted - trusted % CHECKPOINT_INTERVAL
    candidates = set(range(first, last + 1))
    pointed, _ = _pointed(log.log_path)
    if isinstance(pointed, int) and 0 < pointed <= last:
        candidates.add(pointed)
    checkpoints = sorted(v for v in candidates if os.path.lexists(log.checkpoint_path(v)))
    return list(range(last + 1)), checkpoints


def _pointed(log_path: str) -> tuple[object, str | None]:
    """The version ``_last_checkpoint`` names (None: there is none), or why it cannot be
    read."""
    path = os.path.join(log_path, "_last_checkpoint")
    if not os.path.lexists(path):
        return None, None
    try:
        with open_own(path) as f:
            return json.loads(f.read()).get("version"), None
    except (OSError, ValueError, AttributeError) as exc:   # IntegrityError (a link) included
        return None, f"does not read ({exc})"


def _pointer_problem(log_path: str, usable: set[int]) -> str | None:
    """What is wrong with ``_last_checkpoint`` (other engines start from it). It may be missing
    or name an earlier checkpoint of lakecore's: a writer killed between a checkpoint and its
    pointer leaves either. Anything else was not written by lakecore."""
    pointed, unreadable = _pointed(log_path)
    if unreadable or pointed is None:
        return unreadable
    if pointed not in usable:
        return f"points at checkpoint {pointed}, which lakecore did not write"
    return None


def _checkpoint_problem(log, version: int, replayed: Snapshot, replay: bool) -> str | None:
    """How checkpoint ``version`` differs from the one lakecore recorded (and, with
    ``replay``, from replaying the commit files), or None."""
    if os.path.islink(log.checkpoint_path(version)):
        return "is a link; lakecore never follows it"
    record = log.recorded(version)
    if record is not None and (record.log_file is not None or record.checkpoint is not None):
        found = digest_file(log.checkpoint_path(version))
        if found != record.checkpoint:
            return (f"has sha256 {found}, its commit's audit event recorded "
                    f"{record.checkpoint}: it is not the checkpoint lakecore wrote, and is never "
                    f"read")
    if not replay:
        return None
    try:
        stored = log.read_checkpoint(version, checked=False)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, pa.ArrowException) as exc:
        return f"does not read ({exc})"

    def files(snapshot: Snapshot) -> dict:
        return {path: (add.get("size"), file_digest(add)) for path, add in snapshot.files.items()}
    if files(stored) != files(replayed):
        return "lists other data files than the commits it stands for"
    if (stored.metadata or {}).get("schemaString") != (replayed.metadata or {}).get(
            "schemaString"):
        return "holds another schema than the commits it stands for"
    return None


def _verify_online(lake: LakeContext, report: Report) -> None:
    """Every online group holds exactly the latest offline row of every key (event time and
    features byte for byte; the commit that wrote it, which compaction does not keep, only
    within the watermark), and its watermark is the latest offline commit."""
    for spec in lake.catalog.state().feature_groups:
        if not spec.online:
            continue
        try:
            _compare_online(lake, report, spec)
        except (LakeError, OSError, ValueError, pa.ArrowException) as exc:
            report.problems.append(f"{group_ref(spec.name, spec.version)}: the online store "
                                   f"cannot be compared with the offline table ({exc})")


def _only_compactions(table: OfflineTable, watermark: int, snapshot: Snapshot) -> bool:
    """Whether every commit after the online watermark is a compaction (which changes no row,
    so the online store does not follow it)."""
    if not 0 <= watermark < snapshot.version:
        return False
    return all((commit_info(table.log.read_commit(v)[0]).get("lakecore") or {}).get("operation")
               == "compact" for v in range(watermark + 1, snapshot.version + 1))


def _compare_online(lake: LakeContext, report: Report, spec: FeatureGroupSpec) -> None:
    """One online group against its latest offline rows."""
    store = lake.online_store
    ref = group_ref(spec.name, spec.version)
    table = lake.offline_table(spec)
    snapshot = table.snapshot()
    schema = table_schema(snapshot, spec.schema)
    keys, values, watermark = store.scan(spec.name, spec.version)
    if schema is None or snapshot.version < 0:
        if keys or watermark >= 0:
            report.problems.append(f"{ref}: the online store holds {len(keys)} row(s) at "
                                   f"commit {watermark}; the table has no commit")
        return
    if watermark != snapshot.version and not _only_compactions(table, watermark, snapshot):
        report.problems.append(f"{ref}: the online store is at commit {watermark}, the "
                               f"offline table at commit {snapshot.version}")
    layout = Layout.of(schema, spec.primary_key, spec.event_time)
    expected = prepare(table.read(snapshot, schema, None), layout)
    wanted = dict(zip(expected.keys.tolist(),
                      encode_values(layout, expected.in_key_order(), 0)))
    found = dict(zip(keys, values))
    missing = [k for k in wanted if k not in found]
    extra = [k for k in found if k not in wanted]
    changed = [k for k, v in found.items()
               if k in wanted and (v[:8] + v[16:] != wanted[k][:8] + wanted[k][16:]
                                   or not 0 <= _commit_of(v) <= watermark)]
    for what, which in (("has no row for", missing), ("holds a row no offline row has for",
                                                      extra),
                        ("holds another value than the offline table for", changed)):
        if which:
            shown = ", ".join(_key_text(layout, k) for k in which[:3])
            report.problems.append(f"{ref}: the online store {what} {len(which)} key(s): "
                                   f"{shown}{', ...' if len(which) > 3 else ''}")
    report.files_checked += 1


def _commit_of(value: bytes) -> int:
    """The commit that wrote a stored value (a later one is impossible, and would keep newer
    rows of the same event time out)."""
    return int.from_bytes(value[8:16], "little", signed=True)


def _key_text(layout: Layout, key: bytes) -> str:
    """A stored key as its column values, for a problem's text."""
    row = decode_batch(layout, [key], [None], NO_TTL).to_pylist()[0]
    return "(" + ", ".join(f"{c}={row[c]!r}" for c in layout.primary_key) + ")"


def _verify_datasets(lake: LakeContext, report: Report, digests: _Digests) -> dict[str, str]:
    hashes = {}
    for spec in lake.catalog.state().training_datasets:
        ref = dataset_ref(spec.view, spec.view_version, spec.version)
        hashes[ref] = spec.hash
        files = [f for parts in spec.files.values() for f in parts]
        if spec.spine is not None:
            files.append(spec.spine)
        for f in files:
            _check_file(report, digests, os.path.join(lake.path, f.path), f.sha256,
                        f"{ref} training data")
        expected = content_hash(spec)
        if expected != spec.hash:
            report.problems.append(f"{ref}: hash {spec.hash} does not match its manifest "
                                   f"(expected {expected})")
    return hashes


def _verify_models(lake: LakeContext, report: Report, digests: _Digests,
                   datasets: dict[str, str]) -> dict[str, str]:
    hashes = {}
    for spec in lake.catalog.state().models:
        ref = model_ref(spec.name, spec.version)
        hashes[ref] = spec.hash
        for f in spec.files:
            _check_file(report, digests, os.path.join(lake.path, f.path), f.sha256,
                        f"{ref} artifact")
        expected = model_hash(spec)
        if expected != spec.hash:
            report.problems.append(f"{ref}: hash {spec.hash} does not match its files, params "
                                   f"and metrics (expected {expected})")
        if spec.training_data is not None:
            view, view_version, version, td_hash = spec.training_data
            td_ref = dataset_ref(view, view_version, version)
            if datasets.get(td_ref) != td_hash and td_hash not in \
                    lake.audit.rewrites().earlier.get(td_ref, ()):
                report.problems.append(f"{ref}: its training data {td_ref} has hash "
                                       f"{datasets.get(td_ref)}, the model records {td_hash}")
    return hashes


def _verify_audit(lake: LakeContext, audit: AuditLog, report: Report, commits: dict, datasets: dict,
                  models: dict, trusted: dict[str, int], digests: _Digests) -> None:
    """The chain; the index; the catalog against the event that recorded it; every live
    event's object still there with the hash it recorded (the commit files were checked with
    their tables). ``fast``: only the events after the end of the log a previous clean verify
    reached, while the log still holds its last line there."""
    problems_before = len(report.problems)
    end, index = audit.marker(), index_digest(lake.path)
    tail = audit.lines_after(digests.audit[0]) if digests.fast and digests.audit else None
    if tail is None:
        report.problems.extend(audit.check_chain())
        events = audit.events(strict=False)
    else:
        last, lines = tail
        previous = decode_events([last])
        report.problems.extend(audit.check_chain(lines, previous[0] if previous else None))
        events = decode_events(lines)
    if tail is None or index != digests.audit[1]:
        report.problems.extend(audit.index_problems())
    problem, _ = catalog_status(lake, audit)
    if problem:
        report.problems.append(f"catalog: {problem}")
    # a commit announced and not (yet) made: its writer is at work, or was killed there
    pending = {event.target for spec in lake.catalog.state().feature_groups
               if (event := pending_commit(lake, audit, spec)) is not None}
    rewrites = audit.rewrites()
    # events of deleted objects (and deletions themselves) describe what no longer exists
    for event in live_events(events):
        kind = event.target.split(":", 1)[0]
        if kind == "fg" and "#" in event.target:
            table, _, version = event.target.partition("#")
            if version.isdigit() and int(version) < trusted.get(table, -1):
                continue                # checked by a previous verify (fast)
            known = commits
            if event.target in commits:     # its validation report, when it has one
                for path, digest in (event.files or {}).items():
                    if f"/{REPORTS_DIR}/" in f"/{path}":
                        _check_file(report, digests, os.path.join(lake.path, path),
                                    rewrites.files.get(path, digest),
                                    f"{event.target} validation report")
        elif kind == "td":
            known = datasets
        elif kind == "model":
            known = models
        else:
            continue
        try:
            parse_ref(event.target)
        except Exception:               # noqa: BLE001 - any malformed target is a problem
            report.problems.append(f"audit event {event.seq}: malformed target {event.target!r}")
            continue
        if event.target not in known:
            if event.target not in pending:
                report.problems.append(f"audit event {event.seq} ({event.op}): {event.target} "
                                       f"no longer exists")
        elif event.object_hash is not None and known[event.target] != rewrites.hashes.get(
                event.target, event.object_hash):
            report.problems.append(f"audit event {event.seq} ({event.op}): {event.target} has "
                                   f"hash {known[event.target]}, the log recorded "
                                   f"{rewrites.hashes.get(event.target, event.object_hash)}")
    if len(report.problems) == problems_before:
        digests.audit_reached = [end, index]    # where the next fast verify starts
