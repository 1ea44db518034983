"""A fixed number of serving calls, for instruction counts under valgrind (which, unlike wall
time, do not move with the machine's phase).

    valgrind --tool=callgrind python -m benchmarks.serving_calls fv 10000
    valgrind --tool=callgrind python -m benchmarks.serving_calls fv 0

The difference of the two totals over 10,000 is the instructions of one call. ``fv`` is
``view.feature_vector({"id": 123})``, ``read`` is ``fg.online_read({"id": [123]})``, on a
1,000-entity lake: one online group of 20 float features with an event time, a second of 2, one
view over both. Run with ``PYTHONHASHSEED=0 LAKECORE_NUM_THREADS=1``.
"""

from __future__ import annotations

import gc
import sys
import tempfile

import numpy as np
import pyarrow as pa

import lakecore
from lakecore.features import feature_view


def main(what: str, calls: int) -> None:
    n = 1000
    rng = np.random.default_rng(0)
    ts = pa.array(np.full(n, 1_767_225_600_000_000, np.int64)).cast(pa.timestamp("us", "UTC"))
    with lakecore.open(tempfile.mkdtemp()) as lake:
        a = lake.create_feature_group("a", primary_key="id", event_time="ts", online=True)
        a.insert({"id": np.arange(n), "ts": ts, **{f"f{i}": rng.random(n) for i in range(20)}})
        b = lake.create_feature_group("b", primary_key="id", online=True)
        b.insert({"id": np.arange(n), "g0": rng.random(n), "g1": rng.random(n)})
        view = lake.create_feature_view("v", query=a.select_all().join(b.select_all()))
        view.feature_vector({"id": 123})            # warm: plans and handles made
        a.online_read({"id": [123]})
        feature_view._PLAN_RECHECK_S = 1e9          # no catalog look while counting
        gc.disable()
        call = (lambda: view.feature_vector({"id": 123})) if what == "fv" else \
            (lambda: a.online_read({"id": [123]}))
        for _ in range(calls):
            call()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
