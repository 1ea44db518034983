"""Time lakecore's as-of join against polars and DuckDB on the same data, and print ratios.

    python -m benchmarks.peers                       # 1e6 x 1e6 and 1e7 x 1e7, 1 and 2 threads
    python -m benchmarks.peers --sizes 1e6 --threads 2
    python -m benchmarks.peers --big --sizes 1e8 --threads 2   # one call per engine, peak RSS

Every (size, thread count) runs in a fresh subprocess so that each engine's thread pool is
sized before it starts (polars reads POLARS_MAX_THREADS once). Data: unsorted, timestamp[us]
times, int64 keys (``benchmarks.data``), 100 rows per key. polars is timed with the sorts it
needs; DuckDB with its Arrow output. All three results are checked to pick the same right row
for every left row. Times are the best of ``--repeat`` runs.

``--big`` runs every engine in a process of its own, one engine at a time, and reports its peak
RSS (``ru_maxrss``) next to its time. The data is generated once, by a separate process, into
uncompressed Arrow IPC files (kept and reused with ``--data-dir``, else removed); each
engine's process reads them into memory, notes its RSS (the inputs), makes ``--repeat`` calls
(default one) and notes its peak RSS before it reads the result. The results are compared through
an order-independent checksum of the (left row id, right row id or -1) pairs. Before each process
starts, the script waits until ``MemAvailable`` reaches ``--min-available-gb`` (default: 22 GB
from 5e7 rows up, as DuckDB peaks at about 20 GB at 1e8 rows), so that it never runs the machine
out of memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

BIG_ENGINES = ("lakecore", "polars", "duckdb")


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


def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # KiB on Linux


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _wait_for_memory(min_available_gb: float) -> None:
    """Sleep until the machine has ``min_available_gb`` available (it is shared)."""
    while _available_bytes() < min_available_gb * 1e9:
        print(f"  waiting: {_available_bytes() / 1e9:.1f} GB available, "
              f"need {min_available_gb:.0f} GB", file=sys.stderr, flush=True)
        time.sleep(30)


def make_data(n: int, data_dir: str) -> None:
    """Write the left and right tables of size ``n`` as uncompressed Arrow IPC files, one record
    batch each (so that no engine has to combine chunks)."""
    import pyarrow as pa

    from benchmarks.data import asof_tables

    left, right = asof_tables(n, n, max(n // 100, 1), seed=0)
    for name, table in (("left", left), ("right", right)):
        table = table.combine_chunks()
        path = os.path.join(data_dir, f"{name}.arrow")
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=table.num_rows)


def pair_checksum(pairs) -> tuple[int, int]:
    """``(checksum, matched)`` of a table of ``lid`` and ``rid`` (null: no match), independent of
    row order and chunking: the sum, modulo 2**64, of a mixed hash of each pair."""
    import numpy as np

    total, matched = np.uint64(0), 0
    with np.errstate(over="ignore"):
        for batch in pairs.select(["lid", "rid"]).to_batches(max_chunksize=1 << 22):
            lid = batch.column(0).to_numpy(zero_copy_only=False).astype(np.uint64)
            rid_column = batch.column(1)
            matched += len(rid_column) - rid_column.null_count
            rid = rid_column.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            x = lid * np.uint64(0x9E3779B97F4A7C15) + (rid.view(np.uint64) + np.uint64(1))
            x ^= x >> np.uint64(29)
            x *= np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(32)
            total += x.sum(dtype=np.uint64)
    return int(total), matched


def big_worker(engine: str, data_dir: str, threads: int, repeat: int) -> dict:
    """One engine on the files in ``data_dir``: RSS with the inputs loaded, time, CPU time of
    the calls (user and system), peak RSS."""
    import resource

    import pyarrow as pa

    tables = []
    for name in ("left", "right"):
        with pa.OSFile(os.path.join(data_dir, f"{name}.arrow")) as source:
            tables.append(pa.ipc.open_file(source).read_all())
    left, right = tables
    input_bytes = left.nbytes + right.nbytes
    rss_inputs = _peak_rss_bytes()

    if engine == "lakecore":
        import lakecore

        lakecore.set_num_threads(threads)

        def run():
            return lakecore.asof_join(left, right, on="ts", by="key")
    elif engine == "polars":
        import polars as pl

        pl_left, pl_right = pl.from_arrow(left), pl.from_arrow(right)

        def run():
            return pl_left.sort("ts").join_asof(pl_right.sort("ts"), on="ts", by="key",
                                                check_sortedness=False)
    else:
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        con.register("l", left)
        con.register("r", right)
        sql = "SELECT l.*, r.rid FROM l ASOF LEFT JOIN r ON l.key = r.key AND l.ts >= r.ts"

        def run():
            return con.sql(sql).to_arrow_table()

    rss_ready = _peak_rss_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF)
    seconds, result = _best(run, repeat)
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = _peak_rss_bytes()
    if engine == "polars":
        result = result.select("lid", "rid").to_arrow()
    checksum, matched = pair_checksum(result)
    return {"engine": engine, "n": left.num_rows, "threads": threads, "seconds": seconds,
            "input_bytes": input_bytes, "rss_inputs": rss_inputs, "rss_ready": rss_ready,
            "peak_rss": peak, "checksum": checksum, "matched": matched,
            "cpu_user": after.ru_utime - before.ru_utime,
            "cpu_sys": after.ru_stime - before.ru_stime}


def big(sizes: list[str], threads_list: list[int], repeat: int, engines: list[str],
        data_root: str | None, min_available_gb: float | None) -> bool:
    import lakecore

    print(f"lakecore {lakecore.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; "
          f"one process per engine, {repeat} call(s)")
    print()
    print("| rows (left x right, keys) | threads | engine | s | CPU s (user + sys) | inputs GB | "
          "RSS with inputs GB | peak RSS GB | peak / inputs | s / lakecore s | checksum |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for size in sizes:
        n = int(float(size))
        need = min_available_gb if min_available_gb is not None else (22.0 if n >= 5 * 10**7 else 0)
        if data_root is None:
            data_dir = tempfile.mkdtemp(prefix=f"asof-{size}-")
        else:
            data_dir = os.path.join(data_root, f"asof-{n}")
            os.makedirs(data_dir, exist_ok=True)
        try:
            if not all(os.path.exists(os.path.join(data_dir, f"{name}.arrow"))
                       for name in ("left", "right")):
                _wait_for_memory(need)
                subprocess.run([sys.executable, "-m", "benchmarks.peers", "--make-data",
                                data_dir, "--sizes", size], check=True)
            for threads in threads_list:
                env = {**os.environ, "POLARS_MAX_THREADS": str(threads),
                       "LAKECORE_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
                results = []
                for engine in engines:
                    _wait_for_memory(need)
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.peers", "--big-worker", engine,
                         "--data-dir", data_dir, "--threads", str(threads),
                         "--repeat", str(repeat)],
                        env=env, capture_output=True, text=True, check=True,
                    )
                    results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                base = next((r for r in results if r["engine"] == "lakecore"), results[0])
                for r in results:
                    agree = (r["checksum"], r["matched"]) == (base["checksum"], base["matched"])
                    ok &= agree
                    print(f"| {n:.0e} x {n:.0e}, {max(n // 100, 1):.0e} | {threads} | "
                          f"{r['engine']} | {r['seconds']:.2f} | "
                          f"{r['cpu_user']:.1f} + {r['cpu_sys']:.1f} | "
                          f"{r['input_bytes'] / 1e9:.2f} | "
                          f"{r['rss_inputs'] / 1e9:.2f} | {r['peak_rss'] / 1e9:.2f} | "
                          f"{r['peak_rss'] / r['input_bytes']:.2f} | "
                          f"{r['seconds'] / base['seconds']:.2f}x | "
                          f"{'same' if agree else 'DIFFERENT'} |", flush=True)
        finally:
            if data_root is None:
                shutil.rmtree(data_dir, ignore_errors=True)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1e6", "1e7"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true",
                        help="one process and one engine at a time, with peak RSS")
    parser.add_argument("--engines", nargs="+", choices=BIG_ENGINES, default=list(BIG_ENGINES),
                        help="--big: the engines to run")
    parser.add_argument("--data-dir", help="--big: keep the data files in DIR/asof-N and reuse "
                        "them (default: a temporary folder, removed afterwards)")
    parser.add_argument("--min-available-gb", type=float,
                        help="--big: wait for this much available memory before each process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--big-worker", choices=BIG_ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--make-data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(int(float(args.sizes[0])), args.threads[0], args.repeat)))
        return
    if args.make_data:
        make_data(int(float(args.sizes[0])), args.make_data)
        return
    if args.big_worker:
        print(json.dumps(big_worker(args.big_worker, args.data_dir, args.threads[0], args.repeat)))
        return
    if args.big:
        repeat = args.repeat if "--repeat" in sys.argv else 1
        if not big(args.sizes, args.threads, repeat, args.engines, args.data_dir,
                   args.min_available_gb):
            sys.exit("results disagree")
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
