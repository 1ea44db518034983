"""Time lakecore's online store against its floors, and print ratios.

    python -m benchmarks.peers_online               # 1e6 entities x 20 float features
    python -m benchmarks.peers_online --rows 1e5    # a quick, smaller run

One process, every store measured in the same run, on the same rows
(``benchmarks.online_data``):

- **reads** of 1, 1,000 and 10,000 random existing keys (medians of many calls):
  - lakecore ``fg.online_read(keys)``: an Arrow table of the keys, event time and 20 features
    in request order, and for one key also the store's row path (``row_reader``), which the
    feature view's ``feature_vector`` uses;
  - the floor: a plain py-lmdb ``txn.get`` loop over the same encoded keys, in the lake's own
    LMDB database, returning the raw values (no decoding, no Arrow), in a transaction with
    ``buffers=False`` and one with ``buffers=True``; the faster of the two is the floor;
  - sqlite3: one ``SELECT v FROM rows WHERE k = ?`` per key on a WITHOUT ROWID table of the
    same encoded keys and values, returning the raw blobs.
- **ingest** of all rows into an empty online group, and of 10% of the rows with newer event
  times into the full group (best of ``--repeat``): lakecore's online write (``OnlineStore.apply``:
  latest row per key, encoding, LMDB transaction with its fsync) against the floor, py-lmdb
  ``putmulti(append=True)`` of the already-encoded keys and values plus the commit, and
  sqlite3 ``executemany`` inserts of the same blobs plus the commit.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa

from benchmarks.online_data import entity_rows, online_lake, request_keys, sqlite_store
from lakecore.online.codec import encode_keys, encode_values
from lakecore.online.environments import environment


def median_us(fn, calls: int) -> float:
    for _ in range(max(calls // 10, 3)):
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1e3


def best_s(fn, repeat: int, setup=None) -> float:
    best = float("inf")
    for _ in range(repeat):
        state = setup() if setup else None
        started = time.perf_counter()
        fn(state)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = int(args.rows)
    work = tempfile.mkdtemp(prefix="lakecore-online-bench-")
    try:
        run(n, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(n: int, repeat: int, work: str) -> None:
    import lmdb

    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    rows = entity_rows(n)
    lake, fg = online_lake(f"{work}/lake", rows)
    store, layout = lake.online_store, fg._read_layout()
    env = environment(store.path, create=False)
    db = store._database("entities", 1)[1]
    ordered = rows.sort_by("id")
    keys = encode_keys(ordered, layout)
    values = encode_values(layout, ordered, 0)
    sqlite = sqlite_store(f"{work}/sqlite.db", keys, values)

    print(f"\nreads: {n:.0e} entities x 20 float64 features, random existing keys")
    print("| keys | lakecore online_read us | py-lmdb get loop (floor) us | sqlite3 us | "
          "lakecore / floor | sqlite3 / lakecore |")
    print("|---|---|---|---|---|---|")
    for count, calls in [(1, 20000), (1000, 300), (10000, 40)]:
        request = request_keys(n, count)
        encoded = encode_keys(request, layout)
        assert fg.online_read(request).column("f0").null_count == 0

        def floor(buffers):
            with env.begin(buffers=buffers) as txn:
                get = txn.get
                return [get(k, None, db) for k in encoded]

        def sqlite_loop():
            execute = sqlite.execute
            return [execute("SELECT v FROM rows WHERE k = ?", (k,)).fetchone() for k in encoded]

        ours = median_us(lambda: fg.online_read(request), calls)
        base = min(median_us(lambda: floor(False), calls), median_us(lambda: floor(True), calls))
        theirs = median_us(sqlite_loop, calls)
        print(f"| {count:,} | {ours:.1f} | {base:.1f} | {theirs:.1f} | {ours / base:.2f}x | "
              f"{theirs / ours:.2f}x |")
    one = tuple(request_keys(n, 1).column("id").to_pylist())
    db = store.database("entities", 1)

    env = environment(store.path, create=False)

    def one_row():                          # as feature_vector: the environment taken before
        with store.row_reader(env) as reader:
            return reader.row(db, layout, one, None)
    row_us = median_us(one_row, 20000)
    print(f"one key as Python values (OnlineStore.row_reader, the feature-vector path): "
          f"{row_us:.1f} us")

    print(f"\ningest into the online store (best of {repeat}, fsync included)")
    print("| write | rows | lakecore s | rows/s | py-lmdb floor s | sqlite3 s | "
          "lakecore / floor |")
    print("|---|---|---|---|---|---|---|")
    counter = iter(range(10**6))

    def fresh_lake():
        from lakecore.online.store import OnlineStore

        return OnlineStore(f"{work}/ingest{next(counter)}", readonly=False)

    ours = best_s(lambda s: s.apply("entities", 1, layout, rows, 1), repeat, fresh_lake)

    def fresh_env():
        return lmdb.open(f"{work}/floor{next(counter)}", map_size=1 << 34, max_dbs=4,
                         lib_version=0)

    def floor_load(e):
        sub = e.open_db(b"rows")
        with e.begin(write=True) as txn:
            txn.cursor(db=sub).putmulti(zip(keys, values), append=True)

    base = best_s(floor_load, repeat, fresh_env)

    def sqlite_load(_):
        sqlite_store(f"{work}/load{next(counter)}.db", keys, values).close()

    theirs = best_s(sqlite_load, repeat)
    print(f"| bulk load (empty group) | {n:,} | {ours:.3f} | {n / ours / 1e6:.2f}M | "
          f"{base:.3f} | {theirs:.3f} | {ours / base:.2f}x |")

    m = n // 10
    newer = rows.slice(0, m).set_column(
        1, "ts", pa.array(np.full(m, 1_900_000_000_000_001, np.int64)).cast(pa.timestamp("us", "UTC")))
    newer_sorted = newer.sort_by("id")
    newer_keys = encode_keys(newer_sorted, layout)
    newer_values = encode_values(layout, newer_sorted, 2)

    def loaded_store():
        s = fresh_lake()
        s.apply("entities", 1, layout, rows, 1)
        return s

    ours = best_s(lambda s: s.apply("entities", 1, layout, newer, 2), repeat, loaded_store)

    def loaded_env():
        e = fresh_env()
        floor_load(e)
        return e

    def floor_update(e):
        sub = e.open_db(b"rows")
        with e.begin(write=True) as txn:
            get = txn.get
            [get(k, None, sub) for k in newer_keys]       # the stored rows' times are read too
            txn.cursor(db=sub).putmulti(zip(newer_keys, newer_values))

    base = best_s(floor_update, repeat, loaded_env)

    def sqlite_update(connection):
        with connection:
            connection.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)",
                                   zip(newer_keys, newer_values))

    theirs = best_s(sqlite_update, repeat,
                    lambda: sqlite_store(f"{work}/up{next(counter)}.db", keys, values))
    print(f"| update 10% (newer rows) | {m:,} | {ours:.3f} | {m / ours / 1e6:.2f}M | "
          f"{base:.3f} | {theirs:.3f} | {ours / base:.2f}x |")
    lake.close()


if __name__ == "__main__":
    main()
