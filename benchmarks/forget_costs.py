"""What ``lake.forget`` costs: one entity erased from a group of 1e6 rows written over 100
commits, with the entity's rows in one commit (keys clustered by commit) or in every commit (an
active user), and the online store on or off.

    python -m benchmarks.forget_costs [--rows 1000000] [--commits 100] [--profile]

Prints, per scenario: the seconds of ``forget``, the commits and data files it rewrote, the
bytes it wrote (staged files put in place), the lake's size before and after, and with
``--profile`` the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time

import numpy as np

import lakecore


def folder_bytes(path: str) -> int:
    return sum(os.lstat(os.path.join(folder, name)).st_size
               for folder, _, names in os.walk(path) for name in names)


def build(path: str, rows: int, commits: int, active: bool, online: bool) -> None:
    per = rows // commits
    rng = np.random.default_rng(0)
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("events", primary_key=["user_id", "event_id"],
                                       online=online)
        for c in range(commits):
            # clustered: commit c holds users [c * per, (c + 1) * per); active: user 7 too
            users = np.arange(c * per, (c + 1) * per, dtype=np.int64) + 1000
            if active:
                users[0] = 7
            fg.insert({"user_id": users, "event_id": np.arange(c * per, (c + 1) * per),
                       "amount": rng.random(per), "kind": rng.integers(0, 20, per)})
        if not active:
            fg.insert({"user_id": [7] * 3, "event_id": [-1, -2, -3], "amount": [1.0, 2.0, 3.0],
                       "kind": [1, 2, 3]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"{args.rows:,} rows over {args.commits} commits; one entity erased\n")
    print("| scenario | forget s | commits rewritten | data files rewritten | rows removed | "
          "bytes written | lake MB before | lake MB after |")
    print("|---|---|---|---|---|---|---|---|")
    profiles = []
    for active in (False, True):
        for online in (False, True):
            path = os.path.join(tempfile.mkdtemp(), "lake")
            build(path, args.rows, args.commits, active, online)
            before = folder_bytes(path)
            with lakecore.open(path) as lake:
                profile = cProfile.Profile() if args.profile else None
                start = time.perf_counter()
                if profile:
                    profile.enable()
                report = lake.forget({"user_id": [7]}, reason="benchmark")
                if profile:
                    profile.disable()
                elapsed = time.perf_counter() - start
                event = [e for e in lake.audit_log() if e.op == "forget"][-1]
                rewritten = event.details["data_files"]
                written = sum(os.lstat(os.path.join(path, p)).st_size for p in rewritten)
                written += sum(os.lstat(os.path.join(path, p)).st_size for p in event.files)
                assert lake.verify(fast=True).ok
            after = folder_bytes(path)
            name = ("in every commit" if active else "in one commit") + \
                (", online" if online else ", offline only")
            print(f"| {name} | {elapsed:.2f} | {len(report.commits_rewritten)} | "
                  f"{len(rewritten)} | {report.rows_removed} | {written:,} | "
                  f"{before / 1e6:.1f} | {after / 1e6:.1f} |", flush=True)
            if profile:
                profiles.append((name, profile))
    for name, profile in profiles:
        print(f"\n### profile: {name}\n")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(14)


if __name__ == "__main__":
    main()
