"""The model registry and in-process serving.

A model version's artifact (a file or a folder) is copied into ``<lake>/models/NAME/vN/``,
made read-only and hashed file by file. Its ``hash`` covers those digests, its parameters,
its metrics and its training dataset's hash, so ``verify()`` can prove which data made it.
Aliases ("production", "staging", ...) point at versions; moving one is a deployment, and a
``Predictor`` following an alias picks the move up on ``reload()``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.files import fsync_path, remove_tree
from lakecore.base.storage_errors import guard_storage, storage_error
from lakecore.catalog.store import DataFile, ModelSpec, next_version
from lakecore.errors import NotFoundError, ValidationError
from lakecore.base.hashing import digest_file, digest_record

if TYPE_CHECKING:
    from lakecore.lake import Lake
    from lakecore.training.datasets import TrainingDataset


def model_hash(spec: ModelSpec) -> str:
    return digest_record({
        "files": [[os.path.relpath(f.path, spec.artifact), f.sha256] for f in spec.files],
        "params": spec.params, "metrics": spec.metrics,
        "training_data": None if spec.training_data is None else spec.training_data[3],
    })


@guard_storage()
class ModelVersion:
    def __init__(self, lake: Lake, spec: ModelSpec):
        self._lake = lake
        self._spec = spec

    name = property(lambda self: self._spec.name)
    version = property(lambda self: self._spec.version)
    hash = property(lambda self: self._spec.hash)
    description = property(lambda self: self._spec.description)
    params = property(lambda self: dict(self._spec.params))
    metrics = property(lambda self: dict(self._spec.metrics))

    @property
    def path(self) -> str:
        """The read-only copy of the artifact inside the lake."""
        return os.path.join(self._lake.path, self._spec.artifact)

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._spec.created_at_ms / 1000, dt.timezone.utc)

    @property
    def aliases(self) -> list[str]:
        aliases = self._lake.catalog.state().aliases.get(self.name, {})
        return sorted(a for a, v in aliases.items() if v == self.version)

    @property
    def training_data(self) -> TrainingDataset | None:
        ref = self._spec.training_data
        if ref is None:
            return None
        return self._lake.feature_view(ref[0], ref[1]).training_data(ref[2])

    def __repr__(self) -> str:
        return f"ModelVersion({self.name!r}, version={self.version})"


def _check_values(values: Any, argument: str, numbers: bool) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ValidationError(f"{argument}: expected a dict with str keys, got {values!r}")
    if numbers:
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValidationError(f"{argument}: {k!r} must be a finite number, got {v!r}")
        return {k: float(v) for k, v in values.items()}
    try:
        return msgspec.json.decode(msgspec.json.encode(values))
    except (TypeError, msgspec.EncodeError) as exc:
        raise ValidationError(f"{argument}: values must be JSON-like ({exc})") from None


def _make_read_only(root: str) -> None:
    for folder, dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    for folder, dirs, files in os.walk(root, topdown=False):
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
                 | stat.S_IROTH | stat.S_IXOTH)


def _make_writable(root: str) -> None:
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, stat.S_IRWXU)
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IWUSR)


def _remove_orphans(folder: str, home: str) -> None:
    """Remove what a writer killed mid-register left in a model's folder: staging folders, and
    the folder of the version about to be registered (copied, but never in the catalog). The
    caller holds the writer lock, so no one else is writing there."""
    if not os.path.isdir(folder):
        return
    target = os.path.basename(home)
    for entry in os.listdir(folder):
        if entry == target or entry.startswith(".staging-"):
            path = os.path.join(folder, entry)
            _make_writable(path)
            shutil.rmtree(path, ignore_errors=True)


@guard_storage()
class ModelRegistry:
    """``lake.models``: register, find, alias and delete model versions."""

    def __init__(self, lake: Lake):
        self._lake = lake

    def _specs(self, name: str) -> list[ModelSpec]:
        return sorted((m for m in self._lake.catalog.state().models if m.name == name),
                      key=lambda m: m.version)

    def register(self, name: str, artifact: str | os.PathLike[str], *,
                 training_data: TrainingDataset | None = None, metrics: dict | None = None,
                 params: dict | None = None, description: str = "") -> ModelVersion:
        """Copy ``artifact`` (a file or a folder) into the lake as the next version of
        ``name``."""
        from lakecore.lake import check_name
        from lakecore.training.datasets import TrainingDataset

        lake = self._lake
        name = check_name(name, "model name")
        source = os.fspath(artifact)
        if not os.path.exists(source):
            raise NotFoundError(f"artifact: no file or folder at {source}")
        metrics = _check_values(metrics, "metrics", numbers=True)
        params = _check_values(params, "params", numbers=False)
        if training_data is not None and not isinstance(training_data, TrainingDataset):
            raise ValidationError(f"training_data: expected a TrainingDataset, got "
                                  f"{type(training_data).__name__}")
        if not isinstance(description, str):
            raise ValidationError(f"description: expected a str, got {description!r}")
        with lake._writing(f"register model {name!r}"):
            version = next_version(lake.catalog.state(), f"model:{name}",
                                   [m.version for m in self._specs(name)])
            home = os.path.join("models", name, f"v{version}")
            staging = os.path.join(lake.path, "models", name, f".staging-{uuid.uuid4().hex}")
            base = os.path.basename(os.path.normpath(source))
            _remove_orphans(os.path.join(lake.path, "models", name), home)
            try:
                os.makedirs(staging)
                target = os.path.join(staging, base)
                try:
                    if os.path.isdir(source):
                        shutil.copytree(source, target)
                    else:
                        shutil.copy2(source, target)
                except OSError as exc:  # the error may name the source: say where it went
                    raise storage_error(exc, lake, f"model {name!r}: the artifact could not "
                                                   f"be copied into the lake: ",
                                        path=os.path.join(lake.path, home)) from exc
                files = []
                for folder, _, names in sorted(os.walk(staging)):
                    for file_name in sorted(names):
                        path = os.path.join(folder, file_name)
                        with open(path, "rb") as f:
                            os.fsync(f.fileno())
                        relative = os.path.join(home, os.path.relpath(path, staging))
                        files.append(DataFile(path=relative, sha256=digest_file(path),
                                              rows=os.path.getsize(path)))
                _make_read_only(staging)
                os.rename(staging, os.path.join(lake.path, home))
                fsync_path(os.path.join(lake.path, "models", name))
            except BaseException:
                if os.path.exists(staging):
                    _make_writable(staging)
                    shutil.rmtree(staging, ignore_errors=True)
                raise
            td = None if training_data is None else [
                training_data._spec.view, training_data._spec.view_version,
                training_data.version, training_data.hash]
            spec = ModelSpec(name=name, version=version, artifact=os.path.join(home, base),
                             files=files, params=params, metrics=metrics, training_data=td,
                             description=description, created_at_ms=time.time_ns() // 1_000_000,
                             hash="")
            spec = msgspec.structs.replace(spec, hash=model_hash(spec))
            lake.catalog.update(lambda s: s.models.append(spec))
            lake.audit.append("register_model", f"model:{name}@{version}", spec.hash)
        return ModelVersion(lake, spec)

    def get(self, name: str, version: int | None = None, *,
            alias: str | None = None) -> ModelVersion:
        """A version by number or alias (the latest when neither is given)."""
        self._lake._check_open()
        specs = self._specs(name)
        if not specs:
            raise NotFoundError(f"no model named {name!r}")
        if alias is not None:
            version = self._lake.catalog.state().aliases.get(name, {}).get(alias)
            if version is None:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        if version is None:
            return ModelVersion(self._lake, specs[-1])
        spec = next((m for m in specs if m.version == version), None)
        if spec is None:
            raise NotFoundError(f"model {name!r} has no version {version!r}")
        return ModelVersion(self._lake, spec)

    def versions(self, name: str) -> list[ModelVersion]:
        self._lake._check_open()
        return [ModelVersion(self._lake, m) for m in self._specs(name)]

    def list(self) -> list[str]:
        """The registered model names."""
        self._lake._check_open()
        return sorted({m.name for m in self._lake.catalog.state().models})

    def best(self, name: str, metric: str, *, mode: str = "max") -> ModelVersion:
        """The version with the highest (``mode="max"``) or lowest metric."""
        if mode not in ("max", "min"):
            raise ValidationError(f"mode: expected 'max' or 'min', got {mode!r}")
        scored = [m for m in self.versions(name) if metric in m._spec.metrics]
        if not scored:
            raise NotFoundError(f"no version of model {name!r} has metric {metric!r}")
        pick = max if mode == "max" else min
        return pick(scored, key=lambda m: m._spec.metrics[metric])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        from lakecore.lake import check_name

        alias = check_name(alias, "alias")
        with self._lake._writing(f"set alias {alias!r} of model {name!r}"):
            target = self.get(name, version)
            self._lake.catalog.update(
                lambda s: s.aliases.setdefault(name, {}).__setitem__(alias, target.version))
            self._lake.audit.append(f"set_alias:{alias}", f"model:{name}@{target.version}",
                                    target.hash)

    def delete(self, name: str, version: int) -> None:
        """Delete a model version and its artifact; refused (``LakeError``) while an alias
        points to it. The deletion is audited and its version number is never used again.

        Examples
        --------
        >>> import tempfile, os, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> _ = open(artifact, "wb").write(b"weights")
        >>> _ = lake.models.register("scorer", artifact)
        >>> lake.models.delete("scorer", 1)
        >>> lake.models.register("scorer", artifact).version
        2
        >>> lake.close()
        """
        with self._lake._writing(f"delete model {name!r} version {version}"):
            target = self.get(name, version)
            pointing = target.aliases
            if pointing:
                raise ValidationError(f"model {name!r} version {version} is aliased as "
                                      f"{', '.join(pointing)}; move the alias first")

            def drop(state):
                state.models = [m for m in state.models
                                if (m.name, m.version) != (name, version)]
                family = f"model:{name}"
                state.retired[family] = max(state.retired.get(family, 0), version)
            self._lake.catalog.update(drop)
            self._lake.audit.append("delete_model", f"model:{name}@{version}", target.hash)
            remove_tree(os.path.join(self._lake.path, "models", name, f"v{version}"))


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

    def __init__(self, lake: Lake, name: str, version: int | None, alias: str | None,
                 load: Callable[[str], Any], fill: float | None = None):
        if not callable(load):
            raise ValidationError("load: expected a function taking the artifact path")
        if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float))):
            raise ValidationError(f"fill: expected a number or None, got {fill!r}")
        self._lake, self._name, self._version, self._alias, self._load = \
            lake, name, version, alias, load
        self._fill = None if fill is None else float(fill)
        self.model_version: ModelVersion | None = None
        self.model: Any = None
        self.reload()

    def reload(self) -> bool:
        """Follow the alias (or version) again; True when another version was loaded."""
        found = self._lake.models.get(self._name, self._version, alias=self._alias)
        if self.model_version is not None and found.version == self.model_version.version:
            return False
        if found._spec.training_data is None:
            raise ValidationError(f"model {self._name!r} version {found.version} has no "
                                  f"training data, so its features are unknown")
        self.model = self._load(found.path)
        self.model_version = found
        return True

    @property
    def version(self) -> int:
        return self.model_version.version

    def features(self, keys: Any) -> np.ndarray:
        """The model's input matrix for ``keys``: online feature vectors through its training
        data's feature view and transforms, float64, in training column order. Missing
        values (unknown keys, rows past the ttl) are NaN, or the predictor's ``fill``."""
        view_name, view_version, td_version, _ = self.model_version._spec.training_data
        view = self._lake.feature_view(view_name, view_version)
        vectors = view.feature_vectors(keys, training_data=td_version)
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
        for a scikit-learn classifier's probabilities."""
        if not isinstance(method, str) or not method.isidentifier():
            raise ValidationError(f"method: expected the name of a method, got {method!r}")
        call = getattr(self.model, method, None)
        if not callable(call):
            raise ValidationError(f"method: model {self._name!r} version {self.version} "
                                  f"({type(self.model).__name__}) has no method {method!r}")
        return call(self.features(keys))
