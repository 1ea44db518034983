"""Two measurements behind the "bigger than memory" figures of ``benchmarks/README.md``.

    python -m benchmarks.big_profile insert-memory --rows 2e6 4e6 1e7 2e7 5e7
    python -m benchmarks.big_profile replace-all --rows 3e6
    python -m benchmarks.big_profile join-floor WORK     # WORK: `peers_big --keep`'s folder

- **insert-memory**: for each length, a process of its own streams that many rows (1e6-row
  batches, int64 id over 1e6 keys, timestamp, 10 float features) into a new lake, sampling
  its resident memory (``/proc/self/statm``) every 2 ms; prints the peak and where it was.
- **replace-all**: the same stream inserted twice into one group in a process of its own:
  the second replaces every stored row; both times, and the second's peak.
- **join-floor**: on the lake ``peers_big --keep`` left, each step of training data alone,
  best of 3: reading the table's live files (every column, then the key and time only),
  DuckDB scanning the same files, key codes, the as-of kernel in one pass, the gather of the
  features, and writing the result as a dataset file is written (zstd, sha256, fsync).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

INSERT_CHILD = r"""
import json, sys, tempfile, threading, time
import numpy as np, pyarrow as pa, lakecore
import lakecore.offline.stream_upsert as stream_upsert
rows = int(sys.argv[1])
TS = pa.timestamp("us", "UTC")
schema = pa.schema([("id", pa.int64()), ("ts", TS)] + [(f"f{i}", pa.float64()) for i in range(8)])
def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
peak, stage = [0.0, ""], ["reading the stream"]
def sample():
    while True:
        now = resident_mb()
        if now > peak[0]:
            peak[0], peak[1] = now, stage[0]
        time.sleep(0.002)
threading.Thread(target=sample, daemon=True).start()
real_write = stream_upsert._write_into
def writing(*args):
    stage[0] = "writing a chunk"
    try:
        return real_write(*args)
    finally:
        stage[0] = "reading the stream"
stream_upsert._write_into = writing
def batches():
    rng = np.random.default_rng(0)
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        yield pa.record_batch([pa.array(rng.integers(0, 1_000_000, n)),
                               pa.array(rng.integers(0, 10**13, n), TS)]
                              + [pa.array(rng.random(n)) for _ in range(8)], schema=schema)
with lakecore.open(tempfile.mkdtemp(dir=sys.argv[2])) as lake:
    fg = lake.create_feature_group("events", primary_key="id", event_time="ts")
    times = []
    for _ in range(2 if sys.argv[3] == "replace" else 1):
        peak[0], before = 0.0, resident_mb()
        started = time.perf_counter()
        commit = fg.insert(pa.RecordBatchReader.from_batches(schema, batches()))
        times.append(time.perf_counter() - started)
    print(json.dumps({"rows": rows, "seconds": times[-1], "first_seconds": times[0],
                      "replaced": commit.rows_removed, "before_mb": before,
                      "peak_mb": peak[0], "peak_while": peak[1]}))
"""


def _insert(rows: int, how: str) -> dict:
    with tempfile.TemporaryDirectory() as work:
        run = subprocess.run([sys.executable, "-c", INSERT_CHILD, str(rows), work, how],
                             capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def replace_all(rows: int) -> None:
    found = _insert(rows, "replace")
    print(f"{rows:,} rows: first insert {found['first_seconds']:.1f} s; the same stream again "
          f"{found['seconds']:.1f} s, {found['replaced']:,} rows replaced, peak "
          f"{found['peak_mb']:,.0f} MB ({found['before_mb']:,.0f} MB before it)")


def insert_memory(lengths: list[int]) -> None:
    print("| stream rows | seconds | resident before MB | peak MB | peak while |")
    print("|---|---|---|---|---|")
    for rows in lengths:
        found = _insert(rows, "once")
        print(f"| {rows:,} | {found['seconds']:.1f} | {found['before_mb']:,.0f} | "
              f"{found['peak_mb']:,.0f} | {found['peak_while']} |")


def _best(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def join_floor(work: str) -> None:
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    import lakecore
    from lakecore._native import asof
    from lakecore.base.keys import key_codes
    from lakecore.base.parquet import write_parquet

    with lakecore.open(os.path.join(work, "lake"), readonly=True) as lake:
        fg = lake.feature_group("events")
        files = [os.path.join(fg.location, p) for p in fg._table.snapshot().files]
    spine = pq.read_table(os.path.join(work, "spine.parquet"))
    rows = []

    def step(label, fn):
        seconds, result = _best(fn)
        rows.append((label, seconds))
        return result

    right = step(f"read the {len(files)} files, every column", lambda: pq.read_table(files))
    step("read only id and ts", lambda: pq.read_table(files, columns=["id", "ts"]))
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    step("DuckDB scanning the same files, every column summed",
         lambda: con.execute("SELECT count(*), sum(id), sum(epoch_us(ts)), "
                             + ", ".join(f"sum(f{i})" for i in range(5))
                             + f" FROM read_parquet([{listing}])").fetchall())
    right = right.combine_chunks()
    left_codes, right_codes, n = step(
        "key codes, spine and table", lambda: key_codes(spine, right, ["id"], ["id"],
                                                        code_dtype=np.int32))
    left_times = pc.cast(spine.column("ts"), pa.int64()).to_numpy()
    right_times = pc.cast(right.column("ts"), pa.int64()).to_numpy()
    matched = step("as-of kernel, one pass, 2 threads", lambda: asof.asof_indices(
        left_codes, left_times, right_codes, right_times, n,
        int(asof.Direction.BACKWARD), False, False, 0, 2))
    features = right.select([f"f{i}" for i in range(5)])
    gathered = step("gather the features of the matched rows",
                    lambda: features.take(pa.array(np.where(matched < 0, 0, matched))))
    result = spine
    for name in gathered.column_names:
        result = result.append_column(name, gathered.column(name))
    with tempfile.TemporaryDirectory() as out:
        count = iter(range(10**6))
        step(f"write {result.num_rows:,} rows x {result.num_columns} columns (zstd, sha256, "
             f"fsync)", lambda: write_parquet(result, os.path.join(out, f"{next(count)}.parquet")))
    print("| step | seconds (best of 3) |")
    print("|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    memory = sub.add_parser("insert-memory")
    memory.add_argument("--rows", type=float, nargs="+", default=[2e6, 4e6, 1e7, 2e7])
    replace = sub.add_parser("replace-all")
    replace.add_argument("--rows", type=float, default=3e6)
    floor = sub.add_parser("join-floor")
    floor.add_argument("work", help="the folder `python -m benchmarks.peers_big --keep` printed")
    args = parser.parse_args()
    if args.what == "insert-memory":
        insert_memory([int(r) for r in args.rows])
    elif args.what == "replace-all":
        replace_all(int(args.rows))
    else:
        join_floor(args.work)


if __name__ == "__main__":
    main()
