"""Queries and point-in-time joins against a brute-force reference and against DuckDB."""

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakecore
from lakecore import SchemaError, ValidationError

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
TS = pa.timestamp("us", "UTC")


def day(d: float) -> dt.datetime:
    return BASE + dt.timedelta(days=d)


def latest(rows: dict, key, t, ttl_days, now=None):
    """The reference: the stored row of ``key`` with the greatest time <= t (and >= t - ttl);
    ``t`` None means the latest row of the key (no older than ``now`` - ttl)."""
    best = None
    floor = None if ttl_days is None else (t if t is not None else now) - dt.timedelta(days=ttl_days)
    for (k, time), value in rows.items():
        if k != key or (t is not None and time > t):
            continue
        if floor is not None and time < floor:
            continue
        if best is None or time > best[0]:
            best = (time, value)
    return None if best is None else best[1]


histories = st.lists(  # inserts: lists of (key, day, value)
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 8), st.floats(-5, 5)), min_size=1,
             max_size=8), min_size=1, max_size=4)


def _history_lake(lake, a_history, b_history, ttl):
    """Groups ``a`` and ``b`` (keyed by ``id``, timed by ``ts``) and, per group, the model of
    its stored rows: (key, time) -> value."""
    a = lake.create_feature_group("a", primary_key="id", event_time="ts")
    b = lake.create_feature_group("b", primary_key="id", event_time="ts",
                                  ttl=None if ttl is None else dt.timedelta(days=ttl))
    models = {}
    for group, history in [(a, a_history), (b, b_history)]:
        rows = {}
        for batch in history:
            group.insert({"id": [k for k, _, _ in batch],
                          "ts": pa.array([day(d) for _, d, _ in batch], TS),
                          "v": [v for _, _, v in batch]})
            for k, d, v in batch:
                rows[(k, day(d))] = v
        models[group.name] = rows
    return a, b, models


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(a_history=histories, b_history=histories,
       ttl=st.one_of(st.none(), st.integers(1, 3)),
       spine=st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(-1, 10))),
                      max_size=12),
       with_time=st.booleans())
def test_point_in_time_join_matches_brute_force(tmp_path_factory, a_history, b_history, ttl,
                                                 spine, with_time):
    with lakecore.open(tmp_path_factory.mktemp("lake")) as lake:
        a, b, models = _history_lake(lake, a_history, b_history, ttl)
        columns = spine_columns(spine, with_time)
        query = a.select(["v"]).join(b.select(["v"]), prefix="b_")
        now = dt.datetime.now(dt.timezone.utc)
        got = query.read(spine=pa.table(columns), latest=not with_time)
        assert got.column_names == list(columns) + ["v", "b_v"]
        assert got.column("extra").to_pylist() == list(range(len(spine)))   # spine order
        assert_as_the_reference(got, spine, with_time, models, ttl, now)


def spine_columns(spine: list, with_time: bool) -> dict:
    """A spine of (key, day or None) pairs, with its row number as "extra"."""
    columns = {"id": [k for k, _ in spine], "extra": list(range(len(spine)))}
    if with_time:
        columns["ts"] = pa.array([None if d is None else day(d) for _, d in spine], TS)
    return columns


def assert_as_the_reference(got: pa.Table, spine: list, with_time: bool, models: dict, ttl,
                            now: dt.datetime) -> None:
    """Every row of ``got`` holds ``latest``'s answer for a (no ttl) and b (``ttl``)."""
    for i, (k, d) in enumerate(spine):
        if with_time and d is None:
            want = (None, None)      # a null time matches nothing
        else:
            t = day(d) if with_time else None
            want = (latest(models["a"], k, t, None),
                    latest(models["b"], k, t, ttl, now=now))
        assert (got.column("v")[i].as_py(), got.column("b_v")[i].as_py()) == want


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(a_history=histories, b_history=histories,
       ttl=st.one_of(st.none(), st.integers(1, 3)),
       spine=st.lists(st.tuples(st.integers(0, 5), st.integers(-1, 10)), max_size=10),
       time_name=st.sampled_from(["ts", "label_time", "t", "at", "when"]),
       named=st.booleans(), extra_ts=st.booleans(), with_training_data=st.booleans())
def test_spines_never_receive_a_row_later_than_their_time(
        tmp_path_factory, a_history, b_history, ttl, spine, time_name, named, extra_ts,
        with_training_data):
    """Random spines with random time column names, passed with or without spine_time: each
    either raises SchemaError (naming the column it looked for) or gets, for every row, the
    rows as of its own time, never a later one."""
    with lakecore.open(tmp_path_factory.mktemp("lake")) as lake:
        a, b, models = _history_lake(lake, a_history, b_history, ttl)
        times = [day(d) for _, d in spine]
        columns = {"id": [k for k, _ in spine], time_name: pa.array(times, TS)}
        if extra_ts and time_name != "ts":          # a decoy column named like the root's time
            columns["ts"] = pa.array([day(100)] * len(spine), TS)
        query = a.select(["v"]).join(b.select(["v"]), prefix="b_")
        kwargs = {"spine_time": time_name} if named else {}
        if with_training_data:
            view = lake.create_feature_view("view", query=query)
            read = lambda: view.create_training_data(spine=pa.table(columns),  # noqa: E731
                                                     **kwargs).read(with_keys=True)
        else:
            read = lambda: query.read(spine=pa.table(columns), **kwargs)  # noqa: E731
        if not named and time_name != "ts" and not extra_ts:
            with pytest.raises(SchemaError, match="no column 'ts'.*spine_time"):
                read()
            return
        got = read()
        used = times if named or time_name == "ts" else [day(100)] * len(spine)
        for i, (k, _) in enumerate(spine):
            t = used[i]
            for column, group in (("v", "a"), ("b_v", "b")):
                value = got.column(column)[i].as_py()
                stored = {(kk, tt): v for (kk, tt), v in models[group].items() if kk == k}
                assert value == latest(stored, k, t, ttl if group == "b" else None)
                if value is not None:       # never a row later than the spine time
                    assert any(tt <= t and v == value for (_, tt), v in stored.items())
        assert got.column(time_name).to_pylist() == times       # spine columns kept as they are


def test_root_rows_are_the_spine_without_one(tmp_path):
    with lakecore.open(tmp_path) as lake:
        tx = lake.create_feature_group("tx", primary_key="card", event_time="at")
        tx.insert({"card": [2, 1, 1], "at": pa.array([day(2), day(3), day(1)], TS),
                   "amount": [20.0, 30.0, 10.0]})
        profile = lake.create_feature_group("profile", primary_key="card")   # no event time
        profile.insert({"card": [1, 2], "segment": ["a", "b"]})
        got = tx.select_all().join(profile.select_all()).read(start_time=day(1.5))
        assert got.to_pydict() == {"card": [2, 1], "at": [day(2), day(3)],
                                   "amount": [20.0, 30.0], "segment": ["b", "a"]}


def test_spine_columns_win_and_join_on_output_columns(tmp_path):
    with lakecore.open(tmp_path) as lake:
        tx = lake.create_feature_group("tx", primary_key="card", event_time="at")
        tx.insert({"card": [1], "at": pa.array([day(0)], TS), "merchant": [7], "amount": [5.0]})
        merchants = lake.create_feature_group("merchants", primary_key="merchant_id")
        merchants.insert({"merchant_id": [7], "country": ["FR"]})
        query = tx.select(["merchant", "amount"]).join(merchants.select(["country"]),
                                                      on="merchant")
        spine = {"card": [1], "at": pa.array([day(1)], TS), "amount": [99.0]}
        got = query.read(spine=spine)
        assert got.to_pylist() == [{"card": 1, "at": day(1), "amount": 99.0, "merchant": 7,
                                    "country": "FR"}]


def test_a_spine_without_event_times_is_refused_unless_latest_is_asked_for(tmp_path):
    with lakecore.open(tmp_path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts")
        fg.insert({"id": [1, 1], "ts": pa.array([day(1), day(2)], TS), "v": [1.0, 2.0]})
        with pytest.raises(SchemaError, match="no column 'ts'.*spine_time=.*latest=True"):
            fg.select_all().read(spine={"id": [1, 2]})
        got = fg.select_all().read(spine={"id": [1, 2]}, latest=True)
        assert got.column("v").to_pylist() == [2.0, None]
        assert got.column_names == ["id", "v"]
        # a time column under another name: as of it when named, refused when not
        spine = {"id": [1, 1], "label_time": pa.array([day(1.5), day(3)], TS)}
        with pytest.raises(SchemaError, match="'ts'"):
            fg.select_all().read(spine=spine)
        got = fg.select_all().read(spine=spine, spine_time="label_time")
        assert got.column("v").to_pylist() == [1.0, 2.0]
        assert got.column_names == ["id", "label_time", "v"]
        with pytest.raises(SchemaError, match="'when'"):
            fg.select_all().read(spine=spine, spine_time="when")
        with pytest.raises(ValidationError, match="latest"):
            fg.select_all().read(spine=spine, latest="yes")


def test_latest_rows_count_the_ttl_back_from_now(tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    with lakecore.open(tmp_path) as lake:
        keyed = lake.create_feature_group("keys", primary_key="id")
        keyed.insert({"id": [1, 2, 3]})
        fg = lake.create_feature_group("g", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(days=2))
        fg.insert({"id": [1, 1, 2, 3], "v": [1.0, 2.0, 3.0, 4.0],
                   "ts": pa.array([now - dt.timedelta(days=5), now - dt.timedelta(days=1),
                                   now - dt.timedelta(days=3), now + dt.timedelta(days=1)], TS)})
        query = keyed.select_all().join(fg.select_all())
        with pytest.raises(SchemaError, match="'keys' has none.*latest=True"):
            query.read()                # the root's rows carry no time to join 'g' as of
        assert query.read(latest=True).column("v").to_pylist() == [2.0, None, 4.0]
        # without a spine, the root's latest row per key (within its ttl) is the spine
        got = fg.select_all().read(latest=True)
        assert got.column("id").to_pylist() == [1, 3]
        assert got.column("v").to_pylist() == [2.0, 4.0]


def test_query_errors(tmp_path):
    with lakecore.open(tmp_path) as lake:
        a = lake.create_feature_group("a", primary_key="id", event_time="ts")
        a.insert({"id": [1], "ts": pa.array([day(0)], TS), "v": [1.0]})
        b = lake.create_feature_group("b", primary_key="id", event_time="ts")
        b.insert({"id": [1], "ts": pa.array([day(0)], TS), "v": [2.0]})
        with pytest.raises(SchemaError, match="'v'.*prefix"):
            a.select_all().join(b.select_all()).read()
        with pytest.raises(SchemaError, match="missing join key column 'id'"):
            a.select_all().read(spine={"key": [1]})
        with pytest.raises(SchemaError, match="'nope'"):
            a.select(["nope"])
        with pytest.raises(SchemaError, match="'ts'.*timestamp"):
            a.select_all().read(spine={"id": [1], "ts": ["yesterday"]})
        with pytest.raises(SchemaError, match="no column 'ts'"):
            a.select_all().read(spine={"id": [1]}, start_time=day(0))
        with pytest.raises(SchemaError, match="no event time column 'ts'.*start_time"):
            a.select_all().read(spine={"id": [1]}, start_time=day(0), latest=True)
        with pytest.raises(ValidationError, match="spine_time.*no spine"):
            a.select_all().read(spine_time="ts")
        with pytest.raises(SchemaError, match="'card'"):
            a.select_all().join(b.select_all(), on="card", prefix="b_").read()
        with pytest.raises(ValidationError, match="before"):
            a.select_all().read(start_time=day(2), end_time=day(1))
        empty = lake.create_feature_group("empty", primary_key="id")
        with pytest.raises(ValidationError, match="no schema"):
            empty.select_all()


def test_agrees_with_duckdb_asof_join(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    rng = np.random.default_rng(7)
    n, keys = 20_000, 500
    times = rng.integers(0, 10**9, n)
    with lakecore.open(tmp_path) as lake:
        fg = lake.create_feature_group("f", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(seconds=10**8 // 10**6 * 30))
        rows = pa.table({"id": rng.integers(0, keys, n), "ts": pa.array(times, TS),
                         "v": rng.random(n)})
        fg.insert(rows)
        stored = fg.read()
        spine = pa.table({"id": rng.integers(0, keys + 50, 5000),
                          "ts": pa.array(rng.integers(0, 10**9, 5000), TS),
                          "row": np.arange(5000)})
        got = fg.select_all().read(spine=spine)
        ttl_us = fg.ttl // dt.timedelta(microseconds=1)
        con = duckdb.connect()
        con.register("s", spine)
        con.register("f", stored)
        want = con.sql(f"""
            SELECT s.row, CASE WHEN f.ts >= s.ts - INTERVAL {ttl_us} MICROSECOND THEN f.v END AS v
            FROM s ASOF LEFT JOIN f ON s.id = f.id AND s.ts >= f.ts ORDER BY s.row""").to_arrow_table()
        assert got.column("v").to_pylist() == want.column("v").to_pylist()


def test_files_out_of_the_spines_reach_are_not_read(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKECORE_COMPACT_FAN_IN", "0")     # one file per insert
    from lakecore.offline import table as offline_table

    with lakecore.open(tmp_path) as lake:
        fg = lake.create_feature_group("f", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(days=2))
        for month in range(6):            # one file per month
            fg.insert({"id": [1, 2], "ts": pa.array([day(30 * month), day(30 * month + 1)], TS),
                       "v": [float(month), float(month) + 0.5]})
        read = []
        real = offline_table.read_parquet
        monkeypatch.setattr(offline_table, "read_parquet",
                            lambda path, *a, **kw: read.append(path) or real(path, *a, **kw))
        spine = {"id": [1, 2, 2], "ts": pa.array([day(61), day(62), day(95)], TS)}
        got = fg.select_all().read(spine=spine)
        assert got.column("v").to_pylist() == [2.0, 2.5, None]   # day 91 is 4 days before 95
        assert len(read) == 2            # months 2 and 3 only


def test_groups_sharing_a_key_are_joined_together_in_query_order(tmp_path):
    with lakecore.open(tmp_path) as lake:
        tx = lake.create_feature_group("tx", primary_key="card", event_time="at")
        tx.insert({"card": [1], "at": pa.array([day(0)], TS), "merchant": [7]})
        merchants = lake.create_feature_group("merchants", primary_key="merchant_id")
        merchants.insert({"merchant_id": [7], "country": ["FR"]})
        limits = lake.create_feature_group("limits", primary_key="card", event_time="at")
        limits.insert({"card": [1], "at": pa.array([day(0)], TS), "limit": [100.0]})
        narrow = lake.create_feature_group("narrow", primary_key="card")
        narrow.insert({"card": pa.array([1], pa.int32()), "tier": ["gold"]})
        query = (tx.select_all().join(merchants.select_all(), on="merchant")
                 .join(limits.select_all()).join(narrow.select_all()))
        got = query.read(spine={"card": [1, 2], "at": pa.array([day(1), day(1)], TS)})
        assert got.column_names == ["card", "at", "merchant", "country", "limit", "tier"]
        assert got.to_pylist()[0] == {"card": 1, "at": day(1), "merchant": 7, "country": "FR",
                                      "limit": 100.0, "tier": "gold"}
        assert got.to_pylist()[1]["tier"] is None


def test_key_codes_as_int32_are_the_same_for_one_and_several_columns():
    from lakecore.base.keys import key_codes

    left = pa.table({"a": [1, 2, 3, None, 2], "b": ["x", "y", "x", "y", "y"], "c": [1, 1, 2, 2, 1]})
    right = pa.table({"a": [3, 2, 1, 2], "b": ["x", "y", "z", "y"], "c": [2, 1, 1, 2]})
    for names in ([], ["a"], ["b"], ["a", "b"], ["a", "b", "c"]):
        wide = key_codes(left, right, names, names)
        narrow = key_codes(left, right, names, names, code_dtype=np.int32)
        assert narrow[0].dtype == narrow[1].dtype == np.int32
        assert (narrow[0].tolist(), narrow[1].tolist(), narrow[2]) == \
            (wide[0].tolist(), wide[1].tolist(), wide[2])
