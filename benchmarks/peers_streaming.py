"""A pipeline writing one row at a time: lakecore against SQLite and deltalake, same run.

    python -m benchmarks.peers_streaming [--rows 10000]

- **lakecore**: ``fg.insert`` of one row into an online group, durable (data file, audit
  event, commit file, online write), with automatic compaction as shipped.
- **SQLite**: one ``INSERT OR REPLACE`` per transaction, WAL journal, ``synchronous=FULL``.
- **deltalake**: ``write_deltalake(mode="append")`` of one row.

Prints the median and p90 per write for the first and the last 1,000 writes, and at the end
the live files, the folder's size, and the time of a full read, an open and (lakecore) a
``verify(fast=True)``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

import pyarrow as pa

import lakecore


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _summary(times: list[float]) -> tuple[float, float, float, float]:
    first, last = sorted(times[:1000]), sorted(times[-1000:])
    return (1e3 * statistics.median(first), 1e3 * first[int(0.9 * len(first))],
            1e3 * statistics.median(last), 1e3 * last[int(0.9 * len(last))])


def run_lakecore(folder: str, rows: int) -> dict:
    path = os.path.join(folder, "lake")
    lake = lakecore.open(path)
    fg = lake.create_feature_group("sensor", primary_key="id", event_time="at", online=True)
    times = []
    start = time.time()
    for i in range(rows):
        row = {"id": [i % 100], "at": pa.array([int(1e6 * (start + i))], pa.timestamp("us", "UTC")),
               "value": [float(i)]}
        times.append(_timed(lambda: fg.insert(row)))
    lake.close()
    opened = _timed(lambda: lakecore.open(path).close())
    with lakecore.open(path, readonly=True) as reader:
        g = reader.feature_group("sensor")
        read = _timed(g.read)
        files = len(g._table.snapshot().files)
    with lakecore.open(path) as writer:
        writer.verify(fast=True)                    # what a scheduled check leaves behind
        writer.feature_group("sensor").insert(row)  # one more commit, then the fast check
        fast = _timed(lambda: writer.verify(fast=True))
    return {"engine": "lakecore", "times": times, "files": files,
            "bytes": _folder_bytes(path), "read_s": read, "open_s": opened, "verify_s": fast}


def run_sqlite(folder: str, rows: int) -> dict:
    path = os.path.join(folder, "sensor.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE sensor (id INTEGER, at INTEGER, value REAL, PRIMARY KEY (id, at))")
    times = []
    start = time.time()
    for i in range(rows):
        def write(i=i):
            db.execute("BEGIN")
            db.execute("INSERT OR REPLACE INTO sensor VALUES (?, ?, ?)",
                       (i % 100, int(1e6 * (start + i)), float(i)))
            db.execute("COMMIT")
        times.append(_timed(write))
    db.close()
    opened = _timed(lambda: sqlite3.connect(path).close())
    db = sqlite3.connect(path)
    read = _timed(lambda: db.execute("SELECT * FROM sensor").fetchall())
    db.close()
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)
               if f.startswith("sensor.db"))
    return {"engine": "SQLite (WAL, synchronous=FULL)", "times": times, "files": 1,
            "bytes": size, "read_s": read, "open_s": opened, "verify_s": None}


def run_deltalake(folder: str, rows: int) -> dict:
    import deltalake

    path = os.path.join(folder, "delta")
    times = []
    start = time.time()
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", "UTC")),
                        ("value", pa.float64())])
    for i in range(rows):
        row = pa.table({"id": [i % 100], "at": pa.array([int(1e6 * (start + i))], schema[1].type),
                        "value": [float(i)]}, schema=schema)
        times.append(_timed(lambda: deltalake.write_deltalake(path, row, mode="append")))
    opened = _timed(lambda: deltalake.DeltaTable(path))
    table = deltalake.DeltaTable(path)
    read = _timed(table.to_pyarrow_table)
    return {"engine": "deltalake (append)", "times": times, "files": len(table.file_uris()),
            "bytes": _folder_bytes(path), "read_s": read, "open_s": opened, "verify_s": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engines", nargs="+", default=["lakecore", "sqlite", "deltalake"])
    args = parser.parse_args()
    runs = {"lakecore": run_lakecore, "sqlite": run_sqlite, "deltalake": run_deltalake}
    results = []
    for name in args.engines:
        folder = tempfile.mkdtemp(prefix=f"stream-{name}-")
        try:
            results.append(runs[name](folder, args.rows))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        r = results[-1]
        print(r["engine"], "done:", ["%.2f" % x for x in _summary(r["times"])], flush=True)
    print(f"\n{args.rows:,} one-row writes, lakecore threads: {lakecore.get_num_threads()}\n")
    print("| engine | first 1,000 median ms | p90 ms | last 1,000 median ms | p90 ms | "
          "live files | folder MB | read() s | open s | verify(fast) s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m1, p1, m2, p2 = _summary(r["times"])
        fast = "–" if r["verify_s"] is None else f"{r['verify_s']:.3f}"
        print(f"| {r['engine']} | {m1:.2f} | {p1:.2f} | {m2:.2f} | {p2:.2f} | {r['files']:,} | "
              f"{r['bytes'] / 1e6:.1f} | {r['read_s']:.3f} | {r['open_s']:.4f} | {fast} |")


if __name__ == "__main__":
    main()
