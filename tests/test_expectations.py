"""Expectations on insert: each kind judged like a plain-Python reference, mostly and nulls
as the contract says, rejected inserts write nothing, warned ones are written with their
report stored, covered by verify() and listed; Great Expectations suites read."""

import datetime as dt
import json
import math
import os
import re
import warnings

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lakecore
from lakecore import expect
from lakecore.quality.expectations import judge
from tests.lake_state import lake_digest

NOW = dt.datetime.now(dt.timezone.utc)
TS = pa.timestamp("us", "UTC")


def reference(e, rows: list[dict]) -> tuple[int, int, bool]:
    """(unexpected count, base, ok) by plain Python."""
    if e.kind == "row_count_between":
        bad = not ((e.min is None or len(rows) >= e.min) and (e.max is None or len(rows) <= e.max))
        return int(bad), 1, not bad
    if e.kind == "unique":      # rows with a null in the key are not judged
        keys = [k for k in (tuple(r[c] for c in e.columns) for r in rows) if None not in k]
        bad = sum(1 for k in keys if keys.count(k) > 1)
        base = len(keys)
    else:
        values = [r[e.columns[0]] for r in rows]
        if e.kind == "not_null":
            bad, base = sum(v is None for v in values), len(values)
        else:
            present = [v for v in values if v is not None]
            if e.kind == "mean_between":
                mean = sum(present) / len(present) if present else None
                ok = mean is not None and (e.min is None or mean >= e.min) and (
                    e.max is None or mean <= e.max)
                return int(not ok), 1, ok
            test = {"between": lambda v: (e.min is None or v >= e.min) and (e.max is None or v <= e.max),
                    "in_set": lambda v: v in e.values,
                    "matches": lambda v: re.search(e.regex, v) is not None,
                    "fresh": lambda v: v >= NOW - dt.timedelta(microseconds=e.max_age_us)}[e.kind]
            bad, base = sum(not test(v) for v in present), len(present)
    fraction = bad / base if base else 0.0
    return bad, base, (1 - fraction) >= e.mostly


values = st.lists(st.tuples(st.one_of(st.none(), st.integers(-5, 5)),
                            st.one_of(st.none(), st.sampled_from(["a@b", "x", "yy@", "@z"])),
                            st.integers(0, 3),
                            st.integers(0, 5)), max_size=30)
mostly = st.sampled_from([1.0, 0.9, 0.5, 0.0])


@settings(max_examples=150, deadline=None)
@given(values, mostly, st.integers(-5, 5), st.integers(0, 5))
def test_each_kind_is_judged_like_the_reference(rows, m, low, width):
    table = pa.table({"n": pa.array([r[0] for r in rows], pa.int64()),
                      "s": pa.array([r[1] for r in rows], pa.string()),
                      "k": pa.array([r[2] for r in rows], pa.int64()),
                      "t": pa.array([NOW - dt.timedelta(days=r[3]) for r in rows], TS)})
    plain = table.to_pylist()
    expectations = [expect.not_null("n", mostly=m), expect.between("n", low, low + width, mostly=m),
                    expect.between("n", None, low, mostly=m), expect.in_set("s", ["a@b", "x"], mostly=m),
                    expect.unique(["k"], mostly=m), expect.unique(["k", "s"], mostly=m),
                    expect.matches("s", r".+@.+", mostly=m), expect.mean_between("n", low, low + width),
                    expect.row_count_between(low, low + 3 * width),
                    expect.fresh("t", dt.timedelta(days=width, hours=1), mostly=m)]
    report = judge(expectations, table, now_us=int(NOW.timestamp() * 1e6))
    for e, result in zip(expectations, report.results):
        bad, base, ok = reference(e, plain)
        assert (result.unexpected_count, result.ok) == (bad, ok), (str(e), result)
        assert math.isclose(result.unexpected_fraction, bad / base if base else 0.0)
        if e.kind != "unique":          # unique shows up to 5 distinct repeated keys
            assert len(result.examples) == min(bad, 5)
    assert report.ok == all(r.ok for r in report.results)


@pytest.fixture
def lake(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        yield lake


def payments(lake, on_failure="reject"):
    fg = lake.create_feature_group("pay", primary_key="id", event_time="at")
    fg.set_expectations([expect.not_null("amount"), expect.between("amount", 0, 100),
                         expect.in_set("country", ["DE", "SE"], mostly=0.5)],
                        on_failure=on_failure)
    return fg


def rows(amounts, countries=None):
    n = len(amounts)
    return {"id": list(range(n)), "at": pa.array([NOW] * n, TS), "amount": amounts,
            "country": countries or ["DE"] * n}


def test_a_rejected_insert_writes_nothing_and_carries_its_report(lake):
    fg = payments(lake)
    assert fg.insert(rows([1.0, 2.0])).validation.ok
    before = lake_digest(lake.path)
    with pytest.raises(lakecore.ValidationError, match="between") as caught:
        fg.insert(rows([5.0, 500.0, None]))
    assert lake_digest(lake.path) == before
    results = caught.value.report.results
    assert [r.ok for r in results] == [False, False, True]
    assert results[1].examples == [500.0] and results[1].unexpected_count == 1
    assert len(fg.validation_history()) == 1
    assert lake.verify().ok


def test_a_warned_insert_is_written_with_its_report_stored_and_verified(lake):
    fg = payments(lake, on_failure="warn")
    with pytest.warns(UserWarning, match="expectation"):
        commit = fg.insert(rows([5.0, 500.0], ["DE", "FR"]))
    assert not commit.validation.ok and fg.read().num_rows == 2
    history = fg.validation_history()
    assert history == [commit.validation]
    assert lake.verify().ok, lake.verify().problems
    stored = os.path.join(fg.location, "_validation", f"{commit.version:020d}.json")
    with open(stored) as f:
        report = json.load(f)
    report["ok"] = True                                      # a verdict rewritten by hand
    with open(stored, "w") as f:
        json.dump(report, f)
    assert any("validation report" in p and "sha256" in p for p in lake.verify().problems)
    with pytest.raises(lakecore.IntegrityError):
        fg.validation_history()


def test_the_insert_is_judged_with_its_own_duplicates_resolved(lake):
    fg = lake.create_feature_group("g", primary_key="id")
    fg.set_expectations([expect.unique("id"), expect.between("v", 0, 1)])
    commit = fg.insert({"id": [1, 1, 2], "v": [50.0, 0.5, 0.2]})     # the last 1 wins
    assert commit.validation.ok and fg.read().num_rows == 2


def test_expectations_are_kept_in_the_catalog_and_checked_against_the_schema(lake, tmp_path):
    fg = payments(lake)
    fg.insert(rows([1.0]))
    before = lake_digest(lake.path)
    with pytest.raises(lakecore.SchemaError, match="'nope'"):
        fg.set_expectations([expect.not_null("nope")])
    with pytest.raises(lakecore.ValidationError, match="on_failure"):
        fg.set_expectations([], on_failure="ignore")
    assert lake_digest(lake.path) == before
    with lakecore.open(lake.path) as again:
        assert [str(e) for e in again.feature_group("pay").expectations] == [
            str(e) for e in fg.expectations]
    assert [e.op for e in lake.audit_log()].count("set_expectations") == 1


GE_0 = {"expectations": [
    {"expectation_type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
    {"expectation_type": "expect_column_values_to_be_between",
     "kwargs": {"column": "a", "min_value": 0, "max_value": 9, "mostly": 0.9}},
    {"expectation_type": "expect_column_values_to_be_in_set",
     "kwargs": {"column": "s", "value_set": ["x", "y"]}},
    {"expectation_type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}},
    {"expectation_type": "expect_column_values_to_match_regex",
     "kwargs": {"column": "s", "regex": "^x"}},
    {"expectation_type": "expect_column_mean_to_be_between",
     "kwargs": {"column": "a", "min_value": 1, "max_value": 2}},
    {"expectation_type": "expect_table_row_count_to_be_between",
     "kwargs": {"min_value": 1, "max_value": 10}}]}


def test_great_expectations_suites_in_both_forms(lake):
    old = expect.from_great_expectations(GE_0)
    new = expect.from_great_expectations(json.dumps({"name": "s", "expectations": [
        {"type": e["expectation_type"], "kwargs": e["kwargs"]} for e in GE_0["expectations"]]}))
    assert old == new
    assert [e.kind for e in old] == ["not_null", "between", "in_set", "unique", "matches",
                                     "mean_between", "row_count_between"]
    assert old[1].mostly == 0.9
    with pytest.raises(lakecore.ValidationError, match="expect_column_kl_divergence"):
        expect.from_great_expectations({"expectations": [
            {"type": "expect_column_kl_divergence_to_be_less_than", "kwargs": {}}]})


def test_bad_expectations_are_refused_with_the_argument_named():
    for call, word in [(lambda: expect.between("a"), "min_value"),
                       (lambda: expect.between("a", 3, 1), "above"),
                       (lambda: expect.not_null("a", mostly=2), "mostly"),
                       (lambda: expect.matches("a", "("), "regex"),
                       (lambda: expect.fresh("a", 5), "max_age"),
                       (lambda: expect.in_set("a", "xy"), "values")]:
        with pytest.raises(lakecore.ValidationError, match=word):
            call()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expect.unique(["a", "b"])


def test_unique_on_float_columns_uses_arrow_hash_aggregation():
    table = pa.table({"f": pa.array([0.5, 0.5, None, 1.5, 2.5, 2.5, 2.5], pa.float64())})
    result = judge([expect.unique("f")], table).results[0]
    assert (result.unexpected_count, result.ok) == (5, False)
    assert math.isclose(result.unexpected_fraction, 5 / 6)
    assert sorted(result.examples) == [0.5, 2.5]


def test_a_link_in_place_of_the_reports_folder_is_never_followed(lake, tmp_path):
    fg = payments(lake, on_failure="warn")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, os.path.join(fg.location, "_validation"))
    state = lake_digest(lake.path)
    with pytest.warns(UserWarning), pytest.raises(lakecore.IntegrityError, match="link"):
        fg.insert(rows([5.0, 500.0], ["DE", "FR"]))
    assert lake_digest(lake.path) == state and list(elsewhere.iterdir()) == []
    with pytest.raises(lakecore.IntegrityError, match="link"):
        fg.validation_history()
