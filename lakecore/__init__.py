"""lakecore: an embedded, single-process AI lakehouse."""

from lakecore._threads import get_num_threads, set_num_threads
from lakecore._version import __version__
from lakecore.asof import asof_join
from lakecore.feature_group import Commit, FeatureGroup
from lakecore.lake import Lake, open
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

__all__ = [
    "__version__",
    "asof_join",
    "open",
    "Lake",
    "FeatureGroup",
    "Commit",
    "get_num_threads",
    "set_num_threads",
    "LakeError",
    "NotFoundError",
    "AlreadyExistsError",
    "SchemaError",
    "ValidationError",
    "ConflictError",
    "IntegrityError",
    "ReadOnlyError",
]
