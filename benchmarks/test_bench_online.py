"""Online store: reads of 1, 1,000 and 10,000 keys and a bulk load, beside the py-lmdb floor
(1e6 entities x 20 float features). Ratios: ``python -m benchmarks.peers_online``."""

import tempfile

import pytest

from benchmarks.online_data import entity_rows, online_lake, request_keys
from lakecore.online.codec import encode_keys
from lakecore.online.environments import environment
from lakecore.online.store import OnlineStore

N = 1_000_000


@pytest.fixture(scope="module")
def group():
    with tempfile.TemporaryDirectory() as path:
        lake, fg = online_lake(path, entity_rows(N))
        yield fg
        lake.close()


@pytest.mark.parametrize("count", [1, 1000, 10000])
def test_online_read(benchmark, group, count):
    keys = request_keys(N, count)
    result = benchmark(group.online_read, keys)
    assert result.num_rows == count and result.column("f0").null_count == 0


@pytest.mark.parametrize("count", [1, 1000, 10000])
def test_py_lmdb_get_loop_floor(benchmark, group, count):
    layout, store = group._read_layout(), group._ctx.online_store
    encoded = encode_keys(request_keys(N, count), layout)
    env, db = environment(store.path, create=False), store._database("entities", 1)[1]

    def floor():
        with env.begin() as txn:
            get = txn.get
            return [get(k, None, db) for k in encoded]

    assert all(v is not None for v in benchmark(floor))


def test_row_reader_one_key(benchmark, group):
    layout, store = group._read_layout(), group._ctx.online_store
    key = tuple(request_keys(N, 1).column("id").to_pylist())
    db, env = store.database("entities", 1), environment(store.path, create=False)

    def one_row():                          # as feature_vector: the environment taken before
        with store.row_reader(env) as reader:
            return reader.row(db, layout, key, None)
    assert len(benchmark(one_row)) == 20


def test_bulk_load(benchmark, group):
    rows, layout = entity_rows(N), group._read_layout()

    def fresh_store():
        return (OnlineStore(tempfile.mkdtemp(), readonly=False),), {}

    benchmark.pedantic(lambda store: store.apply("entities", 1, layout, rows, 1),
                       setup=fresh_store, rounds=3)
