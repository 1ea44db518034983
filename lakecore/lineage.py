"""Lineage: table commits -> training datasets -> models, in both directions.

Refs: ``fg:NAME@VERSION``, ``fg:NAME@VERSION#COMMIT``, ``fv:NAME@VERSION``,
``td:NAME@VERSION/TD_VERSION`` (NAME and VERSION of the feature view) and
``model:NAME@VERSION``. Every link comes from a manifest in the catalog (a dataset's source
commits, a model's dataset), so lineage is as trustworthy as ``verify()``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from lakecore.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from lakecore.lake import Lake


class Node(msgspec.Struct, frozen=True):
    """One object in a lineage: ``kind`` "fg" (a table commit), "td" (a training dataset:
    name and version of its view, ``commit`` its dataset version) or "model"."""

    kind: str
    name: str
    version: int
    commit: int | None
    hash: str | None

    @property
    def ref(self) -> str:
        if self.kind == "fg":
            return f"fg:{self.name}@{self.version}" + (
                f"#{self.commit}" if self.commit is not None else "")
        if self.kind == "td":
            return f"td:{self.name}@{self.version}/{self.commit}"
        return f"{self.kind}:{self.name}@{self.version}"


_REF = re.compile(r"^(fg|fv|td|model):([^@/#]+)@(\d+)(?:#(\d+)|/(\d+))?$")


def parse_ref(ref: str) -> tuple[str, str, int, int | None]:
    """``(kind, name, version, commit or dataset version)`` of a ref string."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValidationError(f"ref: expected fg:NAME@V, fg:NAME@V#COMMIT, fv:NAME@V, "
                              f"td:NAME@V/TD or model:NAME@V, got {ref!r}")
    kind, name, version, commit, td = match.groups()
    if (commit is not None and kind != "fg") or (td is not None and kind != "td") or \
            (kind == "td" and td is None):
        raise ValidationError(f"ref: {ref!r} is not a valid {kind} ref")
    extra = commit if commit is not None else td
    return kind, name, int(version), None if extra is None else int(extra)


def ref_of(obj: Any) -> str:
    """The ref of a lake object (or a ref string itself)."""
    from lakecore.feature_group import FeatureGroup
    from lakecore.feature_view import FeatureView
    from lakecore.models import ModelVersion
    from lakecore.training_data import TrainingDataset

    if isinstance(obj, str):
        return obj
    if isinstance(obj, FeatureGroup):
        return f"fg:{obj.name}@{obj.version}"
    if isinstance(obj, FeatureView):
        return f"fv:{obj.name}@{obj.version}"
    if isinstance(obj, TrainingDataset):
        return f"td:{obj._spec.view}@{obj._spec.view_version}/{obj.version}"
    if isinstance(obj, ModelVersion):
        return f"model:{obj.name}@{obj.version}"
    if isinstance(obj, Node):
        return obj.ref
    raise ValidationError(f"lineage: expected a lake object or a ref string, got "
                          f"{type(obj).__name__}")


def lineage(lake: Lake, obj: Any, direction: str = "upstream") -> list[Node]:
    """Nodes upstream (what ``obj`` was made from) or downstream (what was made from it),
    nearest first."""
    if direction not in ("upstream", "downstream"):
        raise ValidationError(f"direction: expected 'upstream' or 'downstream', got {direction!r}")
    kind, name, version, extra = parse_ref(ref_of(obj))
    state = lake.catalog.state()
    datasets = {(t.view, t.view_version, t.version): t for t in state.training_datasets}
    models = {(m.name, m.version): m for m in state.models}

    def td_node(t) -> Node:
        return Node("td", t.view, t.view_version, t.version, t.hash)

    def fg_nodes(t) -> list[Node]:
        return [Node("fg", s.group, s.version, s.commit, s.hash) for s in t.sources]

    def model_node(m) -> Node:
        return Node("model", m.name, m.version, None, m.hash)

    if direction == "upstream":
        if kind == "model":
            model = models.get((name, version))
            if model is None:
                raise NotFoundError(f"no model {name!r} version {version}")
            if model.training_data is None:
                return []
            t = datasets.get(tuple(model.training_data[:3]))
            return [] if t is None else [td_node(t), *fg_nodes(t)]
        if kind == "td":
            t = datasets.get((name, version, extra))
            if t is None:
                raise NotFoundError(f"no training dataset {ref_of(obj)}")
            return fg_nodes(t)
        return []
    # downstream: datasets first, then the models trained on them
    if kind == "fg":
        found = [t for t in datasets.values() if any(
            s.group == name and s.version == version and (extra is None or s.commit == extra)
            for s in t.sources)]
    elif kind == "fv":
        found = [t for t in datasets.values() if (t.view, t.view_version) == (name, version)]
    elif kind == "td":
        found = []
        if (name, version, extra) not in datasets:
            raise NotFoundError(f"no training dataset {ref_of(obj)}")
    else:
        return []
    found.sort(key=lambda t: (t.view, t.view_version, t.version))
    keys = {(t.view, t.view_version, t.version) for t in found}
    if kind == "td":
        keys = {(name, version, extra)}
    trained = sorted((m for m in models.values()
                      if m.training_data is not None and tuple(m.training_data[:3]) in keys),
                     key=lambda m: (m.name, m.version))
    return [td_node(t) for t in found] + [model_node(m) for m in trained]
