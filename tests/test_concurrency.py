"""Several processes on one lake: writers are serialized and lose nothing; readers only ever
see whole commits."""

import datetime as dt
import multiprocessing as mp

import pyarrow as pa

import lakecore

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
BATCH = 50


def writer(path: str, worker: int, batches: int) -> None:
    lake = lakecore.open(path)
    fg = lake.feature_group("g")
    for b in range(batches):
        ids = [worker * 1_000_000 + b * BATCH + i for i in range(BATCH)]
        fg.insert({"id": ids, "ts": pa.array([T0] * BATCH, pa.timestamp("us", "UTC")),
                   "w": [worker] * BATCH})


def reader(path: str, rounds: int, queue) -> None:
    lake = lakecore.open(path, readonly=True)
    fg = lake.feature_group("g")
    sizes = []
    for _ in range(rounds):
        sizes.append(fg.read(columns=["id"]).num_rows)
    queue.put(sizes)


def test_two_writers_and_readers(tmp_path):
    path = str(tmp_path / "lake")
    lake = lakecore.open(path)
    lake.create_feature_group("g", primary_key="id", event_time="ts")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    batches = 15
    procs = [ctx.Process(target=writer, args=(path, w, batches)) for w in range(2)]
    procs += [ctx.Process(target=reader, args=(path, 30, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    seen = [queue.get(timeout=60) for _ in range(2)]
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    fg = lake.feature_group("g")
    table = fg.read()
    assert table.num_rows == 2 * batches * BATCH
    changes = [c for c in fg.history() if c.operation != "compact"]    # automatic ones besides
    assert len(changes) == 2 * batches
    assert [c.version for c in fg.history()] == list(range(len(fg.history())))
    for sizes in seen:
        # every read saw a whole number of committed batches, never a part of one
        assert all(s % BATCH == 0 for s in sizes)
        assert sizes == sorted(sizes)
