"""Bigger than memory: a streamed insert, training data on the result, and DuckDB doing the same
join by hand from the same Parquet files; each step in its own process, with its peak RSS.

    python -m benchmarks.peers_big                       # 1e7 rows x 5 features, 1e6 spine
    python -m benchmarks.peers_big --rows 1e8            # the issue's size (tens of GB today)

Steps (``ru_maxrss`` of each child process, taken right after the timed call, before the
checks read anything back):

- **insert** (timed: the call): ``fg.insert(reader)`` of a ``pyarrow.RecordBatchReader`` that generates the rows
  in batches of 1e6 (1e6 keys, random event times over a year), into a new lake;
- **training data** (timed: the call): ``fv.create_training_data(spine=...)`` for a spine of ``--spine`` rows
  (read from a Parquet file before the clock starts: it is the call's input);
- **DuckDB by hand** (timed: the ``COPY``): the table's live Parquet files (as lakecore's log lists them), ``ASOF
  LEFT JOIN`` on the key and event time, ``COPY`` to a zstd Parquet file.

The joins run ``--repeat`` times each, alternated, in fresh processes; the fastest run of each
is shown. The two results are compared (row count and the sum of every feature column).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

KEYS = 1_000_000
FEATURES = 5
BATCH = 1_000_000
BASE_US = 1_767_225_600 * 10**6          # 2026-01-01
YEAR_US = 365 * 86_400 * 10**6

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
step, work, rows, spine_rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
KEYS, FEATURES, BATCH, BASE_US, YEAR_US = %(constants)s
TS = pa.timestamp("us", "UTC")
lake_path = os.path.join(work, "lake")
result = {}
started = time.perf_counter()
if step == "insert":
    import lakecore
    schema = pa.schema([("id", pa.int64()), ("ts", TS)]
                       + [(f"f{i}", pa.float64()) for i in range(FEATURES)])

    def batches():
        rng = np.random.default_rng(0)
        for start in range(0, rows, BATCH):
            n = min(BATCH, rows - start)
            yield pa.record_batch([pa.array(rng.integers(0, KEYS, n)),
                                   pa.array(BASE_US + rng.integers(0, YEAR_US, n), TS)]
                                  + [pa.array(rng.random(n)) for _ in range(FEATURES)],
                                  schema=schema)
    with lakecore.open(lake_path) as lake:
        fg = lake.create_feature_group("events", primary_key="id", event_time="ts")
        commit = fg.insert(pa.RecordBatchReader.from_batches(schema, batches()))
        result["seconds"] = time.perf_counter() - started
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        snapshot = fg._table.snapshot()
        result["files"] = [os.path.join(fg.location, p) for p in snapshot.files]
        result["rows"] = commit.rows_added
elif step == "training":
    import lakecore
    with lakecore.open(lake_path) as lake:
        if "v" in {v.name for v in lake.feature_views()}:      # a repeat: the same view
            view = lake.feature_view("v")
        else:
            view = lake.create_feature_view("v", query=lake.feature_group("events").select_all())
        spine = pq.read_table(os.path.join(work, "spine.parquet"))     # the call's input
        started = time.perf_counter()
        td = view.create_training_data(spine=spine)
        result["seconds"] = time.perf_counter() - started
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        table = td.read(with_keys=True)
        result["rows"] = table.num_rows
        result["sums"] = [float(pa.compute.sum(table.column(f"f{i}")).as_py() or 0)
                          for i in range(FEATURES)]
elif step == "duckdb":
    import duckdb
    files = json.load(open(os.path.join(work, "files.json")))
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    out = os.path.join(work, "duckdb.parquet")
    started = time.perf_counter()
    con.execute(f"COPY (SELECT s.id, s.ts, s.label, "
                + ", ".join(f"f.f{i}" for i in range(FEATURES))
                + f" FROM read_parquet('{os.path.join(work, 'spine.parquet')}') s "
                f"ASOF LEFT JOIN read_parquet([{listing}]) f ON s.id = f.id AND s.ts >= f.ts) "
                f"TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD)")
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = pq.read_table(out)
    result["rows"] = table.num_rows
    result["sums"] = [float(pa.compute.sum(table.column(f"f{i}")).as_py() or 0)
                      for i in range(FEATURES)]
result.setdefault("seconds", time.perf_counter() - started)
result.setdefault("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(result))
""" % {"constants": repr((KEYS, FEATURES, BATCH, BASE_US, YEAR_US))}


def child(step: str, work: str, rows: int, spine: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, step, work, str(rows), str(spine)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--spine", type=float, default=1e6)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each join, alternated; "
                        "the fastest is shown")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path "
                        "is printed)")
    args = parser.parse_args()
    rows, spine = int(args.rows), int(args.spine)
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    work = tempfile.mkdtemp(prefix="lakecore-big-")
    rng = np.random.default_rng(99)
    pq.write_table(pa.table({"id": rng.integers(0, KEYS, spine),
                             "ts": pa.array(BASE_US + rng.integers(0, YEAR_US, spine),
                                            pa.timestamp("us", "UTC")),
                             "label": rng.integers(0, 2, spine)}),
                   os.path.join(work, "spine.parquet"))
    inserted = child("insert", work, rows, spine)
    os.sync()       # the insert's files written back first: no step pays for another's writes
    with open(os.path.join(work, "files.json"), "w") as f:
        json.dump(inserted["files"], f)
    ours, theirs = [], []
    for _ in range(args.repeat):        # alternated: neither engine always runs on a warmer VM
        ours.append(child("training", work, rows, spine))
        theirs.append(child("duckdb", work, rows, spine))
    runs = {"lakecore": [r["seconds"] for r in ours], "duckdb": [r["seconds"] for r in theirs]}
    ours = min(ours, key=lambda r: r["seconds"])
    theirs = min(theirs, key=lambda r: r["seconds"])
    same = ours["rows"] == theirs["rows"] and all(
        abs(a - b) <= 1e-6 * max(1.0, abs(b)) for a, b in zip(ours["sums"], theirs["sums"]))
    print(f"{rows:,} rows x {FEATURES} features ({KEYS:,} keys), spine {spine:,}; "
          f"each step in its own process\n")
    print("| step | seconds | peak RSS MB |")
    print("|---|---|---|")
    print(f"| insert from a stream (lakecore) | {inserted['seconds']:.1f} | "
          f"{inserted['peak_rss_mb']:,.0f} |")
    print(f"| create_training_data (lakecore) | {ours['seconds']:.1f} | "
          f"{ours['peak_rss_mb']:,.0f} |")
    print(f"| DuckDB by hand (read, ASOF LEFT JOIN, COPY zstd) | {theirs['seconds']:.1f} | "
          f"{theirs['peak_rss_mb']:,.0f} |")
    print(f"\ntraining data vs DuckDB: {theirs['seconds'] / ours['seconds']:.2f}x faster; "
          f"same rows: {'yes' if same else 'NO'} ({ours['rows']:,} rows)")
    print("every run (s): " + "; ".join(f"{name} " + ", ".join(f"{t:.2f}" for t in times)
                                         for name, times in runs.items()))
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
