"""``lake.vacuum()``: delete the data files that only old versions need.

For each table, the *horizon* is the first commit that was still the latest at ``now -
retain``: it and every later commit stay whole, and so does every commit a training dataset
was made from (``recreate`` needs it). Any other file an earlier commit added is deleted. So
are files no commit names (left by a writer killed before its commit) and temporary files,
once older than ``LEFTOVER_GRACE``, since a writer of another engine may still be at work.

The horizon is recorded in the audit log (a ``"vacuum"`` event) before anything is deleted,
so that ``verify()`` accepts the missing files and a read of an earlier commit says it was
vacuumed. Readers in other processes keep what they read for ``retain``: a snapshot taken
less than ``retain`` ago is never vacuumed under them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import warnings
from dataclasses import dataclass, field

from lakecore.base.refs import group_ref
from lakecore.base.times import now_millis
from lakecore.catalog.specs import FeatureGroupSpec
from lakecore.errors import IntegrityError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.governance.audit import AuditLog
from lakecore.offline.delta_log import LOG_DIR

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
    return result


def _vacuum_table(ctx: LakeContext, audit: AuditLog, spec: FeatureGroupSpec, cutoff_ms: int,
                  pinned: set[int], result: VacuumResult) -> None:
    table = ctx.offline_table(spec)
    ref = group_ref(spec.name, spec.version)
    latest = table.snapshot().version
    if latest < 0:
        return
    added = []                          # (timestamp, paths added) of every commit
    for version in range(latest + 1):
        actions, timestamp = table.log.read_commit(version)
        added.append((timestamp, {a["add"]["path"] for a in actions if "add" in a}))
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
    result.horizons[ref] = horizon
    if not doomed and not leftovers and horizon == audit.vacuum_horizon(ref):
        return
    audit.append("vacuum", ref, None, horizon=horizon)      # before anything is deleted
    for path in [os.path.join(table.location, p) for p in doomed] + leftovers:
        try:
            size = os.lstat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            continue
        result.files_deleted += 1
        result.bytes_freed += size


def _leftovers(location: str, referenced: set[str]) -> list[str]:
    """Files in a table folder (and temporary files in its log) that no commit names, older
    than the grace period."""
    limit = time.time() - LEFTOVER_GRACE.total_seconds()
    found = []
    for folder, is_log in ((location, False), (os.path.join(location, LOG_DIR), True)):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            name = entry.name
            ours = name.endswith(".tmp") if is_log else (
                name.endswith(".tmp") or (name.endswith(".parquet") and name not in referenced))
            if ours and entry.stat(follow_symlinks=False).st_mtime < limit:
                found.append(entry.path)
    return found
