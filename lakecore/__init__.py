"""lakecore: an embedded, single-process AI lakehouse."""

from lakecore.base.threads import get_num_threads, set_num_threads
from lakecore._version import __version__
from lakecore.query.asof import asof_join
from lakecore.errors import (
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    LakeError,
    NotFoundError,
    ReadOnlyError,
    SchemaError,
    StorageError,
    ValidationError,
)
from lakecore.governance.audit import AuditEvent
from lakecore.features.feature_group import Commit, FeatureGroup
from lakecore.features.feature_view import FeatureView
from lakecore.lake import Lake, open
from lakecore.governance.lineage import Node
from lakecore.models.registry import ModelRegistry, ModelVersion, Predictor
from lakecore.query.planner import Query
from lakecore.training.datasets import TrainingDataset
from lakecore.governance.verify import Report

__all__ = [
    "AlreadyExistsError",
    "AuditEvent",
    "Commit",
    "ConflictError",
    "FeatureGroup",
    "FeatureView",
    "IntegrityError",
    "Lake",
    "LakeError",
    "ModelRegistry",
    "ModelVersion",
    "Node",
    "NotFoundError",
    "Predictor",
    "Query",
    "ReadOnlyError",
    "Report",
    "SchemaError",
    "StorageError",
    "TrainingDataset",
    "ValidationError",
    "__version__",
    "asof_join",
    "get_num_threads",
    "open",
    "set_num_threads",
]
