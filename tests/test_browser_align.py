"""The Align pages in headless Chromium: Reweighting redraws on its controls, the Persona lab runs and lands.

A ``streamlit run`` server on the small fixture database (``small_wide()``: 60 questions, the 7 personas and 2
regional models). The persona lab runs its persona against the local chat-completions server
(``tests/chatserver.py``). Screenshots go to ``artifacts/screens/`` at 1440x900 and at a 420 px phone width.
These tests need Debian's chromium at /usr/bin/chromium; without it they fail (CI installs it).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import browser_util as bu
import pytest
from chatserver import ChatRequest, ChatServer
from test_pages import _write_db

pytestmark = pytest.mark.browser

NARROW = 420


@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def browser() -> Iterator[Any]:
    try:
        bu.require_chromium()
    except RuntimeError as exc:  # fail, never skip: CI installs Debian's chromium and these tests must run there
        pytest.fail(f"browser tests need Chromium: {exc}", pytrace=False)
    with bu.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser) -> Iterator[bu.Server]:
    with bu.streamlit_server(_write_db(tmp_path_factory.mktemp("align"))) as srv:
        yield srv


def _chart_data(page: Any) -> list[list[dict[str, Any]]]:
    """Per chart, per trace: its name, x and y (what the numbers on screen are)."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => (el._fullData || []).map(
        t => ({name: t.name ?? null, type: t.type, x: Array.from(t.x || []), y: Array.from(t.y || [])})))""")


def _finite(values: list[Any]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _types(page: Any) -> list[dict[str, int]]:
    out = []
    for c in bu.chart_info(page):
        counts: dict[str, int] = {}
        for t in c["types"]:
            counts[t] = counts.get(t, 0) + 1
        out.append(counts)
    return out


def _narrow_shot(browser: Any, url: str, name: str, *, heading: str, charts: int | None = None) -> None:
    page = bu.new_page(browser, width=NARROW, height=900)
    try:
        page.goto(url)
        bu.settle(page, charts, heading=heading, at_least=True)
        assert bu.exceptions(page) == 0
        overflow = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollWidth")
        assert overflow <= NARROW + 2, f"{name}: the page is {overflow} px wide on a {NARROW} px screen"
        bu.screenshot(page, name)
    finally:
        page.context.close()


# -- Reweighting -----------------------------------------------------------------------------------------------
def test_reweighting_draws_and_redraws_on_sliders_and_target(server, browser):
    page = bu.new_page(browser)
    try:
        page.goto(server.url + "reweight")
        bu.settle(page, 3, heading="Reweighting")
        # tiers: bars (records) + line (weight per record); distribution: a bar per answer; JS: a dumbbell per
        # persona (7) + two legend entries
        assert _types(page) == [{"bar": 1, "scatter": 1}, {"bar": 3}, {"scatter": 7 + 2}]
        before = _chart_data(page)
        assert before[0][0]["x"] == list(range(1, 8))  # K = 7 tiers
        weights = before[0][1]["y"]
        assert all(w > 0 for w in _finite(weights)), weights  # an empty tier has no weight (a gap)
        bu.screenshot(page, "reweight-page")

        # alpha 1.0 -> 1.5 with the keyboard on the slider: the weights are redrawn with other numbers
        bu.mark_charts(page)
        thumb = page.locator(".st-key-reweight-alpha input[type=range]")
        thumb.focus()
        for _ in range(5):
            thumb.press("ArrowRight")
        bu.wait_redrawn(page)
        bu.settle(page, 3)
        after = _chart_data(page)
        assert thumb.input_value() == "1.5"
        assert after[0][1]["y"] != weights, "the weight line did not change with alpha"
        assert after[0][0]["y"] == before[0][0]["y"], "tier counts must not depend on alpha"
        assert after[2] != before[2], "JS after weighting did not change with alpha"
        assert "reweight.alpha=1.5" in page.url
        assert bu.exceptions(page) == 0

        # beta 1.0 -> 0.0: every record weighs (i/K)^alpha, so weights grow with the tier
        bu.mark_charts(page)
        beta = page.locator(".st-key-reweight-beta input[type=range]")
        beta.focus()
        beta.press("Home")
        bu.wait_redrawn(page)
        bu.settle(page, 3)
        w = _finite(_chart_data(page)[0][1]["y"])
        assert w == sorted(w) and w[0] < w[-1]

        # another target: tier counts and the distribution change
        counts = _chart_data(page)[0][0]["y"]
        bu.mark_charts(page)
        page.locator(".st-key-reweight-target").click()
        page.get_by_role("option", name="Backbone Conservatives").click()
        bu.wait_redrawn(page)
        bu.settle(page, 3)
        other = _chart_data(page)
        assert other[0][0]["y"] != counts, "tier counts did not change with the target"
        assert any(t["y"][0] == "Backbone Conservatives (target)" for t in other[2] if t["y"])
        assert bu.exceptions(page) == 0
        bu.screenshot(page, "reweight-page-changed")
    finally:
        page.context.close()
    _narrow_shot(browser, server.url + "reweight", "reweight-page-narrow", heading="Reweighting", charts=3)


# -- Persona lab -----------------------------------------------------------------------------------------------
LETTER = {1: "A", 2: "B", 3: "B", 4: "A", 5: "B"}


def _young_activists(req: ChatRequest) -> str:
    """The defined persona leans by dimension (read from the fixture's question text), answering the other pole
    for a quarter of the questions (fixed by the text), so its bootstrap cloud has a spread; others are unsure."""
    if "younger" not in (req.system or ""):
        return "unsure"
    user = req.user
    dim = int(user.split("(dimension ")[1][0]) if "(dimension " in user else 1
    lean = LETTER[dim]
    return lean if hashlib.sha256(user.encode()).digest()[0] >= 64 else {"A": "B", "B": "A"}[lean]


def test_persona_lab_defines_runs_and_lands_on_the_map(server, browser):
    page = bu.new_page(browser)
    try:
        page.goto(server.url + "persona_lab")
        bu.settle(page, heading="Persona lab")
        assert page.get_by_text("No role-play run").count() > 0
        page.locator(".st-key-persona_lab-name input").fill("Young Activists")
        page.locator(".st-key-persona_lab-portrayal textarea").fill(
            "You are like the Progressive Activists, only younger.")
        page.get_by_role("button", name="Save persona").click()
        page.get_by_text("Saved 'Young Activists'").first.wait_for(timeout=30_000)
        bu.settle(page)
        with ChatServer(_young_activists, latency=0.02) as chat:
            for key, value in (("persona_lab-base_url", chat.url), ("persona_lab-model", "test-model")):
                box = page.locator(f".st-key-{key} input")
                box.fill(value)
                box.press("Enter")
                bu.settle(page)
            n = page.locator(".st-key-persona_lab-n input")
            n.fill("30")
            n.press("Enter")
            bu.settle(page)
            page.get_by_role("button", name="Run").click()
            bu.wait_for_metric(page, "Answered", "30/30", 90)
            bu.settle(page, 1)
            assert chat.chat_requests >= 30
        assert bu.exceptions(page) == 0
        info = bu.chart_info(page)
        names = [n for n in info[0]["names"] if n]
        assert "Young Activists (test-model)" in names, names
        assert sum(1 for n in names if n in {"Progressive Activists", "Backbone Conservatives"}) == 2, names
        star = next(t for t in _chart_data(page)[0] if t["name"] == "Young Activists (test-model)")
        assert len(star["x"]) == 1 and star["x"][0] is not None
        assert bu.metric_values(page)["Nearest persona"] != "–"
        bu.screenshot(page, "persona-lab-page")
        page.get_by_role("tab", name="Per dimension").click()
        bu.settle(page, 1)
        assert "Young Activists (test-model)" in bu.chart_info(page)[0]["names"]
        bu.screenshot(page, "persona-lab-page-dimensions")
    finally:
        page.context.close()
    _narrow_shot(browser, server.url + "persona_lab", "persona-lab-page-narrow", heading="Persona lab", charts=1)
