"""pytest-benchmark suite: ``pytest benchmarks/ --benchmark-disable-gc``.

Group ``asof-1e6`` compares lakecore with polars (sort included) and DuckDB on the same
unsorted data; the other groups time lakecore's parts.
"""

import numpy as np
import pytest

import lakecore
from lakecore._native import asof as asof_kernel
from lakecore._native import factorize

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    lakecore.set_num_threads(request.param)
    yield request.param
    lakecore.set_num_threads(None)


@pytest.mark.benchmark(group="asof-1e6")
def test_lakecore_asof_join(benchmark, tables_1e6, threads):
    left, right = tables_1e6
    out = benchmark(lakecore.asof_join, left, right, on="ts", by="key")
    assert out.num_rows == left.num_rows


@pytest.mark.benchmark(group="asof-1e6")
def test_polars_join_asof_with_sort(benchmark, tables_1e6):
    left, right = (pl.from_arrow(t) for t in tables_1e6)

    def run():
        return left.sort("ts").join_asof(right.sort("ts"), on="ts", by="key",
                                         check_sortedness=False)

    assert benchmark(run).height == left.height


@pytest.mark.benchmark(group="asof-1e6")
def test_duckdb_asof_left_join(benchmark, tables_1e6):
    con = duckdb.connect()
    con.register("l", tables_1e6[0])
    con.register("r", tables_1e6[1])
    sql = "SELECT l.*, r.rid FROM l ASOF LEFT JOIN r ON l.key = r.key AND l.ts >= r.ts"
    assert benchmark(lambda: con.sql(sql).to_arrow_table()).num_rows == tables_1e6[0].num_rows


@pytest.mark.benchmark(group="asof-1e6-string-keys")
def test_lakecore_asof_join_string_keys(benchmark, string_tables_1e6, threads):
    left, right = string_tables_1e6
    assert benchmark(lakecore.asof_join, left, right, on="ts", by="key").num_rows == left.num_rows


@pytest.mark.benchmark(group="kernels-1e6")
def test_kernel_asof_indices(benchmark, tables_1e6, threads):
    left, right = tables_1e6
    lc = left.column("key").to_numpy()
    rc = right.column("key").to_numpy()
    lt = left.column("ts").to_numpy().view(np.int64)
    rt = right.column("ts").to_numpy().view(np.int64)
    out = benchmark(asof_kernel.asof_indices, lc, lt, rc, rt, 10_000, 0, False, False, 0, threads)
    assert (out >= 0).mean() > 0.9


@pytest.mark.benchmark(group="kernels-1e6")
def test_kernel_factorize_int64(benchmark, tables_1e6, threads):
    left, right = tables_1e6
    empty = np.empty(0, np.uint8)
    lk = left.column("key").to_numpy() * 1_000_003  # a wide range: the hash-table path
    rk = right.column("key").to_numpy() * 1_000_003
    _, _, n = benchmark(factorize.factorize_int64, lk, empty, rk, empty, threads)
    assert n == 10_000
