"""Training data on Spark ``local[2]`` next to the embedded engine (same rows checked).

    python -m benchmarks.peers_spark                 # 1e5 spine x 1e6 rows, 1e4 keys, ttl 7 days
    python -m benchmarks.peers_spark --rows 1e5      # smaller

Spark on one machine is expected to be slower: the point is that the same code scales out.
Times are the best of ``--repeat`` after one warm-up run each (the first Spark job pays for
the JVM's warm-up).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time

import lakecore
from benchmarks.peers_training import group_rows, spine_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--spine", type=float, default=1e5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TZ", "UTC")
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("lakecore-bench")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", "4")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    work = tempfile.mkdtemp(prefix="lakecore-spark-bench-")
    try:
        lake = lakecore.open(f"{work}/lake")
        fg = lake.create_feature_group("g0", primary_key="id", event_time="ts",
                                       ttl=dt.timedelta(days=7))
        fg.insert(group_rows(int(args.rows), 10_000, 0))
        view = lake.create_feature_view("v", query=fg.select_all(), labels=["label"])
        spine = spine_rows(int(args.spine), 10_000)

        def best(fn):
            fn()
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - started)
            return min(times), result

        embedded, a = best(lambda: view.create_training_data(spine=spine))
        on_spark, b = best(lambda: view.create_training_data(spine=spine, spark=spark))
        x, y = a.read(with_keys=True), b.read(with_keys=True)
        same = x.column_names == y.column_names and all(
            p.type == q.type and p.to_pylist() == q.to_pylist() for p, q in zip(x.columns, y.columns))
        print("| data | embedded s | Spark local[2] s | Spark / embedded | same rows |")
        print("|---|---|---|---|---|")
        print(f"| {args.spine:.0e} spine x {args.rows:.0e} rows, 1e4 keys | {embedded:.3f} | "
              f"{on_spark:.3f} | {on_spark / embedded:.1f}x | {'yes' if same else 'NO'} |")
        lake.close()
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
