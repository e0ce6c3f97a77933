"""Permalinks and stories in the real app (headless Chromium): the Link control shows the view's URL and that
URL reopens the view; three views saved as slides through the sidebar play through full-screen.

A ``streamlit run`` server on the small fixture database (``small_wide()``: 60 questions, the 7 personas and
2 regional models). Screenshots of the Stories page and of play mode, at 1440x900 and 420 px wide, go to
``artifacts/screens/``.
"""
from __future__ import annotations

import re
import urllib.parse
from collections import Counter

import pytest

from fairpp.schema import persona_names

import browser_util as bu
import test_browser as shared

# test_browser's fixtures: Chromium, a browser context, a server on the small fixture database (a fresh one
# for this module: they are module-scoped) and a fresh page per test
browser, context, small_db, server, page = shared.browser, shared.context, shared.small_db, shared.server, shared.page
_chips, _radio, _tab, explain = shared._chips, shared._radio, shared._tab, shared.explain

pytestmark = pytest.mark.browser

PERSONAS = persona_names()
SHOWN = [PERSONAS[1], PERSONAS[4]]
# Three views on two pages, each with its own filters and choices: (title, page, query pairs).
VIEWS = [
    ("Two personas on fair essentials", "personas",
     [("topic", "fair essentials"), ("personas.show", SHOWN[0]), ("personas.show", SHOWN[1])]),
    ("Agreement, dimensions 1-3", "personas",
     [("dimension", "1"), ("dimension", "2"), ("dimension", "3"), ("personas.section", "Distances & agreement"),
      ("personas.metric", "agreement")]),
    ("The taxonomy as a treemap", "overview", [("group", "men"), ("overview.taxonomy", "treemap")]),
]

def _url(server: bu.Server, page_key: str, pairs: list[tuple[str, str]]) -> str:
    return server.url + ("" if page_key == "overview" else page_key) + "?" + urllib.parse.urlencode(pairs)

def _query(url: str) -> Counter:
    return Counter(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))

def _open_link_popover(page) -> object:
    page.locator("[data-testid='stSidebar'] [data-testid='stPopover'] button").first.click()
    body = page.locator("[data-testid='stPopoverBody']")
    body.wait_for(state="visible")
    return body

def _link_text(page, shot: str | None = None) -> str:
    body = _open_link_popover(page)
    text = body.locator("[data-testid='stCode'] code").first.inner_text().strip()
    if shot:
        bu.screenshot(page, shot, full_page=False)
    page.keyboard.press("Escape")
    return text

def _sidebar_shown(page) -> bool:
    return bool(page.evaluate("""() => { const s = document.querySelector("[data-testid='stSidebar']");
        return !!s && getComputedStyle(s).display !== 'none' && s.getBoundingClientRect().width > 0; }"""))

def _check_view(page, index: int) -> None:
    """The view of VIEWS[index] is on screen: its widgets' state and its charts, drawn."""
    title, key, _ = VIEWS[index]
    if index == 0:
        bu.settle(page, 2, heading="Personas")
        assert _chips(page, "filters.topic") == ["fair essentials"]
        assert _chips(page, "personas.show") == SHOWN
        radar, bars = bu.chart_info(page)
        assert bars["names"] == SHOWN and radar["names"] == [n for s in SHOWN for n in (f"{s} 95% interval", s)]
    elif index == 1:
        bu.settle(page, 1, heading="Personas")
        assert _tab(page) == "Distances & agreement"
        assert _radio(page, "personas.metric") == "Agreement"
        assert _chips(page, "filters.topic") == []
        assert len(_chips(page, "filters.dimension")) == 3
        heat = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.title.text")
        assert heat.startswith("Agreement"), heat
    else:
        bu.settle(page, 2, heading="Overview")
        assert _radio(page, "overview.taxonomy") == "treemap"
        assert _chips(page, "filters.group") == ["men"] and _chips(page, "filters.dimension") == []
        assert bu.chart_info(page)[0]["types"] == ["treemap"]
        assert bu.metric_values(page)["Questions shown"] == "30"
    for c in bu.chart_info(page):
        assert c["points"] > 0, c
    assert bu.exceptions(page) == 0, bu.error_texts(page)

def test_link_shows_the_url_and_reopens_the_view(page, server):
    with explain(server):
        title, key, pairs = VIEWS[1]
        page.goto(_url(server, key, pairs))
        _check_view(page, 1)
        link = _link_text(page, "stories-link-popover-1440")
        assert link.startswith(server.url + key + "?"), link
        assert _query(link) == Counter(pairs) == _query(page.url)
        # change the view: the link follows the page's widgets
        bu.mark_charts(page)
        page.click(".st-key-personas-metric label:has-text('Cohen')")
        bu.wait_redrawn(page, selector=".st-key-personas-matrix .js-plotly-plot")
        bu.settle(page, 1)
        link = _link_text(page)
        assert ("personas.metric", "kappa") in _query(link) and _query(link) == _query(page.url), link
        # the copied link in a fresh session (another tab) reopens that view
        other = bu.new_page(page.context)
        try:
            other.goto(link)
            bu.settle(other, 1, heading="Personas")
            assert _tab(other) == "Distances & agreement" and _radio(other, "personas.metric") == "Cohen's kappa"
            assert len(_chips(other, "filters.dimension")) == 3
            assert _query(other.url) == _query(link)
        finally:
            other.close()
        assert not page.errors, page.errors

def _add_slide(page, server: bu.Server, index: int) -> None:
    title, key, pairs = VIEWS[index]
    page.goto(_url(server, key, pairs))
    _check_view(page, index)
    body = _open_link_popover(page)
    if index == 0:
        body.locator(".st-key-link-new_title input").fill("Board meeting")
    body.locator(".st-key-link-title input").fill(title)
    body.locator(".st-key-link-notes textarea").fill(f"Notes of slide {index + 1}: *why it matters*.")
    body.locator(".st-key-link-add button").click()
    page.wait_for_selector(f"text=Added as slide {index + 1}", timeout=30_000)
    bu.settle(page)

def test_a_three_slide_story_plays_through(page, server):
    with explain(server):
        for i in range(3):
            _add_slide(page, server, i)
        page.goto(server.url + "stories")
        bu.settle(page, 0, heading="Stories")
        titles = page.eval_on_selector_all("[class*='st-key-stories-slide_title_'] input",
                                           "els => els.map(e => e.value)")
        assert titles == [v[0] for v in VIEWS], titles
        bu.screenshot(page, "stories-page-1440")
        page.set_viewport_size({"width": 420, "height": 900})
        bu.settle(page, 0)
        bu.screenshot(page, "stories-page-420")
        page.set_viewport_size({"width": 1440, "height": 900})

        page.click(".st-key-stories-play button")
        for n in range(3):
            if n:
                page.click(".st-key-play-next button")
            page.wait_for_url(re.compile(rf"slide={n + 1}"))
            _check_view(page, n)
            bar = page.locator(".st-key-play-bar").inner_text()
            assert VIEWS[n][0] in bar and f"{n + 1} / 3" in bar and f"Notes of slide {n + 1}" in bar, bar
            assert not _sidebar_shown(page)
            assert not page.locator("header[data-testid='stHeader']").is_visible()
            assert _query(page.url)[("slide", str(n + 1))] == 1
            for k, v in VIEWS[n][2]:
                assert (k, v) in _query(page.url), (k, v, page.url)
            bu.screenshot(page, f"stories-play-{n + 1}-1440", full_page=False)
            if n == 0:
                page.set_viewport_size({"width": 420, "height": 900})
                bu.settle(page, 2)
                bu.screenshot(page, "stories-play-1-420")
                page.set_viewport_size({"width": 1440, "height": 900})
                bu.settle(page, 2)
        assert page.locator(".st-key-play-next button").is_disabled()
        page.click(".st-key-play-exit button")
        bu.settle(page, 0, heading="Stories")
        assert "story=" not in page.url and "slide=" not in page.url
        assert _sidebar_shown(page)
        assert page.locator(".st-key-play-bar").count() == 0
        assert not page.errors, page.errors
