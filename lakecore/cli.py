"""The ``lakecore`` command line (also ``python -m lakecore``)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

import lakecore
from lakecore._native.asof import has_openmp


def _demo_tables(n_trades: int, n_quotes: int, n_tickers: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """Synthetic trades and quotes over one trading day, in no particular order."""
    rng = np.random.default_rng(seed)
    day_us = int(6.5 * 3600) * 1_000_000
    open_us = 1_767_000_000 * 1_000_000

    def times(n: int) -> pa.Array:
        return pa.array(open_us + rng.integers(0, day_us, n), pa.int64()).cast(
            pa.timestamp("us", tz="UTC"))

    tickers = np.array([f"T{i:04d}" for i in range(n_tickers)])
    trades = pa.table({
        "ticker": tickers[rng.integers(0, n_tickers, n_trades)],
        "time": times(n_trades),
        "quantity": rng.integers(1, 1_000, n_trades),
    })
    quotes = pa.table({
        "ticker": tickers[rng.integers(0, n_tickers, n_quotes)],
        # quotes arrive in milliseconds: units are unified by the join
        "time": times(n_quotes).cast(pa.timestamp("ms", tz="UTC"), safe=False),
        "bid": np.round(rng.uniform(10, 500, n_quotes), 2),
    })
    return trades, quotes


def quickstart(path: str | None, rows: int) -> int:
    print(f"lakecore {lakecore.__version__} (native core: OpenMP "
          f"{'on' if has_openmp() else 'off'}, {lakecore.get_num_threads()} threads)")
    trades, quotes = _demo_tables(rows, rows, max(rows // 1000, 1), seed=42)
    print(f"generated {trades.num_rows:,} trades and {quotes.num_rows:,} quotes "
          f"for {max(rows // 1000, 1):,} tickers")
    started = time.perf_counter()
    joined = lakecore.asof_join(trades, quotes, on="time", by="ticker",
                                tolerance=dt.timedelta(minutes=5))
    elapsed = time.perf_counter() - started
    matched = joined.num_rows - joined.column("bid").null_count
    print(f"point-in-time join: each trade gets the latest quote of its ticker at most 5 minutes "
          f"old: {matched:,} of {joined.num_rows:,} trades matched in {elapsed * 1000:.1f} ms")
    _print_rows(joined.slice(0, 5))
    if path:
        import pyarrow.parquet as pq

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(joined, folder / "asof_demo.parquet")
        print(f"wrote {folder / 'asof_demo.parquet'}")
    return 0


def _print_rows(table: pa.Table) -> None:
    rows = [[str(v) for v in row.values()] for row in table.to_pylist()]
    widths = [max(len(name), *(len(r[i]) for r in rows)) for i, name in enumerate(table.column_names)]
    print("  ".join(name.rjust(w) for name, w in zip(table.column_names, widths)))
    for row in rows:
        print("  ".join(value.rjust(w) for value, w in zip(row, widths)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakecore", description="lakecore: an embedded, single-process AI lakehouse.")
    parser.add_argument("--version", action="version", version=f"lakecore {lakecore.__version__}")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("quickstart", help="run the end-to-end demo")
    demo.add_argument("path", nargs="?", help="folder to write the demo's output to")
    demo.add_argument("--rows", type=int, default=1_000_000, help="rows per demo table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "quickstart":
            if args.rows < 1:
                parser.error("--rows must be at least 1")
            return quickstart(args.path, args.rows)
        print(f"lakecore {lakecore.__version__}")
        parser.print_help()
        return 0
    except lakecore.LakeError as exc:
        print(f"lakecore: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lakecore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
