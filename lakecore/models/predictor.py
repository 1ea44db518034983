"""``Predictor``: a registered model loaded in this process, scoring keys from the online
store through its training data's feature view and fitted transforms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.arrow import as_table
from lakecore.base.storage_errors import guard_storage
from lakecore.errors import ValidationError
from lakecore.features.context import LakeContext
from lakecore.features.feature_view import FeatureView
from lakecore.features.training_dataset import view_spec
from lakecore.models.prediction_log import PredictionLog
from lakecore.models.registry import ModelRegistry, ModelVersion


@guard_storage()
class Predictor:
    """A model version loaded in this process, scoring keys from the online store.

    Get one from ``Lake.predictor``. ``predict(keys)`` reads each key's online feature
    vector through the model's training data (its feature view, column order and fitted
    transforms), builds a 2-D float64 matrix and calls the model on it; ``reload()`` follows
    an alias that has moved.

    Examples
    --------
    >>> import json, os, tempfile, lakecore
    >>> class Scaler:                       # any object with .predict(X) will do
    ...     def __init__(self, factor):
    ...         self.factor = factor
    ...     def predict(self, X):
    ...         return (self.factor * X[:, 0]).tolist()
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> fg = lake.create_feature_group("spend", primary_key="card", online=True)
    >>> _ = fg.insert({"card": [1, 2], "total": [10.0, 20.0]})
    >>> view = lake.create_feature_view("spend_view", query=fg.select_all())
    >>> td = view.create_training_data()
    >>> artifact = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> with open(artifact, "w") as f:
    ...     json.dump({"factor": 2}, f)
    >>> _ = lake.models.register("doubler", artifact, training_data=td)
    >>> def load(path):
    ...     with open(path) as f:
    ...         return Scaler(json.load(f)["factor"])
    >>> lake.predictor("doubler", load=load, fill=0.0).predict({"card": [2, 1, 7]})
    [40.0, 20.0, 0.0]
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, name: str, version: int | None, alias: str | None,
                 load: Callable[[str], Any], fill: float | None = None,
                 log: PredictionLog | None = None):
        if not callable(load):
            raise ValidationError("load: expected a function taking the artifact path")
        if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float))):
            raise ValidationError(f"fill: expected a number or None, got {fill!r}")
        self._ctx, self._name, self._version, self._alias, self._load = \
            ctx, name, version, alias, load
        self._fill = None if fill is None else float(fill)
        self._log = log
        self.model_version: ModelVersion | None = None
        self.model: Any = None
        self.reload()

    def reload(self) -> bool:
        """Follow the alias (or version) again; True when another version was loaded.

        Examples
        --------
        >>> import json, os, tempfile, lakecore
        >>> class Scaler:
        ...     def __init__(self, factor):
        ...         self.factor = factor
        ...     def predict(self, X):
        ...         return (self.factor * X[:, 0]).tolist()
        >>> def load(path):
        ...     with open(path) as f:
        ...         return Scaler(json.load(f)["factor"])
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", online=True)
        >>> _ = fg.insert({"card": [1, 2], "total": [10.0, 20.0]})
        >>> td = lake.create_feature_view("spend_view", query=fg.select_all()).create_training_data()
        >>> def save(factor):
        ...     path = os.path.join(tempfile.mkdtemp(), "model.json")
        ...     with open(path, "w") as f:
        ...         json.dump({"factor": factor}, f)
        ...     return path
        >>> _ = lake.models.register("scaler", save(2), training_data=td)
        >>> lake.models.set_alias("scaler", "production", 1)
        >>> scorer = lake.predictor("scaler", alias="production", load=load)
        >>> _ = lake.models.register("scaler", save(3), training_data=td)
        >>> lake.models.set_alias("scaler", "production", 2)
        >>> scorer.reload(), scorer.version, scorer.predict({"card": [1]})
        (True, 2, [30.0])
        >>> lake.close()
        """
        found = ModelRegistry(self._ctx).get(self._name, self._version, alias=self._alias)
        if self.model_version is not None and found.version == self.model_version.version:
            return False
        if found._spec.training_data is None:
            raise ValidationError(f"model {self._name!r} version {found.version} has no "
                                  f"training data, so its features are unknown")
        self.model = self._load(found.path)
        self.model_version = found
        self._served_schema: pa.Schema | None = None
        self._log_ident: tuple | None = None    # what one-key rows are logged under
        view_name, view_version, _, _ = found._spec.training_data
        # one view object per model version: its serving plan is made once, not per call
        self._view = FeatureView(self._ctx, view_spec(self._ctx, view_name, view_version))
        return True

    @property
    def version(self) -> int:
        """The model version loaded now."""
        return self.model_version.version

    def features(self, keys: Any) -> np.ndarray:
        """The model's input matrix for ``keys``: online feature vectors through its training
        data's feature view and transforms, float64, in training column order. Missing
        values (unknown keys, rows past the ttl) are NaN, or the predictor's ``fill``.

        Examples
        --------
        >>> import json, os, tempfile, lakecore
        >>> class Scaler:
        ...     def __init__(self, factor):
        ...         self.factor = factor
        ...     def predict(self, X):
        ...         return (self.factor * X[:, 0]).tolist()
        >>> def load(path):
        ...     with open(path) as f:
        ...         return Scaler(json.load(f)["factor"])
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", online=True)
        >>> _ = fg.insert({"card": [1, 2], "total": [10.0, 20.0]})
        >>> td = lake.create_feature_view("spend_view", query=fg.select_all()).create_training_data()
        >>> def save(factor):
        ...     path = os.path.join(tempfile.mkdtemp(), "model.json")
        ...     with open(path, "w") as f:
        ...         json.dump({"factor": factor}, f)
        ...     return path
        >>> _ = lake.models.register("scaler", save(2), training_data=td)
        >>> lake.models.set_alias("scaler", "production", 1)
        >>> scorer = lake.predictor("scaler", alias="production", load=load)
        >>> scorer.features({"card": [2, 9]}).tolist()
        [[20.0], [nan]]
        >>> lake.close()
        """
        return self._matrix(self._served(keys)[2])

    def _served(self, keys: Any) -> tuple[pa.Table, pa.Table, pa.Table]:
        """The request, its features as served (before transforms) and transformed."""
        view, td_version = self._view, self.model_version._spec.training_data[2]
        request = as_table(keys, "keys")
        raw = view.feature_vectors(request, training_data=td_version, untransformed=True)
        return request, raw, view.transform(raw, training_data=td_version)

    def _matrix(self, vectors: pa.Table) -> np.ndarray:
        columns = []
        for column in vectors.columns:
            column = pc.cast(column, pa.float64())
            if self._fill is not None:
                column = pc.fill_null(column, self._fill)
            columns.append(column.to_numpy(zero_copy_only=False))
        if not columns:
            return np.zeros((vectors.num_rows, 0))
        return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)

    def predict(self, keys: Any, *, method: str = "predict") -> Any:
        """The model's answer for ``keys`` (data with the view's join key columns):
        ``model.<method>(X)`` on the matrix of ``features(keys)``; ``method="predict_proba"``
        for a scikit-learn classifier's probabilities.

        Examples
        --------
        >>> import json, os, tempfile, lakecore
        >>> class Scaler:
        ...     def __init__(self, factor):
        ...         self.factor = factor
        ...     def predict(self, X):
        ...         return (self.factor * X[:, 0]).tolist()
        >>> def load(path):
        ...     with open(path) as f:
        ...         return Scaler(json.load(f)["factor"])
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", online=True)
        >>> _ = fg.insert({"card": [1, 2], "total": [10.0, 20.0]})
        >>> td = lake.create_feature_view("spend_view", query=fg.select_all()).create_training_data()
        >>> def save(factor):
        ...     path = os.path.join(tempfile.mkdtemp(), "model.json")
        ...     with open(path, "w") as f:
        ...         json.dump({"factor": factor}, f)
        ...     return path
        >>> _ = lake.models.register("scaler", save(2), training_data=td)
        >>> lake.models.set_alias("scaler", "production", 1)
        >>> scorer = lake.predictor("scaler", alias="production", load=load)
        >>> scorer.predict({"card": [1, 2]})
        [20.0, 40.0]
        >>> lake.close()
        """
        if not isinstance(method, str) or not method.isidentifier():
            raise ValidationError(f"method: expected the name of a method, got {method!r}")
        call = getattr(self.model, method, None)
        if not callable(call):
            raise ValidationError(f"method: model {self._name!r} version {self.version} "
                                  f"({type(self.model).__name__}) has no method {method!r}")
        key = _one_key(keys)
        if key is not None:
            row = self._one_row(key)
            if row is not None:
                raw, matrix = row
                prediction = call(matrix)
                if self._log is not None:
                    ident = self._log_ident
                    if ident is None or ident[0] != tuple(key):
                        ident = self._log_ident = (tuple(key), self._raw_schema(key),
                                                   self.version)
                    self._log.record_row(ident, key, raw, prediction)
                return prediction
        if self._log is None:
            return call(self.features(keys))
        request, raw, vectors = self._served(keys)
        prediction = call(self._matrix(vectors))
        self._log.record(request, raw, prediction, self.version)
        return prediction

    def _one_row(self, key: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray] | None:
        """One key's features as served and its 1-row input matrix, through the serving
        plan's one-key reader (``feature_vector``'s path); None when a value is not a number
        (the batch path then says what is wrong)."""
        plan, raw = self._view.raw_vector(key, self.model_version._spec.training_data[2])
        fill = _NAN if self._fill is None else self._fill
        try:
            values = [fill if v is None or v != v else float(v)
                      for v in plan.transform(raw).values()]
        except (TypeError, ValueError):
            return None
        return raw, np.array([values], dtype=np.float64)

    def _raw_schema(self, key: dict[str, Any]) -> pa.Schema:
        """The features' names and types as served (what one-key rows are logged as), read
        once per model version through the batch path."""
        if self._served_schema is None:
            self._served_schema = self._served({k: [v] for k, v in key.items()})[1].schema
        return self._served_schema

    def flush(self) -> None:
        """Commit the logged predictions now (``log=True``; else nothing to do)."""
        if self._log is not None:
            self._log.flush()

    def close(self) -> None:
        """Commit the logged predictions and stop the log's background thread; the predictor
        may still be used."""
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NAN = float("nan")


def _one_key(keys: Any) -> dict[str, Any] | None:
    """``keys`` as one key's Python values when it is a dict of one-element lists or arrays
    (the common serving call), else None."""
    if type(keys) is not dict or not keys:
        return None
    key = {}
    for name, value in keys.items():
        if type(value) is list or type(value) is tuple:
            if len(value) != 1:
                return None
            value = value[0]
        elif isinstance(value, np.ndarray):
            if value.shape != (1,):
                return None
            value = value[0]
        else:
            return None
        key[name] = value.item() if isinstance(value, np.generic) else value
    return key
