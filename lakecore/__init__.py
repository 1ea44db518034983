"""lakecore: an embedded, single-process AI lakehouse."""

from lakecore._threads import get_num_threads, set_num_threads
from lakecore._version import __version__
from lakecore.asof import asof_join
from lakecore.errors import (
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    LakeError,
    NotFoundError,
    ReadOnlyError,
    SchemaError,
    ValidationError,
)
from lakecore.feature_group import Commit, FeatureGroup
from lakecore.lake import Lake, open

__all__ = [
    "AlreadyExistsError",
    "Commit",
    "ConflictError",
    "FeatureGroup",
    "IntegrityError",
    "Lake",
    "LakeError",
    "NotFoundError",
    "ReadOnlyError",
    "SchemaError",
    "ValidationError",
    "__version__",
    "asof_join",
    "get_num_threads",
    "open",
    "set_num_threads",
]
