"""Lineage: groups -> feature views; table commits and views -> training datasets -> models,
in both directions.

Refs: ``fg:NAME@VERSION``, ``fg:NAME@VERSION#COMMIT``, ``fv:NAME@VERSION``,
``td:NAME@VERSION/TD_VERSION`` (NAME and VERSION of the feature view) and
``model:NAME@VERSION``. Every link comes from a manifest in the catalog (a dataset's source
commits, a model's dataset), so lineage is as trustworthy as ``verify()``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lakecore.base.refs import dataset_ref, group_ref, parse_ref
from lakecore.catalog.specs import view_hash
from lakecore.errors import NotFoundError, ValidationError
from lakecore.features.context import LakeContext


class Node(msgspec.Struct, frozen=True):
    """One object in a lineage: ``kind`` "fg" (a table commit; a whole group when ``commit``
    is None, with no hash), "fv" (a feature view; ``hash`` the hash of its definition), "td"
    (a training dataset: name and version of its view, ``commit`` its dataset version) or
    "model".

    Examples
    --------
    >>> import tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> fg = lake.create_feature_group("users", primary_key="id")
    >>> _ = fg.insert({"id": [1], "age": [30]})
    >>> td = lake.create_feature_view("ages", query=fg.select_all()).create_training_data()
    >>> [(n.kind, n.name, n.version, n.commit) for n in lake.lineage(td)]
    [('fv', 'ages', 1, None), ('fg', 'users', 1, 0)]
    >>> lake.close()
    """

    kind: str
    name: str
    version: int
    commit: int | None
    hash: str | None

    @property
    def ref(self) -> str:
        """The node's ref (``fg:NAME@V#C``, ``fv:NAME@V``, ``td:NAME@V/TD``, ...)."""
        if self.kind == "fg":
            return group_ref(self.name, self.version, self.commit)
        if self.kind == "td":
            return dataset_ref(self.name, self.version, self.commit)
        return f"{self.kind}:{self.name}@{self.version}"


def ref_of(obj: Any) -> str:
    """The ref of a lake object (anything with a ``ref``: groups, views, datasets, models,
    nodes) or a ref string itself."""
    if isinstance(obj, str):
        return obj
    ref = getattr(obj, "ref", None)
    if isinstance(ref, str):
        return ref
    raise ValidationError(f"lineage: expected a lake object or a ref string, got "
                          f"{type(obj).__name__}")


def lineage(ctx: LakeContext, obj: Any, direction: str = "upstream") -> list[Node]:
    """Nodes upstream (what ``obj`` was made from) or downstream (what was made from it),
    nearest first: model <- training dataset <- feature view <- table commits (of a view:
    its groups). ``NotFoundError`` when ``obj`` does not exist."""
    if direction not in ("upstream", "downstream"):
        raise ValidationError(f"direction: expected 'upstream' or 'downstream', got {direction!r}")
    ref = ref_of(obj)
    kind, name, version, extra = parse_ref(ref)
    state = ctx.catalog.state()
    groups = {(g.name, g.version): g for g in state.feature_groups}
    views = {(v.name, v.version): v for v in state.feature_views}
    datasets = {(t.view, t.view_version, t.version): t for t in state.training_datasets}
    models = {(m.name, m.version): m for m in state.models}

    def td_node(t) -> Node:
        return Node("td", t.view, t.view_version, t.version, t.hash)

    def fv_node(v) -> Node:
        return Node("fv", v.name, v.version, None, view_hash(v))

    def commit_nodes(t) -> list[Node]:
        return [Node("fg", s.group, s.version, s.commit, s.hash) for s in t.sources]

    def model_node(m) -> Node:
        return Node("model", m.name, m.version, None, m.hash)

    def trained_on(keys) -> list[Node]:
        return [model_node(m) for m in sorted(models.values(), key=lambda m: (m.name, m.version))
                if m.training_data is not None and tuple(m.training_data[:3]) in keys]

    def ordered(found) -> list:
        return sorted(found, key=lambda t: (t.view, t.view_version, t.version))

    # what the ref names must exist, in both directions
    if kind == "fg":
        group = groups.get((name, version))
        if group is None:
            raise NotFoundError(f"lineage: no feature group {name!r} version {version}")
        if extra is not None and extra > ctx.offline_table(group).snapshot().version:
            raise NotFoundError(f"lineage: feature group {name!r} version {version} has no "
                                f"commit {extra}")
        missing = False
    elif kind == "fv":
        missing = (name, version) not in views
    elif kind == "td":
        missing = (name, version, extra) not in datasets
    else:
        missing = (name, version) not in models
    if missing:
        raise NotFoundError(f"lineage: nothing in the lake is {ref}")

    if direction == "upstream":
        if kind == "model":
            model = models[(name, version)]
            t = None if model.training_data is None else datasets.get(tuple(model.training_data[:3]))
            if t is None:
                return []
            view = views.get((t.view, t.view_version))
            return [td_node(t), *([fv_node(view)] if view else []), *commit_nodes(t)]
        if kind == "td":
            t = datasets[(name, version, extra)]
            view = views.get((t.view, t.view_version))
            return [*([fv_node(view)] if view else []), *commit_nodes(t)]
        if kind == "fv":
            parts = views[(name, version)].query.parts
            seen = dict.fromkeys((p.group, p.version) for p in parts)
            return [Node("fg", g, v, None, None) for g, v in seen]
        return []
    # downstream: views reading a group, then datasets, then the models trained on them
    if kind == "fg":
        readers = [] if extra is not None else sorted(
            (v for v in views.values()
             if any((p.group, p.version) == (name, version) for p in v.query.parts)),
            key=lambda v: (v.name, v.version))
        found = ordered(t for t in datasets.values() if any(
            s.group == name and s.version == version and (extra is None or s.commit == extra)
            for s in t.sources))
        keys = {(t.view, t.view_version, t.version) for t in found}
        return [fv_node(v) for v in readers] + [td_node(t) for t in found] + trained_on(keys)
    if kind == "fv":
        found = ordered(t for t in datasets.values() if (t.view, t.view_version) == (name, version))
        keys = {(t.view, t.view_version, t.version) for t in found}
        return [td_node(t) for t in found] + trained_on(keys)
    if kind == "td":
        return trained_on({(name, version, extra)})
    return []
