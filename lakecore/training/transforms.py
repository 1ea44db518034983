"""The built-in transformation functions: fitted on a training split, then applied the same way
to training data, batch scoring data and online feature vectors.

- ``standard_scaler``: ``(x - mean) / std`` (population std; 1 when it is 0)
- ``min_max_scaler``: ``(x - min) / (max - min)`` (1 when the range is 0)
- ``robust_scaler``: ``(x - median) / (q75 - q25)`` (1 when the range is 0)
- ``label_encoder``: the sorted train values coded 0..k-1, unseen values -1
- ``one_hot_encoder``: column ``c`` becomes ``c_<value>`` columns (0/1) for the sorted train
  values, at the place of ``c``; unseen values give 0 in every one of them

Nulls stay nulls. Statistics ignore nulls (and NaN for the scalers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.base.arrow import type_kind
from lakecore.catalog.specs import Fitted
from lakecore.errors import SchemaError, ValidationError

SCALERS = ("standard_scaler", "min_max_scaler", "robust_scaler")
ENCODERS = ("label_encoder", "one_hot_encoder")
BUILT_INS = SCALERS + ENCODERS


def check_transforms(transforms: Any) -> dict[str, str]:
    if transforms is None:
        return {}
    if not isinstance(transforms, dict) or not all(isinstance(k, str) for k in transforms):
        raise ValidationError(f"transforms: expected a dict of column name to transform name, "
                              f"got {transforms!r}")
    for column, kind in transforms.items():
        if kind not in BUILT_INS:
            raise ValidationError(f"transforms: unknown transform {kind!r} for column {column!r}; "
                                  f"built-ins: {', '.join(BUILT_INS)}")
    return dict(transforms)


def check_type(column: str, kind: str, data_type: pa.DataType) -> None:
    """SchemaError unless transform ``kind`` applies to a column of ``data_type``."""
    if kind in SCALERS and type_kind(data_type) not in ("integer", "float", "boolean"):
        raise SchemaError(f"transforms: column {column!r} has type {data_type}; {kind} needs "
                          f"numbers (integers, floats or booleans)")
    if kind in ENCODERS and type_kind(data_type) not in ("integer", "string", "boolean"):
        raise SchemaError(f"transforms: column {column!r} has type {data_type}; {kind} takes "
                          f"integers, strings or booleans")


def _floats(column: pa.ChunkedArray | pa.Array, name: str, kind: str) -> np.ndarray:
    check_type(name, kind, column.type)
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return values[~np.isnan(values)]


def fit(table: pa.Table, transforms: dict[str, str]) -> list[Fitted]:
    """Fit each transform on ``table``'s column of that name."""
    fitted = []
    for column, kind in transforms.items():
        if column not in table.column_names:
            raise SchemaError(f"transforms: no feature column {column!r} (features: "
                              f"{', '.join(table.column_names)})")
        data = table.column(column)
        if kind in SCALERS:
            values = _floats(data, column, kind)
            if len(values) == 0:
                fitted.append(Fitted(column=column, kind=kind))
                continue
            if kind == "standard_scaler":
                center, scale = float(values.mean()), float(values.std())
            elif kind == "min_max_scaler":
                center, scale = float(values.min()), float(values.max() - values.min())
            else:
                q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75])
                center, scale = float(median), float(q75 - q25)
            fitted.append(Fitted(column=column, kind=kind, center=center,
                                 scale=scale if scale != 0 and np.isfinite(scale) else 1.0))
        else:
            check_type(column, kind, data.type)
            values = sorted(v for v in pc.unique(data.drop_null()).to_pylist())
            fitted.append(Fitted(column=column, kind=kind, values=values))
    return fitted


def output_names(columns: list[str], fitted: list[Fitted]) -> list[str]:
    """Column names after the transforms (one-hot columns expand in place)."""
    by_column = {f.column: f for f in fitted}
    names = []
    for column in columns:
        f = by_column.get(column)
        if f is not None and f.kind == "one_hot_encoder":
            names.extend(f"{column}_{v}" for v in f.values)
        else:
            names.append(column)
    return names


def apply(table: pa.Table, fitted: list[Fitted]) -> pa.Table:
    """``table`` with the fitted transforms applied to their columns (others unchanged)."""
    by_column = {f.column: f for f in fitted}
    names, arrays = [], []
    for name in table.column_names:
        data = table.column(name)
        f = by_column.get(name)
        if f is None:
            names.append(name)
            arrays.append(data)
        elif f.kind in SCALERS:
            names.append(name)
            arrays.append(pc.divide(pc.subtract(pc.cast(data, pa.float64()), f.center), f.scale))
        elif f.kind == "label_encoder":
            codes = pc.index_in(data, value_set=pa.array(f.values, data.type))
            codes = pc.if_else(pc.is_null(data), pa.scalar(None, pa.int64()),
                               pc.fill_null(pc.cast(codes, pa.int64()), -1))
            names.append(name)
            arrays.append(codes)
        else:
            for value in f.values:
                hit = pc.cast(pc.equal(data, pa.scalar(value, data.type)), pa.int8())
                names.append(f"{name}_{value}")
                arrays.append(hit)
    return pa.table(arrays, names=names)


class RowTransformer:
    """The fitted transforms on one row of Python values (the online feature-vector path):
    the same arithmetic as ``apply``, so the same raw values give the same numbers."""

    def __init__(self, fitted: list[Fitted]):
        self._by_column = {f.column: f for f in fitted}
        self._codes = {f.column: {v: i for i, v in enumerate(f.values)} for f in fitted
                       if f.kind == "label_encoder"}

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self._by_column:
            return row
        out: dict[str, Any] = {}
        for name, value in row.items():
            f = self._by_column.get(name)
            if f is None:
                out[name] = value
            elif f.kind in SCALERS:
                out[name] = None if value is None else (float(value) - f.center) / f.scale
            elif f.kind == "label_encoder":
                out[name] = None if value is None else self._codes[name].get(value, -1)
            else:
                for v in f.values:
                    out[f"{name}_{v}"] = None if value is None else int(value == v)
        return out
