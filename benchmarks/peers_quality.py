"""Validation speed: lakecore's expectations against Great Expectations 1.x, same data, same run.

    python -m benchmarks.peers_quality [--rows 1000000]

One table of ``--rows`` rows and 20 columns (10 float, 5 integer, 3 category strings, an
e-mail-like string and a key), checked against a suite of 40 expectations of the seven kinds
both judge. lakecore judges a ``pyarrow.Table`` (``quality.expectations.judge``, what every
insert runs); Great Expectations 1.x validates the same rows as a pandas DataFrame (an
ephemeral context, a whole-dataframe batch). The verdicts of every expectation (pass or fail,
unexpected count) must agree; the script stops if one does not. Prints the best of
``--repeat`` runs of each and the ratio, then what 10 of the expectations add to an
``fg.insert`` of the same rows. Great Expectations is a benchmark extra:
``pip install "great_expectations>=1,<2"``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings

import numpy as np
import pyarrow as pa

from lakecore.expect import from_great_expectations
from lakecore.quality.expectations import judge


def make_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"key": np.arange(rows)}
    for i in range(10):
        values = rng.normal(50, 20, rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"f{i}"] = pa.array(values, from_pandas=True)    # NaN as null
    for i in range(5):
        columns[f"i{i}"] = rng.integers(0, 1000, rows)
    for i in range(3):
        columns[f"c{i}"] = pa.array(rng.choice(["DE", "SE", "FR", "NO"], rows,
                                               p=[0.5, 0.3, 0.15, 0.05]))
    emails = rng.choice(["a@b.com", "x@y.org", "bad", "c@d.net"], rows, p=[0.4, 0.4, 0.01, 0.19])
    columns["email"] = pa.array(emails)
    return pa.table(columns)


def make_suite() -> dict:
    """40 expectations over the 20 columns, in Great Expectations' 1.x form."""
    entries = [("expect_table_row_count_to_be_between", {"min_value": 1, "max_value": 10**8}),
               ("expect_column_values_to_be_unique", {"column": "key"})]
    for i in range(10):
        entries.append(("expect_column_values_to_not_be_null", {"column": f"f{i}",
                                                                "mostly": 0.95}))
        entries.append(("expect_column_values_to_be_between",
                        {"column": f"f{i}", "min_value": -20, "max_value": 120 + i,
                         "mostly": 0.999}))
    for i in range(5):
        entries.append(("expect_column_values_to_be_between",
                        {"column": f"i{i}", "min_value": 0, "max_value": 990 + i}))
        entries.append(("expect_column_mean_to_be_between",
                        {"column": f"i{i}", "min_value": 450, "max_value": 550}))
    for i in range(3):
        entries.append(("expect_column_values_to_be_in_set",
                        {"column": f"c{i}", "value_set": ["DE", "SE", "FR"], "mostly": 0.9}))
    entries.append(("expect_column_values_to_match_regex",
                    {"column": "email", "regex": r".+@.+\..+", "mostly": 0.95}))
    entries.append(("expect_column_values_to_not_be_null", {"column": "email"}))
    entries.append(("expect_column_values_to_be_in_set",
                    {"column": "email", "value_set": ["a@b.com", "x@y.org", "c@d.net"]}))
    entries.append(("expect_column_values_to_not_be_null", {"column": "key"}))
    entries.append(("expect_column_values_to_be_between",
                    {"column": "key", "min_value": 0, "max_value": None}))
    assert len(entries) == 40, len(entries)
    return {"name": "bench", "expectations": [{"type": t, "kwargs": k} for t, k in entries]}


def run_lakecore(table: pa.Table, suite: dict, repeat: int) -> tuple[float, list]:
    expectations = from_great_expectations(suite)
    best, report = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        report = judge(expectations, table)
        best = min(best, time.perf_counter() - start)
    return best, [(r.ok, r.unexpected_count) for r in report.results]


def run_great_expectations(table: pa.Table, suite: dict, repeat: int) -> tuple[float, list]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    import great_expectations as gx

    frame = table.to_pandas()
    context = gx.get_context(mode="ephemeral")
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("d") \
        .add_batch_definition_whole_dataframe("b")
    gx_suite = context.suites.add(gx.ExpectationSuite(name="bench"))
    for entry in suite["expectations"]:
        name = "".join(part.capitalize() for part in entry["type"].split("_"))
        gx_suite.add_expectation(getattr(gx.expectations, name)(**entry["kwargs"]))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="v", data=batch, suite=gx_suite))
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = definition.run(batch_parameters={"dataframe": frame},
                                result_format="SUMMARY")
        best = min(best, time.perf_counter() - start)
    by_config = {}                  # results come in their own order: match them by config
    for r in result.results:
        count = r.result.get("unexpected_count")
        if count is None:           # table and aggregate expectations: pass or fail only
            count = int(not r.success)
        by_config[_config_key(r.expectation_config.type, r.expectation_config.kwargs)] = (
            bool(r.success), int(count))
    return best, [by_config[_config_key(e["type"], e["kwargs"])] for e in suite["expectations"]]


def _config_key(kind: str, kwargs: dict) -> str:
    wanted = ("column", "min_value", "max_value", "value_set", "regex", "mostly")
    def norm(v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, (list, tuple, set)):
            return tuple(sorted(map(str, v)))
        return str(v)
    return repr((kind, sorted((k, norm(v)) for k, v in kwargs.items()
                              if k in wanted and v is not None and not (k == "mostly"
                                                                        and v == 1.0))))


def insert_overhead(table: pa.Table, repeat: int) -> tuple[float, float, float]:
    """Best-of-``repeat`` seconds of ``fg.insert(table)`` into a new group: without
    expectations, with 10 (the suite's first ten), and with 10 followed by the first
    ``fg.statistics()`` of the new commit (its files' summaries computed and kept)."""
    import tempfile

    import lakecore

    expectations = from_great_expectations(make_suite())[:10]
    modes = ("plain", "judged", "judged+statistics")
    best = dict.fromkeys(modes, float("inf"))
    for _ in range(repeat):
        for mode in modes:
            with lakecore.open(tempfile.mkdtemp()) as lake:
                fg = lake.create_feature_group("g", primary_key="key")
                if mode != "plain":
                    fg.set_expectations(expectations, on_failure="warn")
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fg.insert(table)
                if mode == "judged+statistics":
                    fg.statistics()
                best[mode] = min(best[mode], time.perf_counter() - start)
    return best["plain"], best["judged"], best["judged+statistics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table, suite = make_table(args.rows), make_suite()
    ours, our_verdicts = run_lakecore(table, suite, args.repeat)
    print(f"lakecore: {ours:.3f} s", flush=True)
    theirs, their_verdicts = run_great_expectations(table, suite, args.repeat)
    print(f"Great Expectations: {theirs:.3f} s", flush=True)
    for n, (a, b) in enumerate(zip(our_verdicts, their_verdicts)):
        if a != b:
            raise SystemExit(f"expectation {n} ({suite['expectations'][n]}): lakecore says "
                             f"{a}, Great Expectations says {b}")
    failed = sum(not ok for ok, _ in our_verdicts)
    print(f"\n{args.rows:,} rows x 20 columns, 40 expectations ({failed} fail in both); "
          f"verdicts agree\n")
    print("| engine | validation s (best of %d) | vs lakecore |" % args.repeat)
    print("|---|---|---|")
    print(f"| lakecore (pyarrow.compute) | {ours:.3f} | 1.0x |")
    print(f"| Great Expectations 1.x (pandas) | {theirs:.3f} | {theirs / ours:.1f}x slower |")
    plain, judged, described = insert_overhead(table, args.repeat)
    print(f"\nfg.insert of the same rows: {plain:.3f} s without expectations, {judged:.3f} s "
          f"with 10 ({judged / plain:.2f}x), {described:.3f} s with 10 and the commit's "
          f"statistics ({described / plain:.2f}x)")


if __name__ == "__main__":
    main()
