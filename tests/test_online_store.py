"""The online store: latest row per key by event time, ttl, write-through, crash repair."""

import datetime as dt
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import pyarrow as pa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lakecore
from lakecore import SchemaError, ValidationError

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
TS = pa.timestamp("us", "UTC")


def at(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=10) + dt.timedelta(days=days)


class OnlineMachine(RuleBasedStateMachine):
    """Random inserts (older, equal and newer event times), deletes and reopens against a dict
    of the offline rows; online_read must always give each key's row with the greatest time."""

    def __init__(self):
        super().__init__()
        self.path = tempfile.mkdtemp()
        self.lake = lakecore.open(self.path)
        self.fg = self.lake.create_feature_group("g", primary_key="id", event_time="ts",
                                                 online=True)
        self.offline: dict[tuple[int, int], float] = {}

    def teardown(self):
        self.lake.close()
        shutil.rmtree(self.path, ignore_errors=True)

    @rule(batch=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4),
                                   st.floats(allow_nan=False)), min_size=1, max_size=8))
    def insert(self, batch):
        self.fg.insert(pa.table({"id": pa.array([b[0] for b in batch], pa.int64()),
                                 "ts": pa.array([at(b[1]) for b in batch], TS),
                                 "x": pa.array([b[2] for b in batch], pa.float64())}))
        for i, t, x in batch:
            self.offline[(i, t)] = x

    @precondition(lambda self: self.offline)
    @rule(ids=st.lists(st.integers(0, 5), max_size=3))
    def delete(self, ids):
        self.fg.delete({"id": ids})
        self.offline = {k: v for k, v in self.offline.items() if k[0] not in ids}

    @rule()
    def reopen(self):
        self.lake.close()
        self.lake = lakecore.open(self.path)
        self.fg = self.lake.feature_group("g")

    @invariant()
    def online_is_latest_per_key(self):
        if not self.offline and self.fg.schema is None:
            return
        requested = [3, 0, 5, 1, 4, 2, 3]
        got = self.fg.online_read({"id": requested}).to_pylist()
        for i, row in zip(requested, got):
            times = [t for (k, t) in self.offline if k == i]
            assert row["id"] == i
            if not times:
                assert row["ts"] is None and row["x"] is None
            else:
                t = max(times)
                assert row["ts"] == at(t) and row["x"] == self.offline[(i, t)]


TestOnlineStore = OnlineMachine.TestCase
TestOnlineStore.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


def test_every_type_round_trips_exactly(lake):
    fg = lake.create_feature_group("types", primary_key=["k", "s"], event_time="ts", online=True)
    i64 = pa.int64()
    data = pa.table({
        "k": pa.array([-(2**63), 2**63 - 1, 0, 7], i64),
        "s": ["", "é日本", "a", "z"],
        "ts": pa.array([at(1), at(2), at(3), at(4)], TS),
        "f64": [float("nan"), float("inf"), float("-inf"), None],
        "f32": pa.array([1.5, None, -0.0, 3.25], pa.float32()),
        "i8": pa.array([-128, 127, None, 0], pa.int8()),
        "i16": pa.array([-(2**15), 2**15 - 1, 1, None], pa.int16()),
        "i32": pa.array([-(2**31), 2**31 - 1, None, 5], pa.int32()),
        "b": [True, False, None, True],
        "str": ["", None, "ünïcode ✓", "x" * 1000],
        "bin": [b"", b"\x00\xff", None, b"abc"],
        "d": pa.array([dt.date(1970, 1, 1), None, dt.date(9999, 12, 31), dt.date(2024, 2, 29)]),
        "t": pa.array([dt.datetime(1, 1, 1), None, dt.datetime(9999, 12, 31, 23, 59, 59),
                       NOW], pa.timestamp("us", "UTC")),
        "l": [[], None, [1.0, float("nan")], [None, 2.0]],
        "ls": [["a", ""], [], None, ["é"]],
    })
    fg.insert(data)
    keys = data.select(["k", "s"]).take([3, 1, 0, 2])
    got = fg.online_read(keys)
    expected = data.take([3, 1, 0, 2])
    assert got.schema == fg.schema
    for name in data.column_names:
        a, b = got.column(name).to_pylist(), expected.column(name).to_pylist()
        same = [x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
                or (isinstance(x, list) and str(x) == str(y)) for x, y in zip(a, b)]
        assert all(same), name
    assert str(got.column("f32").to_pylist()[3]) == "-0.0"  # request order: row 2 is last


def test_ttl_hides_stale_rows(lake):
    fg = lake.create_feature_group("t", primary_key="id", event_time="ts", online=True,
                                   ttl=dt.timedelta(hours=1))
    now = dt.datetime.now(dt.timezone.utc)
    fg.insert({"id": [1, 2], "ts": pa.array([now - dt.timedelta(minutes=5),
                                             now - dt.timedelta(hours=2)], TS), "x": [1.0, 2.0]})
    got = fg.online_read({"id": [1, 2]}).to_pylist()
    assert got[0]["x"] == 1.0 and got[1]["x"] is None and got[1]["ts"] is None


def test_group_without_event_time_and_string_keys(lake):
    fg = lake.create_feature_group("u", primary_key="name", online=True)
    fg.insert({"name": ["ann", "bob"], "age": [30, 40]})
    fg.insert({"name": ["ann"], "age": [31]})
    assert fg.online_read({"name": ["bob", "ann", "cy"]}).column("age").to_pylist() == [40, 31, None]


def test_bad_keys(lake):
    fg = lake.create_feature_group("g", primary_key=["a", "b"], event_time="ts", online=True)
    fg.insert({"a": [1], "b": ["x"], "ts": pa.array([at(0)], TS), "v": [1.0]})
    with pytest.raises(SchemaError, match="'b'"):
        fg.online_read({"a": [1]})
    with pytest.raises(SchemaError, match="'a'"):
        fg.online_read({"a": ["1"], "b": ["x"]})
    empty = fg.online_read({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())})
    assert empty.num_rows == 0 and empty.schema == fg.schema
    offline = lake.create_feature_group("off", primary_key="a")
    with pytest.raises(ValidationError, match="not online"):
        offline.online_read({"a": [1]})


def test_map_grows_when_full(lake, monkeypatch):
    from lakecore.online import environments

    monkeypatch.setattr(environments, "INITIAL_MAP_SIZE", 1 << 16)
    path = os.path.join(lake.path, "elsewhere")
    small = lakecore.open(path)
    fg = small.create_feature_group("g", primary_key="id", online=True)
    n = 20_000
    fg.insert({"id": list(range(n)), "payload": ["x" * 50] * n})
    assert fg.online_read({"id": [0, n - 1]}).column("payload").to_pylist() == ["x" * 50] * 2


def test_rebuild_online_gives_the_same_answers(lake):
    fg = lake.create_feature_group("g", primary_key="id", event_time="ts", online=True)
    fg.insert({"id": [1, 1, 2], "ts": pa.array([at(0), at(1), at(0)], TS), "v": [1, 2, 3]})
    before = fg.online_read({"id": [1, 2]})
    fg.rebuild_online()
    assert fg.online_read({"id": [1, 2]}).equals(before)


CRASH_BETWEEN_WRITES = textwrap.dedent("""
    import os, signal, sys, datetime as dt
    import pyarrow as pa
    import lakecore
    from lakecore.online import store as online_store

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    lake = lakecore.open(sys.argv[1])
    fg = lake.feature_group("g")
    online_store.OnlineStore.apply = die
    fg.insert({"id": [1, 2], "ts": pa.array([dt.datetime(2030, 1, 2)] * 2,
                                             pa.timestamp("us", "UTC")), "v": [10.0, 20.0]})
""")


def test_a_crash_between_offline_commit_and_online_write_is_repaired_on_open(tmp_path):
    path = str(tmp_path / "lake")
    lake = lakecore.open(path)
    fg = lake.create_feature_group("g", primary_key="id", event_time="ts", online=True)
    fg.insert({"id": [1], "ts": pa.array([dt.datetime(2030, 1, 1)], TS), "v": [1.0]})
    lake.close()
    result = subprocess.run([sys.executable, "-c", CRASH_BETWEEN_WRITES, path],
                            capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    # the offline commit is durable; the online store is behind until a writable open
    assert lakecore.open(path, readonly=True).feature_group("g").read().num_rows == 3
    stale = lakecore.open(path, readonly=True).feature_group("g").online_read({"id": [1, 2]})
    assert stale.column("v").to_pylist() == [1.0, None]
    repaired = lakecore.open(path).feature_group("g").online_read({"id": [1, 2]})
    assert repaired.column("v").to_pylist() == [10.0, 20.0]


def test_a_forked_child_uses_its_own_handle(lake):
    fg = lake.create_feature_group("g", primary_key="id", online=True)
    fg.insert({"id": [1], "v": [1.0]})
    assert fg.online_read({"id": [1]}).column("v").to_pylist() == [1.0]
    pid = os.fork()
    if pid == 0:  # child: read and write through the lake opened before the fork
        try:
            fg.insert({"id": [2], "v": [2.0]})
            ok = fg.online_read({"id": [1, 2]}).column("v").to_pylist() == [1.0, 2.0]
            os._exit(0 if ok else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fg.online_read({"id": [1, 2]}).column("v").to_pylist() == [1.0, 2.0]


def test_the_row_path_matches_online_read(lake):
    fg = lake.create_feature_group("d", primary_key=["k", "s"], event_time="ts", online=True)
    fg.insert({"k": [1, 2], "s": ["a", "é"], "ts": pa.array([at(1), at(2)], TS),
               "v": [1.5, None], "day": pa.array([dt.date(2024, 1, 2), None]),
               "when": pa.array([NOW, None], TS), "tags": [["x", None], []]})
    layout, store = fg._read_layout(), lake.online_store
    db = store.database("d", 1)
    with store.row_reader() as reader:
        for key in [(1, "a"), (2, "é")]:
            table = fg.online_read({"k": [key[0]], "s": [key[1]]}).to_pylist()[0]
            row = reader.row(db, layout, key, None)
            assert dict(zip(layout.feature_names, row)) == \
                {name: table[name] for name in ["v", "day", "when", "tags"]}
        assert reader.row(db, layout, (3, "a"), None) is None
        with pytest.raises(SchemaError, match="'s'"):
            reader.row(db, layout, (1, 2), None)


def test_key_requests_in_any_layout(lake):
    fg = lake.create_feature_group("r", primary_key="id", event_time="ts", online=True)
    fg.insert({"id": list(range(10)), "ts": pa.array([at(1)] * 10, TS),
               "v": [float(i) for i in range(10)]})
    chunked = pa.table({"id": pa.chunked_array([[7, 1], [], [3]], pa.int64())})
    assert fg.online_read(chunked).column("v").to_pylist() == [7.0, 1.0, 3.0]
    sliced = pa.table({"id": pa.array([9, 8, 2, 5], pa.int64())}).slice(1, 2)
    assert fg.online_read(sliced).column("v").to_pylist() == [8.0, 2.0]
    narrow = pa.table({"id": pa.array([4], pa.int8()), "extra": ["ignored"]})
    assert fg.online_read(narrow).column("v").to_pylist() == [4.0]
    with pytest.raises(ValidationError, match="'id'"):
        fg.online_read({"id": [1, None]})
    strings = lake.create_feature_group("long", primary_key="name", online=True)
    strings.insert({"name": ["a"], "v": [1]})
    with pytest.raises(ValidationError, match="500 bytes"):
        strings.online_read({"name": ["x" * 501]})


def test_nested_lists_stay_offline_and_are_refused_before_writing(lake, tmp_path):
    nested = pa.schema([("id", pa.int64()), ("m", pa.list_(pa.list_(pa.int64())))])
    with pytest.raises(SchemaError, match="'m'"):
        lake.create_feature_group("n", primary_key="id", schema=nested, online=True)
    fg = lake.create_feature_group("n", primary_key="id", online=True)
    with pytest.raises(SchemaError, match="'m'"):
        fg.insert({"id": [1], "m": [[[1]]]})
    assert fg.history() == []
    offline = lake.create_feature_group("n2", primary_key="id", schema=nested)
    offline.insert({"id": [1], "m": [[[1, 2]]]})
    assert offline.read().column("m").to_pylist() == [[[1, 2]]]


def test_chunked_writes_keep_the_newer_rule(lake, monkeypatch):
    from lakecore.online import codec

    monkeypatch.setattr(codec, "_CHUNK", 7)     # many chunks, encoded on a helper thread
    fg = lake.create_feature_group("c", primary_key="id", event_time="ts", online=True)
    n = 100
    fg.insert({"id": list(range(n)), "ts": pa.array([at(5)] * n, TS), "v": [0.0] * n})
    # odd keys get an older row (ignored online), even keys a newer one
    fg.insert({"id": list(range(n)), "ts": pa.array([at(6 if i % 2 == 0 else 4) for i in range(n)], TS),
               "v": [1.0] * n})
    got = fg.online_read({"id": list(range(n - 1, -1, -1))}).column("v").to_pylist()
    assert got == [1.0 if i % 2 == 0 else 0.0 for i in range(n - 1, -1, -1)]
    fg.rebuild_online()
    assert fg.online_read({"id": list(range(n))}).column("v").to_pylist() == \
        [1.0 if i % 2 == 0 else 0.0 for i in range(n)]


GROW_THE_MAP = textwrap.dedent("""
    import sys
    import lakecore
    with lakecore.open(sys.argv[1]) as lake:   # the default map: bigger than the reader's
        fg = lake.feature_group("g")
        n = 30_000
        fg.insert({"id": list(range(10, 10 + n)), "v": [1.0] * n, "s": ["x" * 40] * n})
""")


def test_every_read_path_adopts_a_map_grown_by_another_process(tmp_path, monkeypatch):
    from lakecore.online import environments

    monkeypatch.setattr(environments, "INITIAL_MAP_SIZE", 1 << 20)    # 1 MiB here
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        fg.insert({"id": [1, 2], "v": [1.0, 2.0], "s": ["a", "b"]})
        view = lake.create_feature_view("view", query=fg.select_all())
        assert view.feature_vector({"id": 1}) == {"v": 1.0, "s": "a"}
        layout = fg._read_layout()
        subprocess.run([sys.executable, "-c", GROW_THE_MAP, path], check=True, timeout=120)
        assert view.feature_vector({"id": 2}) == {"v": 2.0, "s": "b"}
        assert view.feature_vector({"id": 10}) == {"v": 1.0, "s": "x" * 40}
        store = lake.online_store
        with store.row_reader() as reader:
            assert reader.row(store.database("g", 1), layout, (11,), None) == [1.0, "x" * 40]
        assert fg.online_read({"id": [2, 12]}).column("v").to_pylist() == [2.0, 1.0]
