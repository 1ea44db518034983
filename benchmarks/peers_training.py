"""Time training-data creation against DuckDB's ASOF LEFT JOIN, and print ratios.

    python -m benchmarks.peers_training                  # 1e5 spine x 1e6 rows (1e4 keys)
    python -m benchmarks.peers_training --rows 1e5       # a quick, smaller run
    python -m benchmarks.peers_training --big            # also 1e6 spine x 3 groups x 1e6 rows

One process, both engines in the same run, on the same rows:

- **lakecore**: ``fv.create_training_data(spine=spine)`` from the lake on disk: reading the
  group's Parquet files, the point-in-time join with a 7-day ttl, writing the dataset's
  Parquet file with its sha256 and manifest (fsync included).
- **DuckDB**: ``SELECT ... FROM spine ASOF LEFT JOIN f ON s.id = f.id AND s.ts >= f.ts`` over
  the same rows already in memory as Arrow tables (no reads, no writes), with the ttl applied
  as ``CASE WHEN f.ts >= s.ts - INTERVAL 7 DAYS``, materialized with ``.to_arrow_table()``.

Times are the best of ``--repeat``; after the run the two results are compared row by row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time

import numpy as np
import pyarrow as pa

import lakecore

TS = pa.timestamp("us", "UTC")
YEAR_US = 365 * 86_400 * 10**6
BASE_US = 1_767_225_600 * 10**6          # 2026-01-01


def group_rows(n: int, keys: int, seed: int, features: int = 5) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"id": rng.integers(0, keys, n),
                     "ts": pa.array(BASE_US + rng.integers(0, YEAR_US, n), TS),
                     **{f"f{seed}_{i}": rng.random(n) for i in range(features)}})


def spine_rows(n: int, keys: int, seed: int = 99) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"id": rng.integers(0, keys, n),
                     "ts": pa.array(BASE_US + rng.integers(0, YEAR_US, n), TS),
                     "label": rng.integers(0, 2, n)})


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def run(spine_n: int, rows: int, groups: int, keys: int, repeat: int, work: str) -> None:
    import duckdb

    lake = lakecore.open(f"{work}/lake-{groups}")
    tables, query = [], None
    for g in range(groups):
        table = group_rows(rows, keys, seed=g)
        fg = lake.create_feature_group(f"g{g}", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(days=7))
        fg.insert(table)
        tables.append(fg.read())               # what the lake holds (upserts applied)
        query = fg.select_all() if query is None else query.join(fg.select_all())
    view = lake.create_feature_view(f"v{groups}", query=query, labels=["label"])
    spine = spine_rows(spine_n, keys)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours, td = best(lambda: view.create_training_data(spine=spine), repeat)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    con = duckdb.connect()
    con.register("s", spine.append_column("row", pa.array(np.arange(spine_n))))
    selects, joins = [], []
    for g, table in enumerate(tables):
        con.register(f"t{g}", table)
        names = [c for c in table.column_names if c not in ("id", "ts")]
        selects += [f"CASE WHEN t{g}.ts >= s.ts - INTERVAL 7 DAYS THEN t{g}.{c} END AS {c}"
                    for c in names]
        joins.append(f"ASOF LEFT JOIN t{g} ON s.id = t{g}.id AND s.ts >= t{g}.ts")
    sql = f"SELECT s.row, {', '.join(selects)} FROM s {' '.join(joins)} ORDER BY s.row"
    theirs, expected = best(lambda: con.sql(sql).to_arrow_table(), repeat)

    got = td.read()
    names = [c for c in expected.column_names if c != "row"]
    agree = all(got.column(c).to_pylist() == expected.column(c).to_pylist() for c in names)
    print(f"| {spine_n:.0e} spine x {groups} group(s) x {rows:.0e} rows, {keys:.0e} keys | "
          f"{ours:.3f} | {theirs:.3f} | {theirs / ours:.2f}x | {peak_mb:,.0f} MB "
          f"(before: {before / 1024:,.0f} MB) | {'yes' if agree else 'NO'} |")
    lake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--spine", type=float, default=1e5)
    parser.add_argument("--keys", type=float, default=1e4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="lakecore-training-bench-")
    print(f"threads: lakecore {lakecore.get_num_threads()}, DuckDB default")
    print("| data | lakecore s | DuckDB s | DuckDB / lakecore | lakecore peak RSS | agree |")
    print("|---|---|---|---|---|---|")
    try:
        run(int(args.spine), int(args.rows), 1, int(args.keys), args.repeat, work)
        if args.big:
            run(int(args.rows), int(args.rows), 3, int(args.keys), 1, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
