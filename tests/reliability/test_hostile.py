"""Hostile input: every call either succeeds correctly or raises a LakeError, and a failed
call leaves the lake's files exactly as they were."""

import datetime as dt
import math
import tempfile

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakecore
from lakecore import LakeError
from tests.lake_state import lake_digest

TS = pa.timestamp("us", "UTC")
SCHEMA = pa.schema([("id", pa.int64()), ("ts", TS), ("v", pa.float64()), ("s", pa.string())])

values = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5), st.text(min_size=2000, max_size=3000), st.booleans(), st.binary(max_size=4),
    st.datetimes(timezones=st.sampled_from([None, dt.timezone.utc])), st.dates(),
    st.lists(st.integers(0, 3), max_size=2))
column_names = st.sampled_from(["id", "ts", "v", "s", "extra", "ïd", ""])


@st.composite
def hostile_tables(draw):
    n = draw(st.integers(0, 4))
    names = draw(st.lists(column_names, min_size=0, max_size=5, unique=True))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["good", "values"]))
        if kind == "good" and name in SCHEMA.names:
            t = SCHEMA.field(name).type
            good = {"id": st.integers(0, 5), "ts": st.datetimes(timezones=st.just(dt.timezone.utc)),
                    "v": st.floats(), "s": st.text(max_size=3)}[name]
            columns[name] = (draw(st.lists(st.one_of(st.none(), good), min_size=n, max_size=n)), t)
        else:
            columns[name] = (draw(st.lists(values, min_size=n, max_size=n)), None)
    return columns


def as_arrow(columns):
    """The hostile columns as Arrow (None when pyarrow itself cannot build them: then the
    raw dict is passed, which lakecore must refuse cleanly)."""
    try:
        return pa.table({name: pa.array(vals, t) for name, (vals, t) in columns.items()})
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return {name: vals for name, (vals, _) in columns.items()}


_lake = {}


def shared_lake():
    if not _lake:
        path = tempfile.mkdtemp()
        lake = lakecore.open(path)
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts", schema=SCHEMA,
                                       online=True)
        fg.insert({"id": [1], "ts": pa.array([dt.datetime(2024, 1, 1)], TS), "v": [1.0],
                   "s": ["a"]})
        lake.create_feature_view("view", query=fg.select_all())
        _lake.update(path=path, lake=lake, fg=fg)
    return _lake["path"], _lake["lake"], _lake["fg"]


def attempt(path, call) -> bool:
    """Run ``call``: True if it succeeded; on a LakeError the lake must be untouched."""
    before = lake_digest(path)
    try:
        call()
        return True
    except LakeError:
        assert lake_digest(path) == before, "a failed call changed the lake"
        return False


settings_ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(table=hostile_tables())
def test_hostile_inserts(table):
    path, lake, fg = shared_lake()
    data = as_arrow(table)
    rows_before = fg.read().num_rows
    if attempt(path, lambda: fg.insert(data)):
        stored = fg.read()
        assert stored.schema == SCHEMA and stored.num_rows >= rows_before
        assert stored.column("id").null_count == 0 and stored.column("ts").null_count == 0


@settings_
@given(table=hostile_tables())
def test_hostile_keys_and_spines(table):
    path, lake, fg = shared_lake()
    data = as_arrow(table)
    attempt(path, lambda: fg.online_read(data))
    attempt(path, lambda: fg.select_all().read(spine=data))
    attempt(path, lambda: lake.feature_view("view").feature_vectors(data))
    attempt(path, lambda: fg.delete(data))


def test_empty_and_huge_inputs():
    path, lake, fg = shared_lake()
    assert attempt(path, lambda: fg.insert(SCHEMA.empty_table()))
    assert fg.online_read(SCHEMA.empty_table().select(["id"])).num_rows == 0
    huge = "ü" * 1_000_000
    assert attempt(path, lambda: fg.insert({"id": [3], "ts": pa.array([dt.datetime(2024, 1, 2)], TS),
                                            "v": [math.nan], "s": [huge]}))
    assert fg.online_read({"id": [3]}).column("s").to_pylist() == [huge]
    assert not attempt(path, lambda: fg.insert({"id": [4], "ts": [float("nan")], "v": [1.0],
                                                "s": ["x"]}))
    with pytest.raises(LakeError):
        fg.insert("not a table")
    # found by hypothesis: integers beyond int64 in a dict made pyarrow raise OverflowError
    assert not attempt(path, lambda: fg.insert({"id": [2**64], "ts": [dt.datetime(2024, 1, 1)],
                                                "v": [1.0], "s": ["x"]}))
