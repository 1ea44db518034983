"""``lake.forget``: erase entities from every version of every table that holds them, from the
online store and from what was derived from their rows, and keep everything else.

The steps, under the writer lock:

1. **Stage.** For each group whose primary key holds the keys' columns (and every prediction
   log that does), ``offline.rewrite.plan`` writes the kept rows of each data file holding the
   keys, in any version, and the commit files and checkpoints naming those files, under
   temporary names. Validation reports of the commits that added those rows are staged
   without their example values (which may be the erased ones).
2. **Journal.** ``forget.journal`` in the lake's folder lists every staged file, where it
   goes and its sha256, the online groups to purge and the kept statistics to delete. It
   holds no key value.
3. **Record.** One ``forget`` audit event: the number of keys, their sha256 salted with a
   random value kept in the event, the reason, the new sha256 of every rewritten commit file,
   checkpoint and report, and each rewritten data file's size and sha256 before (what the
   commit hashes were made over, so that ``verify()`` still checks them).
4. **Put in place.** Each staged file replaces its final name (a commit file keeps its mtime:
   Delta readers take commit times from it); the erased keys leave the online store, which
   is then copied without its free pages; the statistics kept for the old files go.
5. The journal is removed.

A crash before step 3 leaves staged files that the next writable open removes (the forget
was never acknowledged: call it again). A crash after it is rolled forward by the next
writable open (``finish``): the moves are repeated, and the online groups are rebuilt from
their offline tables (the keys are not kept anywhere to delete them by), then compacted.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa

from lakecore.base.arrow import as_table
from lakecore.base.files import (
    check_own_folders,
    fsync_path,
    open_own,
    remove_tree,
    replace_file,
)
from lakecore.base.hashing import digest_bytes, digest_record
from lakecore.base.keys import rows_matching
from lakecore.base.parquet import read_parquet, write_parquet
from lakecore.base.refs import dataset_ref, group_folder, group_ref, model_ref
from lakecore.base.times import from_micros
from lakecore.catalog.specs import DataFile, FeatureGroupSpec, TrainingDatasetSpec
from lakecore.errors import IntegrityError, LakeError, SchemaError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.features.feature_group import FeatureGroup
from lakecore.features.training_dataset import view_spec
from lakecore.features.validation import REPORTS_DIR
from lakecore.governance.audit import AuditLog
from lakecore.governance.audit_events import FORGET_OP
from lakecore.offline import rewrite
from lakecore.offline.schema import conform
from lakecore.offline.table import table_schema
from lakecore.online.codec import encode_keys
from lakecore.quality.expectations import ValidationReport
from lakecore.quality.file_statistics import STATISTICS_DIR, kept_path
from lakecore.training.datasets import folder_of, materialize, with_statistics

JOURNAL = "forget.journal"
PREDICTIONS_SUFFIX = "_predictions"


@dataclass
class ForgetReport:
    """What ``lake.forget`` changed.

    Attributes
    ----------
    commits_rewritten : list of str
        Refs (``fg:NAME@V#C``) of the commits whose files were rewritten.
    rows_removed : int
        Rows erased from the latest versions of the groups.
    datasets : list of (str, str, str)
        ``(ref, old hash, new hash)`` of the training datasets rewritten without the rows.
    models : list of str
        Refs of the models trained on those datasets (to retrain).
    """

    commits_rewritten: list[str] = field(default_factory=list)
    rows_removed: int = 0
    datasets: list[tuple[str, str, str]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"rows removed from the latest versions: {self.rows_removed}",
                 f"commits rewritten: {len(self.commits_rewritten)}"]
        lines += [f"  {ref}" for ref in self.commits_rewritten]
        lines.append(f"training datasets rewritten: {len(self.datasets)}")
        lines += [f"  {ref}: {old} -> {new}" for ref, old, new in self.datasets]
        lines.append(f"models trained on them (retrain): {len(self.models)}")
        lines += [f"  {ref}" for ref in self.models]
        return "\n".join(lines)


class _Journal(msgspec.Struct, frozen=True, kw_only=True):
    event_seq: int                          # the forget event that records this rewrite
    moves: list[tuple[str, str, str, int | None]]   # staged, final (lake paths), sha256, mtime
    online: list[tuple[str, int]]           # groups whose online rows are purged
    obsolete: list[str]                     # lake paths to delete (kept statistics)
    datasets: list[str] = []                # training datasets to make again (refs)


def forget(ctx: LakeContext, audit: AuditLog, keys: Any, groups: Any, reason: Any
           ) -> ForgetReport:
    """Erase the entities ``keys`` from the lake (see the module's docstring)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason: expected a non-empty text saying why (it is recorded "
                              "in the audit log)")
    table = as_table(keys, "keys")
    columns = table.column_names
    if not columns:
        raise ValidationError("keys: expected at least one key column")
    for name in columns:
        if table.column(name).null_count:
            raise ValidationError(f"keys: column {name!r} holds nulls; a key to erase must "
                                  f"be given whole")
    with ctx.writing("forget"):
        specs = _target_groups(ctx, columns, groups)
        holding = _datasets_holding(ctx, specs, table, columns)
        on_spark = [ref for ref in holding if _dataset(ctx, ref).engine != "lakecore"]
        if on_spark:
            raise LakeError(f"forget: training dataset(s) {', '.join(on_spark)} hold these keys "
                            f"and were built on Spark, which forget does not run; delete them "
                            f"(view.delete_training_data) and build them again after")
        report = ForgetReport()
        plans: list[tuple[FeatureGroupSpec, rewrite.TableRewrite, pa.Table | None]] = []
        try:
            for spec in specs:
                offline = ctx.offline_table(spec)
                schema = table_schema(offline.snapshot(), spec.schema)
                if schema is None:
                    continue
                typed = conform(table.select(columns),
                                pa.schema([schema.field(c) for c in columns]), columns, None,
                                argument="keys")
                plan = rewrite.plan(offline, typed, columns)
                if plan.empty:
                    continue
                erased = _erased_online_keys(offline, typed, columns, spec) if spec.online \
                    else None
                plans.append((spec, plan, erased))
            if not plans and not holding:
                return report                   # nothing holds these keys: a no-op
            moves, digests, data_files, obsolete = _staged_moves(ctx, plans)
            for ref in holding:                 # their spines without the keys' rows
                staged = _staged_spine(ctx, ref, table, columns)
                if staged is not None:
                    moves.append(staged)
            journal = _Journal(event_seq=audit.next_seq(), moves=moves,
                               online=[(s.name, s.version) for s, _, _ in plans if s.online],
                               obsolete=obsolete, datasets=holding)
            replace_file(os.path.join(ctx.path, JOURNAL), msgspec.json.encode(journal))
        except BaseException:
            for _, plan, _ in plans:
                rewrite.discard(plan)
            raise
        salt = secrets.token_hex(16)
        audit.append(FORGET_OP, "lake", None, files=digests, details={
            "reason": reason,
            "keys": table.num_rows,
            "salt": salt,
            "keys_hash": digest_record({"salt": salt, "columns": columns,
                                        "rows": sorted(map(repr, table.to_pylist()))}),
            "groups": [group_ref(s.name, s.version) for s, _, _ in plans],
            "data_files": data_files,
        })
        _put_in_place(ctx, journal)
        for spec, plan, erased in plans:
            if erased is not None and len(erased):
                _purge_online(ctx, spec, erased)
        if journal.online:
            ctx.online_store.compact()
        report.datasets, report.models = _rebuild_datasets(ctx, journal.datasets)
        _finish(ctx, journal)
        for spec, plan, _ in plans:
            report.commits_rewritten += [group_ref(spec.name, spec.version, v)
                                         for v in plan.commits]
            report.rows_removed += plan.rows_removed
        return report


def finish(ctx: LakeContext, audit: AuditLog) -> None:
    """At a writable open: finish a forget a crash interrupted after it was recorded, or
    remove what one staged before (the caller holds the writer lock)."""
    path = os.path.join(ctx.path, JOURNAL)
    try:
        with open_own(path) as f:
            journal = msgspec.json.decode(f.read(), type=_Journal)
    except FileNotFoundError:
        return
    except msgspec.DecodeError:
        # written with replace_file: a journal that does not decode was never complete, so
        # its event was never appended and nothing was moved
        os.unlink(path)
        return
    _check_paths(journal)
    if not any(e.op == FORGET_OP for e in _events_at(audit, journal.event_seq)):
        for staged, _, _, _ in journal.moves:
            _unlink(ctx, staged)
        os.unlink(path)
        return
    _put_in_place(ctx, journal)
    for name, version in journal.online:
        spec = ctx.group_spec(name, version)
        FeatureGroup(ctx, spec).rebuild_online()
    if journal.online:
        ctx.online_store.compact()
    _rebuild_datasets(ctx, journal.datasets)
    _finish(ctx, journal)


# -- steps ---------------------------------------------------------------------------------
def _target_groups(ctx: LakeContext, columns: list[str], groups: Any) -> list[FeatureGroupSpec]:
    """Every group (each version) whose primary key holds ``columns``, or those of
    ``groups`` (names), and every prediction log whose primary key holds them."""
    every = ctx.catalog.state().feature_groups
    holds = [s for s in every if set(columns) <= set(s.primary_key)]
    if groups is None:
        if not holds:       # a misspelt column must not pass for "found nowhere"
            raise SchemaError(f"keys: no feature group's primary key holds the column(s) "
                              f"{columns}")
        return holds
    names = [groups] if isinstance(groups, str) else list(groups)
    names = [getattr(g, "name", g) for g in names]
    chosen = []
    for name in names:
        found = [s for s in every if s.name == name]
        if not found:
            raise ValidationError(f"groups: no feature group {name!r}")
        for spec in found:
            if not set(columns) <= set(spec.primary_key):
                raise SchemaError(f"groups: feature group {name!r} version {spec.version} has "
                                  f"primary key {spec.primary_key}, which does not hold the "
                                  f"keys' columns {columns}")
        chosen += found
    logs = [s for s in holds if s.name.endswith(PREDICTIONS_SUFFIX) and s not in chosen]
    return chosen + logs


def _datasets_holding(ctx: LakeContext, specs: list[FeatureGroupSpec], keys: pa.Table,
                      columns: list[str]) -> list[str]:
    """Refs of the training datasets read from ``specs`` whose rows or spine hold ``keys``
    (every such dataset without all of ``columns``: it cannot be told)."""
    groups = {(s.name, s.version) for s in specs}
    found = []
    for td in ctx.catalog.state().training_datasets:
        if not any((s.group, s.version) in groups for s in td.sources):
            continue
        files = [f for parts in td.files.values() for f in parts]
        files += [td.spine] if td.spine is not None else []
        for data in files:
            rows = read_parquet(os.path.join(ctx.path, data.path), columns)
            if rows.column_names != columns:
                if data is not td.spine:
                    found.append(dataset_ref(td.view, td.view_version, td.version))
                    break
                continue
            try:
                typed = keys.select(columns).cast(rows.schema)
                held = bool(rows_matching(rows, typed, columns).any())
            except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
                held = True                 # keys of another type: it cannot be told
            if held:
                found.append(dataset_ref(td.view, td.view_version, td.version))
                break
    return found


def _dataset(ctx: LakeContext, ref: str) -> TrainingDatasetSpec:
    for td in ctx.catalog.state().training_datasets:
        if dataset_ref(td.view, td.view_version, td.version) == ref:
            return td
    raise IntegrityError(f"{JOURNAL}: no training dataset {ref}")


def _staged_spine(ctx: LakeContext, ref: str, keys: pa.Table, columns: list[str]
                  ) -> tuple[str, str, str, None] | None:
    """The dataset's stored spine without the keys' rows, staged (None: it has no spine, or
    none of those columns)."""
    td = _dataset(ctx, ref)
    if td.spine is None:
        return None
    final = td.spine.path
    spine = read_parquet(os.path.join(ctx.path, final))
    if not set(columns) <= set(spine.column_names):
        return None
    try:
        typed = keys.select(columns).cast(spine.select(columns).schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
        return None
    mask = rows_matching(spine, typed, columns, "spine")
    if not mask.any():
        return None
    folder, name = os.path.split(final)
    staged = os.path.join(folder, f".{name}.{secrets.token_hex(8)}.forget.tmp")
    _, digest = write_parquet(spine.filter(pa.array(~mask)), os.path.join(ctx.path, staged))
    return staged, final, digest, None


def _rebuild_datasets(ctx: LakeContext, refs: list[str]
                      ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Make each dataset again from its (rewritten) source commits and spine, in its own
    folder, as ``recreate()`` would, and record its new manifest: ``(ref, old hash, new
    hash)`` of each, and the refs of the models trained on them. A dataset already made
    again (after a crash) is left as it is."""
    rebuilt_refs, models = [], []
    for ref in refs:
        td = _dataset(ctx, ref)
        view = view_spec(ctx, td.view, td.view_version)
        spine = stored = None
        if td.spine is not None:
            spine = read_parquet(os.path.join(ctx.path, td.spine.path))
            with open_own(os.path.join(ctx.path, td.spine.path)) as f:
                stored = DataFile(path=td.spine.path, sha256=digest_bytes(f.read()),
                                  rows=spine.num_rows)
        folder = folder_of(td.view, td.view_version, td.version)
        remove_tree(os.path.join(ctx.path, folder, "recreated"))   # recreate()'s copies
        rebuilt = materialize(ctx.resolve, ctx.path, view, td.version, spine=spine,
                              spine_time=td.spine_time, start_time=from_micros(td.start_time_us),
                              end_time=from_micros(td.end_time_us), split=td.splits,
                              seed=td.seed, description=td.description, folder=folder,
                              pinned={(s.group, s.version): s.commit for s in td.sources},
                              stored_spine=stored, spark=None, spark_engine=ctx.spark,
                              transform_order=[f.column for f in td.transforms])
        if td.statistics is not None:
            rebuilt = with_statistics(rebuilt, ctx.path)
        rebuilt = msgspec.structs.replace(rebuilt, created_at_ms=td.created_at_ms)
        _remove_stale_parts(ctx, folder, td, rebuilt)
        if rebuilt.hash != td.hash:
            _record_dataset(ctx, ref, td, rebuilt)
            rebuilt_refs.append((ref, td.hash, rebuilt.hash))
        models += [model_ref(m.name, m.version) for m in ctx.catalog.state().models
                   if m.training_data is not None and dataset_ref(
                       *m.training_data[:3]) == ref]
    return rebuilt_refs, models


def _record_dataset(ctx: LakeContext, ref: str, old: TrainingDatasetSpec,
                    new: TrainingDatasetSpec) -> None:
    """Put the dataset's new manifest in the catalog, recorded by a ``forget`` event that
    names its hash before and now (``verify`` accepts the models that record the old one)."""
    place = (old.view, old.view_version, old.version)

    def change(state) -> None:
        state.training_datasets = [new if (d.view, d.view_version, d.version) == place else d
                                   for d in state.training_datasets]
    ctx.record(change, FORGET_OP, ref, new.hash,
               details={"hashes": {ref: new.hash}, "was": {ref: old.hash}})


def _remove_stale_parts(ctx: LakeContext, folder: str, old: TrainingDatasetSpec,
                        new: TrainingDatasetSpec) -> None:
    """Remove the old dataset's part files the new one does not have (fewer rows)."""
    kept = {f.path for parts in new.files.values() for f in parts}
    for parts in old.files.values():
        for f in parts:
            if f.path not in kept:
                _unlink(ctx, f.path)


def _erased_online_keys(offline, keys: pa.Table, columns: list[str],
                        spec: FeatureGroupSpec) -> pa.Table:
    """The primary keys of the latest rows holding ``keys`` (what the online store has)."""
    latest = offline.snapshot()
    schema = table_schema(latest, spec.schema)
    rows = offline.read(latest, schema, list(spec.primary_key))
    return rows.filter(pa.array(rows_matching(rows, keys, columns)))


def _staged_moves(ctx: LakeContext, plans: list) -> tuple[list, dict, dict, list]:
    """Every staged file as a journal move (lake paths), the new sha256 of each rewritten
    log file and report, each rewritten data file's size and sha256 before, and the kept
    statistics of the old files."""
    moves, digests, data_files, obsolete = [], {}, {}, []
    for spec, plan, _ in plans:
        folder = group_folder(spec.name, spec.version)
        offline = ctx.offline_table(spec)
        for move in plan.moves:
            final = os.path.join(folder, move.final)
            moves.append((os.path.join(folder, move.staged), final, move.digest, move.mtime_ns))
            if move.final.startswith(rewrite.LOG_DIR + os.sep):
                digests[final] = move.digest
        for path, (old_size, old_digest, _, new_digest) in plan.data_files.items():
            data_files[os.path.join(folder, path)] = [old_size, old_digest, new_digest]
            cache = kept_path(offline, old_digest)
            if cache is not None:
                obsolete.append(os.path.relpath(cache, ctx.path))
        for version in _adding_commits(offline, plan):
            staged = _staged_report(ctx, folder, version)
            if staged is not None:
                moves.append(staged)
                digests[staged[1]] = staged[2]
    return moves, digests, data_files, obsolete


def _adding_commits(offline, plan: rewrite.TableRewrite) -> list[int]:
    """The commits whose inserts' reports may show the rows: those that added a rewritten
    file, or a file a vacuum has deleted since (what it held cannot be told any more)."""
    found = []
    for version in range(offline.snapshot().version + 1):
        actions, _ = offline.log.read_commit(version)
        if any("add" in a and (a["add"]["path"] in plan.data_files or not os.path.lexists(
                os.path.join(offline.location, a["add"]["path"]))) for a in actions):
            found.append(version)
    return found


def _staged_report(ctx: LakeContext, folder: str, version: int
                   ) -> tuple[str, str, str, None] | None:
    """The commit's validation report without example values, staged (None: it has none)."""
    final = os.path.join(folder, REPORTS_DIR, f"{version:020d}.json")
    check_own_folders(ctx.path, os.path.join(folder, REPORTS_DIR))
    try:
        with open_own(os.path.join(ctx.path, final)) as f:
            report = msgspec.json.decode(f.read(), type=ValidationReport)
    except FileNotFoundError:
        return None
    scrubbed = msgspec.structs.replace(report, results=[
        msgspec.structs.replace(r, examples=[]) for r in report.results])
    body = msgspec.json.encode(scrubbed)
    staged = os.path.join(folder, REPORTS_DIR, f".{version:020d}.json.{secrets.token_hex(8)}"
                                               f".forget.tmp")
    with open(os.path.join(ctx.path, staged), "xb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    return staged, final, digest_bytes(body), None


def _put_in_place(ctx: LakeContext, journal: _Journal) -> None:
    """Move every staged file to its name (again, after a crash: a move already made is
    skipped), and give commit files back their times."""
    folders = set()
    for staged, final, digest, mtime in journal.moves:
        source, target = os.path.join(ctx.path, staged), os.path.join(ctx.path, final)
        if os.path.lexists(source):
            os.replace(source, target)
        if mtime is not None:
            os.utime(target, ns=(mtime, mtime), follow_symlinks=False)
        folders.add(os.path.dirname(target))
    for folder in folders:
        fsync_path(folder)
    for spec in ctx.catalog.state().feature_groups:
        ctx.offline_table(spec).drop_caches()


def _purge_online(ctx: LakeContext, spec: FeatureGroupSpec, erased: pa.Table) -> None:
    group = FeatureGroup(ctx, spec)
    offline = ctx.offline_table(spec)
    layout = group._layout(table_schema(offline.snapshot(), spec.schema))
    store = ctx.online_store
    store.apply(spec.name, spec.version, layout, None, store.watermark(spec.name, spec.version),
                deleted_keys=encode_keys(erased.select(list(spec.primary_key)), layout))


def _finish(ctx: LakeContext, journal: _Journal) -> None:
    for path in journal.obsolete:
        _unlink(ctx, path)
    os.unlink(os.path.join(ctx.path, JOURNAL))
    fsync_path(ctx.path)


def _unlink(ctx: LakeContext, path: str) -> None:
    try:
        os.unlink(os.path.join(ctx.path, path))
    except FileNotFoundError:
        pass


def _events_at(audit: AuditLog, seq: int) -> list:
    last = audit.last_event()
    if last is None or last.seq < seq:
        return []
    return [e for e in audit.events(strict=False) if e.seq == seq]


def _check_paths(journal: _Journal) -> None:
    """IntegrityError unless every path in the journal is one ``forget`` writes: relative,
    inside a feature group's folder, staged names ending in ``.forget.tmp``, obsolete ones
    kept statistics (a journal is a file anyone could have edited)."""
    def inside(path: str) -> bool:
        return (not os.path.isabs(path) and os.path.normpath(path) == path
                and ".." not in path.split(os.sep)
                and path.split(os.sep)[0] in ("feature_groups", "training_data"))
    for staged, final, _, _ in journal.moves:
        if not (inside(staged) and inside(final) and staged.endswith(".forget.tmp")
                and os.path.dirname(staged) == os.path.dirname(final)):
            raise IntegrityError(f"{JOURNAL}: {staged!r} -> {final!r} is not a move lakecore "
                                 f"makes; it was changed outside lakecore")
    for path in journal.obsolete:
        if not (inside(path) and path.endswith(".msgpack")
                and os.path.basename(os.path.dirname(path)) == STATISTICS_DIR):
            raise IntegrityError(f"{JOURNAL}: {path!r} is not a file forget removes")
