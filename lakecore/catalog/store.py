"""The lake's catalog: the definitions of feature groups (and, later, views, training data and
models), as msgspec Structs in one JSON file.

Every change rewrites the file atomically (write a temporary file, fsync, rename over the old
one, fsync the folder) while holding the writer lock, so a crash leaves either the old or the
new catalog, never a mix. Readers reload it when its identity (inode, size, mtime) changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from lakecore.base.files import replace_file
from lakecore.errors import IntegrityError
from lakecore.query.planner import QuerySpec, SourceCommit
from lakecore.training.transforms import Fitted

CATALOG_FILE = "catalog.json"
T = TypeVar("T")


class FeatureGroupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A feature group version's definition."""

    name: str
    version: int
    primary_key: list[str]
    event_time: str | None
    schema: str | None          # Delta schemaString of the stored schema, once known
    online: bool
    ttl_us: int | None
    description: str
    tags: dict[str, str]
    created_at_ms: int
    table_id: str
    location: str               # relative to the lake folder


class FeatureViewSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A feature view version's definition."""

    name: str
    version: int
    query: QuerySpec
    labels: list[str]
    transforms: dict[str, str]
    description: str
    created_at_ms: int


class SplitPart(msgspec.Struct, frozen=True, kw_only=True):
    """One split of a training dataset: a fraction of the rows, or the rows whose spine event
    time is in ``[start_us, end_us)``."""

    name: str
    fraction: float | None = None
    start_us: int | None = None
    end_us: int | None = None


class DataFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str                   # relative to the lake folder
    sha256: str
    rows: int


class TrainingDatasetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A training dataset's manifest: everything needed to read, verify and recreate it."""

    view: str
    view_version: int
    version: int
    sources: list[SourceCommit]         # the exact commit of every group read
    spine: DataFile | None              # the spine passed in (None: the root group's rows)
    start_time_us: int | None
    end_time_us: int | None
    splits: list[SplitPart]
    seed: int
    key_columns: list[str]              # the spine's columns that are neither labels nor features
    features: list[str]                 # before transforms
    labels: list[str]
    transforms: list[Fitted]
    files: dict[str, list[DataFile]]    # split name ("all" without splits) -> its parts
    description: str
    created_at_ms: int
    hash: str
    engine: str = "lakecore"            # "spark": joined and written by Spark
    spine_time: str | None = None       # the spine's event time column, when named by the user


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A registered model version: its artifact files (copied into the lake), parameters,
    metrics and the training dataset it was made from."""

    name: str
    version: int
    artifact: str                       # the artifact's path, relative to the lake
    files: list[DataFile]               # every file of the artifact
    params: dict[str, Any]
    metrics: dict[str, float]
    training_data: list[Any] | None     # [view, view version, dataset version, dataset hash]
    description: str
    created_at_ms: int
    hash: str


class CatalogState(msgspec.Struct, kw_only=True):
    format: int = 1
    feature_groups: list[FeatureGroupSpec] = []
    feature_views: list[FeatureViewSpec] = []
    training_datasets: list[TrainingDatasetSpec] = []
    models: list[ModelSpec] = []
    aliases: dict[str, dict[str, int]] = {}     # model name -> alias -> version
    # the highest version ever deleted, so that none is used twice: "model:NAME" for model
    # versions, "td:VIEW@VERSION" for a view's training datasets
    retired: dict[str, int] = {}


def next_version(state: CatalogState, family: str, versions: list[int]) -> int:
    """The next version of ``family`` (see ``CatalogState.retired``): never one used before."""
    return 1 + max([*versions, state.retired.get(family, 0)])


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(CatalogState)


class Catalog:
    def __init__(self, lake_path: str):
        self.path = os.path.join(lake_path, CATALOG_FILE)
        self.lake_path = lake_path
        self._state = CatalogState()
        self._identity: tuple[int, int, int] | None = None

    def state(self) -> CatalogState:
        """The current catalog, reloaded if another writer changed it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._state
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity != self._identity:
            with open(self.path, "rb") as f:
                try:
                    self._state = _decoder.decode(f.read())
                except msgspec.DecodeError as exc:
                    raise IntegrityError(f"{self.path} is damaged and cannot be read: {exc}") \
                        from None
            self._identity = identity
        return self._state

    def update(self, change: Callable[[CatalogState], T]) -> T:
        """Apply ``change`` to a copy of the latest catalog and persist it atomically.

        The caller must hold the writer lock.
        """
        self._identity = None
        state = _decoder.decode(_encoder.encode(self.state()))  # a deep copy to change
        result = change(state)
        replace_file(self.path, _encoder.encode(state))
        self._state = state
        self._identity = None
        return result
