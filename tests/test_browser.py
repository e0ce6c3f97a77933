"""The real app in headless Chromium: every page draws its charts, URLs restore views, bad uploads are refused.

A ``streamlit run`` server on a small fixture database (``small_wide()``: 3 problems x 2 groups x 5
dimensions x 2 templates = 60 questions, the 7 personas and 2 of the regional models) serves the session;
one test runs a second server on the full-size synthetic demo. Screenshots go to ``artifacts/screens/``.
These tests need Debian's chromium at /usr/bin/chromium; without it they fail (CI installs it).
"""
from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from fairpp.schema import persona_names
from fairpp.sources.files import read_files
from fairpp.store import Store

import browser_util as bu
from conftest import small_wide

pytestmark = pytest.mark.browser

PERSONAS = persona_names()
MODELS = 2  # regional models answering in small_wide()
TITLES = {"overview": "Overview", "personas": "Personas", "models": "Regional models",
          "explore": "Slices & questions", "data": "Data"}

# (page key, tab or None) -> the trace types of each chart in document order, {type: traces}, on the fixture data
# with every widget at its default. Only the open tab of a page runs, so each tab is a view of its own.
VIEWS = {
    # taxonomy sunburst; answer mix: one bar trace per answer (A, B, C)
    ("overview", None): [{"sunburst": 1}, {"bar": 3}],
    # radar: a 95% band + a line per persona; bars: one trace per persona
    ("personas", None): [{"scatterpolar": 2 * 7}, {"bar": 7}],
    # one point per persona x specific problem: a hull + the points per persona
    ("personas", "Cluster map"): [{"scatter": 2 * 7}],
    # Jensen-Shannon distances between all respondents
    ("personas", "Distances & agreement"): [{"heatmap": 1}],
    # frozen PCA map: a bootstrap cloud per model, a point per persona, a point per model
    ("models", None): [{"scatter": MODELS + 7 + MODELS}],
    # per-dimension strip: one trace per persona and model
    ("models", "Per-dimension comparison"): [{"scatter": 7 + MODELS}],
    # slice grid (heat) for the first persona and the first model: a heatmap + a selectable layer each
    ("explore", None): [{"heatmap": 2, "scatter": 2}],
    # loaders, quality report, downloads: no chart
    ("data", None): [],
}


def _key(url: str) -> str:
    return urllib.parse.urlparse(url).path.strip("/") or "overview"


def _url(server: bu.Server, key: str) -> str:
    return server.url + ("" if key == "overview" else key)


def _view_id(view: tuple[str, str | None]) -> str:
    key, tab = view
    return key if tab is None else f"{key}-{re.sub(r'[^a-z]+', '-', tab.lower()).strip('-')}"


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def browser() -> Iterator[object]:
    missing = None
    try:
        bu.require_chromium()
    except RuntimeError as exc:
        missing = str(exc)
    if missing:  # fail, never skip: CI installs Debian's chromium and these tests must run there
        pytest.fail(f"browser tests need Chromium: {missing}", pytrace=False)
    with bu.chromium() as b:
        yield b


def _load(db: Path, batch) -> Path:
    store = Store(db)
    try:
        store.load(batch)
    finally:
        store.close()
    return db


@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def small_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser-small")
    csv = folder / "fairpp_train.csv"
    small_wide().to_csv(csv, index=False)
    return _load(folder / "small.duckdb", read_files([csv]))


@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def server(small_db, browser) -> Iterator[bu.Server]:
    with bu.streamlit_server(small_db) as srv:
        yield srv


@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def context(browser) -> Iterator[object]:
    """One browser context: its pages share the HTTP cache (the app's JavaScript loads once)."""
    ctx = bu.new_context(browser)
    yield ctx
    ctx.close()


def _new_page(context) -> object:
    p = bu.new_page(context)
    p.errors = []  # type: ignore[attr-defined]
    p.on("pageerror", lambda e: p.errors.append(str(e)))  # type: ignore[attr-defined]
    return p


@pytest.fixture
def page(context, server) -> Iterator[object]:
    """A fresh page (a new Streamlit session) at 1440x900; JS errors are collected on ``page.errors``."""
    p = _new_page(context)
    yield p
    p.close()


@contextlib.contextmanager
def explain(server: bu.Server) -> Iterator[None]:
    """Re-raise a failure with the end of the server's output (tracebacks of the app land there)."""
    try:
        yield
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n--- streamlit output (tail) ---\n{server.log(3000)}") from exc


def _open(page, server: bu.Server, view: tuple[str, str | None]) -> None:
    """Open a page and, for a tab view, click its tab (the tab lands in the URL)."""
    key, tab = view
    page.goto(_url(server, key))
    if tab is not None:
        bu.settle(page, heading=TITLES[key])
        page.click(f"[role=tab]:has-text('{tab}')")
        page.wait_for_selector(f"[role=tab][aria-selected=true]:has-text('{tab}')")
        page.wait_for_url(re.compile(r"\.section="))


def _check_view(page, view: tuple[str, str | None], expected: list[dict[str, int]], *, shot: str) -> None:
    key, tab = view
    bu.settle(page, len(expected), heading=TITLES[key])
    info = bu.chart_info(page)
    got = [dict(Counter(c["types"])) for c in info]
    assert got == expected, f"{shot}: charts {got}, expected {expected}"
    for c in info:
        assert c["points"] > 0, f"{shot}: an empty chart {c}"
        assert c["visible"] == len(c["types"]), f"{shot}: hidden traces {c}"
    assert bu.trace_counts(page) == [sum(e.values()) for e in expected]
    assert bu.exceptions(page) == 0, f"{shot}: exception box: {bu.error_texts(page)}"
    assert not bu.error_texts(page), f"{shot}: error shown: {bu.error_texts(page)}"
    if tab is not None:
        selected = page.eval_on_selector_all("[role=tab][aria-selected=true]", "els => els.map(e => e.innerText)")
        assert [t.strip() for t in selected] == [tab], selected
    assert not page.errors, f"{shot}: JavaScript errors {page.errors}"
    bu.screenshot(page, shot)


def _chips(page, key: str) -> list[str]:
    """Selected values of a multiselect (by widget key)."""
    css = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    return page.eval_on_selector_all(f".st-key-{css} .react-aria-ComboBox [data-tag] span[title]",
                                     "els => els.map(e => e.getAttribute('title'))")


def _radio(page, key: str) -> str | None:
    """The checked option's label of a radio (by widget key)."""
    css = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    return page.evaluate(f"""() => {{
        const i = document.querySelector(".st-key-{css} input[type=radio]:checked");
        return i ? i.closest('label').innerText.trim() : null; }}""")


def _tab(page) -> str | None:
    """The label of the selected tab."""
    tabs = page.eval_on_selector_all("[role=tab][aria-selected=true]", "els => els.map(e => e.innerText.trim())")
    return tabs[0] if tabs else None


def _source_box(page) -> str:
    """The sidebar's data source box ("Data: User file", its label and load time)."""
    return page.locator("[data-testid='stSidebar'] [data-testid='stVerticalBlock']",
                        has=page.locator(":text('Data: ')")).last.inner_text()


def _captions(page) -> list[str]:
    return [c.inner_text() for c in page.query_selector_all("[data-testid='stCaptionContainer']")]


# -- every page ------------------------------------------------------------------------------------------------------
def test_navigation_lists_every_page(page, server):
    with explain(server):
        page.goto(server.url)
        bu.settle(page, len(VIEWS["overview", None]))
        links = bu.nav_links(page)
        from fairpp.ui.nav import PAGES  # every page in the navigation, in its order

        assert [_key(u) for u in links] == [spec.key for spec in PAGES], links
        assert list(TITLES) == [spec.key for spec in PAGES][: len(TITLES)]
        bu.screenshot(page, "small-home-1440")


@pytest.mark.parametrize("view", list(VIEWS), ids=_view_id)
def test_view_draws_its_charts(page, server, view):
    with explain(server):
        _open(page, server, view)
        _check_view(page, view, VIEWS[view], shot=f"small-{_view_id(view)}-1440")


def test_page_switch_through_sidebar(page, server):
    """Clicking through the sidebar (one session, no reload) draws each page's default view."""
    with explain(server):
        page.goto(server.url)
        bu.settle(page, 2)
        for key, title in [*list(TITLES.items())[1:], ("overview", "Overview")]:
            expected = VIEWS[key, None]
            page.click(f"[data-testid='stSidebarNav'] a:has-text('{title}')")
            page.wait_for_url(re.compile(rf"/{'' if key == 'overview' else key}(\?.*)?$"))
            bu.settle(page, len(expected), heading=title)
            assert bu.trace_counts(page) == [sum(e.values()) for e in expected], key
            assert bu.exceptions(page) == 0, key


# -- the URL restores the view ------------------------------------------------------------------------------------
def test_url_reopens_the_same_view(page, server):
    """Choices in the URL (a global filter, page widgets, the open tab) are reflected in widgets and charts."""
    shown = [PERSONAS[1], PERSONAS[4]]
    topic = "fair essentials"
    positions = urllib.parse.urlencode([("personas.show", s) for s in shown] + [("topic", topic)])
    matrix = urllib.parse.urlencode([("personas.section", "Distances & agreement"),
                                     ("personas.metric", "agreement"), ("topic", topic)])
    with explain(server):
        for attempt in ("open", "reload"):
            if attempt == "open":
                page.goto(f"{server.url}personas?{positions}")
            else:
                page.reload()
            bu.settle(page, 2, heading="Personas")
            assert _chips(page, "personas.show") == shown, attempt
            assert _chips(page, "filters.topic") == [topic], attempt
            radar, bars = bu.chart_info(page)
            assert radar["names"] == [n for s in shown for n in (f"{s} 95% interval", s)], radar["names"]
            assert bars["names"] == shown, bars["names"]
            params = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            assert params.get("personas.show") == shown and params.get("topic") == [topic], page.url
        bu.screenshot(page, "small-personas-from-url")

        page.goto(f"{server.url}personas?{matrix}")
        bu.settle(page, 1, heading="Personas")
        assert _tab(page) == "Distances & agreement"
        assert _radio(page, "personas.metric") == "Agreement"
        assert _chips(page, "filters.topic") == [topic]
        title = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.title.text")
        assert title.startswith("Agreement"), title
        bu.screenshot(page, "small-personas-matrix-from-url")

        # the global filter really narrows the numbers: the Overview shows fewer questions under it
        page.goto(f"{server.url}?topic={urllib.parse.quote(topic)}")
        bu.settle(page, 2, heading="Overview")
        narrowed = int(bu.metric_values(page)["Questions shown"].replace(",", ""))
        assert _chips(page, "filters.topic") == [topic]
        page.goto(server.url)
        bu.settle(page, 2, heading="Overview")
        full = int(bu.metric_values(page)["Questions shown"].replace(",", ""))
        assert 0 < narrowed < full == 60, (narrowed, full)


# -- interactions ----------------------------------------------------------------------------------------------------
def test_widget_change_redraws_the_chart(page, server):
    """Switching the matrix measure redraws the heatmap with other numbers (and writes the URL)."""
    with explain(server):
        page.goto(server.url + "personas?personas.section=Distances+%26+agreement")
        bu.settle(page, 1, heading="Personas")
        heat = ".st-key-personas-matrix .js-plotly-plot"
        before = page.evaluate(f"() => document.querySelector('{heat}')._fullLayout.title.text")
        assert before.startswith("Jensen-Shannon"), before
        bu.mark_charts(page)
        page.click(".st-key-personas-metric label:has-text('Agreement')")
        bu.wait_redrawn(page, selector=heat)
        bu.settle(page, 1)
        after = page.evaluate(f"() => document.querySelector('{heat}')._fullLayout.title.text")
        assert after.startswith("Agreement"), after
        assert "personas.metric=agreement" in page.url
        assert bu.trace_counts(page) == [1]


def test_taxonomy_switch_to_treemap(page, server):
    with explain(server):
        page.goto(server.url)
        bu.settle(page, 2)
        assert bu.chart_info(page)[0]["types"] == ["sunburst"]
        bu.mark_charts(page)
        page.click(".st-key-overview-taxonomy label:has-text('treemap')")
        bu.wait_redrawn(page, selector=".st-key-overview-taxonomy_chart .js-plotly-plot")
        bu.settle(page, 2)
        assert bu.chart_info(page)[0]["types"] == ["treemap"]
        assert "overview.taxonomy=treemap" in page.url
        bu.screenshot(page, "small-overview-treemap")


def test_lasso_selection_lists_the_slices(page, server):
    with explain(server):
        page.goto(server.url + "personas?personas.section=Cluster+map")
        bu.settle(page, 1, heading="Personas")
        caption = next(c for c in _captions(page) if "points over dimensions" in c)
        n_points = int(re.match(r"([\d,]+) points", caption).group(1).replace(",", ""))
        drag = page.locator(".st-key-personas-map_2d .nsewdrag")
        drag.scroll_into_view_if_needed()
        box = drag.bounding_box()
        assert box, "the cluster map has no drag layer"
        x0, y0, x1, y1 = box["x"] + 3, box["y"] + 3, box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
        page.mouse.move(x0, y0)
        page.mouse.down()
        for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 5)):
            page.mouse.move(x, y, steps=8)
        page.mouse.up()
        page.wait_for_selector(f"text=Selected: {n_points} point(s)", timeout=30_000)
        bu.settle(page, 1)
        assert any("Questions behind the selected specific problems" in c for c in _captions(page))
        assert bu.exceptions(page) == 0
        bu.screenshot(page, "small-personas-lasso")


def test_bad_upload_shows_the_error_and_keeps_the_data(page, server, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("Perspective,Question,Option\n1.1,How should it go?,A. x\n1.2,a,b,c,d,e\n")
    with explain(server):
        page.goto(server.url)
        bu.settle(page, 2)
        before = bu.metric_values(page)
        assert before["Questions shown"] == "60", before
        source = _source_box(page)
        assert source.startswith("Data: User file") and "fairpp_train.csv" in source, source

        page.goto(server.url + "data")
        bu.settle(page, 0)
        rows_before = bu.metric_values(page)["Rows read"]
        page.set_input_files(".st-key-data-upload input[type=file]", str(bad))
        page.wait_for_selector(".st-key-data-upload :text('broken.csv')")
        load = page.locator(".st-key-data-load_upload button")
        load.wait_for(state="visible")
        page.wait_for_function("() => !document.querySelector('.st-key-data-load_upload button').disabled")
        load.click()
        page.wait_for_selector("[data-testid='stAlertContentError']", timeout=30_000)
        bu.settle(page, 0)
        errors = bu.error_texts(page)
        assert any("broken.csv" in e and "ragged" in e for e in errors), errors
        assert bu.exceptions(page) == 0
        assert bu.metric_values(page)["Rows read"] == rows_before
        bu.screenshot(page, "small-data-bad-upload")

        page.click("[data-testid='stSidebarNav'] a:has-text('Overview')")
        bu.settle(page, 2, heading="Overview")
        assert bu.metric_values(page) == before
        assert _source_box(page) == source


# -- full-size demo ----------------------------------------------------------------------------------------------------
DEMO_VIEWS = {  # the demo has 13 respondents: 7 personas and 6 models
    **VIEWS,
    ("models", None): [{"scatter": 6 + 7 + 6}],
    ("models", "Per-dimension comparison"): [{"scatter": 7 + 6}],
}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory, browser) -> Iterator[bu.Server]:
    from fairpp.sources.demo import build_demo

    db = _load(tmp_path_factory.mktemp("browser-demo") / "demo.duckdb", build_demo())
    with bu.streamlit_server(db) as srv:
        yield srv


def test_demo_views_draw_at_full_size(context, demo_server):
    """Every view on the full-size demo, at 1440x900 and at a narrow 420 px (screenshots of both)."""
    page = _new_page(context)
    try:
        with explain(demo_server):
            for view, expected in DEMO_VIEWS.items():
                name = _view_id(view)
                _open(page, demo_server, view)
                _check_view(page, view, expected, shot=f"demo-{name}-1440")
                if view == ("overview", None):
                    m = bu.metric_values(page)
                    assert (m["Questions shown"], m["Personas"], m["Regional models"]) == ("28,420", "7", "6"), m
                if view == ("personas", "Cluster map"):  # one point per persona x specific problem (98 problems)
                    assert any(c.startswith("686 points") for c in _captions(page)), _captions(page)
                page.set_viewport_size({"width": 420, "height": 900})
                bu.settle(page, len(expected))
                assert bu.exceptions(page) == 0
                bu.screenshot(page, f"demo-{name}-420")
                page.set_viewport_size({"width": 1440, "height": 900})
        assert demo_server.memory()["hwm"] < 600 * 2**20, demo_server.memory()
    finally:
        page.close()
