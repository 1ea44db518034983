"""What a long history costs: one-row inserts into an online group, one commit each, and at
given commit counts the time of an insert, of opening the lake and of ``verify()``.

    python -m benchmarks.history_costs --at 100 1000 10000
    python -m benchmarks.history_costs --at 100 1000 10000 --compact-every 100

Each insert is durable (data file, audit event, commit file, online write, all fsynced).
Without compaction the table has one live file per insert; with ``--compact-every N`` a
compaction commit every N inserts keeps them few, which separates what grows with the history
(commits and events) from what grows with the live files. Runs single-threaded
(``LAKECORE_NUM_THREADS=1``), since one-row inserts gain nothing from threads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("LAKECORE_NUM_THREADS", "1")

import lakecore


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _open_and_look(path: str) -> None:
    """A read-only open, and the group's latest commit (which reads its log)."""
    with lakecore.open(path, readonly=True) as lake:
        assert lake.feature_group("g").hash is not None


def measure(path: str, lake, fg, done: int, probe: int) -> dict:
    inserts = [_timed(lambda i=i: fg.insert({"id": [done + i], "v": [float(i)]}))
               for i in range(probe)]
    # after one more commit: a fast verify (from where the last one ended) and history()
    lake.verify(fast=True)
    fg.history()
    fg.insert({"id": [done], "v": [0.0]})
    fast = _timed(lambda: lake.verify(fast=True))
    history = _timed(fg.history)
    opened = [_timed(lambda: lakecore.open(path).close()) for _ in range(3)]
    readonly = [_timed(lambda: _open_and_look(path)) for _ in range(3)]
    with lakecore.open(path, readonly=True) as lake:
        start = time.perf_counter()
        report = lake.verify()
        full = time.perf_counter() - start
        assert report.ok, report.problems[:3]
        read = _timed(lambda: lake.feature_group("g").read())
    return {"inserts": done + probe, "commits": fg.history()[-1].version + 1,
            "insert_ms": 1e3 * statistics.median(inserts),
            "open_ms": 1e3 * min(opened), "open_readonly_ms": 1e3 * min(readonly),
            "verify_s": full, "read_s": read, "fast_ms": 1e3 * fast, "history_ms": 1e3 * history,
            "files": sum(len(f) for _, _, f in os.walk(path))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--probe", type=int, default=20, help="inserts timed at each point")
    parser.add_argument("--compact-every", type=int, default=0,
                        help="a compaction commit every N inserts (0: none)")
    args = parser.parse_args()
    path = os.path.join(tempfile.mkdtemp(prefix="lakecore-history-"), "lake")
    rows = []
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("g", primary_key="id", online=True)
        done = 0
        for target in sorted(args.at):
            while done < target - args.probe:
                fg.insert({"id": [done], "v": [float(done)]})
                done += 1
                if args.compact_every and done % args.compact_every == 0:
                    fg.compact()
            rows.append(measure(path, lake, fg, done, args.probe))
            done += args.probe
            print(rows[-1], flush=True)
    print(f"\n| inserts | commits | insert ms (median of {args.probe}) | open ms | "
          f"read-only open + fg.hash ms | verify() s | verify(fast) ms after a commit | "
          f"history() ms after a commit | read() s | files |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['inserts']:,} | {r['commits']:,} | {r['insert_ms']:.2f} | "
              f"{r['open_ms']:.1f} | {r['open_readonly_ms']:.1f} | {r['verify_s']:.2f} | "
              f"{r['fast_ms']:.1f} | {r['history_ms']:.1f} | {r['read_s']:.3f} | "
              f"{r['files']:,} |")

if __name__ == "__main__":
    main()
