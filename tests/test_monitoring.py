"""Drift: PSI and Jensen-Shannon against plain references, the monitor over logged
predictions (a shifted feature is found, a stable one is not), the page and the command."""

import datetime as dt
import json
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import lakecore
from lakecore.cli import main as cli
from lakecore.quality.drift import js_distance, psi


def reference_psi(t, s):
    edges = sorted(t)
    n = len(edges)
    cuts = [edges[max(math.ceil(k * n / 10), 1) - 1] for k in range(1, 10)]

    def shares(values):
        counts = [0] * 10
        for v in values:
            counts[sum(v > c for c in cuts)] += 1
        return [max(c / len(values), 1e-4) for c in counts]
    a, b = shares(t), shares(s)
    return sum((y - x) * math.log(y / x) for x, y in zip(a, b))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=80),
       st.lists(st.floats(-100, 100), min_size=1, max_size=80))
@example([float(v) for v in range(10)] * 3, [float(v) for v in range(10)] * 3)
@example([float(v) for v in range(10)] * 10,
         [float(v) for v in [0, 1, 3, 3, 4, 5, 7, 7, 8, 9]] * 10)   # a decile moved: drift
def test_psi_matches_the_reference(t, s):
    value = psi(np.array(t), np.array(s))[0]
    assert math.isclose(value, reference_psi(t, s), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=50),
       st.lists(st.sampled_from("abce"), min_size=1, max_size=50))
def test_js_distance_matches_the_reference(t, s):
    values = sorted(set(t) | set(s))
    p = [t.count(v) / len(t) for v in values]
    q = [s.count(v) / len(s) for v in values]
    m = [(a + b) / 2 for a, b in zip(p, q)]
    kl = lambda a: sum(x * math.log2(x / y) for x, y in zip(a, m) if x > 0)  # noqa: E731
    assert math.isclose(js_distance(t, s)[0], math.sqrt(max((kl(p) + kl(q)) / 2, 0)),
                        abs_tol=1e-9)
    assert js_distance(t, t)[0] == 0.0


def test_js_distance_matches_scipy_in_base_2():
    """Against ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` on generated value
    counts. scipy's default natural log gives sqrt(ln 2) = 0.83 times the base-2 distance,
    and its divergence without the square root is smaller still: neither would pass."""
    distance = pytest.importorskip("scipy.spatial.distance")
    counts_pairs = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)),
                            min_size=1, max_size=12)

    @settings(max_examples=200, deadline=None)
    @given(counts_pairs.filter(lambda c: sum(a for a, _ in c) > 0 and sum(b for _, b in c) > 0))
    @example([(1, 0), (0, 1)])                  # disjoint: 1 in base 2, sqrt(ln 2) in base e
    @example([(30, 45), (70, 55)])              # a boolean at 30% against 45%: 0.1319
    def check(counts):
        training = [f"v{i}" for i, (a, _) in enumerate(counts) for _ in range(a)]
        serving = [f"v{i}" for i, (_, b) in enumerate(counts) for _ in range(b)]
        p = np.array([a for a, _ in counts], np.float64)
        q = np.array([b for _, b in counts], np.float64)
        p, q = p / p.sum(), q / q.sum()
        expected = float(distance.jensenshannon(p, q, base=2))
        value = js_distance(training, serving)[0]
        assert math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-7), (value, expected)
        if expected > 1e-3:                     # the natural-log distance is another number
            assert not math.isclose(value, float(distance.jensenshannon(p, q)), rel_tol=1e-3)
        if all(a == 0 or b == 0 for a, b in counts):
            assert math.isclose(value, 1.0, rel_tol=1e-12)     # no value in common
    check()


class Linear:
    def predict(self, X):
        return X[:, 0]


def test_the_monitor_finds_the_feature_that_moved(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "lake"
    with lakecore.open(path) as lake:
        fg = lake.create_feature_group("cards", primary_key="card", online=True)
        n = 2000
        fg.insert({"card": np.arange(n), "amount": rng.normal(50, 10, n),
                   "weekend": rng.random(n) < 0.3})
        td = lake.create_feature_view("v", query=fg.select_all()).create_training_data(
            split={"train": 0.8, "test": 0.2})
        artifact = tmp_path / "m.json"
        artifact.write_text(json.dumps({}))
        lake.models.register("m", str(artifact), training_data=td)
        start = dt.datetime.now(dt.timezone.utc)
        fg.insert({"card": np.arange(n), "amount": rng.normal(80, 10, n),     # moved
                   "weekend": rng.random(n) < 0.3})                         # as before
        with lake.predictor("m", load=lambda p: Linear(), log=True) as scorer:
            for chunk in np.array_split(np.arange(n), 20):
                scorer.predict({"card": chunk})
        report = lake.monitor("m", start_time=start, load=lambda p: Linear())
        verdicts = {r.feature: r.drifted for r in report.rows}
        assert verdicts == {"amount": True, "weekend": False, "prediction": True}
        assert report.drifted and report.serving_rows == n
        table = report.to_table()
        assert table.column_names == ["feature", "metric", "value", "threshold", "drifted"]
        assert table.column("metric").to_pylist() == ["psi", "js", "psi"]
        page = tmp_path / "drift.html"
        report.to_html(str(page))
        text = page.read_text()
        assert text.count("<svg") == 3 and "http" not in text.replace(
            'xmlns="http://www.w3.org/2000/svg"', "")
        assert text.index("<h2>amount") < text.index("<h2>weekend")  # drifted first
        later = lake.monitor("m", start_time=dt.datetime.now(dt.timezone.utc))
        assert later.serving_rows == 0 and not later.drifted
    assert cli(["monitor", str(path), "model:m@1", "--html", str(tmp_path / "r.html")]) == 1
    assert "amount: psi" in capsys.readouterr().out


def test_a_model_without_logged_predictions_says_so(tmp_path):
    with lakecore.open(tmp_path / "lake") as lake:
        fg = lake.create_feature_group("g", primary_key="id")
        fg.insert({"id": [1, 2], "x": [1.0, 2.0]})
        td = lake.create_feature_view("v", query=fg.select_all()).create_training_data()
        artifact = tmp_path / "m.json"
        artifact.write_text("{}")
        lake.models.register("m", str(artifact), training_data=td)
        with pytest.raises(lakecore.NotFoundError, match="log=True"):
            lake.monitor("m")


def test_the_page_parses_strictly():
    """Every SVG is well-formed XML, every HTML element is closed in order, and nothing is
    fetched from elsewhere (no src, no href, no url())."""
    import html.parser
    import re
    import tempfile
    import xml.etree.ElementTree as ET

    from lakecore.quality.drift import DriftReport, compare

    rows = [compare("amount", pa.chunked_array([np.arange(100.0)]),
                    pa.chunked_array([np.arange(50.0, 150.0)])),
            compare("kind", pa.chunked_array([pa.array(["a", "b<&>"] * 10)]),
                    pa.chunked_array([pa.array(["a"] * 20)]))]
    report = DriftReport(model="m<x>", version=1, rows=rows, training_rows=100, serving_rows=100)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/p.html"
        report.to_html(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
    for svg in re.findall(r"<svg.*?</svg>", text, flags=re.S):
        ET.fromstring(svg)                          # raises on anything malformed
    void = {"meta", "br", "img", "input", "link", "hr"}

    class Strict(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.open: list[str] = []

        def handle_starttag(self, tag, attrs):
            assert not any(name in ("src", "href") for name, _ in attrs), (tag, attrs)
            if tag not in void:
                self.open.append(tag)

        def handle_endtag(self, tag):
            assert self.open and self.open[-1] == tag, (tag, self.open[-3:])
            self.open.pop()
    parser = Strict()
    parser.feed(text)
    parser.close()
    assert parser.open == [] and "url(" not in text
    assert "m&lt;x&gt;" in text and "b&lt;&amp;&gt;" in text
