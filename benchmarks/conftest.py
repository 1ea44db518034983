import pytest

from benchmarks.data import asof_tables, string_keys


@pytest.fixture(scope="session")
def tables_1e6():
    return asof_tables(1_000_000, 1_000_000, 10_000, seed=1)


@pytest.fixture(scope="session")
def string_tables_1e6(tables_1e6):
    left, right = tables_1e6
    return string_keys(left), string_keys(right)
