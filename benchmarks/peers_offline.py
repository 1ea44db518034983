"""Time lakecore's offline-store writes against the deltalake package, and print ratios.

    python -m benchmarks.peers_offline                   # append 1e6 x 20, upsert 1e5 into 1e7
    python -m benchmarks.peers_offline --batch-rows 1e5  # a quick, ten times smaller run

One process. First both engines write the same history (``--batches`` appends of
``--batch-rows`` rows, ``benchmarks.offline_data``) into prepared folders; then every
repetition copies the prepared folder to a fresh place, flushes the copy to disk, and times
only the write (including opening the table):

- append: lakecore ``insert`` into a new, empty group vs ``write_deltalake(mode="append")``
  into a new path;
- upsert: lakecore ``insert`` of rows that replace existing ``(id, ts)`` rows of the last
  append vs deltalake ``merge`` (predicate ``t.id = s.id AND t.ts = s.ts``, update all
  matched, insert all not matched), with its default ``streamed_exec=True`` and with
  ``streamed_exec=False``.

The engines take turns inside each repetition; times are the best of ``--repeat``. After the
last repetition, the tables each engine left are read back and compared row by row (sorted by
``id, ts``, on ``id, ts, f0``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

MERGE_PREDICATE = "t.id = s.id AND t.ts = s.ts"


def _merge(path, source, **options) -> dict:
    from deltalake import DeltaTable

    return (
        DeltaTable(path)
        .merge(source=source, predicate=MERGE_PREDICATE, source_alias="s", target_alias="t",
               **options)
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def _rows(table):
    """``id, ts, f0`` sorted by ``id, ts``."""
    return table.select(["id", "ts", "f0"]).sort_by([("id", "ascending"), ("ts", "ascending")])


def _same(ours, theirs) -> bool:
    ours, theirs = _rows(ours), _rows(theirs)
    if theirs.schema != ours.schema:
        theirs = theirs.cast(ours.schema)
    return ours.equals(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-rows", type=float, default=1e6)
    parser.add_argument("--upsert-rows", type=float, default=1e5)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--tmp", default=None, help="folder for the tables (default: system temp)")
    args = parser.parse_args()
    batch_rows, upsert_rows = int(args.batch_rows), int(args.upsert_rows)
    history_rows = args.batches * batch_rows

    import deltalake
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    import lakecore
    from benchmarks import offline_data as od

    print(f"lakecore {lakecore.__version__}, deltalake {deltalake.__version__}, "
          f"pyarrow {pa.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} cores, lakecore threads {lakecore.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d')}", flush=True)

    root = tempfile.mkdtemp(prefix="lakecore-offline-", dir=args.tmp)
    try:
        prepared = {k: os.path.join(root, k) for k in ("empty-lake", "lake", "delta", "none")}
        work = {k: os.path.join(root, f"work-{k}") for k in
                ("lc-append", "dl-append", "lc-upsert", "dl-merge", "dl-merge-ns")}

        started = time.perf_counter()
        od.lakecore_group(prepared["empty-lake"])
        od.write_lakecore_history(prepared["lake"], args.batches, batch_rows, args.cols)
        prepare_lakecore = time.perf_counter() - started
        started = time.perf_counter()
        od.write_deltalake_history(prepared["delta"], args.batches, batch_rows, args.cols)
        prepare_deltalake = time.perf_counter() - started
        print(f"prepared {args.batches} x {batch_rows:.0e} rows: lakecore {prepare_lakecore:.1f} s, "
              f"deltalake {prepare_deltalake:.1f} s", flush=True)

        append_rows = od.float_batch(batch_rows, args.cols, seed=1)
        upsert = od.upsert_rows(upsert_rows, args.batches, batch_rows, args.cols)

        def lakecore_insert(rows):
            return lambda path: lakecore.open(path).feature_group(od.GROUP).insert(rows)

        # name: (prepared folder, timed write)
        cases = {
            "lc-append": (prepared["empty-lake"], lakecore_insert(append_rows)),
            "dl-append": (prepared["none"],
                          lambda path: write_deltalake(path, append_rows, mode="append")),
            "lc-upsert": (prepared["lake"], lakecore_insert(upsert)),
            "dl-merge": (prepared["delta"], lambda path: _merge(path, upsert)),
            "dl-merge-ns": (prepared["delta"],
                            lambda path: _merge(path, upsert, streamed_exec=False)),
        }
        best = {name: float("inf") for name in cases}
        results = {}
        for _ in range(args.repeat):
            for name, (source, write) in cases.items():
                od.fresh_copy(source, work[name])
                started = time.perf_counter()
                results[name] = write(work[name])
                best[name] = min(best[name], time.perf_counter() - started)

        # Checks: counts, then the rows each engine left, compared.
        ok = True
        commit = results["lc-upsert"]
        ok &= (commit.rows_added, commit.rows_removed) == (upsert_rows, upsert_rows)
        for name in ("dl-merge", "dl-merge-ns"):
            ok &= results[name]["num_target_rows_updated"] == upsert_rows
            ok &= results[name]["num_target_rows_inserted"] == 0

        def lakecore_rows(name):
            return lakecore.open(work[name]).feature_group(od.GROUP).read(columns=["id", "ts", "f0"])

        def deltalake_rows(name):
            return DeltaTable(work[name]).to_pyarrow_table(columns=["id", "ts", "f0"])

        ours = lakecore_rows("lc-append")
        agree_append = ours.num_rows == batch_rows and _same(ours, deltalake_rows("dl-append"))
        ours = lakecore_rows("lc-upsert")
        agree_upsert = ours.num_rows == history_rows and all(
            _same(ours, deltalake_rows(name)) for name in ("dl-merge", "dl-merge-ns"))
        ok &= agree_append and agree_upsert
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def rate(rows, seconds):
        return f"{rows / seconds / 1e6:.2f}M"

    append_label = f"append {batch_rows:.0e} x {args.cols} floats to a new table"
    upsert_label = f"upsert {upsert_rows:.0e} into {history_rows:.0e}"
    lines = [
        (append_label, batch_rows, "lc-append", "dl-append", '`write_deltalake(mode="append")`',
         agree_append),
        (upsert_label, upsert_rows, "lc-upsert", "dl-merge", "`merge` (default: streamed_exec=True)",
         agree_upsert),
        (upsert_label, upsert_rows, "lc-upsert", "dl-merge-ns", "`merge(streamed_exec=False)`",
         agree_upsert),
    ]
    print()
    print("| write | lakecore s | lakecore rows/s | deltalake call | deltalake s | "
          "deltalake rows/s | deltalake / lakecore | agree |")
    print("|---|---|---|---|---|---|---|---|")
    for label, rows, ours_name, theirs_name, call, agree in lines:
        ours_s, theirs_s = best[ours_name], best[theirs_name]
        print(f"| {label} | {ours_s:.3f} | {rate(rows, ours_s)} | {call} | {theirs_s:.3f} | "
              f"{rate(rows, theirs_s)} | {theirs_s / ours_s:.2f}x | {'yes' if agree else 'no'} |")
    print()
    print(f"agree: {'yes' if ok else 'no'}")
    if not ok:
        sys.exit("results disagree")


if __name__ == "__main__":
    main()
