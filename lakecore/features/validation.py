"""Expectations on insert, as a feature group runs them: judging an insert's rows before
anything is written, and keeping each written insert's report beside its table.

A report is stored as ``<table>/_validation/<commit>.json`` (other engines skip folders
starting with "_") before the commit's audit event, which records its sha256: ``verify()``
and ``stored_reports`` check it against that record, and a change that fails removes it
with the change's other files.
"""

from __future__ import annotations

import os
import warnings

import msgspec
import pyarrow as pa

from lakecore.base.files import (
    check_own_folders,
    create_exclusively,
    fsync_path,
    open_own,
)
from lakecore.base.hashing import digest_bytes
from lakecore.base.parquet import read_parquet
from lakecore.base.refs import group_ref
from lakecore.catalog.specs import FeatureGroupSpec
from lakecore.errors import IntegrityError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.offline.compaction import file_rows
from lakecore.offline.evolution import fit
from lakecore.offline.numbered_rows import NumberedRows
from lakecore.offline.table import Change, OfflineTable
from lakecore.quality.expectations import ValidationReport, judge, judge_parts
from lakecore.quality.expectations import check as check_expectations

REPORTS_DIR = "_validation"


def judge_insert(spec: FeatureGroupSpec, table: OfflineTable, rows: pa.Table
                 ) -> ValidationReport | None:
    """The report of the group's expectations on ``rows`` (its own duplicates resolved: the
    last one wins); None without expectations. ValidationError, carrying the report, when
    they fail and the group rejects; a warning when it warns."""
    if not spec.expectations:
        return None
    check_expectations(spec.expectations, rows.schema)
    return _act_on(spec, judge(spec.expectations, table.latest_per_key(rows)), stacklevel=6)


def judge_files(spec: FeatureGroupSpec, table: OfflineTable, change: Change,
                schema: pa.Schema) -> ValidationReport | None:
    """``judge_insert`` for an insert too large to hold, whose rows (duplicates resolved)
    are in the data files ``change.row_files`` (not yet committed): judged one file at a
    time."""
    if not spec.expectations:
        return None
    check_expectations(spec.expectations, schema)
    adds = {a["path"]: a for a in change.adds}
    paths = change.row_files or []
    files = NumberedRows(table.location, paths, [file_rows(adds[p]) or 0 for p in paths],
                         schema)

    def parts():
        for path in files.paths:
            yield fit(read_parquet(path), schema)

    return _act_on(spec, judge_parts(spec.expectations, parts(), files.fetch, table.location),
                   stacklevel=8)


def _act_on(spec: FeatureGroupSpec, report: ValidationReport, stacklevel: int
            ) -> ValidationReport:
    """Raise (the group rejects) or warn (at the caller's line: ``stacklevel``) when
    ``report`` failed."""
    if not report.ok:
        failed = [r.expectation for r in report.results if not r.ok]
        message = (f"insert into {spec.name!r}: {len(failed)} expectation(s) failed: "
                   f"{'; '.join(failed)}")
        if spec.on_failure == "reject":
            error = ValidationError(message + "; nothing was written")
            error.report = report
            raise error
        warnings.warn(message + "; written anyway (on_failure='warn')",
                      stacklevel=stacklevel)
    return report


def store_report(table: OfflineTable, report: ValidationReport | None, version: int
                 ) -> dict[str, str]:
    """Write an insert's report beside its table (before the commit's audit event, which
    records its sha256); ``{path: sha256}``. The file is one of the change's pending files."""
    if report is None:
        return {}
    folder = os.path.join(table.location, REPORTS_DIR)
    check_own_folders(table.location, REPORTS_DIR)  # never written through a link
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{version:020d}.json")
    data = msgspec.json.encode(report)
    table.pending.append(path)
    with create_exclusively(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsync_path(folder)
    return {path: digest_bytes(data)}


def stored_reports(ctx: LakeContext, table: OfflineTable, name: str, version: int
                   ) -> list[ValidationReport]:
    """Every stored report of a group whose commit landed, oldest first, each checked
    against its audit event (IntegrityError otherwise)."""
    folder = os.path.join(table.location, REPORTS_DIR)
    check_own_folders(table.location, REPORTS_DIR)  # never read through a link
    latest = table.snapshot().version
    reports = []
    for file_name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not (file_name.endswith(".json") and file_name[:-5].isdigit()):
            continue
        commit = int(file_name[:-5])
        event = ctx.audit.recorded(group_ref(name, version, commit))
        if event is None or commit > latest:
            continue                        # a report whose commit never landed
        path = os.path.join(folder, file_name)
        with open_own(path) as f:
            data = f.read()
        relative = os.path.relpath(path, ctx.path)
        recorded = ctx.audit.rewrites().files.get(relative, (event.files or {}).get(relative))
        if recorded != digest_bytes(data):
            raise IntegrityError(f"{path}: not the validation report the audit log recorded "
                                 f"for commit {commit}")
        reports.append(msgspec.json.decode(data, type=ValidationReport))
    return reports
