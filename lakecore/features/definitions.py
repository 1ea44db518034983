"""Creating and deleting feature groups and feature views: the checks of names, keys and
dependents, the catalog change and its audit event, and the files a deleted object owned.

A deletion is a catalog change first (the fact), then its audit event, then the removal of
files; a crash in between leaves files that nothing references, which the next creation under
the same name removes, and an event that the next writable open appends.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import pyarrow as pa

from lakecore.base.files import remove_tree
from lakecore.base.refs import (
    check_name,
    check_version,
    group_folder,
    group_ref,
    model_ref,
    view_ref,
)
from lakecore.base.times import micros, now_millis
from lakecore.catalog.specs import FeatureGroupSpec, FeatureViewSpec, view_hash
from lakecore.errors import (
    AlreadyExistsError,
    LakeError,
    SchemaError,
    ValidationError,
)
from lakecore.features.context import LakeContext
from lakecore.features.feature_group import FeatureGroup
from lakecore.features.feature_view import FeatureView, check_view
from lakecore.features.query import Query
from lakecore.features.training_dataset import view_spec
from lakecore.offline.schema import storage_schema, to_delta_schema_string
from lakecore.online.layout import Layout
from lakecore.training.datasets import discard_folder


# -- feature groups -------------------------------------------------------------------------------
def create_feature_group(
    ctx: LakeContext,
    name: str,
    *,
    version: int = 1,
    primary_key: str | list[str],
    event_time: str | None = None,
    schema: pa.Schema | None = None,
    online: bool = False,
    ttl: dt.timedelta | None = None,
    description: str = "",
    tags: dict[str, str] | None = None,
) -> FeatureGroup:
    """Create feature group ``name`` at ``version``; AlreadyExistsError if it exists."""
    check_name(name, "name")
    check_version(version)
    keys = [primary_key] if isinstance(primary_key, str) else primary_key
    if not isinstance(keys, (list, tuple)) or not keys or \
            not all(isinstance(k, str) and k for k in keys):
        raise SchemaError(f"primary_key: expected a column name or a non-empty list of "
                          f"column names, got {primary_key!r}")
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise SchemaError(f"primary_key: a column is named twice in {keys}")
    if event_time is not None and (not isinstance(event_time, str) or not event_time):
        raise SchemaError(f"event_time: expected a column name or None, got {event_time!r}")
    if event_time in keys:
        raise SchemaError(f"primary_key: must not contain the event_time column "
                          f"{event_time!r} (event_time is part of the upsert key already)")
    schema_string = None
    if schema is not None:
        if not isinstance(schema, pa.Schema):
            raise SchemaError(f"schema: expected a pyarrow.Schema, got {type(schema).__name__}")
        stored = storage_schema(schema, keys, event_time)
        if online:
            Layout.of(stored, keys, event_time)   # SchemaError for types kept offline only
        schema_string = to_delta_schema_string(stored)
    ttl_us = None
    if ttl is not None:
        if not isinstance(ttl, dt.timedelta) or ttl <= dt.timedelta(0):
            raise ValidationError(f"ttl: expected a positive datetime.timedelta, got {ttl!r}")
        ttl_us = micros(ttl)
    if not isinstance(description, str):
        raise ValidationError(f"description: expected a str, got {description!r}")
    tags = dict(tags or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValidationError("tags: expected a dict of str to str")

    with ctx.writing("create_feature_group"):
        if any((s.name, s.version) == (name, version) for s in ctx.catalog.state().feature_groups):
            raise AlreadyExistsError(f"feature group {name!r} version {version} already exists")
        location = group_folder(name, version)
        _remove_group_data(ctx, name, version, location)    # a deletion's leftovers
        os.makedirs(os.path.join(ctx.path, location), exist_ok=True)
        spec = FeatureGroupSpec(
            name=name, version=version, primary_key=keys, event_time=event_time,
            schema=schema_string, online=bool(online), ttl_us=ttl_us,
            description=description, tags=tags, created_at_ms=now_millis(),
            table_id=str(uuid.uuid4()), location=location,
        )
        ctx.record(lambda state: state.feature_groups.append(spec), "create_feature_group",
                   group_ref(name, version), None)
    return FeatureGroup(ctx, spec)


def delete_feature_group(ctx: LakeContext, name: str, version: int) -> None:
    """Delete a feature group version: its definition, Delta table and online rows.
    Refused (``LakeError``) while a feature view reads it. Audited; ``verify()`` stays
    clean, and ``lineage`` of it raises ``NotFoundError`` afterwards.

    ``Lake.delete_feature_group`` shows an example.
    """
    check_version(version)
    with ctx.writing(f"delete feature group {name!r} version {version}"):
        spec = ctx.group_spec(name, version)
        readers = [view_ref(v.name, v.version) for v in ctx.catalog.state().feature_views
                   if any((p.group, p.version) == (name, version) for p in v.query.parts)]
        if readers:
            raise LakeError(f"feature group {name!r} version {version} cannot be deleted: "
                            f"feature view(s) {', '.join(readers)} read it; delete them "
                            f"first")
        last_hash = ctx.offline_table(spec).snapshot().commit_hash

        def drop(state) -> None:
            state.feature_groups = [g for g in state.feature_groups
                                    if (g.name, g.version) != (name, version)]
        ctx.record(drop, "delete_feature_group", group_ref(name, version), last_hash)
        _remove_group_data(ctx, name, version, group_folder(name, version))


def _remove_group_data(ctx: LakeContext, name: str, version: int, location: str) -> None:
    """Remove the table folder and online rows of a group that the catalog no longer
    has (the caller holds the writer lock)."""
    folder = os.path.join(ctx.path, location)
    ctx.forget_table(location)
    ctx.online_store.remove_group(name, version)
    remove_tree(folder)



# -- feature views --------------------------------------------------------------------------------
def create_feature_view(ctx: LakeContext, name: str, *, version: int = 1, query: Query,
                        labels: Any = (), transforms: dict[str, str] | None = None,
                        description: str = "") -> FeatureView:
    """A new feature view: ``query`` with ``labels`` (output or spine columns) and
    ``transforms`` (feature column -> built-in transform name)."""
    name = check_name(name, "feature view name")
    version = check_version(version)
    labels, transforms = check_view(query, labels, transforms)
    if not isinstance(description, str):
        raise ValidationError(f"description: expected a str, got {description!r}")
    if query._ctx is not ctx:
        raise ValidationError("query: it comes from another Lake object")
    with ctx.writing("create_feature_view"):
        state = ctx.catalog.state()
        if any((v.name, v.version) == (name, version) for v in state.feature_views):
            raise AlreadyExistsError(f"feature view {name!r} version {version} already exists")
        spec = FeatureViewSpec(name=name, version=version, query=query.spec, labels=labels,
                               transforms=transforms, description=description,
                               created_at_ms=now_millis())
        ctx.record(lambda s: s.feature_views.append(spec), "create_feature_view",
                   view_ref(name, version), None)
    return FeatureView(ctx, spec)


def delete_feature_view(ctx: LakeContext, name: str, version: int) -> None:
    """Delete a feature view version with its training datasets and their files.
    Refused (``LakeError``) while a registered model was trained on one of its datasets.
    Audited; ``verify()`` stays clean.

    ``Lake.delete_feature_view`` shows an example.
    """
    check_version(version)
    with ctx.writing(f"delete feature view {name!r} version {version}"):
        state = ctx.catalog.state()
        spec = view_spec(ctx, name, version)
        datasets = {t.version for t in state.training_datasets
                    if (t.view, t.view_version) == (name, version)}
        trained = [model_ref(m.name, m.version) for m in state.models
                   if m.training_data is not None and m.training_data[:2] == [name, version]
                   and m.training_data[2] in datasets]
        if trained:
            raise LakeError(f"feature view {name!r} version {version} cannot be deleted: "
                            f"registered model(s) {', '.join(trained)} were trained on its "
                            f"training data; delete them first")
        family = f"td:{name}@{version}"

        def drop(state) -> None:
            state.feature_views = [v for v in state.feature_views
                                   if (v.name, v.version) != (name, version)]
            state.training_datasets = [t for t in state.training_datasets
                                       if (t.view, t.view_version) != (name, version)]
            if datasets:
                state.retired[family] = max(state.retired.get(family, 0), *datasets)
        ctx.record(drop, "delete_feature_view", view_ref(name, version), view_hash(spec))
        discard_folder(ctx.path, os.path.join("training_data", name, f"v{version}"))
