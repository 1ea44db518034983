"""Offline-store writes: lakecore against the ``deltalake`` package's own writer.

Group ``offline-append-1e6x20``: 1e6 rows x 20 float64 columns (plus ``id`` and ``ts``) into a
new table. Group ``offline-upsert-1e5-into-1e7``: 1e5 rows that replace existing
``(id, ts)`` rows of the most recent of ten 1e6-row appends.

Every round starts from an identical state: the setup copies a prepared folder to a fresh
place (not timed), the timed part opens that folder and writes. The 1e7-row tables are built
once per session, one by each engine, from the same rows (``benchmarks.offline_data``).
"""

import shutil

import pytest

import lakecore
from benchmarks import offline_data as od

deltalake = pytest.importorskip("deltalake")

ROUNDS = 3
N_HISTORY = od.BATCHES * od.BATCH_ROWS
MERGE_PREDICATE = "t.id = s.id AND t.ts = s.ts"


# -- prepared folders (once per session) -----------------------------------------------------
@pytest.fixture(scope="session")
def offline_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def empty_lake(offline_root):
    """A lake with the benchmark group created and no rows."""
    path = str(offline_root / "empty-lake")
    od.lakecore_group(path)
    return path


@pytest.fixture(scope="session")
def lakecore_history(offline_root):
    path = str(offline_root / "history-lake")
    od.write_lakecore_history(path)
    return path


@pytest.fixture(scope="session")
def deltalake_history(offline_root):
    path = str(offline_root / "history-delta")
    od.write_deltalake_history(path)
    return path


@pytest.fixture(scope="session")
def append_batch():
    return od.float_batch(od.BATCH_ROWS, od.N_COLS, seed=1)


@pytest.fixture(scope="session")
def upsert_batch():
    return od.upsert_rows()


@pytest.fixture
def scratch(offline_root, request):
    path = str(offline_root / f"round-{request.node.name}")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _rounds(benchmark, prepared, scratch, write):
    """Time ``write(scratch)`` over ROUNDS rounds, each on a fresh copy of ``prepared``."""
    def setup():
        od.fresh_copy(prepared, scratch)
        return (scratch,), {}

    return benchmark.pedantic(write, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=0)


# -- append ----------------------------------------------------------------------------------
@pytest.mark.benchmark(group="offline-append-1e6x20")
def test_lakecore_append(benchmark, empty_lake, append_batch, scratch):
    def write(path):
        return lakecore.open(path).feature_group(od.GROUP).insert(append_batch)

    commit = _rounds(benchmark, empty_lake, scratch, write)
    assert (commit.version, commit.rows_added, commit.rows_removed) == (0, od.BATCH_ROWS, 0)
    fg = lakecore.open(scratch).feature_group(od.GROUP)
    assert fg.read(columns=["id"]).num_rows == od.BATCH_ROWS


@pytest.mark.benchmark(group="offline-append-1e6x20")
def test_deltalake_write_append(benchmark, offline_root, append_batch, scratch):
    def write(path):
        deltalake.write_deltalake(path, append_batch, mode="append")

    # nothing to copy: every round appends to a table that does not exist yet
    _rounds(benchmark, str(offline_root / "no-table"), scratch, write)
    table = deltalake.DeltaTable(scratch)
    assert table.version() == 0
    assert table.to_pyarrow_table(columns=["id"]).num_rows == od.BATCH_ROWS


# -- upsert ----------------------------------------------------------------------------------
@pytest.mark.benchmark(group="offline-upsert-1e5-into-1e7")
def test_lakecore_upsert(benchmark, lakecore_history, upsert_batch, scratch):
    def write(path):
        return lakecore.open(path).feature_group(od.GROUP).insert(upsert_batch)

    commit = _rounds(benchmark, lakecore_history, scratch, write)
    assert (commit.rows_added, commit.rows_removed) == (od.UPSERT_ROWS, od.UPSERT_ROWS)
    fg = lakecore.open(scratch).feature_group(od.GROUP)
    assert fg.read(columns=["id"]).num_rows == N_HISTORY


def _merge(path, source, **options):
    return (
        deltalake.DeltaTable(path)
        .merge(source=source, predicate=MERGE_PREDICATE, source_alias="s", target_alias="t",
               **options)
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )


def _check_merge(metrics, path):
    assert metrics["num_source_rows"] == od.UPSERT_ROWS
    assert metrics["num_target_rows_updated"] == od.UPSERT_ROWS
    assert metrics["num_target_rows_inserted"] == 0
    assert deltalake.DeltaTable(path).to_pyarrow_table(columns=["id"]).num_rows == N_HISTORY


@pytest.mark.benchmark(group="offline-upsert-1e5-into-1e7")
def test_deltalake_merge(benchmark, deltalake_history, upsert_batch, scratch):
    """deltalake's merge with its defaults (``streamed_exec=True``)."""
    metrics = _rounds(benchmark, deltalake_history, scratch,
                      lambda path: _merge(path, upsert_batch))
    _check_merge(metrics, scratch)


@pytest.mark.benchmark(group="offline-upsert-1e5-into-1e7")
def test_deltalake_merge_not_streamed(benchmark, deltalake_history, upsert_batch, scratch):
    """deltalake's merge with ``streamed_exec=False``: deltalake then derives an early pruning
    predicate from the source's statistics and skips target files outside the source's key
    ranges (its faster setting for this small, in-memory source)."""
    metrics = _rounds(benchmark, deltalake_history, scratch,
                      lambda path: _merge(path, upsert_batch, streamed_exec=False))
    _check_merge(metrics, scratch)
