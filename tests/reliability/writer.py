"""A writer that changes a lake in a loop and prints every acknowledged change as a JSON
line; the crash tests SIGKILL it at random moments.

    python -m tests.reliability.writer LAKE SEED
"""

import datetime as dt
import json
import os
import sys
import tempfile

import numpy as np
import pyarrow as pa

import lakecore
import lakecore.base.spill
import lakecore.features.group_stream

TS = pa.timestamp("us", "UTC")
KEYS = 200
# streamed inserts here cross chunks and spill their key hashes as big ones do
lakecore.features.group_stream.CHUNK_ROWS = 64
lakecore.base.spill.DEFAULT_BUDGET_ROWS = 50


def ack(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(path: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lake = lakecore.open(path)
    names = {fg.name for fg in lake.feature_groups()}
    if "events" not in names:
        schema = pa.schema([("id", pa.int64()), ("ts", TS), ("v", pa.float64()),
                            ("tag", pa.string())])
        lake.create_feature_group("events", primary_key="id", event_time="ts", online=True,
                                  schema=schema)
    if "view" not in {v.name for v in lake.feature_views()}:
        lake.create_feature_view("view", query=lake.feature_group("events").select_all())
    fg = lake.feature_group("events")
    view = lake.feature_view("view")
    artifact = os.path.join(tempfile.mkdtemp(), "model.bin")
    now = dt.datetime.now(dt.timezone.utc)
    while True:
        op = rng.choice(["insert", "insert", "upsert", "stream", "delete", "compact", "td",
                         "model"])
        if op == "stream":              # a RecordBatchReader: a file per chunk, one commit
            n = int(rng.integers(1, 400))
            ids, hours = rng.integers(0, KEYS, n), rng.integers(0, 48, n)
            rows = pa.table({"id": ids,
                             "ts": pa.array([now - dt.timedelta(hours=int(h)) for h in hours],
                                            TS),
                             "v": rng.random(n), "tag": [f"s{i}" for i in rng.integers(0, 9, n)]})
            commit = fg.insert(pa.RecordBatchReader.from_batches(
                rows.schema, rows.to_batches(max_chunksize=30)))
            ack(op="commit", version=commit.version, hash=commit.hash)
        elif op in ("insert", "upsert") or not fg.history():
            n = int(rng.integers(1, 300))
            ids = rng.integers(0, KEYS, n)
            hours = rng.integers(0, 48, n) if op == "insert" else np.zeros(n, np.int64)
            times = [now - dt.timedelta(hours=int(h)) for h in hours]
            commit = fg.insert({"id": ids, "ts": pa.array(times, TS), "v": rng.random(n),
                                "tag": [f"t{i}" for i in rng.integers(0, 9, n)]})
            ack(op="commit", version=commit.version, hash=commit.hash)
        elif op == "delete":
            commit = fg.delete({"id": rng.integers(0, KEYS, int(rng.integers(1, 20)))})
            ack(op="commit", version=commit.version, hash=commit.hash)
        elif op == "compact":
            commit = fg.compact()
            ack(op="commit", version=commit.version, hash=commit.hash)
        elif op == "td":
            td = view.create_training_data(split={"train": 0.5, "test": 0.5},
                                           seed=int(rng.integers(0, 1000)))
            ack(op="td", version=td.version, hash=td.hash)
        else:
            with open(artifact, "wb") as f:
                f.write(rng.bytes(int(rng.integers(10, 5000))))
            datasets = view.training_datasets()
            model = lake.models.register("m", artifact,
                                         training_data=datasets[-1] if datasets else None)
            ack(op="model", version=model.version, hash=model.hash)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
