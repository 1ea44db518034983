"""The drift page in a real browser (headless Chromium through Playwright): it loads without a
console or page error, fetches nothing but itself, draws one chart per compared column (with a
size on screen, and visible training and serving bars), puts the drifted columns first, fits a
narrow window, and a screenshot of it is not blank.

Chromium: $LAKECORE_CHROMIUM, else the first of chromium, chromium-browser, google-chrome on
PATH (CI installs Debian's chromium). Without Playwright or a browser the module is skipped."""

import os
import shutil

import numpy as np
import pyarrow as pa
import pytest

from lakecore.quality.drift import DriftReport, compare

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")


def _chromium() -> str | None:
    chosen = os.environ.get("LAKECORE_CHROMIUM")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            pytest.fail(f"LAKECORE_CHROMIUM={chosen!r} is not an executable file", pytrace=False)
        return chosen
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    pytest.skip("no Chromium found (set LAKECORE_CHROMIUM, or install chromium, e.g. "
                "apt-get install chromium)", allow_module_level=True)


def _report() -> DriftReport:
    """Four columns, given stable ones first so that the page's ordering is what is tested: a
    number that moved, one that did not, strings that moved, booleans that did not."""
    rng = np.random.default_rng(7)
    n = 3000
    kinds = ["grocery", "fuel", "travel", "electronics", "restaurants"]

    def col(values):
        return pa.chunked_array([pa.array(values)])
    rows = [compare("latency_ms", col(rng.lognormal(3, 1, n)), col(rng.lognormal(3, 1, n))),
            compare("merchant_kind", col(rng.choice(kinds, n).tolist()),
                    col(rng.choice(kinds, n, p=[0.1, 0.1, 0.5, 0.2, 0.1]).tolist())),
            compare("weekend", col(rng.random(n) < 0.3), col(rng.random(n) < 0.3)),
            compare("amount", col(rng.normal(50, 10, n)), col(rng.normal(80, 10, n)))]
    verdicts = {r.feature: r.drifted for r in rows}
    assert verdicts == {"latency_ms": False, "merchant_kind": True, "weekend": False,
                        "amount": True}, verdicts
    return DriftReport(model="fraud", version=3, rows=rows, training_rows=n, serving_rows=n)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])     # CI runs as root
        yield launched
        launched.close()


class Loaded:
    """The page once loaded, with what happened while loading it."""

    def __init__(self, browser, path):
        self.report = _report()
        self.report.to_html(str(path))
        self.url = path.as_uri()
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1100, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{m.text} ({m.location})"))
        self.page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(self.url, wait_until="load")


@pytest.fixture(scope="module")
def loaded(browser, tmp_path_factory):
    state = Loaded(browser, tmp_path_factory.mktemp("drift_page") / "drift.html")
    yield state
    state.page.close()


def test_it_loads_without_errors_and_fetches_nothing_else(loaded):
    assert loaded.console_errors == []
    assert loaded.page_errors == []
    assert loaded.requests == [loaded.url]


def test_one_chart_per_column_with_a_size_on_screen(loaded):
    page = loaded.page
    sections = page.locator("section")
    assert sections.count() == len(loaded.report.rows)
    assert page.locator("svg").count() == len(loaded.report.rows)
    for i in range(sections.count()):
        svg = sections.nth(i).locator("svg")
        assert svg.count() == 1
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150, (i, box)


def test_every_chart_draws_training_and_serving_bars_that_can_be_seen(loaded):
    charts = loaded.page.evaluate("""() => [...document.querySelectorAll('section')].map(s => {
        const svg = s.querySelector('svg');
        const side = cls => [...svg.querySelectorAll('rect.bar.' + cls + ', path.bar.' + cls)]
            .map(e => e.getBoundingClientRect())
            .filter(r => r.width > 0 && r.height > 0);
        const tallest = cls => {
            const bars = [...svg.querySelectorAll('rect.bar.' + cls)];
            const el = bars.reduce((a, b) =>
                b.getBoundingClientRect().height > a.getBoundingClientRect().height ? b : a);
            el.scrollIntoView({block: 'center'});
            const r = el.getBoundingClientRect();
            return {hit: document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === el,
                    fill: getComputedStyle(el).fill};
        };
        return {feature: s.querySelector('h2').firstChild.textContent.trim(),
                training: side('training').length, serving: side('serving').length,
                tallest: {training: tallest('training'), serving: tallest('serving')},
                background: getComputedStyle(s).backgroundColor,
                text: svg.textContent};
    })""")
    for chart in charts:
        assert chart["training"] > 0 and chart["serving"] > 0, chart
        for side in ("training", "serving"):
            # nothing covers the bar, and it is painted in a colour of its own
            assert chart["tallest"][side]["hit"], (chart["feature"], side)
            assert chart["tallest"][side]["fill"] not in ("none", chart["background"]), chart
        assert chart["tallest"]["training"]["fill"] != chart["tallest"]["serving"]["fill"]
        assert "training" in chart["text"] and "serving" in chart["text"]      # the legend


def test_drifted_columns_come_first_and_every_name_and_metric_is_shown(loaded):
    rows = {r.feature: r for r in loaded.report.rows}
    order = loaded.page.eval_on_selector_all(
        "section h2", "hs => hs.map(h => h.firstChild.textContent.trim())")
    assert sorted(order) == sorted(rows)
    assert [rows[f].drifted for f in order] == sorted((rows[f].drifted for f in order),
                                                      reverse=True)
    assert order[:2] == ["amount", "merchant_kind"]         # then by how far past the threshold
    text = loaded.page.inner_text("body")
    assert "2 of 4" in text
    for name in rows:
        assert name in text
    for i, name in enumerate(order):
        card = loaded.page.locator("section").nth(i).inner_text()
        assert f"{rows[name].value:.4f}" in card and f"threshold {rows[name].threshold:g}" in card
        assert ("drifted" if rows[name].drifted else "stable") in card


def test_the_page_fits_a_narrow_window(browser, loaded):
    page = browser.new_page(viewport={"width": 400, "height": 800})
    try:
        page.goto(loaded.url)
        width, scroll = page.evaluate(
            "() => [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
        assert scroll <= width
        for box in (page.locator("svg").nth(i).bounding_box() for i in range(4)):
            assert box is not None and 0 < box["width"] <= width and box["height"] > 0
    finally:
        page.close()


def test_a_screenshot_is_not_blank(browser, loaded, tmp_path):
    shot = tmp_path / "drift.png"
    loaded.page.screenshot(path=str(shot), full_page=True)
    blank = browser.new_page(viewport={"width": 1100, "height": 900})
    try:
        blank.set_content("<!doctype html><html><body></body></html>")
        empty = blank.screenshot(full_page=True)
    finally:
        blank.close()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # a page of one colour compresses to almost nothing; charts and text do not
    assert len(data) > 10 * len(empty), (len(data), len(empty))
