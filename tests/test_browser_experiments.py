"""The Training experiments page in the real app (``streamlit run`` + headless Chromium).

A fixture database (``small_wide()``) holds two stored four-condition experiments built without torch (see
``test_experiments_page.store_experiment``); the newer one is marked as trained on synthetic pairs. A second
server on a database without experiments shows the empty state. Screenshots go to ``artifacts/screens/``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

import browser_util as bu
from conftest import small_wide
from fairpp.sources.files import read_files
from fairpp.store import Store
from test_browser import browser  # noqa: F401  (module-scoped headless Chromium)
from test_experiments_page import NOISE, store_experiment

pytestmark = pytest.mark.browser

PERSONAS = 7
# map: a trace per persona, the target's ring, an ellipse and a point per condition;
# distances: one dot-and-whisker trace per persona
EXPECTED = [{"scatter": PERSONAS + 1 + 2 * len(NOISE)}, {"scatter": PERSONAS}]


def _db(folder: Path, *, experiments: bool) -> Path:
    csv = folder / "fairpp_train.csv"
    small_wide().to_csv(csv, index=False)
    with Store(folder / "small.duckdb") as store:
        store.load(read_files([csv]))
        if experiments:
            store_experiment(store, "exp-a", seed=1)
            store_experiment(store, "exp-b", seed=2, synthetic=True)
    return folder / "small.duckdb"


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser) -> Iterator[bu.Server]:  # noqa: F811
    with bu.streamlit_server(_db(tmp_path_factory.mktemp("browser-exp"), experiments=True)) as srv:
        yield srv


@pytest.fixture
def page(browser) -> Iterator[object]:  # noqa: F811
    p = bu.new_page(browser)
    p.errors = []  # type: ignore[attr-defined]
    p.on("pageerror", lambda e: p.errors.append(str(e)))  # type: ignore[attr-defined]
    yield p
    p.context.close()


def _check(page, server: bu.Server, shot: str) -> None:
    try:
        bu.settle(page, len(EXPECTED), heading="Training experiments")
        info = bu.chart_info(page)
        assert [dict(Counter(c["types"])) for c in info] == EXPECTED, info
        assert bu.trace_counts(page) == [sum(e.values()) for e in EXPECTED]
        assert all(c["points"] > 0 for c in info), info
        assert bu.exceptions(page) == 0 and not bu.error_texts(page), bu.error_texts(page)
        assert not page.errors, page.errors
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n--- streamlit output (tail) ---\n{server.log(3000)}") from exc
    bu.screenshot(page, shot)


def _warnings(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all("[data-testid='stAlertContentWarning']")]


def test_experiment_page_draws_map_and_distances(page, server):
    page.goto(server.url + "experiments")
    _check(page, server, "experiments-synthetic-1440")
    assert any("SYNTHETIC" in w for w in _warnings(page))  # the newest experiment was trained on synthetic pairs
    legend = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0].data.map(t => t.name)")
    assert [n for n in legend if n in NOISE] == list(NOISE)
    page.set_viewport_size({"width": 420, "height": 900})
    bu.settle(page, len(EXPECTED))
    assert bu.exceptions(page) == 0
    bu.screenshot(page, "experiments-synthetic-420")


def test_link_reopens_the_chosen_experiment(page, server):
    page.goto(server.url + "experiments?experiments.experiment=exp-a")
    _check(page, server, "experiments-exp-a-1440")
    assert not any("SYNTHETIC" in w for w in _warnings(page))
    titles = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(el => el.layout.title.text)")
    assert all(t.startswith("exp-a") for t in titles), titles


def test_empty_state_in_the_real_app(tmp_path, browser):  # noqa: F811
    with bu.streamlit_server(_db(tmp_path, experiments=False)) as srv:
        p = bu.new_page(browser)
        try:
            p.goto(srv.url + "experiments")
            bu.settle(p, 0, heading="Training experiments")
            text = " ".join(e.inner_text() for e in p.query_selector_all("[data-testid='stAlertContentInfo']"))
            assert "fairpp compare" in text and "docs/training.md" in text, text
            assert bu.exceptions(p) == 0
            bu.screenshot(p, "experiments-empty-1440")
        finally:
            p.context.close()
