"""``Query``: selected columns of a root feature group and the groups joined to it, read
point-in-time correctly onto a spine by the query engine (``lakecore.query.planner``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pyarrow as pa

from lakecore.base.storage_errors import guard_storage
from lakecore.catalog.specs import FeatureGroupSpec, QueryPart, QuerySpec
from lakecore.errors import SchemaError, ValidationError
from lakecore.features.context import LakeContext
from lakecore.query.planner import build


@guard_storage()
class Query:
    """Selected columns of a root group and the groups joined to it; build one with
    ``FeatureGroup.select`` / ``select_all`` and ``join``.

    Examples
    --------
    >>> import datetime as dt, tempfile, lakecore
    >>> lake = lakecore.open(tempfile.mkdtemp())
    >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
    >>> tx = lake.create_feature_group("tx", primary_key="card", event_time="at")
    >>> _ = tx.insert({"card": [1, 1], "at": [day(1), day(4)], "amount": [5.0, 7.0]})
    >>> profile = lake.create_feature_group("profile", primary_key="card")
    >>> _ = profile.insert({"card": [1], "segment": ["gold"]})
    >>> query = tx.select(["amount"]).join(profile.select(["segment"]))
    >>> query.read(spine={"card": [1, 1], "at": [day(2), day(5)]}).to_pydict()["amount"]
    [5.0, 7.0]
    >>> lake.close()
    """

    def __init__(self, ctx: LakeContext, spec: QuerySpec):
        self._ctx = ctx
        self.spec = spec

    def __repr__(self) -> str:
        names = ", ".join(f"{p.group}@{p.version}" for p in self.spec.parts)
        return f"Query({names})"

    def join(self, other: Query, on: str | list[str] | None = None,
             prefix: str | None = None) -> Query:
        """This query with ``other``'s groups joined on: ``on`` names this query's output (or
        spine) columns matched, in order, to ``other``'s primary key (default: columns named
        like that key); ``prefix`` is put before ``other``'s output column names.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> tx = lake.create_feature_group("tx", primary_key="card", event_time="at")
        >>> _ = tx.insert({"card": [1, 1], "at": [day(1), day(4)], "amount": [5.0, 7.0]})
        >>> profile = lake.create_feature_group("profile", primary_key="card")
        >>> _ = profile.insert({"card": [1], "segment": ["gold"]})
        >>> query = tx.select(["amount"]).join(profile.select(["segment"]), prefix="p_")
        >>> query.read().column_names
        ['card', 'at', 'amount', 'p_segment']
        >>> lake.close()
        """
        if not isinstance(other, Query):
            raise ValidationError(f"join: expected a Query (fg.select(...)), got {type(other).__name__}")
        if other._ctx is not self._ctx:
            raise ValidationError("join: both queries must come from the same Lake object")
        if prefix is not None and (not isinstance(prefix, str) or not prefix):
            raise ValidationError(f"prefix: expected a non-empty str or None, got {prefix!r}")
        group = self._ctx.group_spec(other.spec.root.group, other.spec.root.version)
        if on is not None:
            on = [on] if isinstance(on, str) else list(on)
            if not on or not all(isinstance(c, str) for c in on):
                raise SchemaError(f"on: expected a column name or a list of names, got {on!r}")
            if len(on) != len(group.primary_key):
                raise SchemaError(
                    f"on: {len(on)} column(s) {on} for the {len(group.primary_key)} primary key "
                    f"column(s) {group.primary_key} of feature group {group.name!r}")
        joined = msgspec.structs.replace(other.spec.root, on=on, prefix=prefix)
        return Query(self._ctx, QuerySpec(root=self.spec.root,
                                          joins=[*self.spec.joins, joined, *other.spec.joins]))

    def read(self, *, spine: Any = None, spine_time: str | None = None, latest: bool = False,
             start_time: dt.datetime | None = None,
             end_time: dt.datetime | None = None) -> pa.Table:
        """The joined table: one row per spine row, in spine order.

        Parameters
        ----------
        spine : table-like, optional
            The rows to join features to (the root group's rows when None). It must hold the
            root's primary key columns and, when any group of the query has an event_time,
            its event time column; all its columns are kept as they are.
        spine_time : str, optional
            The spine's event time column (default: the root group's event_time name). Every
            group is joined as of it: the row with the same key and the greatest
            ``event_time <=`` the spine's time (and ``>= time - ttl``).
        latest : bool
            Join every group's latest row per key instead (ttl counted back from now);
            without a spine, the root group's latest row per key is the spine.
        start_time, end_time : datetime, optional
            Keep spine rows with ``start_time <= event time < end_time``.

        Raises
        ------
        SchemaError
            The spine lacks a key column, or its event time column when a group has an
            event_time and ``latest`` is False.

        Examples
        --------
        >>> import datetime as dt, tempfile, lakecore
        >>> lake = lakecore.open(tempfile.mkdtemp())
        >>> fg = lake.create_feature_group("spend", primary_key="card", event_time="at")
        >>> day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)
        >>> _ = fg.insert({"card": [1, 1], "at": [day(1), day(5)], "total": [10.0, 50.0]})
        >>> spine = {"card": [1, 1], "label_time": [day(3), day(6)]}
        >>> fg.select(["total"]).read(spine=spine, spine_time="label_time") \\
        ...     .column("total").to_pylist()
        [10.0, 50.0]
        >>> lake.close()
        """
        self._ctx.check_open()
        return build(self._ctx.resolve, self.spec, spine, start_time, end_time,
                     spine_time=spine_time, latest=latest).table


def select_query(ctx: LakeContext, group: FeatureGroupSpec, schema: pa.Schema | None,
                 columns: list[str] | None) -> Query:
    """``group.select(columns)`` (None: every feature column)."""
    if schema is None:
        raise ValidationError(f"feature group {group.name!r} has no schema and no rows yet, so "
                              f"its columns are unknown")
    keys = set(group.primary_key) | {group.event_time}
    if columns is None:
        features = [n for n in schema.names if n not in keys]
    else:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise SchemaError(f"columns: expected a list of column names, got {columns!r}")
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise SchemaError(f"columns: no column {unknown[0]!r} in feature group "
                              f"{group.name!r} (columns: {', '.join(schema.names)})")
        features = list(dict.fromkeys(c for c in columns if c not in keys))
    return Query(ctx, QuerySpec(root=QueryPart(group=group.name, version=group.version,
                                               columns=features)))
