"""Streamed inserts (``fg.insert`` of a RecordBatchReader): the same result as inserting the
whole stream as one table, with memory that follows a chunk, not the stream.

Chunks and the in-memory budget of key hashes are made tiny here, so that small streams cross
chunk boundaries, spill their hashes to disk and meet stored rows the way big ones do.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakecore
import lakecore.base.spill as spill
import lakecore.features.group_stream as group_stream
from lakecore import expect
from lakecore.base.keys import key_hashes
from lakecore.base.spill import KeyHashes

TS = pa.timestamp("us", "UTC")
SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("ts", TS),
                    ("x", pa.float64())])


@pytest.fixture
def tiny(monkeypatch):
    """Chunks of 7 rows; key hashes spilled past 5."""
    monkeypatch.setattr(group_stream, "CHUNK_ROWS", 7)
    monkeypatch.setattr(spill, "DEFAULT_BUDGET_ROWS", 5)


def reader(table: pa.Table, batch: int = 5) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch))


def rows_table(rows: list[tuple]) -> pa.Table:
    ids, names, times, xs = zip(*rows) if rows else ([], [], [], [])
    return pa.table({"id": pa.array(ids, pa.int64()), "name": pa.array(names, pa.string()),
                     "ts": pa.array(times, TS), "x": pa.array(xs, pa.float64())})


def canonical(table: pa.Table) -> pa.Table:
    if "id" not in table.column_names:      # a group with no rows and no schema yet
        return table
    return table.sort_by([("id", "ascending"), ("name", "ascending"), ("ts", "ascending")])


def make_group(tmp_path, name: str, **kwargs):
    lake = lakecore.open(str(tmp_path / name))
    fg = lake.create_feature_group("g", primary_key=["id", "name"], event_time="ts",
                                   online=True, **kwargs)
    return lake, fg


def table_files(fg) -> set[str]:
    return {e.name for e in os.scandir(fg.location) if e.name.endswith(".parquet")
            and e.stat().st_size > 0}


row = st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", "ccccccccccc"]),
                st.integers(0, 4), st.one_of(st.none(), st.floats(-5, 5)))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inserts=st.lists(st.lists(row, max_size=30), min_size=1, max_size=4))
def test_stream_equals_table_insert(tmp_path_factory, tiny, inserts):
    """Upserts across batches, chunks, spilled hashes and stored rows: every commit, the
    table and the online store equal an in-memory insert of the same rows."""
    tmp = tmp_path_factory.mktemp("s")
    streamed_lake, streamed = make_group(tmp, "streamed")
    held_lake, held = make_group(tmp, "held")
    keys = {"id": [i for i in range(7) for _ in "abc"],
            "name": [n for _ in range(7) for n in ("a", "b", "ccccccccccc")]}
    for rows in inserts:
        table = rows_table(rows)
        a = streamed.insert(reader(table))
        b = held.insert(table)
        assert (a is None) == (b is None)
        if a is not None:       # (versions differ: more files, other automatic compactions)
            assert (a.operation, a.rows_added, a.rows_removed) == \
                (b.operation, b.rows_added, b.rows_removed)
        assert canonical(streamed.read()).equals(canonical(held.read()))
        if held.history():          # (no schema before the first rows)
            assert streamed.online_read(keys).equals(held.online_read(keys))
    streamed_lake.close()
    held_lake.close()


def test_colliding_hashes_are_told_apart(tmp_path, tiny, monkeypatch):
    """Keys are compared exactly wherever their hashes meet: with a hash that maps every
    key to one of two values, the result is still the in-memory insert's."""
    def weak(table, columns):
        return (np.asarray(table.column(columns[0]).to_numpy(zero_copy_only=False)) % 2
                ).astype(np.uint64) << np.uint64(60)
    import lakecore.offline.stream_upsert as stream_upsert
    import lakecore.offline.table as offline_table
    monkeypatch.setattr(stream_upsert, "key_hashes", weak)
    monkeypatch.setattr(offline_table, "key_hashes", weak)
    rng = np.random.default_rng(5)
    streamed_lake, streamed = make_group(tmp_path, "streamed")
    held_lake, held = make_group(tmp_path, "held")
    for _ in range(3):
        rows = [(int(rng.integers(0, 9)), "ab"[int(rng.integers(0, 2))],
                 int(rng.integers(0, 3)), float(rng.random())) for _ in range(40)]
        a = streamed.insert(reader(rows_table(rows)))
        b = held.insert(rows_table(rows))
        assert (a.rows_added, a.rows_removed) == (b.rows_added, b.rows_removed)
        assert canonical(streamed.read()).equals(canonical(held.read()))
    streamed_lake.close()
    held_lake.close()


def failing_stream(table: pa.Table, after: int, error: Exception):
    def batches():
        for i, batch in enumerate(table.to_batches(max_chunksize=5)):
            if i == after:
                raise error
            yield batch
    return pa.RecordBatchReader.from_batches(table.schema, batches())


@pytest.mark.parametrize("case", ["source fails", "online key too long", "null key",
                                  "expectation"])
def test_a_stream_failing_midway_commits_nothing(tmp_path, tiny, case):
    lake, fg = make_group(tmp_path, "lake")
    first = rows_table([(i, "a", 1, float(i)) for i in range(10)])
    fg.insert(first)
    before = (fg.history(), canonical(fg.read()), table_files(fg),
              fg.online_read({"id": list(range(12)), "name": ["a"] * 12}))
    rows = rows_table([(i, "a", 2, float(i)) for i in range(40)])
    if case == "source fails":
        stream, raised = failing_stream(rows, 6, OSError("the source went away")), OSError
    elif case == "online key too long":
        names = rows.column("name").to_pylist()
        names[33] = "n" * 4000          # no LMDB key holds it: refused before any commit
        stream, raised = reader(rows.set_column(1, "name", pa.array(names))), lakecore.LakeError
    elif case == "null key":
        ids = rows.column("id").to_pylist()
        ids[33] = None
        stream, raised = reader(rows.set_column(0, "id", pa.array(ids, pa.int64()))), \
            lakecore.ValidationError
    else:
        fg.set_expectations([expect.between("x", 0, 30)])
        stream, raised = reader(rows), lakecore.ValidationError
    with pytest.raises(raised):
        fg.insert(stream)
    assert fg.history() == before[0]
    assert canonical(fg.read()).equals(before[1])
    assert table_files(fg) == before[2]
    assert fg.online_read({"id": list(range(12)), "name": ["a"] * 12}).equals(before[3])
    assert not [e for e in os.listdir(fg.location) if e.startswith(".spill-")]
    lake.close()


def test_stream_report_equals_table_report(tmp_path, tiny):
    """Expectations are judged on the written files: the same verdicts, counts and
    examples as on the whole insert in memory (``unique`` across chunks included)."""
    rng = np.random.default_rng(3)
    rows = [(int(rng.integers(0, 30)), "a", int(rng.integers(0, 3)),
             None if rng.random() < 0.1 else float(rng.integers(0, 12))) for _ in range(60)]
    expectations = [expect.unique("x"), expect.not_null("x", mostly=0.5),
                    expect.between("x", 0, 8, mostly=0.2), expect.mean_between("x", 0, 100),
                    expect.row_count_between(1, 10)]
    reports = []
    for name, data in (("streamed", reader(rows_table(rows))), ("held", rows_table(rows))):
        lake, fg = make_group(tmp_path, name)
        fg.set_expectations(expectations, on_failure="warn")
        with pytest.warns(UserWarning, match="expectation"):
            reports.append(fg.insert(data).validation)
        assert len(fg.validation_history()) == 1
        lake.close()
    streamed, held = reports
    assert streamed.rows == held.rows
    assert [(r.expectation, r.ok, r.unexpected_count, r.examples) for r in streamed.results] \
        == [(r.expectation, r.ok, r.unexpected_count, r.examples) for r in held.results]
    assert streamed.results[0].unexpected_count > 0          # repeats across chunks found


def test_any_arrow_stream_object_is_streamed(tmp_path, tiny):
    class Source:       # an object that only speaks the Arrow C stream protocol
        def __init__(self, table):
            self.table = table

        def __arrow_c_stream__(self, requested_schema=None):
            return reader(self.table).__arrow_c_stream__(requested_schema)

    lake, fg = make_group(tmp_path, "lake")
    table = rows_table([(i % 9, "a", i % 3, float(i)) for i in range(30)])
    commit = fg.insert(Source(table))
    assert commit.rows_added == fg.read().num_rows > 7       # more than one chunk
    assert fg.insert(reader(table.slice(0, 0))) is None      # an empty stream: no commit
    with pytest.raises(lakecore.SchemaError, match="data"):
        fg.insert(type("Broken", (), {"__arrow_c_stream__": lambda self, s=None: 1})())
    lake.close()


@settings(max_examples=40, deadline=None)
@given(hashes=st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 2**63, 2**64 - 1]),
                       max_size=60),
       other=st.lists(st.integers(0, 40), max_size=30),
       budget=st.integers(1, 20))
def test_key_hashes_against_brute_force(tmp_path_factory, hashes, other, budget):
    folder = str(tmp_path_factory.mktemp("h"))
    values = np.array(hashes, np.uint64)
    probe = np.array([hashes[i % len(hashes)] if hashes and i % 2 else i for i in other],
                     np.uint64)
    with KeyHashes(folder, budget) as index, KeyHashes(folder, budget) as probes:
        index.add(values, 100)
        probes.add(probe, 0)
        assert index.spilled == (len(values) > budget)
        found = np.concatenate(list(index.repeated(batch_rows=3)) or [np.empty(0, np.int64)])
        expected = [100 + i for i, h in enumerate(hashes) if hashes.count(h) > 1]
        assert sorted(found.tolist()) == expected
        mine, theirs = [], []
        for a, b in index.matches(probes, batch_rows=2):
            mine += a.tolist()
            theirs += b.tolist()
        assert sorted(mine) == [100 + i for i, h in enumerate(hashes) if h in set(probe.tolist())]
        assert sorted(theirs) == [i for i, h in enumerate(probe.tolist()) if h in set(hashes)]
    assert os.listdir(folder) == []                  # the spill folder is removed


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-3, 3), st.sampled_from(["", "x", "yy" * 9]),
                               st.integers(0, 2)), max_size=40))
def test_key_hashes_equal_exactly_for_equal_keys(rows):
    table = pa.table({"k": pa.array([r[0] for r in rows], pa.int64()),
                      "s": pa.array([r[1] for r in rows], pa.string()),
                      "t": pa.array([r[2] for r in rows], TS)})
    hashes = key_hashes(table, ["k", "s", "t"])
    by_key: dict[tuple, set[int]] = {}
    for r, h in zip(rows, hashes.tolist()):
        by_key.setdefault(r, set()).add(h)
    assert all(len(found) == 1 for found in by_key.values())
    distinct = {next(iter(found)) for found in by_key.values()}
    assert len(distinct) == len(by_key)              # no collision among so few keys
    wider = table.cast(pa.schema([("k", pa.int32()), ("s", pa.large_string()), ("t", TS)]))
    assert np.array_equal(key_hashes(wider, ["k", "s", "t"]), hashes)
    swapped = key_hashes(table, ["s", "k", "t"])
    assert len(rows) == 0 or not np.array_equal(swapped, hashes)


MEMORY_CHILD = r"""
import json, resource, sys, tempfile
import numpy as np, pyarrow as pa, lakecore
rows, batch = int(sys.argv[1]), 1_000_000
TS = pa.timestamp("us", "UTC")
schema = pa.schema([("id", pa.int64()), ("ts", TS)] + [(f"f{i}", pa.float64()) for i in range(8)])
def batches():
    rng = np.random.default_rng(0)
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        yield pa.record_batch([pa.array(rng.integers(0, 1_000_000, n)),
                               pa.array(rng.integers(0, 10**13, n), TS)]
                              + [pa.array(rng.random(n)) for _ in range(8)], schema=schema)
first = next(batches())
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with lakecore.open(tempfile.mkdtemp(dir=sys.argv[2])) as lake:
    fg = lake.create_feature_group("events", primary_key="id", event_time="ts")
    commit = fg.insert(pa.RecordBatchReader.from_batches(schema, batches()))
    print(json.dumps({"rows": commit.rows_added, "stream_mb": rows * 80 / 2**20,
                      "baseline_mb": baseline / 1024,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_insert(rows: int, folder) -> dict:
    run = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(rows), str(folder)],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_memory_follows_a_chunk_not_the_stream(tmp_path):
    """Peak memory (each insert in a process of its own) of a 1.2e7-row stream (915 MB of
    values) is that of a 4e6-row one (four chunks: the writer's pipeline full): the 610 MB
    more rows add less than a tenth of their size. Holding the stream would add all of it."""
    small, big = peak_insert(4_000_000, tmp_path), peak_insert(12_000_000, tmp_path)
    assert (small["rows"], big["rows"]) == (4_000_000, 12_000_000)
    grown = big["peak_mb"] - small["peak_mb"]
    assert grown < (big["stream_mb"] - small["stream_mb"]) / 10, (small, big)


def test_spill_folders_of_killed_writers_are_vacuumed(tmp_path):
    lake, fg = make_group(tmp_path, "lake")
    fg.insert(rows_table([(1, "a", 1, 1.0)]))
    left = os.path.join(fg.location, ".spill-abc.tmp")
    os.mkdir(left)
    with open(os.path.join(left, "000.pairs"), "wb") as f:
        f.write(b"\0" * 16)
    old = (dt.datetime.now() - dt.timedelta(days=2)).timestamp()
    os.utime(os.path.join(left, "000.pairs"), (old, old))
    os.utime(left, (old, old))
    assert lake.verify().ok
    result = lake.vacuum(retain=dt.timedelta(0))
    assert not os.path.exists(left)
    assert result.files_deleted >= 1
    lake.close()


def test_a_streams_online_write_is_one_transaction(tmp_path, tiny, monkeypatch):
    """The online store takes a streamed commit a file at a time but in one transaction: a
    writer killed after the first file leaves the online rows as they were, and the next
    open brings them up to the commit."""
    from lakecore.online.store import OnlineStore
    lake, fg = make_group(tmp_path, "lake")
    fg.insert(rows_table([(i, "a", 1, float(i)) for i in range(10)]))
    keys = {"id": list(range(10)), "name": ["a"] * 10}
    before = fg.online_read(keys)
    real = OnlineStore.apply_parts

    def killed_after_one_file(self, name, version, layout, parts, commit, size, clear=False):
        def first_only():
            yield next(iter(parts()))
            raise KeyboardInterrupt("killed")
        return real(self, name, version, layout, first_only, commit, size, clear)
    monkeypatch.setattr(OnlineStore, "apply_parts", killed_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        fg.insert(reader(rows_table([(i, "a", 2, 100.0 + i) for i in range(10)])))
    monkeypatch.undo()
    with lakecore.open(lake.path, readonly=True) as reading:
        assert reading.feature_group("g").online_read(keys).equals(before)
    lake.close()
    with lakecore.open(lake.path) as again:
        fg = again.feature_group("g")
        assert fg.online_read(keys).column("x").to_pylist() == [100.0 + i for i in range(10)]


def test_an_iterator_of_batches_is_streamed(tmp_path, tiny):
    """A Parquet file's batches (``iter_batches``) and iterators of tables are streams too;
    an item of another kind or other columns is a SchemaError and nothing is committed."""
    import pyarrow.parquet as pq
    lake, fg = make_group(tmp_path, "lake")
    table = rows_table([(i, "a", i % 3, float(i)) for i in range(30)])
    pq.write_table(table, str(tmp_path / "rows.parquet"), row_group_size=8)
    commit = fg.insert(pq.ParquetFile(str(tmp_path / "rows.parquet")).iter_batches(batch_size=4))
    assert commit.rows_added == 30
    assert fg.insert(iter([table.slice(0, 5), table.slice(5, 5)])).rows_removed == 10
    assert fg.insert(iter([])) is None
    history = fg.history()
    with pytest.raises(lakecore.SchemaError, match="item 0"):
        fg.insert(iter([1, 2]))
    with pytest.raises(lakecore.SchemaError, match="item 1 of the iterator has columns"):
        fg.insert(iter([table.slice(0, 9), table.drop_columns(["x"]).slice(9, 9)]))
    assert fg.history() == history
    lake.close()
