"""Rows put natively into py-lmdb's write transaction (``online.native_write``,
``_native/lmdbwrite.pyx``): found only where safe, the same rows as a plain dict and as the
``putmulti`` path, errors as py-lmdb words them, and one transaction (a kill mid-write leaves
the old state)."""

import os
import signal
import subprocess
import sys
import textwrap

import lmdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import lakecore
from lakecore._native import lmdbwrite
from lakecore.online import codec, native_write, store
from lakecore.online.codec import PackedKeys
from lakecore.online.layout import Layout
from lakecore.online.native_write import RowWriter, transaction_address
from lakecore.online.store import OnlineStore

pytestmark = pytest.mark.native

TS = pa.timestamp("us", "UTC")


@pytest.fixture
def env(tmp_path):
    environment = lmdb.open(str(tmp_path / "env"), map_size=1 << 24, max_dbs=4, lib_version=0)
    environment.open_db(b"rows")
    yield environment
    environment.close()


def packed(values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(values) + 1, np.int64)
    offsets[1:] = np.cumsum([len(v) for v in values])
    return np.frombuffer(b"".join(values) or b"\0", np.uint8).copy(), offsets


def value(time: int, version: int, payload: bytes = b"") -> bytes:
    return time.to_bytes(8, "little", signed=True) + version.to_bytes(8, "little", signed=True) \
        + payload


def contents(env: lmdb.Environment) -> dict[bytes, bytes]:
    db = env.open_db(b"rows")
    with env.begin(db=db) as txn:
        return dict(txn.cursor().iternext())


def test_the_installed_py_lmdb_hands_its_write_transaction_over(env):
    """Fails when a py-lmdb upgrade changes what native_write checks: then bulk loads fall back
    to putmulti (correct, slower) until its layout notes are brought up to date."""
    with env.begin(write=True) as txn:
        assert transaction_address(env, txn) is not None
        assert RowWriter.of(env, txn, b"rows") is not None


def test_only_a_live_top_level_write_transaction_of_that_environment_is_used(env, tmp_path):
    other = lmdb.open(str(tmp_path / "other"), map_size=1 << 20, lib_version=0)
    newer_format = lmdb.open(str(tmp_path / "format1"), map_size=1 << 20, lib_version=1)
    try:
        with env.begin() as read:
            assert transaction_address(env, read) is None
        with env.begin(write=True) as txn:
            assert transaction_address(other, txn) is None       # another environment object
            with env.begin(write=True, parent=txn) as child:
                assert transaction_address(env, child) is None   # nested
        assert transaction_address(env, txn) is None             # committed: no longer valid
        with newer_format.begin(write=True) as txn:
            assert transaction_address(newer_format, txn) is None    # LMDB 1.0's engine
        assert transaction_address(env, object()) is None
    finally:
        other.close()
        newer_format.close()


def test_a_py_lmdb_version_whose_layout_was_not_checked_is_never_read(env, monkeypatch):
    """Another py-lmdb version: the transaction object's memory is not looked at; the store
    writes through putmulti, with the same result."""
    monkeypatch.setattr(lmdb, "__version__", "3.0.1")
    monkeypatch.setattr(native_write, "_library", None)
    monkeypatch.setattr(native_write, "_library_missing", False)
    with env.begin(write=True) as txn:
        assert transaction_address(env, txn) is None
    assert native_write._library_missing


ROWS = st.dictionaries(st.binary(min_size=1, max_size=6),
                       st.tuples(st.integers(-2, 2), st.integers(0, 2), st.binary(max_size=20)),
                       max_size=30)


@given(stored=ROWS, incoming=ROWS, damaged=st.sets(st.binary(min_size=1, max_size=6),
                                                   max_size=3))
@example(stored={b"a": (1, 1, b"old")}, incoming={b"a": (1, 1, b"new")}, damaged=set())
@example(stored={b"a": (2, 0, b"old")}, incoming={b"a": (1, 5, b"new")}, damaged=set())
@example(stored={}, incoming={b"a": (0, 0, b"new")}, damaged={b"a"})
def test_rows_replace_stored_ones_only_when_newer(tmp_path_factory, stored, incoming, damaged):
    """Update mode against a dict: a row replaces the stored one when its (time, commit) is
    at least the stored one's, or the stored value is too short to hold them (damaged)."""
    path = tmp_path_factory.mktemp("env")
    environment = lmdb.open(str(path), map_size=1 << 24, max_dbs=4, lib_version=0)
    try:
        db = environment.open_db(b"rows")
        before = {k: value(*v) for k, v in stored.items()}
        before.update({k: b"short" for k in damaged})
        with environment.begin(write=True, db=db) as txn:
            for k, v in before.items():
                txn.put(k, v)
        keys = sorted(incoming)
        data, offsets = packed([value(*incoming[k]) for k in keys])
        with environment.begin(write=True) as txn:
            written = RowWriter.of(environment, txn, b"rows").put(PackedKeys.of(keys), data,
                                                                  offsets, append=False)
        expected, replaced = dict(before), 0
        for k in keys:
            old = before.get(k)
            if old is None or len(old) < 16 or incoming[k][:2] >= stored[k][:2]:
                expected[k] = value(*incoming[k])
                replaced += 1
        assert contents(environment) == expected
        assert written == replaced
    finally:
        environment.close()


@given(rows=ROWS)
def test_an_append_into_an_empty_database_puts_every_row(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("env")
    environment = lmdb.open(str(path), map_size=1 << 24, max_dbs=4, lib_version=0)
    try:
        environment.open_db(b"rows")
        keys = sorted(rows)
        data, offsets = packed([value(*rows[k]) for k in keys])
        with environment.begin(write=True) as txn:
            assert RowWriter.of(environment, txn, b"rows").put(PackedKeys.of(keys), data, offsets,
                                                               True) == len(keys)
        assert contents(environment) == {k: value(*rows[k]) for k in keys}
    finally:
        environment.close()


def test_keys_out_of_order_in_append_mode_write_nothing(env):
    data, offsets = packed([value(0, 0, b"x"), value(0, 0, b"y")])
    with pytest.raises(AssertionError, match="out of order"):
        with env.begin(write=True) as txn:
            RowWriter.of(env, txn, b"rows").put(PackedKeys.of([b"b", b"a"]), data, offsets,
                                                append=True)
    assert contents(env) == {}


def test_lmdb_errors_are_py_lmdb_exceptions(tmp_path):
    small = lmdb.open(str(tmp_path / "small"), map_size=1 << 16, max_dbs=4, lib_version=0)
    try:
        small.open_db(b"rows")
        keys = PackedKeys.of([i.to_bytes(8, "big") for i in range(2000)])
        data, offsets = packed([value(0, 0, b"x" * 100)] * len(keys))
        with pytest.raises(lmdb.MapFullError):
            with small.begin(write=True) as txn:
                RowWriter.of(small, txn, b"rows").put(keys, data, offsets, append=True)
        with pytest.raises(lmdb.BadValsizeError):
            with small.begin(write=True) as txn:
                RowWriter.of(small, txn, b"rows").put(PackedKeys.of([b"k" * 600]),
                                                      *packed([value(0, 0)]),
                                                      append=True)
        with pytest.raises(lmdb.NotFoundError):      # a database the transaction cannot open
            with small.begin(write=True) as txn:
                RowWriter(transaction_address(small, txn), b"missing").put(
                    PackedKeys.of([b"k"]), *packed([value(0, 0)]), append=True)
    finally:
        small.close()


def test_the_kernel_checks_its_inputs(env):
    functions = native_write._find_library().functions
    with env.begin(write=True) as txn:
        address = transaction_address(env, txn)
        data, offsets = packed([value(0, 0)])
        one, two = PackedKeys.of([b"a"]), PackedKeys.of([b"a", b"b"])

        def put(keys, data, offsets, txn=address):
            return lmdbwrite.put_rows(functions, txn, b"rows", keys.data, keys.offsets, data,
                                      offsets, True)
        with pytest.raises(ValueError, match="value offsets not one per key"):
            put(two, data, offsets)
        with pytest.raises(ValueError, match="value offsets"):
            put(one, data[:4], offsets)
        with pytest.raises(ValueError, match="value offsets"):
            put(two, data, np.array([0, 16, 8], np.int64))
        with pytest.raises(ValueError, match="key offsets"):
            put(PackedKeys(one.data, np.array([0, 5], np.int64)), data, offsets)
        with pytest.raises(ValueError, match="key offsets"):
            put(PackedKeys(two.data, np.array([0, 2, 1], np.int64)), data, offsets)
        with pytest.raises(ValueError, match="key offsets"):
            put(PackedKeys(two.data, np.zeros(0, np.int64)), data, offsets)
        with pytest.raises(ValueError, match="no transaction"):
            put(one, data, offsets, txn=0)
        assert put(PackedKeys.of([]), data[:0], np.zeros(1, np.int64)) == (0, 0, -1)
    with pytest.raises(ValueError, match="every address"):
        lmdbwrite.LmdbFunctions(0, 0, 0, 0, 0)


def test_packed_keys_are_the_keys_one_buffer():
    from lakecore._native import keycodec

    layout = Layout.of(pa.schema([("a", pa.string()), ("b", pa.int32()), ("v", pa.float64())]),
                       ["a", "b"], None)
    keys = pa.table({"a": ["", "x", "long" * 50, None], "b": pa.array([1, -2, 3, 4], pa.int32())})
    good = keys.slice(0, 3)
    packed_keys = codec.encode_keys_packed(good, layout)
    assert packed_keys.tolist() == codec.encode_keys(good, layout)
    assert packed_keys.chunk(1, 3).tolist() == codec.encode_keys(good, layout)[1:3]
    assert PackedKeys.of(codec.encode_keys(good, layout)).tolist() == packed_keys.tolist()
    assert packed_keys.nbytes == sum(map(len, packed_keys.tolist()))
    with pytest.raises(lakecore.ValidationError, match="null"):
        codec.encode_keys_packed(keys, layout)
    with pytest.raises(ValueError, match="outside"):
        keycodec.split_keys(packed_keys.data, packed_keys.offsets + 1000)
    with pytest.raises(ValueError, match="decrease"):
        keycodec.split_keys(packed_keys.data, packed_keys.offsets[::-1].copy())


# -- through OnlineStore.apply ----------------------------------------------------------------
def table(ids, time, v):
    n = len(ids)
    return pa.table({"id": pa.array(ids, pa.int64()),
                     "ts": pa.array([time] * n, pa.int64()).cast(TS),
                     "s": [f"row {i}" * (i % 3) for i in ids],
                     "v": pa.array([v] * n, pa.float64())})


LAYOUT = Layout.of(table([0], 0, 0.0).schema, ["id"], "ts")


def load(path, monkeypatch=None, native=True):
    if monkeypatch is not None and not native:
        monkeypatch.setattr(RowWriter, "of", classmethod(lambda cls, *a: None))
    s = OnlineStore(str(path), readonly=False)
    rng = np.random.default_rng(0)
    ids = rng.permutation(3000).tolist()
    s.apply("g", 1, LAYOUT, table(ids, 10, 1.0), 1)                         # bulk
    s.apply("g", 1, LAYOUT, table(ids[:500], 11, 2.0), 2)                   # newer
    s.apply("g", 1, LAYOUT, table(ids[500:900], 9, 3.0), 3)                 # older: ignored
    s.apply("g", 1, LAYOUT, table(ids[900:1000] + [5000, 5001], 10, 4.0), 4,  # same time
            deleted_keys=codec.encode_keys(table(ids[1000:1010], 0, 0.0), LAYOUT))
    return s.scan("g", 1)


def test_native_and_putmulti_writes_store_the_same_bytes(tmp_path, monkeypatch):
    native = load(tmp_path / "native")
    monkeypatch.setattr(codec, "_CHUNK", 333)           # many chunks, both ways
    assert load(tmp_path / "chunked") == native
    assert load(tmp_path / "putmulti", monkeypatch, native=False) == native
    keys, values, watermark = native
    assert watermark == 4 and len(keys) == 3000 - 10 + 2


def test_a_full_map_inside_the_native_write_grows_it_and_writes_once(tmp_path, monkeypatch):
    from lakecore.online import environments

    monkeypatch.setattr(environments, "INITIAL_MAP_SIZE", 1 << 16)
    monkeypatch.setattr(OnlineStore, "_reserve", lambda self, payload, clear: None)
    monkeypatch.setattr(codec, "_CHUNK", 1000)      # the map fills while chunks are made ahead
    puts = []
    original = RowWriter.put
    monkeypatch.setattr(RowWriter, "put", lambda self, *a, **k: puts.append(1) or
                        original(self, *a, **k))
    s = OnlineStore(str(tmp_path / "online"), readonly=False)
    s.apply("g", 1, LAYOUT, table(list(range(20_000)), 10, 1.0), 1)
    keys, values, watermark = s.scan("g", 1)
    assert len(keys) == 20_000 and watermark == 1 and len(puts) > 1     # retried after growing


KILLED_MID_APPLY = textwrap.dedent("""
    import os, signal, sys
    from lakecore.online import codec
    from lakecore.online.native_write import RowWriter
    from lakecore.online.store import OnlineStore
    from tests.test_online_native_write import LAYOUT, table

    codec._CHUNK = 100
    original = RowWriter.put

    def put_then_die(self, *args, **kwargs):
        written = original(self, *args, **kwargs)
        if os.environ.get("KILL") == "1":
            os.kill(os.getpid(), signal.SIGKILL)      # after the first chunk was put
        return written

    RowWriter.put = put_then_die
    s = OnlineStore(sys.argv[1], readonly=False)
    s.apply("g", 1, LAYOUT, table(list(range(1000)), 10 + int(sys.argv[2]), float(sys.argv[2])),
            int(sys.argv[2]))
""")


@pytest.mark.parametrize("first", [True, False], ids=["bulk load", "update"])
def test_a_kill_in_the_middle_of_a_native_write_leaves_the_old_state(tmp_path, first):
    path = str(tmp_path / "online")
    run = [sys.executable, "-c", KILLED_MID_APPLY, path]
    cwd = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environ = {**os.environ, "PYTHONPATH": cwd + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if not first:
        subprocess.run(run + ["1"], check=True, cwd=cwd, env=environ)
    before = OnlineStore(path, readonly=True).scan("g", 1) if not first else ([], [], -1)
    killed = subprocess.run(run + ["2"], cwd=cwd, env={**environ, "KILL": "1"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store.discard_environment(path)
    assert OnlineStore(path, readonly=True).scan("g", 1) == before
    subprocess.run(run + ["2"], check=True, cwd=cwd, env=environ)     # and it can be written
    keys, values, watermark = OnlineStore(path, readonly=True).scan("g", 1)
    assert watermark == 2 and len(keys) == 1000


def test_one_thread_or_several_store_the_same_bytes(tmp_path, monkeypatch):
    """With several threads, chunks are gathered and encoded one ahead on a helper thread."""
    monkeypatch.setattr(codec, "_CHUNK", 256)
    try:
        lakecore.set_num_threads(1)
        one = load(tmp_path / "one")
        lakecore.set_num_threads(3)
        assert load(tmp_path / "three") == one
    finally:
        lakecore.set_num_threads(None)


def test_one_ahead_keeps_order_raises_where_taken_and_stops_early():
    import threading

    from lakecore.base.threads import one_ahead

    made = []

    def items(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise KeyError(i)
            made.append(threading.current_thread().name)
            yield i

    assert list(one_ahead(items(5))) == [0, 1, 2, 3, 4]
    assert all(name.startswith("lakecore-ahead") for name in made)
    got = []
    with pytest.raises(KeyError):
        for i in one_ahead(items(5, fail_at=3)):
            got.append(i)
    assert got == [0, 1, 2]
    made.clear()
    for i in one_ahead(items(100)):
        if i == 2:
            break
    assert len(made) <= 4           # the item being made when the caller stopped, no more
    assert list(one_ahead(iter([]))) == []
