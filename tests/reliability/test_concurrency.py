"""Two writer processes and several readers on one online lake, and a forked child using a
lake its parent opened."""

import datetime as dt
import multiprocessing as mp
import os

import pyarrow as pa

import lakecore

NOW = dt.datetime.now(dt.timezone.utc)
TS = pa.timestamp("us", "UTC")
BATCH = 20


def writer(path: str, worker: int, batches: int) -> None:
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        for b in range(batches):
            ids = [worker * 100_000 + b * BATCH + i for i in range(BATCH)]
            fg.insert({"id": ids, "ts": pa.array([NOW] * BATCH, TS),
                       "batch": [worker * 1000 + b] * BATCH})


def reader(path: str, rounds: int, queue) -> None:
    """Every read must hold whole batches only (BATCH rows of each batch seen)."""
    with lakecore.open(path, readonly=True) as lake:
        fg = lake.feature_group("g")
        torn = 0
        for _ in range(rounds):
            counts = fg.read(columns=["batch"]).column("batch").value_counts().to_pylist()
            torn += sum(1 for c in counts if c["counts"] != BATCH)
            online = fg.online_read({"id": [0, 100_000]})       # never fails mid-write
            assert online.num_rows == 2
        queue.put(torn)


def test_writers_are_serialized_and_readers_see_whole_commits(tmp_path):
    path = str(tmp_path / "lake")
    with lakecore.open(path) as lake:
        lake.create_feature_group("g", primary_key="id", event_time="ts", online=True,
                                  schema=pa.schema([("id", pa.int64()), ("ts", TS),
                                                    ("batch", pa.int64())]))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    batches = 12
    procs = [ctx.Process(target=writer, args=(path, w, batches)) for w in range(2)]
    procs += [ctx.Process(target=reader, args=(path, 25, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    assert [queue.get(timeout=10) for _ in range(2)] == [0, 0]
    with lakecore.open(path) as lake:
        fg = lake.feature_group("g")
        assert len([c for c in fg.history() if c.operation != "compact"]) == 2 * batches
        rows = fg.read()
        assert rows.num_rows == 2 * batches * BATCH
        ids = rows.column("id").to_pylist()
        online = fg.online_read({"id": ids}).column("batch").to_pylist()
        assert online == rows.column("batch").to_pylist()
        assert lake.verify().ok


def test_a_forked_child_uses_the_parents_lake(tmp_path):
    lake = lakecore.open(tmp_path / "lake")
    fg = lake.create_feature_group("g", primary_key="id", online=True)
    fg.insert({"id": [1], "v": [1.0]})
    pid = os.fork()
    if pid == 0:
        try:
            ok = fg.online_read({"id": [1]}).column("v").to_pylist() == [1.0]
            fg.insert({"id": [2], "v": [2.0]})
            ok = ok and fg.online_read({"id": [2]}).column("v").to_pylist() == [2.0]
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fg.online_read({"id": [1, 2]}).column("v").to_pylist() == [1.0, 2.0]
    assert sorted(fg.read().column("id").to_pylist()) == [1, 2]
    lake.close()
