"""What logging costs a predictor: one-key ``predict`` calls with ``log=False`` and
``log=True``, the commits of the buffer included (amortized).

    python -m benchmarks.prediction_logging [--calls 30000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

import lakecore


class Linear:
    def predict(self, X):
        return X @ np.ones(X.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30_000)
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
        results = {}
        for log in (False, True, False, True):
            scorer = lake.predictor("m", load=lambda path: Linear(), log=log)
            start = time.perf_counter()
            for key in keys:
                scorer.predict(key)
            scorer.flush()
            elapsed = (time.perf_counter() - start) / len(keys) * 1e6
            results[log] = min(results.get(log, elapsed), elapsed)
    print(f"{args.calls:,} one-key predict calls (best of 2), flushes included:\n")
    print("| predictor | us per call |")
    print("|---|---|")
    print(f"| log=False | {results[False]:.1f} |")
    print(f"| log=True | {results[True]:.1f} |")
    print(f"| added by logging | {results[True] - results[False]:.1f} |")


if __name__ == "__main__":
    main()
