"""What the catalog and the tables should be, from the audit log: whether the catalog is the one
lakecore last wrote, which commit was announced and not made, the ``abort`` events a writable
open appends for them, and the check of the log against an anchor kept outside the lake.
"""

from __future__ import annotations

import contextlib

from lakecore.base.refs import group_ref
from lakecore.catalog.specs import FeatureGroupSpec
from lakecore.errors import IntegrityError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.governance.audit import AuditLog
from lakecore.governance.audit_events import AuditEvent


def catalog_status(ctx: LakeContext, audit: AuditLog) -> tuple[str | None, AuditEvent | None]:
    """Whether the catalog is the one lakecore last wrote: ``(None, None)`` when it is;
    ``(None, event)`` when it is still the one before ``event``, the log's last, whose change
    never landed (a writer between the two, or one killed there); else ``(problem, None)``."""
    found = ctx.catalog.digest()
    events = audit.catalog_events()
    stamped = ctx.catalog.state().audit_seq
    head = audit.last_event()
    if not events:
        if stamped is None:
            return None, None           # a lake made before catalogs were recorded
        return (f"the catalog was written with audit event {stamped}, and the audit log "
                f"records no catalog change (it lost its tail, or was deleted)"), None
    last = events[-1]
    if found == last.catalog and stamped == last.seq:
        return None, None
    if head is not None and head.seq == last.seq and stamped != last.seq:
        before = events[-2] if len(events) > 1 else None
        if before is None and stamped is None or before is not None and (
                found, stamped) == (before.catalog, before.seq):
            return None, last
    if stamped is not None and (head is None or stamped > head.seq):
        return (f"the catalog was written with audit event {stamped}, and the audit log ends "
                f"at event {head.seq if head else 0} (it lost its tail, or was deleted)"), None
    return (f"the catalog has sha256 {found}, and audit event {last.seq} ({last.op} "
            f"{last.target}) recorded {last.catalog}: it was changed outside lakecore"), None


def pending_commit(ctx: LakeContext, audit: AuditLog, spec: FeatureGroupSpec
                   ) -> AuditEvent | None:
    """The event of a commit that was announced and not written (yet): an event for the
    table's next version, which has no commit file."""
    last = ctx.offline_table(spec).log.last_version_on_disk()
    return audit.recorded(group_ref(spec.name, spec.version, last + 1))


def catch_up(ctx: LakeContext, audit: AuditLog) -> None:
    """On a writable open, record the changes a killed writer announced and never made (an
    ``abort`` event each). A catalog lakecore did not write is refused: the next change would
    otherwise make it look recorded."""
    with ctx.lock.hold():
        audit.check_readable()          # a damaged log is an IntegrityError here
        problem, unfinished = catalog_status(ctx, audit)
        if problem:
            raise IntegrityError(f"{ctx.catalog.path}: {problem}; restore it (verify() reports "
                                 f"it), or open the lake read-only")
        if unfinished is not None:
            audit.abort(unfinished)
        for spec in ctx.catalog.state().feature_groups:
            pending = pending_commit(ctx, audit, spec)
            if pending is not None:
                audit.abort(pending)
        if audit.index_due():
            with contextlib.suppress(OSError):  # the next writer makes it
                audit.write_index()


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
