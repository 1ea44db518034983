"""Drift between training and serving: PSI for numbers, Jensen-Shannon distance for strings and
booleans, and the report (a table, or one self-contained HTML page of histograms).

- PSI: 10 bins cut at the training deciles (values outside the training range fall in the end
  bins), each side's bin fractions smoothed to at least 1e-4, ``sum((s - t) * ln(s / t))``;
  drifted above 0.2.
- JS: the Jensen-Shannon distance in base 2 (0 to 1) between the value frequencies; drifted
  above 0.1.

Nulls are left out of both sides.
"""

from __future__ import annotations

import collections
import html
import math
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PSI_THRESHOLD = 0.2
JS_THRESHOLD = 0.1
SMOOTHING = 1e-4


class DriftRow(msgspec.Struct, frozen=True, kw_only=True):
    """One feature's (or the prediction's) comparison."""

    feature: str
    metric: str                 # "psi" or "js"
    value: float
    threshold: float
    drifted: bool
    training: list[Any] = []    # what the page draws: bin labels, training and serving shares
    labels: list[str] = []
    serving: list[Any] = []


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    """Training against serving, feature by feature (``rows``); ``drifted``: any row is."""

    model: str
    version: int
    rows: list[DriftRow]
    training_rows: int
    serving_rows: int

    @property
    def drifted(self) -> bool:
        return any(r.drifted for r in self.rows)

    def to_table(self) -> pa.Table:
        """One row per feature: feature, metric, value, threshold, drifted."""
        return pa.table({"feature": [r.feature for r in self.rows],
                         "metric": [r.metric for r in self.rows],
                         "value": pa.array([r.value for r in self.rows], pa.float64()),
                         "threshold": pa.array([r.threshold for r in self.rows], pa.float64()),
                         "drifted": pa.array([r.drifted for r in self.rows], pa.bool_())})

    def to_html(self, path: str) -> None:
        """One self-contained page (no network): a histogram of training against serving for
        each feature, the drifted ones first."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(_page(self))


def compare(name: str, training: pa.ChunkedArray, serving: pa.ChunkedArray) -> DriftRow:
    """The drift of one column between training and serving values."""
    t, s = training.drop_null(), serving.drop_null()
    kind = training.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
        return _js_row(name, t, s)
    return _psi_row(name, _numbers(t), _numbers(s))


def _numbers(values: pa.ChunkedArray) -> np.ndarray:
    t = values.type
    if pa.types.is_timestamp(t):
        values = values.cast(pa.timestamp("us", t.tz)).cast(pa.int64())
    elif pa.types.is_date(t):
        values = values.cast(pa.int32())
    out = values.to_numpy().astype(np.float64) if len(values) else np.zeros(0)
    return out[~np.isnan(out)]


def psi(training: np.ndarray, serving: np.ndarray) -> tuple[float, np.ndarray, np.ndarray,
                                                           np.ndarray]:
    """PSI on the training deciles; with the edges and both sides' smoothed shares."""
    if not len(training) or not len(serving):
        return 0.0, np.zeros(0), np.zeros(0), np.zeros(0)
    # the k-th decile is the value at rank ceil(k * n / 10), in integers: float ranks such as
    # 0.30000000000000004 * n would move a cut one value up when 10 divides n
    ordered = np.sort(training)
    n = len(ordered)
    edges = ordered[[max(-(-k * n // 10), 1) - 1 for k in range(1, 10)]]
    shares = []
    for values in (training, serving):
        bins = np.digitize(values, edges, right=True)       # (-inf, q1], (q1, q2], ..., (q9, inf)
        counts = np.bincount(bins, minlength=10)[:10]
        shares.append(np.maximum(counts / len(values), SMOOTHING))
    t, s = shares
    return float(np.sum((s - t) * np.log(s / t))), edges, t, s


def js_distance(training: Any, serving: Any) -> tuple[float, list, list, list]:
    """The Jensen-Shannon distance (base 2) of two samples' value frequencies (lists, or
    Arrow arrays without nulls, counted by Arrow)."""
    if not len(training) or not len(serving):
        return 0.0, [], [], []
    t_counts, s_counts = _frequencies(training), _frequencies(serving)
    values = sorted(t_counts.keys() | s_counts.keys(), key=lambda v: (str(type(v)), v))
    p = np.array([t_counts.get(v, 0) for v in values], np.float64) / len(training)
    q = np.array([s_counts.get(v, 0) for v in values], np.float64) / len(serving)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))
    divergence = max((kl(p) + kl(q)) / 2, 0.0)
    return math.sqrt(divergence), values, p.tolist(), q.tolist()


def _psi_row(name: str, training: np.ndarray, serving: np.ndarray) -> DriftRow:
    value, edges, t, s = psi(training, serving)
    labels = ["≤ " + _short(edges[0])] + [f"{_short(a)} – {_short(b)}"
                                          for a, b in zip(edges[:-1], edges[1:])] + \
        ["> " + _short(edges[-1])] if len(edges) else []
    return DriftRow(feature=name, metric="psi", value=value, threshold=PSI_THRESHOLD,
                    drifted=value > PSI_THRESHOLD, training=list(map(float, t)), labels=labels,
                    serving=list(map(float, s)))


def _frequencies(values: Any) -> dict[Any, int]:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        counted = pc.value_counts(values)
        return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))
    return collections.Counter(values)


def _js_row(name: str, training: Any, serving: Any) -> DriftRow:
    value, values, p, q = js_distance(training, serving)
    return DriftRow(feature=name, metric="js", value=value, threshold=JS_THRESHOLD,
                    drifted=value > JS_THRESHOLD, training=p, labels=[str(v) for v in values],
                    serving=q)


def _short(x: float) -> str:
    return f"{x:.4g}"


TRAINING_COLOR = "#9aa5b1"
SERVING_COLOR = "#2e86ab"
DRIFTED_COLOR = "#d1495b"
MAX_BARS = 24                   # more distinct values than this: the rest drawn as one "other" bar


def _bars(row: DriftRow) -> list[tuple[str, float, float]]:
    """(label, training share, serving share) per bar; past MAX_BARS values, the ones with the
    smallest shares go into one last bar (drawing only: the metric saw every value)."""
    bars = list(zip(row.labels, row.training, row.serving))
    if len(bars) <= MAX_BARS:
        return bars
    keep = set(sorted(range(len(bars)), key=lambda i: -max(bars[i][1], bars[i][2]))
               [:MAX_BARS - 1])
    rest = [b for i, b in enumerate(bars) if i not in keep]
    return [b for i, b in enumerate(bars) if i in keep] + [
        (f"other ({len(rest)} values)", sum(b[1] for b in rest), sum(b[2] for b in rest))]


def _ticks(top: float) -> tuple[float, int]:
    """A round step for the share axis and how many steps reach ``top``."""
    for step in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5):
        if top <= 5 * step:
            return step, max(math.ceil(top / step - 1e-9), 1)
    return 0.25, 4


def _svg(row: DriftRow) -> str:
    """Side-by-side bars per bin (training grey, serving blue) on a share-of-rows axis, with a
    legend; bin labels turn slanted when they would not fit side by side."""
    bars = _bars(row)
    if not bars:
        return '<p class="empty">No values on one side: nothing to draw.</p>'
    n = len(bars)
    width, left, right, top_pad, plot_h = 880, 56, 16, 34, 200
    longest = max(len(label) for label, _, _ in bars)
    slanted = longest * 6.6 > (width - left - right) / n - 6
    cut = 22 if slanted else longest
    if slanted:                 # room on the left for the first label's slant
        left = max(left, math.ceil(min(longest, cut) * 6.6 * 0.77 - 300 / n))
    group = (width - left - right) / n
    bottom = 18 + (min(longest, cut) * 4.6 if slanted else 0) + 22   # labels, axis title
    height = top_pad + plot_h + bottom
    step, steps = _ticks(max(max(t, s) for _, t, s in bars))
    scale = plot_h / (step * steps)
    base = top_pad + plot_h
    name = html.escape(row.feature)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
              f'width="100%" class="chart" role="img" '
              f'aria-label="Share of rows per bin of {name}, training against serving">')]
    digits = 1 if step < 0.01 else 0
    for k in range(steps + 1):
        y = base - k * step * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{"#888" if k == 0 else "#e6e9ed"}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                     f'{k * step:.{digits}%}</text>')
    yx, yy = left - 42, top_pad + plot_h / 2
    parts.append(f'<text x="{yx}" y="{yy:.0f}" class="title" text-anchor="middle" '
                 f'transform="rotate(-90 {yx} {yy:.0f})">share of rows</text>')
    colors = {"training": TRAINING_COLOR, "serving": SERVING_COLOR}
    inner = min(max(group - 8, 2), 96)         # two or three values: bars, not walls
    for i, (label, t, s) in enumerate(bars):
        x = left + i * group + (group - inner) / 2
        for j, (share, side) in enumerate(((t, "training"), (s, "serving"))):
            h = share * scale
            parts.append(f'<rect class="bar {side}" x="{x + j * inner / 2:.1f}" '
                         f'y="{base - h:.2f}" width="{inner / 2 - 1:.1f}" height="{h:.2f}" '
                         f'fill="{colors[side]}">'
                         f'<title>{html.escape(label)}: {side} {share:.1%}</title></rect>')
        shown = html.escape(label if len(label) <= cut else label[:cut - 1] + "…")
        cx = left + (i + 0.5) * group
        if slanted:
            parts.append(f'<text x="{cx:.1f}" y="{base + 14}" class="tick" text-anchor="end" '
                         f'transform="rotate(-40 {cx:.1f} {base + 14})">{shown}</text>')
        else:
            parts.append(f'<text x="{cx:.1f}" y="{base + 16}" class="tick" '
                         f'text-anchor="middle">{shown}</text>')
    axis = "bins cut at the training deciles" if row.metric == "psi" else "values"
    parts.append(f'<text x="{left + (width - left - right) / 2:.0f}" y="{height - 6:.0f}" '
                 f'class="title" text-anchor="middle">{name}: {axis}</text>')
    lx = width - right - 190
    for j, side in enumerate(("training", "serving")):
        parts.append(f'<rect class="key {side}" x="{lx + j * 100}" y="8" width="12" '
                     f'height="12" fill="{colors[side]}"/>'
                     f'<text x="{lx + j * 100 + 17}" y="18" class="legend">{side}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _gauge(row: DriftRow) -> str:
    """The metric against its threshold: a bar on a 0 to twice-the-threshold track, the
    threshold marked in the middle (a value past the track fills it)."""
    fill = min(row.value / (2 * row.threshold), 1.0) if row.threshold > 0 else 0.0
    ratio = row.value / row.threshold if row.threshold > 0 else 0.0
    name = {"psi": "PSI", "js": "Jensen-Shannon distance"}.get(row.metric, row.metric)
    return (f'<div class="metric"><span class="value">{name} <b>{row.value:.4f}</b></span>'
            f'<span class="vs">threshold {row.threshold:g} ({ratio:.2g}× the threshold)</span>'
            f'<div class="gauge" title="{row.value:.4f} against {row.threshold:g}">'
            f'<div class="fill" style="width: {fill:.1%}"></div><div class="mark"></div>'
            f'</div></div>')


def _page(report: DriftReport) -> str:
    rows = sorted(report.rows, key=lambda r: (not r.drifted, -r.value / r.threshold))
    sections = []
    for r in rows:
        verdict = "drifted" if r.drifted else "stable"
        sections.append(
            f'<section class="card {verdict}"><h2>{html.escape(r.feature)} '
            f'<span class="badge">{verdict}</span></h2>{_gauge(r)}{_svg(r)}</section>')
    drifted = [r for r in rows if r.drifted]
    names = ", ".join(html.escape(r.feature) for r in drifted)
    summary = (f'<b>{len(drifted)} of {len(rows)}</b> compared columns drifted'
               + (f": {names}" if drifted else "") + ".")
    model = html.escape(report.model)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Drift of {model} v{report.version}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; padding: 0 1em;
  color: #222; }}
h1 {{ margin-bottom: 0.2em; }}
.summary {{ font-size: 1.25em; padding: 0.6em 1em; border-radius: 6px; background: #eef6f9;
  border-left: 6px solid {SERVING_COLOR}; }}
.summary.any {{ background: #fff0f2; border-left-color: {DRIFTED_COLOR}; }}
.about {{ color: #555; font-size: 0.9em; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1.2em 1em; margin: 1.2em 0; }}
.card.drifted {{ border: 1px solid {DRIFTED_COLOR}; border-left-width: 6px; }}
h2 {{ margin: 0.4em 0; }}
.badge {{ font-size: 0.6em; padding: 0.2em 0.6em; border-radius: 1em; background: {SERVING_COLOR};
  color: white; vertical-align: middle; }}
.drifted .badge {{ background: {DRIFTED_COLOR}; }}
.metric {{ display: flex; flex-wrap: wrap; align-items: center; gap: 0.4em 1.2em;
  margin-bottom: 0.6em; }}
.metric .vs {{ color: #555; }}
.gauge {{ position: relative; width: 14em; height: 0.7em; background: #e6e9ed;
  border-radius: 0.35em; overflow: hidden; }}
.gauge .fill {{ height: 100%; background: {SERVING_COLOR}; }}
.drifted .gauge .fill {{ background: {DRIFTED_COLOR}; }}
.gauge .mark {{ position: absolute; left: 50%; top: 0; bottom: 0; width: 2px; background: #222; }}
svg.chart {{ display: block; max-width: 100%; height: auto; font-size: 12px; }}
svg.chart .tick {{ fill: #444; font-size: 11px; }}
svg.chart .title {{ fill: #444; font-size: 12px; }}
svg.chart .legend {{ fill: #222; font-size: 12px; }}
svg.chart rect.bar:hover {{ opacity: 0.75; }}
</style></head><body>
<h1>Drift of model {model} version {report.version}</h1>
<p class="summary{" any" if drifted else ""}">{summary}</p>
<p class="about">{report.training_rows:,} training rows against {report.serving_rows:,} served
rows. Numbers: PSI on the training deciles, drifted above {PSI_THRESHOLD:g}. Strings and booleans:
Jensen-Shannon distance, drifted above {JS_THRESHOLD:g}. Nulls are left out; bars are each side's
share of its rows. Drifted columns come first.</p>
{"".join(sections)}
</body></html>
"""
