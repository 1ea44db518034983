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

import html
import math
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

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
        return _js_row(name, t.to_pylist(), s.to_pylist())
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
    edges = np.quantile(training, np.linspace(0.1, 0.9, 9), method="inverted_cdf")
    shares = []
    for values in (training, serving):
        bins = np.digitize(values, edges, right=True)       # (-inf, q1], (q1, q2], ..., (q9, inf)
        counts = np.bincount(bins, minlength=10)[:10]
        shares.append(np.maximum(counts / len(values), SMOOTHING))
    t, s = shares
    return float(np.sum((s - t) * np.log(s / t))), edges, t, s


def js_distance(training: list[Any], serving: list[Any]) -> tuple[float, list, list, list]:
    """The Jensen-Shannon distance (base 2) of two samples' value frequencies."""
    if not training or not serving:
        return 0.0, [], [], []
    values = sorted(set(training) | set(serving), key=lambda v: (str(type(v)), v))
    index = {v: i for i, v in enumerate(values)}
    p = np.bincount([index[v] for v in training], minlength=len(values)) / len(training)
    q = np.bincount([index[v] for v in serving], minlength=len(values)) / len(serving)
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


def _js_row(name: str, training: list, serving: list) -> DriftRow:
    value, values, p, q = js_distance(training, serving)
    return DriftRow(feature=name, metric="js", value=value, threshold=JS_THRESHOLD,
                    drifted=value > JS_THRESHOLD, training=p, labels=[str(v) for v in values],
                    serving=q)


def _short(x: float) -> str:
    return f"{x:.4g}"


def _svg(row: DriftRow) -> str:
    """Side-by-side bars: training (grey) and serving (blue or red when drifted) per bin."""
    n = len(row.labels)
    if not n:
        return "<p>No values on one side.</p>"
    width, height, pad = max(40 * n, 320), 180, 24
    bar = (width - 2 * pad) / n
    top = max(max(row.training, default=0), max(row.serving, default=0)) or 1.0
    color = "#d1495b" if row.drifted else "#2e86ab"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             f'role="img" aria-label="training against serving for {html.escape(row.feature)}">']
    for i, (label, t, s) in enumerate(zip(row.labels, row.training, row.serving)):
        x = pad + i * bar
        for j, (share, fill) in enumerate(((t, "#9aa5b1"), (s, color))):
            h = (height - pad) * share / top
            parts.append(f'<rect x="{x + 2 + j * (bar - 4) / 2:.1f}" y="{height - h:.1f}" '
                         f'width="{(bar - 4) / 2:.1f}" height="{h:.1f}" fill="{fill}">'
                         f'<title>{html.escape(label)}: {"training" if j == 0 else "serving"} '
                         f'{share:.1%}</title></rect>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="9" '
                     f'text-anchor="middle">{html.escape(label[:14])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _page(report: DriftReport) -> str:
    rows = sorted(report.rows, key=lambda r: (not r.drifted, -r.value / r.threshold))
    sections = []
    for r in rows:
        verdict = "drifted" if r.drifted else "stable"
        sections.append(
            f'<section class="{verdict}"><h2>{html.escape(r.feature)} '
            f'<span class="badge">{verdict}</span></h2>'
            f'<p>{r.metric.upper()} {r.value:.4f} (threshold {r.threshold}); '
            f'<span class="key t">training</span> <span class="key s">serving</span></p>'
            f'{_svg(r)}</section>')
    drifted = sum(r.drifted for r in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift of {html.escape(report.model)} v{report.version}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
section {{ border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1em; margin: 1em 0; }}
section.drifted {{ border-color: #d1495b; background: #fff6f7; }}
.badge {{ font-size: 0.6em; padding: 0.2em 0.6em; border-radius: 1em; background: #2e86ab;
  color: white; vertical-align: middle; }}
section.drifted .badge {{ background: #d1495b; }}
.key::before {{ content: ""; display: inline-block; width: 0.8em; height: 0.8em;
  margin-right: 0.3em; }}
.key.t::before {{ background: #9aa5b1; }} .key.s::before {{ background: #2e86ab; }}
</style></head><body>
<h1>Drift of model {html.escape(report.model)} version {report.version}</h1>
<p>{drifted} of {len(rows)} compared columns drifted; {report.training_rows:,} training rows
against {report.serving_rows:,} served rows. PSI on the training deciles for numbers,
Jensen-Shannon distance for strings and booleans; nulls left out.</p>
{"".join(sections)}
</body></html>
"""
