"""Feature-group statistics four ways: exact, Arrow's t-digest, Apache DataSketches (KLL and
HLL) and lakecore's mergeable summaries, on the same data in one run, for accuracy and speed.

    python -m benchmarks.statistics_methods [--rows 1000000] [--files 100] [--new-rows 10000]
                                            [--repeat 3] [--seed 0]

Data (seeded): ``--rows`` rows of three columns -- ``lognormal`` (float64, lognormal(0, 1),
about as many distinct values as rows), ``int`` (int64, uniform over 0..99,999, about 1e5
distinct) and ``string`` (about 5e4 distinct: half the rows from a Zipf-like head of 1,000
values, half uniform over 50,000). Scenarios, each timed as the best of ``--repeat`` runs
starting from nothing but the Arrow column(s):

- **1 file**: the statistics of the whole column at once;
- **100 files**: the rows cut into ``--files`` files; every method's per-file work
  (summaries, sketches) and its merge, up to the figures;
- **update**: one new file of ``--new-rows`` rows (drawn with the next seed) is added to the
  state kept from the 100 files; the time to the new figures. Methods without a mergeable
  state (exact, t-digest: Arrow's ``tdigest`` returns quantiles only, no digest to keep)
  recompute over all 101 files.

Methods:

- ``exact: describe``: lakecore's ``quality.statistics.describe`` (numpy sort, ranks
  ``ceil(q * n)``, ``pyarrow.compute.count_distinct``, plus moments, 20-bin histogram, top
  values); ``exact: sort + count_distinct`` does only the sort, the ranks and the distinct
  count, the least an exact path costs for the same two figures;
- ``pc.tdigest + count_distinct``: ``pyarrow.compute.tdigest(q=QUANTILES)`` (delta 100) for
  the quantiles of numbers, the exact ``count_distinct`` for distinct values;
- DataSketches 5.2 (a benchmark-only tool, never a lakecore dependency): ``kll_doubles_sketch``
  with k=200 (its default) and k=400 (``get_normalized_rank_error(False)`` below 1%), updated
  from a float64 numpy array, merged with ``merge``, quantiles by ``get_quantiles(QUANTILES,
  inclusive=True)`` (the ``ceil(q * n)``-th value); ``hll_sketch`` with lg_k=12 and 14, which
  takes one value per call, so a Python loop over every value ("all") or over
  ``pc.unique`` of the file ("unique": HLL ignores repeats, so the sketch is the same),
  merged with ``hll_union``; and ``KLL k=400 + HLL lg_k=14 (unique)``, the cheapest pair that
  meets both contract bounds (HLL lg_k=12 has 1.6% relative standard error, above 2% one
  time in ten);
- ``lakecore summaries``: ``quality.summaries.summarize`` per file, ``quality.statistics.merge``
  of the summaries (all the statistics, like ``describe``); the update summarizes the new
  file and merges the 101 summaries (what a commit costs: the older summaries are kept).

Accuracy, against the exact sorted data of the same rows: quantile rank error = the largest,
over the 7 quantiles, of ``|rank(v) - ceil(q * n)| / n``, where ``rank(v)`` is the rank in
v's tie range nearest to ``ceil(q * n)`` (a v between two data values may take either
neighbour's rank); distinct error = ``|estimate - exact| / exact``. Each cell gives the 1-file,
100-file and 101-file (after the update) figure. Deterministic: every repeat, each with fresh
sketches, gave the same figures in all three scenarios. State: the serialized size of what
an incremental path keeps after the update (KLL ``serialize``, HLL ``serialize_compact``,
lakecore's 101 summaries as msgpack, the ones in ``<table>/_statistics``); "data" for the
methods that must keep the rows.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import platform
import sys
import time

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakecore.catalog.specs import QUANTILES
from lakecore.quality.statistics import describe, merge
from lakecore.quality.summaries import HASHES, POINTS, Summary, summarize

try:
    import datasketches as ds
except ImportError:         # benchmark-only tool
    ds = None

Answer = tuple  # (quantiles as a tuple or None, distinct count or None)


# -- data ------------------------------------------------------------------------------------
def make_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    lognormal = rng.lognormal(0.0, 1.0, rows)
    ints = rng.integers(0, 100_000, rows)
    head = np.minimum(rng.zipf(1.3, rows), 1000) - 1            # 0..999, skewed
    uniform = 1000 + rng.integers(0, 50_000, rows)
    codes = np.where(rng.random(rows) < 0.5, head, uniform)
    labels = pa.array([f"item-{i}" for i in range(51_000)])
    strings = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), labels) \
        .cast(pa.string())
    return pa.table({"lognormal": lognormal, "int": ints, "string": strings})


def split(column: pa.ChunkedArray, files: int) -> list[pa.Array]:
    """The column cut into ``files`` files of (nearly) equal size, each its own array."""
    whole = column.combine_chunks()
    cuts = np.linspace(0, len(whole), files + 1).astype(int)
    return [pa.concat_arrays([whole.slice(a, b - a)]) for a, b in zip(cuts[:-1], cuts[1:])]


# -- methods ---------------------------------------------------------------------------------
class Method:
    """``one``: figures of one column; ``files``: (state, figures) from per-file work and a
    merge; ``update``: figures after adding a file to a state (``copy``: an untimed copy of
    the state, for methods whose merge changes it)."""

    name = ""
    numbers_only = False
    quantiles = True
    distinct = True

    def copy(self, state):
        return state

    def state_bytes(self, state, all_files: list[pa.Array]) -> str:
        return f"data ({sum(a.nbytes for a in all_files) / 1e6:.1f} MB)"


class Exact(Method):
    name = "exact: describe"

    def _figures(self, column) -> Answer:
        stats = describe(pa.table({"c": column})).columns["c"]
        quantiles = tuple(stats.quantile_values) if stats.quantile_values is not None else None
        return quantiles, stats.distinct

    def one(self, column):
        return self._figures(column)

    def files(self, files):
        return list(files), self._figures(pa.chunked_array(files))

    def update(self, state, new):
        state.append(new)
        return self._figures(pa.chunked_array(state))


class ExactMinimal(Exact):
    name = "exact: sort + count_distinct"

    def _figures(self, column) -> Answer:
        distinct = pc.count_distinct(column).as_py()
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            return None, distinct
        ordered = np.sort(column.to_numpy())
        n = len(ordered)
        ranks = [min(max(math.ceil(q * n), 1), n) - 1 for q in QUANTILES]
        return tuple(ordered[ranks].tolist()), distinct


class TDigest(Exact):
    name = "pc.tdigest + count_distinct"

    def _figures(self, column) -> Answer:
        distinct = pc.count_distinct(column).as_py()
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            return None, distinct
        return tuple(pc.tdigest(column, q=list(QUANTILES)).to_pylist()), distinct


def _floats(column) -> np.ndarray:
    """A writable float64 copy: the binding refuses Arrow's read-only zero-copy views."""
    return np.require(column.to_numpy(), np.float64, ["C", "W"])


class KLL(Method):
    numbers_only = True
    distinct = False

    def __init__(self, k: int):
        self.k = k
        bound = ds.kll_doubles_sketch.get_normalized_rank_error(k, False)
        self.name = f"DataSketches KLL k={k} (rank error bound {bound:.2%})"

    def _sketch(self, column):
        sketch = ds.kll_doubles_sketch(self.k)
        sketch.update(_floats(column))
        return sketch

    @staticmethod
    def _figures(sketch) -> Answer:
        return tuple(sketch.get_quantiles(list(QUANTILES), True)), None

    def one(self, column):
        return self._figures(self._sketch(column))

    def files(self, files):
        merged = ds.kll_doubles_sketch(self.k)
        for f in files:
            merged.merge(self._sketch(f))
        return merged, self._figures(merged)

    def copy(self, state):
        return ds.kll_doubles_sketch.deserialize(state.serialize())

    def update(self, state, new):
        state.merge(self._sketch(new))
        return self._figures(state)

    def state_bytes(self, state, all_files):
        return f"{len(state.serialize()):,} B"


class HLL(Method):
    quantiles = False

    def __init__(self, lg_k: int, unique: bool):
        self.lg_k, self.unique = lg_k, unique
        self.name = (f"DataSketches HLL lg_k={lg_k}, "
                     f"{'pc.unique values' if unique else 'all values'}")

    def _sketch(self, column):
        sketch = ds.hll_sketch(self.lg_k)
        values = pc.unique(column) if self.unique else column
        # Python values, the fastest way out of Arrow: numpy's tolist for numbers
        items = values.to_pylist() if pa.types.is_string(values.type) \
            else values.to_numpy().tolist()
        update = sketch.update
        for v in items:                 # one value per call: the binding has no array update
            update(v)
        return sketch

    def one(self, column):
        return None, self._sketch(column).get_estimate()

    def files(self, files):
        union = ds.hll_union(self.lg_k)
        for f in files:
            union.update(self._sketch(f))
        state = union.get_result()
        return state, (None, union.get_estimate())

    def update(self, state, new):
        union = ds.hll_union(self.lg_k)
        union.update(state)
        union.update(self._sketch(new))
        return None, union.get_estimate()

    def state_bytes(self, state, all_files):
        return f"{len(state.serialize_compact()):,} B"


class KLLAndHLL(Method):
    def __init__(self, k: int, lg_k: int):
        self.kll, self.hll = KLL(k), HLL(lg_k, unique=True)
        self.name = f"DataSketches KLL k={k} + HLL lg_k={lg_k} (unique)"

    def _numeric(self, column) -> bool:
        return pa.types.is_integer(column.type) or pa.types.is_floating(column.type)

    def one(self, column):
        quantiles = self.kll.one(column)[0] if self._numeric(column) else None
        return quantiles, self.hll.one(column)[1]

    def files(self, files):
        kll_state, (quantiles, _) = self.kll.files(files) if self._numeric(files[0]) \
            else (None, (None, None))
        hll_state, (_, distinct) = self.hll.files(files)
        return (kll_state, hll_state), (quantiles, distinct)

    def copy(self, state):
        return (None if state[0] is None else self.kll.copy(state[0])), state[1]

    def update(self, state, new):
        quantiles = self.kll.update(state[0], new)[0] if state[0] is not None else None
        return quantiles, self.hll.update(state[1], new)[1]

    def state_bytes(self, state, all_files):
        size = len(state[1].serialize_compact())
        if state[0] is not None:
            size += len(state[0].serialize())
        return f"{size:,} B"


class Summaries(Method):
    name = "lakecore summaries: summarize + merge"

    @staticmethod
    def _figures(stats) -> Answer:
        quantiles = tuple(stats.quantile_values) if stats.quantile_values is not None else None
        return quantiles, stats.distinct

    def one(self, column):
        return self._figures(merge([summarize(column)], column.type))

    def files(self, files):
        summaries = [summarize(f) for f in files]
        return summaries, self._figures(merge(summaries, files[0].type))

    def copy(self, state):
        return list(state)

    def update(self, state, new):
        state.append(summarize(new))
        return self._figures(merge(state, new.type))

    def state_bytes(self, state, all_files):
        size = sum(len(msgspec.msgpack.encode(s)) for s in state)
        return f"{size:,} B"


# -- accuracy --------------------------------------------------------------------------------
def rank_error(ordered: np.ndarray, quantiles) -> float:
    """Largest ``|rank(v) - ceil(q * n)| / n`` over the quantiles, rank(v) taken in v's tie
    range (or, for a v between two data values, either neighbour's rank) nearest the target."""
    n = len(ordered)
    worst = 0
    for q, v in zip(QUANTILES, quantiles):
        target = min(max(math.ceil(q * n), 1), n)
        below = int(np.searchsorted(ordered, v, "left"))       # values < v
        upto = int(np.searchsorted(ordered, v, "right"))       # values <= v
        low, high = (below + 1, upto) if upto > below else (below, below + 1)
        worst = max(worst, low - target if target < low else
                    target - high if target > high else 0)
    return worst / n


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3%}"


# -- run -------------------------------------------------------------------------------------
def run(method: Method, column: pa.ChunkedArray, files: list[pa.Array], new: pa.Array,
        repeat: int) -> dict:
    timings = {"one": [], "files": [], "update": []}
    answers = {"one": [], "files": [], "update": []}
    state = None
    for _ in range(repeat):
        start = time.perf_counter()
        answer = method.one(column)
        timings["one"].append(time.perf_counter() - start)
        answers["one"].append(answer)

        start = time.perf_counter()
        state, answer = method.files(files)
        timings["files"].append(time.perf_counter() - start)
        answers["files"].append(answer)

        kept = method.copy(state)
        start = time.perf_counter()
        answer = method.update(kept, new)
        timings["update"].append(time.perf_counter() - start)
        answers["update"].append(answer)
    return {"time": {k: min(v) for k, v in timings.items()},
            "answer": {k: v[0] for k, v in answers.items()},
            "deterministic": all(len(set(v)) == 1 for v in answers.values()),
            "state": method.state_bytes(kept, files + [new])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--new-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.repeat < 2:
        parser.error("--repeat must be at least 2 (determinism compares repeats)")
    if ds is None:
        sys.exit("datasketches is not installed: pip install datasketches (benchmark only)")

    print("Command: " + " ".join(["python -m benchmarks.statistics_methods", *sys.argv[1:]]))
    print(f"Python {platform.python_version()}, numpy {np.__version__}, pyarrow "
          f"{pa.__version__}, datasketches {importlib.metadata.version('datasketches')}"
          f"; lakecore POINTS={POINTS}, HASHES={HASHES}; best of {args.repeat}")
    table = make_table(args.rows, args.seed)
    extra = make_table(args.new_rows, args.seed + 1)

    methods = [Exact(), ExactMinimal(), TDigest(), KLL(200), KLL(400),
               HLL(12, False), HLL(12, True), HLL(14, False), HLL(14, True),
               KLLAndHLL(400, 14), Summaries()]
    notes = []
    print()
    print(f"| column | method | 1 file ms | {args.files} files + merge ms | update +1 file ms "
          f"| quantile rank error (1 / {args.files} / {args.files + 1} files) "
          f"| distinct error (1 / {args.files} / {args.files + 1} files) "
          f"| deterministic | state after update |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in table.column_names:
        column = table.column(name)
        files = split(column, args.files)
        new = extra.column(name).combine_chunks()
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        everything = pa.chunked_array(files + [new])
        truth = {"one": (np.sort(column.to_numpy()) if numeric else None,
                         pc.count_distinct(column).as_py()),
                 "files": (np.sort(column.to_numpy()) if numeric else None,
                           pc.count_distinct(column).as_py()),
                 "update": (np.sort(everything.to_numpy()) if numeric else None,
                            pc.count_distinct(everything).as_py())}
        for method in methods:
            if method.numbers_only and not numeric:
                continue
            result = run(method, column, files, new, args.repeat)
            rank_cells, distinct_cells = [], []
            for scenario in ("one", "files", "update"):
                quantiles, distinct = result["answer"][scenario]
                ordered, exact_distinct = truth[scenario]
                rank_cells.append(pct(rank_error(ordered, quantiles))
                                  if quantiles is not None and numeric else "-")
                distinct_cells.append(pct(abs(distinct - exact_distinct) / exact_distinct)
                                      if distinct is not None else "-")
            t = result["time"]
            rank = " / ".join(rank_cells) if any(c != "-" for c in rank_cells) else "-"
            dist = " / ".join(distinct_cells) if any(c != "-" for c in distinct_cells) else "-"
            print(f"| {name} | {method.name} | {t['one'] * 1e3:.1f} | {t['files'] * 1e3:.1f} "
                  f"| {t['update'] * 1e3:.1f} | {rank} | {dist} "
                  f"| {'yes' if result['deterministic'] else '**no**'} | {result['state']} |",
                  flush=True)
        notes.append(compare_full(name, column, files, new))
    print()
    for note in notes:
        print(note)


def compare_full(name: str, column: pa.ChunkedArray, files: list[pa.Array], new: pa.Array
                 ) -> str:
    """lakecore's merged summaries against ``describe`` on what else they give: moments,
    histogram, top values (after the update, 101 files)."""
    exact = describe(pa.table({"c": pa.chunked_array(files + [new])})).columns["c"]
    merged = merge([summarize(f) for f in files + [new]], column.type)
    parts = [f"- {name}, lakecore summaries after the update vs describe: count "
             f"{'equal' if merged.count == exact.count else 'DIFFERENT'}"]
    if exact.mean is not None:
        same = (merged.min, merged.max) == (exact.min, exact.max)
        parts.append(f"min/max {'equal' if same else 'DIFFERENT'}")
        parts.append(f"mean rel. diff {abs(merged.mean - exact.mean) / abs(exact.mean):.1e}")
        parts.append(f"std rel. diff {abs(merged.std - exact.std) / exact.std:.1e}")
        diff = max(abs(a - b) for a, b in zip(merged.histogram[1], exact.histogram[1]))
        parts.append(f"histogram: largest bin difference {diff} rows of "
                     f"{exact.count - exact.nulls:,}")
    summaries = [summarize(f) for f in files + [new]]
    decoder = msgspec.msgpack.Decoder(Summary)
    encoded = [msgspec.msgpack.encode(s) for s in summaries]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        decoded = [decoder.decode(b) for b in encoded]
        best = min(best, time.perf_counter() - start)
    assert decoded == summaries
    parts.append(f"decoding the {len(encoded)} kept summaries from msgpack (in memory) "
                 f"{best * 1e3:.1f} ms")
    if exact.top is not None:
        parts.append(f"top-{len(exact.top)} values and counts "
                     f"{'equal' if merged.top == exact.top else 'DIFFERENT'}")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
