"""Comparing what a model served with what it was trained on.

The served side is the rows its predictors logged (``NAME_predictions``) in
``[start_time, end_time)`` for that model version; the training side is its training data's
train split (all rows without splits), features before transforms, read from the dataset's
files. With ``load`` (as for ``Lake.predictor``) the logged predictions are compared with the
model's own predictions on that split; without it, features only.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.parquet import read_parquet
from lakecore.errors import NotFoundError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.features.feature_view import FeatureView
from lakecore.features.training_dataset import view_spec
from lakecore.models.registry import ModelRegistry
from lakecore.quality.drift import DriftReport, compare

TIME = pa.timestamp("us", "UTC")


def monitor(ctx: LakeContext, logged: Callable[[str], Any], model_name: str,
            version: int | None, alias: str | None, start_time: Any, end_time: Any,
            load: Callable[[str], Any] | None) -> DriftReport:
    """The drift report of a model version (``logged(group)``: that feature group, or
    NotFoundError)."""
    model = ModelRegistry(ctx).get(model_name, version, alias=alias)
    if model._spec.training_data is None:
        raise ValidationError(f"model {model_name!r} version {model.version} has no training "
                              f"data to compare with")
    view_name, view_version, td_version, _ = model._spec.training_data
    view = FeatureView(ctx, view_spec(ctx, view_name, view_version))
    dataset = view.training_data(td_version)
    spec = dataset._spec
    split = "train" if "train" in spec.files else next(iter(spec.files))
    training = pa.concat_tables([read_parquet(os.path.join(ctx.path, f.path))
                                 for f in spec.files[split]])
    try:
        served = logged(f"{model_name}_predictions").read()
    except NotFoundError:
        raise NotFoundError(f"model {model_name!r} has no logged predictions (serve it with "
                            f"lake.predictor(..., log=True))") from None
    mask = pc.equal(served.column("model_version"), model.version)
    for bound, keep in ((start_time, pc.greater_equal), (end_time, pc.less)):
        if bound is not None:
            when = _utc(bound)
            mask = pc.and_(mask, keep(served.column("logged_at"), pa.scalar(when, TIME)))
    served = served.filter(mask)
    rows = [compare(name, training.column(name), served.column(name))
            for name in spec.features if name in served.column_names]
    if load is not None and served.num_rows:
        answers = np.asarray(load(model.path).predict(
            _matrix(dataset.read(split).select(dataset.features))),
                             dtype=np.float64).reshape(-1)
        logged_answers = served.column("prediction")
        if pa.types.is_floating(logged_answers.type):
            rows.append(compare("prediction", pa.chunked_array([pa.array(answers)]),
                                logged_answers))
    return DriftReport(model=model_name, version=model.version, rows=rows,
                       training_rows=training.num_rows, serving_rows=served.num_rows)


def _utc(value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"start_time/end_time: expected a datetime, got {value!r}")
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _matrix(features: pa.Table) -> np.ndarray:
    columns = [pc.cast(c, pa.float64()).to_numpy(zero_copy_only=False) for c in features.columns]
    return np.column_stack(columns) if columns else np.zeros((features.num_rows, 0))
