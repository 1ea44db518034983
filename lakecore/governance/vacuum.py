"""``lake.vacuum()``: delete the data files that only old versions need.

For each table, the *horizon* is the first commit that was still the latest at ``now -
retain``: it and every later commit stay whole, and so does every commit a training dataset
was made from (``recreate`` needs it). Any other file an earlier commit added is deleted. So
are files no commit names (left by a writer killed before its commit) and temporary files,
once older than ``LEFTOVER_GRACE``, since a writer of another engine may still be at work.
Beyond the tables, the folders of training datasets no catalog entry owns (a build killed
before its catalog change) and temporary files in the lake's own folder go after the same
grace period; no event recorded them, so none records their removal. Kept statistics
summaries go with their data file (they are a cache: nothing records them).

The horizon is recorded in the audit log (a ``"vacuum"`` event) before anything is deleted,
so that ``verify()`` accepts the missing files and a read of an earlier commit says it was
vacuumed. Readers in other processes keep what they read for ``retain``: a snapshot taken
less than ``retain`` ago is never vacuumed under them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
import warnings
from dataclasses import dataclass, field

from lakecore.base.files import remove_tree
from lakecore.base.refs import group_ref
from lakecore.base.times import now_millis
from lakecore.catalog.specs import FeatureGroupSpec
from lakecore.errors import IntegrityError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.features.validation import REPORTS_DIR
from lakecore.governance.audit import AuditLog
from lakecore.offline.delta_log import LOG_DIR
from lakecore.offline.table import file_digest
from lakecore.quality.file_statistics import unused_summaries
from lakecore.training.datasets import discard_folder, folder_of

LEFTOVER_GRACE = dt.timedelta(hours=1)


@dataclass
class VacuumResult:
    """What ``Lake.vacuum`` did.

    Attributes
    ----------
    files_deleted : int
    bytes_freed : int
    horizons : dict of str to int
        By table (``fg:NAME@VERSION``): the first commit whose files were all kept.
    """

    files_deleted: int = 0
    bytes_freed: int = 0
    horizons: dict[str, int] = field(default_factory=dict)


def check_retain(retain: object) -> dt.timedelta:
    if not isinstance(retain, dt.timedelta) or retain < dt.timedelta(0):
        raise ValidationError(f"retain: expected a datetime.timedelta of 0 or more, got "
                              f"{retain!r}")
    return retain


def vacuum(ctx: LakeContext, audit: AuditLog, retain: dt.timedelta) -> VacuumResult:
    """Vacuum every table (the caller holds the writer lock)."""
    result = VacuumResult()
    cutoff_ms = now_millis() - int(retain.total_seconds() * 1000)
    state = ctx.catalog.state()
    for spec in state.feature_groups:
        pinned = {s.commit for d in state.training_datasets for s in d.sources
                  if (s.group, s.version) == (spec.name, spec.version) and s.commit >= 0}
        try:
            _vacuum_table(ctx, audit, spec, cutoff_ms, pinned, result)
        except IntegrityError as exc:   # a table lakecore does not read: left alone
            warnings.warn(f"feature group {spec.name!r} version {spec.version} was not "
                          f"vacuumed: {exc}", stacklevel=4)
    owned = {folder_of(d.view, d.view_version, d.version) for d in state.training_datasets}
    for folder in _dataset_leftovers(ctx.path, owned):
        files, size = _tree_size(os.path.join(ctx.path, folder))
        discard_folder(ctx.path, folder)
        result.files_deleted += files
        result.bytes_freed += size
    # temporary files of interrupted writes: in the lake's folder, and in datasets' folders
    # (a spine staged by a forget killed before it was recorded)
    temporary = _temporary_files(ctx.path)
    for folder in sorted(owned):
        temporary += _temporary_files(os.path.join(ctx.path, folder))
    for path in temporary:
        with contextlib.suppress(FileNotFoundError):
            size = os.lstat(path).st_size
            os.unlink(path)
            result.files_deleted += 1
            result.bytes_freed += size
    return result


def _dataset_leftovers(lake_path: str, owned: set[str]) -> list[str]:
    """The dataset folders (``training_data/VIEW/vN/tdM``, relative) that no catalog entry
    owns, with nothing in them newer than the grace period. Links are never followed."""
    limit = time.time() - LEFTOVER_GRACE.total_seconds()
    found = []
    root = os.path.join(lake_path, "training_data")
    for view in _folders(root):
        for view_version in _folders(os.path.join(root, view)):
            for dataset in _folders(os.path.join(root, view, view_version)):
                folder = os.path.join("training_data", view, view_version, dataset)
                if (view_version.startswith("v") and dataset.startswith("td")
                        and folder not in owned
                        and _newest(os.path.join(lake_path, folder)) < limit):
                    found.append(folder)
    return found


def _folders(path: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _newest(folder: str) -> float:
    """The latest mtime of the folder and anything in it (links not followed)."""
    newest = os.lstat(folder).st_mtime
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            newest = max(newest, os.lstat(os.path.join(parent, name)).st_mtime)
    return newest


def _tree_size(folder: str) -> tuple[int, int]:
    files = size = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(parent, name)).st_size
    return files, size


def _temporary_files(folder: str) -> list[str]:
    """Temporary files of interrupted writes in ``folder``, older than the grace period."""
    limit = time.time() - LEFTOVER_GRACE.total_seconds()
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [e.path for e in entries
            if e.name.startswith(".") and e.name.endswith(".tmp")
            and e.is_file(follow_symlinks=False) and e.stat(follow_symlinks=False).st_mtime < limit]


def _vacuum_table(ctx: LakeContext, audit: AuditLog, spec: FeatureGroupSpec, cutoff_ms: int,
                  pinned: set[int], result: VacuumResult) -> None:
    table = ctx.offline_table(spec)
    ref = group_ref(spec.name, spec.version)
    latest = table.snapshot().version
    if latest < 0:
        return
    added = []                          # (timestamp, paths added) of every commit
    digest_of: dict[str, str | None] = {}
    for version in range(latest + 1):
        actions, timestamp = table.log.read_commit(version)
        added.append((timestamp, {a["add"]["path"] for a in actions if "add" in a}))
        digest_of.update((a["add"]["path"], file_digest(a["add"])) for a in actions if "add" in a)
    # the first commit still the latest at the cutoff: the one before the first made after it
    horizon = next((max(v - 1, 0) for v, (ts, _) in enumerate(added) if ts >= cutoff_ms),
                   latest)
    horizon = max(horizon, audit.vacuum_horizon(ref))
    referenced = set().union(*(paths for _, paths in added))
    needed = set().union(*(paths for _, paths in added[horizon + 1:]))
    for version in {horizon, *pinned}:
        if version <= latest:
            needed |= set(table.snapshot(version).files)
    # lakecore names data files plainly, in the table's folder: nothing else is ever deleted
    doomed = [p for p in referenced - needed
              if os.path.basename(p) == p and os.path.lexists(os.path.join(table.location, p))]
    leftovers = _leftovers(table.location, referenced)
    kept_digests = {digest_of[p] for p in referenced - set(doomed)}
    leftovers += unused_summaries(table, kept_digests, time.time() - LEFTOVER_GRACE.total_seconds())
    result.horizons[ref] = horizon
    if not doomed and not leftovers and horizon == audit.vacuum_horizon(ref):
        return
    audit.append("vacuum", ref, None, horizon=horizon)      # before anything is deleted
    for path in [os.path.join(table.location, p) for p in doomed] + leftovers:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                files, size = _tree_size(path)
                remove_tree(path)
            else:
                files, size = 1, os.lstat(path).st_size
                os.unlink(path)
        except FileNotFoundError:
            continue
        result.files_deleted += files
        result.bytes_freed += size


def _leftovers(location: str, referenced: set[str]) -> list[str]:
    """Files in a table folder that no commit names, and temporary files in it, its log and
    its reports' folder, older than the grace period; and spilled key-hash folders
    (``base.spill``) of streamed inserts killed part way."""
    limit = time.time() - LEFTOVER_GRACE.total_seconds()
    found = []
    for folder, is_log in ((location, False), (os.path.join(location, LOG_DIR), True),
                           (os.path.join(location, REPORTS_DIR), True)):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if (not is_log and entry.name.startswith(".spill-") and entry.name.endswith(".tmp")
                    and entry.is_dir(follow_symlinks=False)
                    and _newest(entry.path) < limit):
                found.append(entry.path)        # key hashes a killed streamed insert spilled
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            name = entry.name
            ours = name.endswith(".tmp") if is_log else (
                name.endswith(".tmp") or (name.endswith(".parquet") and name not in referenced))
            if ours and entry.stat(follow_symlinks=False).st_mtime < limit:
                found.append(entry.path)
    return found
