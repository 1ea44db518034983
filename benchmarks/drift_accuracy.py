"""Drift metrics against references: lakecore's PSI and Jensen-Shannon distance next to an
independent scipy reference and Evidently's own stattests, on the same data, with timings.

    python -m benchmarks.drift_accuracy [--rows 100000,1000000] [--repeat 3]

For each scenario (a numeric feature unchanged, its mean shifted by 0.1, 0.5 and 1 sd, its
spread widened, numbers with nulls and with NaN values, balanced small integers, a category
string with shifted frequencies, one with nulls, a boolean) and each row count, one training
and one serving column are drawn once and given to every engine:

- lakecore: ``quality.drift.compare`` on the two Arrow columns (what ``lake.monitor`` runs:
  nulls dropped, PSI for numbers, JS distance for strings and booleans).
- reference: written here from the definitions in ``lakecore/quality/drift.py``'s docstring,
  sharing no code with it. PSI: cuts at the training deciles taken as order statistics with
  exact integer ranks (the ``ceil(i * n / 10)``-th smallest value, i = 1..9, numpy's
  ``inverted_cdf``), bin of a value = how many cuts are strictly below it
  (``searchsorted``), shares floored at 1e-4, ``sum(rel_entr(s, t) + rel_entr(t, s))`` with
  ``scipy.special.rel_entr`` (which is ``sum((s - t) * ln(s / t))``). JS: value counts by
  ``pyarrow.compute.value_counts``, ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
  The max absolute difference against lakecore is printed, and the PSI difference again with
  the reference's cut ranks taken as ``ceil(q * n)`` for q in ``np.linspace(0.1, 0.9, 9)``
  (what ``np.quantile(..., method="inverted_cdf")`` does with those q): 0.30000000000000004
  and 0.7000000000000001 put the 0.3 cut (and for some n the 0.7 cut) one order statistic
  past the decile when 10 divides n. On continuous data that moves one value between bins;
  on the balanced-integers scenario it moves a whole value.
- Evidently (0.7.x, ``evidently.legacy.calculations.stattests``): ``psi_stat_test`` and
  ``jensenshannon_stat_test`` on pandas Series with the nulls dropped (what Evidently's
  column drift does before a stattest). Evidently bins differently, so its numbers are shown
  side by side and only the verdicts are compared:

  * numbers with more than 20 distinct training values: ``np.histogram_bin_edges(...,
    bins="sturges")`` over training and serving *together* -- equal-width bins, about
    log2(2n) + 1 of them (22 at 1e6 + 1e6 rows), not lakecore's 10 equal-count bins at the
    training deciles; the edges move with the serving data, and equal-width bins over a
    normal put little mass in the tails, so its PSI is usually a little higher;
  * fewer distinct values, strings and booleans: one bin per value (as lakecore's JS);
  * PSI smoothing: a zero share becomes 1e-4 (or the smallest non-zero share / 1e6 when that
    is at most 1e-4), where lakecore floors every share at 1e-4; Evidently's JS does not smooth;
  * JS in Evidently uses scipy's default natural log, so on the same frequencies it is
    lakecore's base-2 distance times sqrt(ln 2) = 0.833;
  * thresholds: Evidently drifts at PSI >= 0.1 and JS >= 0.1 (its defaults); lakecore at
    PSI > 0.2 and JS > 0.1. A verdict is each tool's verdict for the metric lakecore uses on
    that column (PSI for numbers, JS otherwise), each with its own threshold.

Evidently 0.7.23's top-level ``import evidently`` fails under pandas 3 (its legacy tests import
``pandas.core.dtypes.common.infer_dtype_from_object``, which pandas 3 removed). The stattests
themselves do not need that module, so when the package import fails this script loads
``evidently.legacy.calculations.stattests`` without running ``evidently/__init__.py`` and says
so. scipy and Evidently are benchmark-only tools, never runtime dependencies of lakecore; a
missing one is reported as "not installed".

Timings are the best of ``--repeat`` calls at the largest row count, of the metric lakecore
uses on the column (Evidently: that one stattest). lakecore's and the reference's include
getting the values out of Arrow (and dropping nulls); Evidently's start from pandas Series
with the nulls already dropped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.quality.drift import JS_THRESHOLD, PSI_THRESHOLD, SMOOTHING, compare

try:
    import scipy
    from scipy.spatial.distance import jensenshannon
    from scipy.special import rel_entr
    SCIPY = f"scipy {scipy.__version__}"
except ImportError:
    jensenshannon = rel_entr = None
    SCIPY = "scipy not installed"


# --- the scenarios --------------------------------------------------------------------------

def _with_nulls(values: np.ndarray, share: float, rng: np.random.Generator) -> pa.Array:
    mask = rng.random(len(values)) < share
    return pa.array(values, mask=mask)


def scenarios(n: int, seed: int) -> list[tuple[str, pa.ChunkedArray, pa.ChunkedArray]]:
    rng = np.random.default_rng(seed)
    cats = np.array(["DE", "SE", "FR", "NO"])
    out: list[tuple[str, Any, Any]] = [
        ("normal, unchanged", rng.normal(0, 1, n), rng.normal(0, 1, n)),
        ("normal, mean +0.1 sd", rng.normal(0, 1, n), rng.normal(0.1, 1, n)),
        ("normal, mean +0.5 sd", rng.normal(0, 1, n), rng.normal(0.5, 1, n)),
        ("normal, mean +1 sd", rng.normal(0, 1, n), rng.normal(1, 1, n)),
        ("normal, sd x1.5", rng.normal(0, 1, n), rng.normal(0, 1.5, n)),
        ("normal, 5%/20% null, mean +0.25 sd", _with_nulls(rng.normal(0, 1, n), 0.05, rng),
         _with_nulls(rng.normal(0.25, 1, n), 0.20, rng)),
    ]
    t, s = rng.normal(0, 1, n), rng.normal(0, 1, n)
    t[rng.random(n) < 0.10] = np.nan                 # NaN values, not nulls
    s[rng.random(n) < 0.30] = np.nan
    out.append(("normal, 10%/30% NaN, unchanged", t, s))
    # integers 0..9, exactly n/10 of each in training (n a multiple of 10): the training
    # deciles are the values 0..8, one value per bin; serving moves mass from 2 to 3 and from
    # 6 to 7. A constructed edge case: the 0.3 cut (and at some n the 0.7 cut) is where a
    # rank taken from the rounded quantile 0.30000000000000004 * n lands one value too far.
    out.append(("ints 0-9 balanced, 2->3 and 6->7", np.repeat(np.arange(10.0), n // 10),
                rng.choice(10, n, p=[.1, .1, .02, .18, .1, .1, .02, .18, .1, .1])
                .astype(np.float64)))
    out.append(("category, shifted + new value",
                pa.array(rng.choice(cats, n, p=[.5, .3, .15, .05])),
                pa.array(rng.choice(np.append(cats, "PL"), n, p=[.35, .3, .2, .1, .05]))))
    out.append(("category, 2%/10% null, unchanged",
                _with_nulls(rng.choice(cats, n, p=[.5, .3, .15, .05]), 0.02, rng),
                _with_nulls(rng.choice(cats, n, p=[.5, .3, .15, .05]), 0.10, rng)))
    out.append(("boolean 30% -> 45%", rng.random(n) < 0.30, rng.random(n) < 0.45))
    out.append(("boolean 30% -> 33%, 5% null", _with_nulls(rng.random(n) < 0.30, 0.05, rng),
                _with_nulls(rng.random(n) < 0.33, 0.05, rng)))
    def column(values: Any) -> pa.ChunkedArray:
        return pa.chunked_array([values if isinstance(values, pa.Array) else pa.array(values)])
    return [(name, column(t), column(s)) for name, t, s in out]


def is_numeric(column: pa.ChunkedArray) -> bool:
    kind = column.type
    return not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_boolean(kind))


# --- the scipy reference ----------------------------------------------------------------------

def _clean(column: pa.ChunkedArray) -> np.ndarray:
    values = column.drop_null().to_numpy().astype(np.float64)
    return values[~np.isnan(values)]


def reference_psi(training: pa.ChunkedArray, serving: pa.ChunkedArray,
                  float_ranks: bool = False) -> float:
    """``float_ranks``: take the cut ranks as ``ceil(q * n)`` with q from
    ``np.linspace(0.1, 0.9, 9)`` (0.30000000000000004 and 0.7000000000000001 among them)
    instead of the exact ``ceil(i * n / 10)``; only to explain a difference."""
    t, s = _clean(training), _clean(serving)
    if not len(t) or not len(s):
        return 0.0
    ordered = np.sort(t)
    n = len(ordered)
    if float_ranks:
        ranks = [max(math.ceil(q * n), 1) for q in np.linspace(0.1, 0.9, 9)]
    else:
        ranks = [-(-i * n // 10) for i in range(1, 10)]               # ceil(i * n / 10)
    cuts = ordered[[r - 1 for r in ranks]]                              # the rank-th smallest

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=10)
        return np.maximum(counts / len(values), SMOOTHING)
    a, b = shares(t), shares(s)
    return float(np.sum(rel_entr(b, a) + rel_entr(a, b)))


def reference_js(training: pa.ChunkedArray, serving: pa.ChunkedArray) -> float:
    def counts(column: pa.ChunkedArray) -> dict:
        vc = pc.value_counts(column.drop_null())
        return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
    a, b = counts(training), counts(serving)
    if not a or not b:
        return 0.0
    keys = list(a.keys() | b.keys())
    p = np.array([a.get(k, 0) for k in keys], np.float64)
    q = np.array([b.get(k, 0) for k in keys], np.float64)
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def reference(training: pa.ChunkedArray, serving: pa.ChunkedArray) -> float:
    if is_numeric(training):
        return reference_psi(training, serving)
    return reference_js(training, serving)


# --- Evidently ---------------------------------------------------------------------------------

def load_evidently() -> tuple[str, Any]:
    """(what was loaded, the stattests module) or (why not, None)."""
    if importlib.util.find_spec("evidently") is None:
        return "evidently not installed", None
    from importlib.metadata import PackageNotFoundError, version
    try:
        release = version("evidently")
    except PackageNotFoundError:
        release = "?"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import evidently  # noqa: F401
            from evidently.legacy.calculations import stattests
            return f"evidently {release}", stattests
        except Exception as e:                      # noqa: BLE001 - any failure is reported
            failure = f"{type(e).__name__}: {e}"
        # the package's __init__ failed: load the stattests without it
        for name in [m for m in sys.modules if m == "evidently" or m.startswith("evidently.")]:
            del sys.modules[name]
        spec = importlib.util.find_spec("evidently")
        stub = types.ModuleType("evidently")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["evidently"] = stub
        try:
            stattests = importlib.import_module("evidently.legacy.calculations.stattests")
        except Exception as e:                      # noqa: BLE001
            return (f"evidently {release} does not import ({failure}; stattests alone: "
                    f"{type(e).__name__}: {e})"), None
        return (f"evidently {release}, stattests loaded without the package __init__ "
                f"(import evidently fails: {failure})"), stattests


def evidently_calls(stattests: Any, training: pa.ChunkedArray, serving: pa.ChunkedArray
                    ) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Evidently's PSI and JS stattests on the two columns, as calls giving a StatTestResult."""
    from evidently.legacy.core import ColumnType
    kind = ColumnType.Numerical if is_numeric(training) else ColumnType.Categorical
    ref, cur = training.to_pandas().dropna(), serving.to_pandas().dropna()

    def call(test: Any) -> Callable[[], Any]:
        def run() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return test(ref, cur, kind, None)
        return run
    return call(stattests.psi_stat_test), call(stattests.jensenshannon_stat_test)


# --- measuring --------------------------------------------------------------------------------

def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(float(r)) for r in args.rows.split(",")]
    ev_name, stattests = load_evidently()
    print(f"lakecore thresholds: PSI > {PSI_THRESHOLD}, JS > {JS_THRESHOLD}; {SCIPY}; {ev_name}")
    if stattests is not None:
        print("Evidently thresholds: PSI >= "
              f"{stattests.psi_stat_test.default_threshold}, JS >= "
              f"{stattests.jensenshannon_stat_test.default_threshold}")
    print()
    print("| scenario | rows | metric | lakecore | scipy ref | abs diff | lakecore drifted "
          "| Evidently PSI | Evidently JS | Evidently drifted | verdicts agree |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    diffs = {"psi": 0.0, "js": 0.0, "psi, float ranks": 0.0}
    js_ratio: list[float] = []
    timings = []
    for n in sizes:
        timed = n == max(sizes)
        for name, training, serving in scenarios(n, args.seed):
            def ours(t=training, s=serving):
                return compare("x", t, s)
            t_ours, row = best_of(ours, args.repeat if timed else 1)
            ref = t_ref = None
            if rel_entr is not None:
                t_ref, ref = best_of(lambda t=training, s=serving: reference(t, s),
                                     args.repeat if timed else 1)
                diffs[row.metric] = max(diffs[row.metric], abs(ref - row.value))
                if row.metric == "psi":
                    diffs["psi, float ranks"] = max(diffs["psi, float ranks"], abs(
                        reference_psi(training, serving, float_ranks=True) - row.value))
            ev = t_ev = None
            if stattests is not None:                # its test of the metric lakecore uses
                psi_call, js_call = evidently_calls(stattests, training, serving)
                same, other = (psi_call, js_call) if row.metric == "psi" else (js_call, psi_call)
                t_ev, verdict = best_of(same, args.repeat if timed else 1)
                psi_ev, js_ev = (verdict, other()) if row.metric == "psi" else (other(), verdict)
                ev = (float(psi_ev.drift_score), float(js_ev.drift_score), bool(verdict.drifted))
                if row.metric == "js" and row.value > 0:
                    js_ratio.append(ev[1] / row.value)
            cells = [name, f"{n:.0e}".replace("+0", ""), row.metric, fmt(row.value),
                     fmt(ref) if rel_entr is not None else "scipy not installed",
                     f"{abs(ref - row.value):.1e}" if ref is not None else "-",
                     "yes" if row.drifted else "no"]
            if ev is not None:
                cells += [fmt(ev[0]), fmt(ev[1]), "yes" if ev[2] else "no",
                          "yes" if ev[2] == row.drifted else "**no**"]
            else:
                cells += ["not installed" if ev_name.endswith("not installed")
                          else "does not import", "-", "-", "-"]
            print("| " + " | ".join(cells) + " |", flush=True)
            if timed:
                timings.append((name, n, t_ours, t_ref, t_ev))
    print()
    if rel_entr is not None:
        print(f"max abs difference lakecore - scipy reference: PSI {diffs['psi']:.2e}, "
              f"JS {diffs['js']:.2e}; PSI with the reference's cut ranks taken as ceil(q * n) "
              f"from np.linspace quantiles: {diffs['psi, float ranks']:.2e}")
    if js_ratio:
        print(f"Evidently JS / lakecore JS on strings and booleans: {min(js_ratio):.4f} to "
              f"{max(js_ratio):.4f} (sqrt(ln 2) = {math.sqrt(math.log(2)):.4f})")
    print()
    print(f"time per call at {max(sizes):,} training + {max(sizes):,} serving rows "
          f"(best of {args.repeat}, ms):")
    print()
    print("| scenario | lakecore | scipy ref | Evidently | ref / lakecore "
          "| Evidently / lakecore |")
    print("|---|---|---|---|---|---|")
    for name, _, t_ours, t_ref, t_ev in timings:
        print(f"| {name} | {t_ours * 1e3:.1f} | "
              f"{'-' if t_ref is None else f'{t_ref * 1e3:.1f}'} | "
              f"{'-' if t_ev is None else f'{t_ev * 1e3:.1f}'} | "
              f"{'-' if t_ref is None else f'{t_ref / t_ours:.2f}x'} | "
              f"{'-' if t_ev is None else f'{t_ev / t_ours:.2f}x'} |")


if __name__ == "__main__":
    main()
