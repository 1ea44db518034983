"""lakecore: an embedded, single-process AI lakehouse."""

from lakecore import expect
from lakecore._version import __version__
from lakecore.base.threads import get_num_threads, set_num_threads
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
from lakecore.features.commits import Commit
from lakecore.features.feature_group import FeatureGroup
from lakecore.features.feature_view import FeatureView
from lakecore.features.query import Query
from lakecore.features.training_dataset import TrainingDataset
from lakecore.governance.audit_events import AuditEvent
from lakecore.governance.forget import ForgetReport
from lakecore.governance.lineage import Node
from lakecore.governance.verify import Report
from lakecore.lake import Lake, open
from lakecore.models.predictor import Predictor
from lakecore.models.registry import ModelRegistry, ModelVersion
from lakecore.quality.drift import DriftReport
from lakecore.quality.expectations import ValidationReport
from lakecore.quality.statistics import ColumnStats, Statistics
from lakecore.query.asof import asof_join

__all__ = [
    "AlreadyExistsError",
    "AuditEvent",
    "ColumnStats",
    "Commit",
    "ConflictError",
    "DriftReport",
    "FeatureGroup",
    "FeatureView",
    "ForgetReport",
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
    "Statistics",
    "StorageError",
    "TrainingDataset",
    "ValidationError",
    "ValidationReport",
    "__version__",
    "asof_join",
    "expect",
    "get_num_threads",
    "open",
    "set_num_threads",
]
