"""Schema evolution of a feature group (``offline.evolution``): adding nullable columns,
widening a column's type, dropping columns. A part of ``FeatureGroup``, kept apart."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lakecore.base.storage_errors import guard_storage
from lakecore.errors import LakeError, ValidationError
from lakecore.features.commits import Commit
from lakecore.offline.evolution import added, dropped, widened
from lakecore.offline.table import Change
from lakecore.online.layout import Layout


@guard_storage()
class SchemaEvolution:
    """``FeatureGroup``'s schema changes (it provides ``_ctx``, ``_table``, ``_schema``,
    ``_layout`` and ``_commit_change``)."""

    def add_columns(self, fields: Any) -> Commit:
        """Add nullable columns (``fields``: a ``pyarrow.Schema`` or list of ``pyarrow.Field``)
        in a commit that rewrites no data: earlier rows read them as nulls, later inserts
        must carry them, and reads as of earlier commits keep their own columns.

        Examples
        --------
        >>> import tempfile, pyarrow as pa, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1], "age": [30]})
        >>> fg.add_columns([pa.field("city", pa.string())]).operation
        'add_columns'
        >>> fg.read().to_pylist(), fg.read(as_of=0).column_names
        ([{'id': 1, 'age': 30, 'city': None}], ['id', 'age'])
        >>> lake.close()
        """
        return self._evolve("add_columns", lambda schema: added(schema, fields))

    def widen(self, column: str, type: pa.DataType) -> Commit:  # noqa: A002 - the API's name
        """Give ``column`` a wider type (int8→int16→int32→int64, int→float64, float32→float64,
        date→timestamp, string→large_string); anything else is a SchemaError. The current
        files are rewritten with it; earlier versions keep the old type.

        Examples
        --------
        >>> import tempfile, pyarrow as pa, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert(pa.table({"id": [1], "age": pa.array([30], pa.int32())}))
        >>> _ = fg.widen("age", pa.int64())
        >>> fg.read().schema.field("age").type, fg.read(as_of=0).schema.field("age").type
        (DataType(int64), DataType(int32))
        >>> lake.close()
        """
        return self._evolve("widen", lambda schema: widened(schema, column, type, self._keys()),
                            rewrite=True)

    def drop_columns(self, names: list[str]) -> Commit:
        """Remove columns (never a key or event_time column, nor one a feature view selects).
        The current files are rewritten without them; earlier versions keep them.

        Examples
        --------
        >>> import tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("users", primary_key="id")
        >>> _ = fg.insert({"id": [1], "age": [30], "tmp": [0.5]})
        >>> _ = fg.drop_columns(["tmp"])
        >>> fg.read().column_names, fg.read(as_of=0).column_names
        (['id', 'age'], ['id', 'age', 'tmp'])
        >>> lake.close()
        """
        def new_schema(schema: pa.Schema) -> pa.Schema:
            schema = dropped(schema, names, self._keys())
            self._refuse_if_selected([n for n in ([names] if isinstance(names, str) else names)])
            return schema
        return self._evolve("drop_columns", new_schema, rewrite=True)

    def _keys(self) -> list[str]:
        return self.primary_key + ([self.event_time] if self.event_time else [])

    def _refuse_if_selected(self, names: list[str]) -> None:
        """LakeError when a feature view of this group selects one of ``names``."""
        for view in self._ctx.catalog.state().feature_views:
            for part in view.query.parts:
                if (part.group, part.version) != (self.name, self.version):
                    continue
                chosen = [n for n in names if n in part.columns or n in view.labels]
                if chosen:
                    raise LakeError(f"drop_columns: feature view {view.name!r} version "
                                    f"{view.version} selects {', '.join(map(repr, chosen))}; "
                                    f"delete that view first")

    def _evolve(self, operation: str, change_schema, rewrite: bool = False) -> Commit:
        """Commit a new schema (``change_schema(old) -> new``): metadata only, or with the
        current files rewritten to it (``rewrite``)."""
        with self._ctx.writing(f"{operation} on {self.name!r}"):
            snapshot = self._table.snapshot()
            schema = self._schema(snapshot)
            if schema is None:
                raise ValidationError(f"{operation}: feature group {self.name!r} has no schema "
                                      f"yet; insert rows first (or create it with schema=)")
            new = change_schema(schema)
            if self.online:
                Layout.of(new, self.primary_key, self.event_time)   # storable online: or refused
                if snapshot.version >= 0:
                    # the rows say which layout they are in, should a crash come between the
                    # commit and their rewrite under the new one
                    self._ctx.online_store.note_layout(self.name, self.version,
                                                       self._layout(schema))
            if rewrite:
                plan = lambda: self._table.plan_rewrite(snapshot, new, operation)  # noqa: E731
            else:
                plan = lambda: Change(operation, [], [], 0, 0, None,  # noqa: E731
                                      data_change=False)
            return self._commit_change(snapshot, new, plan)
