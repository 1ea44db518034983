"""Statistics built from per-file summaries: merged summaries against an exact reference
(exact while files are small, within the stated error when not), summaries kept in the lake so
that a commit costs only its own files, and kept summaries that cannot be trusted caught by
reads and by ``verify()``."""

import collections
import math
import os
import pathlib

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lakecore
from lakecore.quality import file_statistics, summaries
from lakecore.quality.file_statistics import STATISTICS_DIR
from lakecore.quality.statistics import describe, merge
from lakecore.quality.summaries import summarize


def merged(column: pa.Array, cuts: list[int]) -> lakecore.ColumnStats:
    bounds = [0, *sorted(c % (len(column) + 1) for c in cuts), len(column)]
    parts = [summarize(column.slice(lo, hi - lo)) for lo, hi in zip(bounds, bounds[1:])]
    return merge(parts, column.type)


values = st.lists(st.one_of(st.none(), st.integers(-50, 50).map(float), st.just(float("nan")),
                            st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=80)


@settings(max_examples=150, deadline=None)
@given(values, st.lists(st.integers(0, 100), max_size=5))
@example([0.0, 5e-324], [])         # a range too narrow for np.histogram's 20 bins
def test_merged_small_files_give_the_exact_figures(values, cuts):
    column = pa.array(values, pa.float64())
    got, exact = merged(column, cuts), describe(pa.table({"x": column})).columns["x"]
    assert (got.count, got.nulls, got.distinct, got.min, got.max) == (
        exact.count, exact.nulls, exact.distinct, exact.min, exact.max)
    assert got.quantiles == exact.quantiles and got.histogram == exact.histogram
    if exact.mean is not None:
        assert math.isclose(got.mean, exact.mean, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(got.std, exact.std, rel_tol=1e-6, abs_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "dd", "é", "a" * 300])),
                min_size=1, max_size=80), st.lists(st.integers(0, 100), max_size=5))
def test_merged_strings_count_values_exactly(values, cuts):
    got = merged(pa.array(values, pa.string()), cuts)
    counts = collections.Counter(v for v in values if v is not None)
    assert (got.count, got.nulls, got.distinct) == (len(values), values.count(None), len(counts))
    assert got.top == (sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:20] or None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=40),
       st.lists(st.integers(0, 40), max_size=3))
def test_merged_booleans(values, cuts):
    got = merged(pa.array(values, pa.bool_()), cuts)
    counts = collections.Counter(v for v in values if v is not None)
    assert got.distinct == len(counts)
    assert got.top == (sorted(counts.items(), key=lambda p: (-p[1], p[0])) or None)


@pytest.mark.parametrize("parts", [1, 3, 40])
def test_big_files_stay_within_the_stated_error(parts):
    rng = np.random.default_rng(parts)
    n = 300_000
    numbers = np.round(rng.lognormal(size=n), 6)
    strings = pa.array([f"user-{i}" for i in rng.integers(0, 120_000, n)])
    cuts = list(np.linspace(0, n, parts + 1).astype(int)[1:-1])
    got = merged(pa.array(numbers), cuts)
    ordered = np.sort(numbers)
    for q, value in got.quantiles.items():      # the contract: rank error within 1%
        low, high = np.searchsorted(ordered, value, "left"), np.searchsorted(ordered, value,
                                                                             "right")
        target = math.ceil(q * n)
        rank_error = max(low + 1 - target, target - high, 0) / n
        assert rank_error <= 1 / summaries.POINTS, (q, rank_error)
    assert abs(got.distinct - len(np.unique(numbers))) <= 0.02 * len(np.unique(numbers))
    edges, counts = got.histogram
    exact, _ = np.histogram(numbers, bins=20, range=(edges[0], edges[-1]))
    assert sum(counts) == n
    assert np.abs(np.array(counts) - exact).max() <= n / summaries.POINTS * 2
    assert got.mean == pytest.approx(numbers.mean(), rel=1e-12)
    assert got.std == pytest.approx(numbers.std(), rel=1e-9)
    words = merged(strings, cuts)
    truth = len(set(strings.to_pylist()))
    assert abs(words.distinct - truth) <= 0.02 * truth


def test_distinct_hashes_tell_strings_apart():
    # lengths, byte order and positions past the weights' period all count
    texts = ["", "a", "aa", "ab", "ba", "a\x00", "\x00a", "x" * 256 + "a", "x" * 256 + "b",
             "x" * 255 + "ab", "é", "e"]
    assert merged(pa.array(texts), []).distinct == len(texts)


# -- kept in the lake -----------------------------------------------------------------------
@pytest.fixture
def counted(monkeypatch):
    """How many data files had their summaries computed from the file itself."""
    calls = []
    real = file_statistics.summarize_file

    def counting(table, add, target):
        calls.append(add["path"])
        return real(table, add, target)

    monkeypatch.setattr(file_statistics, "summarize_file", counting)
    return calls


def rows(start: int, n: int) -> dict:
    ids = list(range(start, start + n))
    return {"id": ids, "x": [float(i % 7) for i in ids], "c": [f"c{i % 3}" for i in ids]}


def test_a_commit_costs_only_the_files_it_added(tmp_path, counted):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        for start in range(0, 50, 10):
            fifth = fg.insert(rows(start, 10))
        files = len(fg._table.snapshot().files)
        first = fg.statistics()
        assert len(counted) == files
        fg.insert(rows(100, 5))
        # the commit's own file, and any a merge wrote with it
        new_files = set(fg._table.snapshot().files) - set(counted)
        second = fg.statistics()
        assert 1 <= len(new_files) <= 2 and len(counted) == files + len(new_files)
        assert second.columns["x"].count == 55
        assert second == describe_read(fg)
        assert first == fg.statistics(as_of=fifth.version)
    with lakecore.open(tmp_path / "lake") as lake:        # kept in the lake: nothing to read
        assert lake.feature_group("g").statistics() == second
        assert len(counted) == files + len(new_files)


def describe_read(fg) -> lakecore.Statistics:
    """The exact statistics of the group's rows, for comparison."""
    table = fg.read()
    exact = describe(table)
    # means may differ in the last bits (sums merged from files): compare them apart
    return lakecore.Statistics(columns={
        name: type(s)(**{**{f: getattr(s, f) for f in s.__struct_fields__},
                         "mean": fg.statistics().columns[name].mean,
                         "std": fg.statistics().columns[name].std})
        for name, s in exact.columns.items()})


def test_columns_added_later_are_null_in_older_files(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert(rows(0, 10))
        fg.statistics()
        fg.add_columns([pa.field("y", pa.int64())])
        fg.insert({**rows(10, 2), "y": [5, 7]})
        y = fg.statistics().columns["y"]
        assert (y.count, y.nulls, y.min, y.max, y.mean) == (12, 10, 5, 7, 6.0)


def test_a_read_only_lake_keeps_nothing(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        lake.create_feature_group("g", primary_key="id").insert(rows(0, 10))
    with lakecore.open(tmp_path / "lake", readonly=True) as lake:
        assert lake.feature_group("g").statistics().columns["id"].count == 10
    assert not os.path.exists(tmp_path / "lake" / "g_1" / STATISTICS_DIR) or not os.listdir(
        tmp_path / "lake" / "g_1" / STATISTICS_DIR)


def kept_files(lake_path) -> list[str]:
    found = []
    for folder, _, names in os.walk(lake_path):
        if os.path.basename(folder) == STATISTICS_DIR:
            found += [os.path.join(folder, n) for n in names]
    return sorted(found)


def test_summaries_that_contradict_their_file_are_caught(tmp_path):
    lake_path = tmp_path / "lake"
    with lakecore.open(lake_path) as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert(rows(0, 10))
        fg.statistics()
    [path] = kept_files(lake_path)
    kept = file_statistics._decoder.decode(pathlib.Path(path).read_bytes())
    original = pathlib.Path(path).read_bytes()

    # a forged count: reads refuse it, verify reports it
    kind, summary = kept["x"]
    forged = {**kept, "x": (kind, summaries.Summary(**{
        **{f: getattr(summary, f) for f in summary.__struct_fields__}, "count": 11}))}
    pathlib.Path(path).write_bytes(file_statistics._encoder.encode(forged))
    with lakecore.open(lake_path) as lake:
        with pytest.raises(lakecore.IntegrityError, match="counts 11 rows"):
            lake.feature_group("g").statistics()
        assert any(STATISTICS_DIR in p for p in lake.verify().problems)

    # a forged mean (consistent counts): only recomputing finds it
    forged = {**kept, "x": (kind, summaries.Summary(**{
        **{f: getattr(summary, f) for f in summary.__struct_fields__},
        "total": summary.total + 100.0}))}
    pathlib.Path(path).write_bytes(file_statistics._encoder.encode(forged))
    with lakecore.open(lake_path) as lake:
        problems = lake.verify().problems
        assert any("'x'" in p and "differ" in p for p in problems), problems

    # a torn or garbled file is computed again by a read, and reported by verify
    pathlib.Path(path).write_bytes(b"\x93garbage")
    with lakecore.open(lake_path) as lake:
        assert any("unreadable" in p for p in lake.verify().problems)
        assert lake.feature_group("g").statistics().columns["x"].count == 10
        assert pathlib.Path(path).read_bytes() == original
        assert lake.verify().ok

    # a link in its place is never read through
    os.unlink(path)
    os.symlink(tmp_path / "elsewhere", path)
    with lakecore.open(lake_path) as lake:
        with pytest.raises(lakecore.IntegrityError):
            lake.feature_group("g").statistics()
        assert not lake.verify().ok


def test_vacuum_removes_the_summaries_of_the_files_it_deletes(tmp_path):
    import datetime as dt
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert(rows(0, 10))
        fg.statistics()
        fg.insert({**rows(0, 10), "x": [1.5] * 10})   # every row changes: a new file
        fg.statistics()
        assert len(kept_files(tmp_path / "lake")) == 2
        lake.vacuum(retain=dt.timedelta(0))
        remaining = kept_files(tmp_path / "lake")
        assert len(remaining) == 1
        live = {file_statistics.file_digest(a) for a in fg._table.snapshot().files.values()}
        assert "sha256:" + os.path.basename(remaining[0]).split(".")[0] in live
        assert lake.verify().ok



@pytest.mark.parametrize("offset", [154, 367, 0])
def test_distinct_counts_of_large_files_stay_within_two_percent(offset):
    # consecutive integers far from zero once missed by 2.8% with a smaller sketch
    values = np.arange(100_000) + offset * 10**9
    rng = np.random.default_rng(offset)
    spread = rng.integers(0, 2**62, 200_000)
    for column, truth in ((values, len(values)), (spread, len(np.unique(spread)))):
        got = merged(pa.array(column), [len(column) // 3])
        assert abs(got.distinct - truth) <= 0.02 * truth, (got.distinct, truth)


def test_a_link_in_place_of_the_statistics_folder_is_never_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert(rows(0, 10))
        os.symlink(elsewhere, os.path.join(fg.location, STATISTICS_DIR))
        with pytest.raises(lakecore.IntegrityError, match="link"):
            fg.statistics()
        assert not lake.verify().ok
    assert list(elsewhere.iterdir()) == []
