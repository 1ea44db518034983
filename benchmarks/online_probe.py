"""A quick probe of the online store against its py-lmdb floor (1e6 entities x 20 floats):
ingest, a 1,000-key online_read and a one-key online_read. Run: python -m benchmarks.online_probe

Not yet the full benchmark the online store needs (no sqlite3 peer, no pytest-benchmark suite)."""
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

import lakecore
n = 1_000_000
rng = np.random.default_rng(0)
path = tempfile.mkdtemp()
lake = lakecore.open(path)
fg = lake.create_feature_group("e", primary_key="id", event_time="ts", online=True)
t = pa.table({"id": np.arange(n), "ts": pa.array(np.full(n, 1_900_000_000_000_000), pa.int64()).cast(pa.timestamp("us", "UTC")), **{f"f{i}": rng.random(n) for i in range(20)}})
t0 = time.perf_counter(); fg.insert(t); print("insert 1e6 x 20 online+offline", time.perf_counter() - t0)
store = lake.online_store
sch = fg.schema
layout = fg._layout(sch)
from lakecore.online_store import encode_keys
t0 = time.perf_counter(); store.apply("e", 1, layout, t, 5, clear=True); print("online apply only (clear, append path)", time.perf_counter()-t0)
keys = rng.integers(0, n, 1000)
req = pa.table({"id": keys})
for _ in range(3): fg.online_read(req)
ts = []
for _ in range(50):
    t0 = time.perf_counter(); fg.online_read(req); ts.append(time.perf_counter() - t0)
print("online_read 1000 keys median ms", statistics.median(ts) * 1e3)
from lakecore.online_store import environment, _existing_db
env = environment(store.path, False); db = _existing_db(env, b"fg:e@1")
enc = encode_keys(req, ["id"])
fl = []
for _ in range(50):
    t0 = time.perf_counter()
    with env.begin(buffers=True) as txn:
        g = txn.get; vals = [g(k, db=db) for k in enc]
    fl.append(time.perf_counter() - t0)
print("py-lmdb floor 1000 gets median ms", statistics.median(fl) * 1e3)
one = pa.table({"id": [int(keys[0])]})
s1 = []
for _ in range(2000):
    t0 = time.perf_counter(); fg.online_read(one); s1.append(time.perf_counter() - t0)
print("online_read 1 key median us", statistics.median(s1) * 1e6)
