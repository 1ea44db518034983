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
import uuid
from typing import Any

import msgspec

from lakecore.base.files import check_own_folders, fsync_path, remove_tree
from lakecore.base.hashing import digest_file, digest_record
from lakecore.base.refs import check_name, model_ref
from lakecore.base.storage_errors import guard_storage, storage_error
from lakecore.base.times import from_millis, now_millis
from lakecore.catalog.specs import DataFile, ModelSpec, next_version
from lakecore.errors import NotFoundError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.features.feature_view import FeatureView
from lakecore.features.training_dataset import TrainingDataset, view_spec


def model_hash(spec: ModelSpec) -> str:
    return digest_record({
        "files": [[os.path.relpath(f.path, spec.artifact), f.sha256] for f in spec.files],
        "params": spec.params, "metrics": spec.metrics,
        "training_data": None if spec.training_data is None else spec.training_data[3],
    })


@guard_storage()
class ModelVersion:
    """A registered model version; get one from ``lake.models``.

    Attributes
    ----------
    name, version : str, int
    path : str
        The read-only copy of the artifact inside the lake.
    metrics, params : dict
    hash : str
    aliases : list of str
    training_data : TrainingDataset or None
    created_at : datetime.datetime
    description : str
    ref : str
        ``model:NAME@VERSION``.

    Examples
    --------
    >>> import os, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
    >>> with open(artifact, "wb") as f:
    ...     _ = f.write(b"weights")
    >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
    >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
    >>> v2.name, v2.version, v2.metrics, v2.params, v2.ref
    ('scorer', 2, {'auc': 0.86}, {'depth': 4}, 'model:scorer@2')
    >>> os.path.basename(v2.path), v2.training_data is None
    ('model.bin', True)
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, spec: ModelSpec):
        self._ctx = ctx
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
        return os.path.join(self._ctx.path, self._spec.artifact)

    @property
    def created_at(self) -> dt.datetime:
        return from_millis(self._spec.created_at_ms)

    @property
    def aliases(self) -> list[str]:
        aliases = self._ctx.catalog.state().aliases.get(self.name, {})
        return sorted(a for a, v in aliases.items() if v == self.version)

    @property
    def training_data(self) -> TrainingDataset | None:
        ref = self._spec.training_data
        if ref is None:
            return None
        return FeatureView(self._ctx, view_spec(self._ctx, ref[0], ref[1])).training_data(ref[2])

    @property
    def ref(self) -> str:
        """This object's ref (see ``lakecore.base.refs``), as ``lineage`` takes it."""
        return model_ref(self.name, self.version)

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


def _check_artifact(source: str) -> None:
    """ValidationError naming the first entry of an artifact that cannot be copied as a file
    or folder: a dangling link, a link loop, a FIFO, a socket or a device."""
    entries = [source]
    if os.path.isdir(source):
        for folder, dirs, files in os.walk(source):     # followed links are walked too
            entries += [os.path.join(folder, n) for n in dirs + files]
    for entry in entries:
        try:
            found = os.stat(entry)                      # through links: what would be copied
        except OSError as exc:
            raise ValidationError(f"artifact: {entry} is a link that leads nowhere "
                                  f"({exc.strerror}); only files and folders can be "
                                  f"registered") from None
        if not (stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode)):
            raise ValidationError(f"artifact: {entry} is not a file or folder (a FIFO, socket "
                                  f"or device); only files and folders can be registered")


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
    """``lake.models``: register, find, alias and delete model versions.

    Examples
    --------
    >>> import os, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
    >>> with open(artifact, "wb") as f:
    ...     _ = f.write(b"weights")
    >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
    >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
    >>> lake.models.list(), [m.version for m in lake.models.versions("scorer")]
    (['scorer'], [1, 2])
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext):
        self._ctx = ctx

    def _specs(self, name: str) -> list[ModelSpec]:
        return sorted((m for m in self._ctx.catalog.state().models if m.name == name),
                      key=lambda m: m.version)

    def register(self, name: str, artifact: str | os.PathLike[str], *,
                 training_data: TrainingDataset | None = None, metrics: dict | None = None,
                 params: dict | None = None, description: str = "") -> ModelVersion:
        """Copy ``artifact`` (a file or a folder) into the lake as the next version of
        ``name``.

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> v2.version, v2.hash.startswith("sha256:")
        (2, True)
        >>> lake.close()
        """
        ctx = self._ctx
        name = check_name(name, "model name")
        source = os.fspath(artifact)
        if not os.path.exists(source):
            raise NotFoundError(f"artifact: no file or folder at {source}")
        _check_artifact(source)
        metrics = _check_values(metrics, "metrics", numbers=True)
        params = _check_values(params, "params", numbers=False)
        if training_data is not None and not isinstance(training_data, TrainingDataset):
            raise ValidationError(f"training_data: expected a TrainingDataset, got "
                                  f"{type(training_data).__name__}")
        if not isinstance(description, str):
            raise ValidationError(f"description: expected a str, got {description!r}")
        with ctx.writing(f"register model {name!r}"):
            version = next_version(ctx.catalog.state(), f"model:{name}",
                                   [m.version for m in self._specs(name)])
            home = os.path.join("models", name, f"v{version}")
            check_own_folders(ctx.path, home)   # never into a link planted in the lake
            staging = os.path.join(ctx.path, "models", name, f".staging-{uuid.uuid4().hex}")
            base = os.path.basename(os.path.normpath(source))
            _remove_orphans(os.path.join(ctx.path, "models", name), home)
            try:
                os.makedirs(staging)
                target = os.path.join(staging, base)
                try:
                    if os.path.isdir(source):
                        shutil.copytree(source, target)
                    else:
                        shutil.copy2(source, target)
                except OSError as exc:  # the error may name the source: say where it went
                    raise storage_error(exc, ctx, f"model {name!r}: the artifact could not "
                                                   f"be copied into the lake: ",
                                        path=os.path.join(ctx.path, home)) from exc
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
                os.rename(staging, os.path.join(ctx.path, home))
                fsync_path(os.path.join(ctx.path, "models", name))
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
                             description=description, created_at_ms=now_millis(),
                             hash="")
            spec = msgspec.structs.replace(spec, hash=model_hash(spec))
            ctx.record(lambda s: s.models.append(spec), "register_model",
                       model_ref(name, version), spec.hash)
        return ModelVersion(ctx, spec)

    def get(self, name: str, version: int | None = None, *,
            alias: str | None = None) -> ModelVersion:
        """A version by number or alias (the latest when neither is given).

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> lake.models.set_alias("scorer", "production", 1)
        >>> lake.models.get("scorer").version, lake.models.get("scorer", alias="production").version
        (2, 1)
        >>> lake.close()
        """
        self._ctx.check_open()
        specs = self._specs(name)
        if not specs:
            raise NotFoundError(f"no model named {name!r}")
        if alias is not None:
            version = self._ctx.catalog.state().aliases.get(name, {}).get(alias)
            if version is None:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")
        if version is None:
            return ModelVersion(self._ctx, specs[-1])
        spec = next((m for m in specs if m.version == version), None)
        if spec is None:
            raise NotFoundError(f"model {name!r} has no version {version!r}")
        return ModelVersion(self._ctx, spec)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first.

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> [m.version for m in lake.models.versions("scorer")]
        [1, 2]
        >>> lake.close()
        """
        self._ctx.check_open()
        return [ModelVersion(self._ctx, m) for m in self._specs(name)]

    def list(self) -> list[str]:
        """The registered model names.

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> lake.models.list()
        ['scorer']
        >>> lake.close()
        """
        self._ctx.check_open()
        return sorted({m.name for m in self._ctx.catalog.state().models})

    def best(self, name: str, metric: str, *, mode: str = "max") -> ModelVersion:
        """The version with the highest (``mode="max"``) or lowest metric.

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> lake.models.best("scorer", "auc").version, lake.models.best("scorer", "auc", mode="min").version
        (2, 1)
        >>> lake.close()
        """
        if mode not in ("max", "min"):
            raise ValidationError(f"mode: expected 'max' or 'min', got {mode!r}")
        scored = [m for m in self.versions(name) if metric in m._spec.metrics]
        if not scored:
            raise NotFoundError(f"no version of model {name!r} has metric {metric!r}")
        pick = max if mode == "max" else min
        return pick(scored, key=lambda m: m._spec.metrics[metric])

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere).

        Examples
        --------
        >>> import os, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> v1 = lake.models.register("scorer", artifact, metrics={"auc": 0.81})
        >>> v2 = lake.models.register("scorer", artifact, metrics={"auc": 0.86}, params={"depth": 4})
        >>> lake.models.set_alias("scorer", "production", 2)
        >>> v2.aliases
        ['production']
        >>> lake.close()
        """
        alias = check_name(alias, "alias")
        with self._ctx.writing(f"set alias {alias!r} of model {name!r}"):
            target = self.get(name, version)
            self._ctx.record(
                lambda s: s.aliases.setdefault(name, {}).__setitem__(alias, target.version),
                f"set_alias:{alias}", model_ref(name, target.version), target.hash)

    def delete(self, name: str, version: int) -> None:
        """Delete a model version and its artifact; refused (``LakeError``) while an alias
        points to it. The deletion is audited and its version number is never used again.

        Examples
        --------
        >>> import tempfile, os, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
        >>> with open(artifact, "wb") as f:
        ...     _ = f.write(b"weights")
        >>> _ = lake.models.register("scorer", artifact)
        >>> lake.models.delete("scorer", 1)
        >>> lake.models.register("scorer", artifact).version
        2
        >>> lake.close()
        """
        with self._ctx.writing(f"delete model {name!r} version {version}"):
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
            self._ctx.record(drop, "delete_model", model_ref(name, version), target.hash)
            remove_tree(os.path.join(self._ctx.path, "models", name, f"v{version}"))
