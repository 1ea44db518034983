"""What logging costs a predictor: one-key ``predict`` calls with ``log=False`` and
``log=True``, the commits of the buffer included (amortized).

    python -m benchmarks.prediction_logging [--calls 30000] [--rounds 5]

Three figures per mode, each the best of ``--rounds`` alternating rounds (plain and logged
take turns, so that both see the same machine):

- wall: microseconds per call in the serving thread, commits included (they run on the
  log's background thread, every 10,000 rows);
- cpu: process CPU time per call, the background commits included (what logging costs the
  machine, not only the caller);
- buffer only: wall per call with commits held back (``FLUSH_ROWS`` out of reach), which is
  what the serving thread itself pays per call.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

import lakecore
from lakecore.models import prediction_log


class Linear:
    def predict(self, X):
        return X @ np.ones(X.shape[1])


def timed(scorer, keys) -> tuple[float, float]:
    """Wall and CPU microseconds per call, the final flush included."""
    wall, cpu = time.perf_counter(), time.process_time()
    for key in keys:
        scorer.predict(key)
    scorer.flush()
    n = len(keys)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    with lakecore.open(os.path.join(folder, "lake")) as lake:
        fg = lake.create_feature_group("cards", primary_key="card", online=True)
        fg.insert({"card": np.arange(1000), **{f"f{i}": np.random.rand(1000) for i in range(5)}})
        td = lake.create_feature_view("v", query=fg.select_all()).create_training_data()
        artifact = os.path.join(folder, "m.json")
        with open(artifact, "w") as f:
            json.dump({}, f)
        lake.models.register("m", artifact, training_data=td)
        keys = [{"card": [int(k)]} for k in np.random.randint(0, 1000, args.calls)]
        plain = lake.predictor("m", load=lambda path: Linear())
        logged = lake.predictor("m", load=lambda path: Linear(), log=True)
        timed(plain, keys[:2000])
        timed(logged, keys[:2000])                      # warm: the group exists
        best: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for mode, scorer in (("plain", plain), ("logged", logged)):
                wall, cpu = timed(scorer, keys)
                best.setdefault(mode, [wall, cpu])
                best[mode] = [min(best[mode][0], wall), min(best[mode][1], cpu)]
            rows = prediction_log.FLUSH_ROWS
            prediction_log.FLUSH_ROWS = 10**12          # commits held back
            try:
                start = time.perf_counter()
                for key in keys:
                    logged.predict(key)
                buffered = (time.perf_counter() - start) / len(keys) * 1e6
            finally:
                prediction_log.FLUSH_ROWS = rows
            logged.flush()
            best["buffer"] = [min(best.get("buffer", [buffered])[0], buffered)]
        logged.close()
    plain_wall, plain_cpu = best["plain"]
    wall, cpu = best["logged"]
    print(f"{args.calls:,} one-key predict calls, best of {args.rounds} alternating rounds:\n")
    print("| predictor | wall us per call | cpu us per call |")
    print("|---|---|---|")
    print(f"| log=False | {plain_wall:.1f} | {plain_cpu:.1f} |")
    print(f"| log=True | {wall:.1f} | {cpu:.1f} |")
    print(f"| added by logging, commits included | {wall - plain_wall:.1f} | "
          f"{cpu - plain_cpu:.1f} |")
    print(f"| added by logging, buffer only | {best['buffer'][0] - plain_wall:.1f} | |")


if __name__ == "__main__":
    main()
