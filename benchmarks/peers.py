"""Time lakecore's as-of join against polars and DuckDB on the same data, and print ratios.

    python -m benchmarks.peers                       # 1e6 x 1e6 and 1e7 x 1e7, 1 and 2 threads
    python -m benchmarks.peers --sizes 1e6 --threads 2

Every (size, thread count) runs in a fresh subprocess so that each engine's thread pool is
sized before it starts (polars reads POLARS_MAX_THREADS once). Data: unsorted, timestamp[us]
times, int64 keys (``benchmarks.data``), 100 rows per key. polars is timed with the sorts it
needs; DuckDB with its Arrow output. All three results are checked to pick the same right row
for every left row. Times are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def _best(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def worker(n: int, threads: int, repeat: int) -> dict:
    import duckdb
    import numpy as np
    import polars as pl

    import lakecore
    from benchmarks.data import asof_tables

    left, right = asof_tables(n, n, max(n // 100, 1), seed=0)
    lakecore.set_num_threads(threads)
    times = {}

    times["lakecore"], ours = _best(
        lambda: lakecore.asof_join(left, right, on="ts", by="key"), repeat)
    ours_rid = ours.column("rid").to_numpy(zero_copy_only=False)

    pl_left, pl_right = pl.from_arrow(left), pl.from_arrow(right)
    times["polars"], joined = _best(
        lambda: pl_left.sort("ts").join_asof(pl_right.sort("ts"), on="ts", by="key",
                                             check_sortedness=False), repeat)
    polars_rid = joined.sort("lid")["rid"].to_numpy()

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.register("l", left)
    con.register("r", right)
    sql = "SELECT l.*, r.rid FROM l ASOF LEFT JOIN r ON l.key = r.key AND l.ts >= r.ts"
    times["duckdb"], result = _best(lambda: con.sql(sql).to_arrow_table(), repeat)
    result = result.sort_by("lid")
    duckdb_rid = result.column("rid").to_numpy(zero_copy_only=False)

    def same(a, b) -> bool:
        return bool(np.array_equal(np.nan_to_num(a.astype(float), nan=-1),
                                   np.nan_to_num(b.astype(float), nan=-1)))

    agree = same(ours_rid, polars_rid) and same(ours_rid, duckdb_rid)
    return {"n": n, "threads": threads, "times": times, "agree": agree,
            "matched": int(np.count_nonzero(~np.isnan(ours_rid.astype(float))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1e6", "1e7"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(int(float(args.sizes[0])), args.threads[0], args.repeat)))
        return

    import lakecore

    print(f"lakecore {lakecore.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print()
    print("| rows (left x right, keys) | threads | lakecore s | polars s (sort incl.) | "
          "DuckDB s | polars / lakecore | DuckDB / lakecore | agree |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for size in args.sizes:
        for threads in args.threads:
            env = {**os.environ, "POLARS_MAX_THREADS": str(threads),
                   "LAKECORE_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.peers", "--worker", "--sizes", size,
                 "--threads", str(threads), "--repeat", str(args.repeat)],
                env=env, capture_output=True, text=True, check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            t = r["times"]
            n = r["n"]
            ok &= r["agree"]
            print(f"| {n:.0e} x {n:.0e}, {max(n // 100, 1):.0e} | {threads} | {t['lakecore']:.3f} | "
                  f"{t['polars']:.3f} | {t['duckdb']:.3f} | {t['polars'] / t['lakecore']:.2f}x | "
                  f"{t['duckdb'] / t['lakecore']:.2f}x | {'yes' if r['agree'] else 'NO'} |",
                  flush=True)
    if not ok:
        sys.exit("results disagree")


if __name__ == "__main__":
    main()
