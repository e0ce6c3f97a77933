"""The report page and the figure downloads in the real app (headless Chromium): the report preview draws its
charts, and a chart's PNG download, clicked in the browser, is a PNG of the size chosen in its popover."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import pytest

import browser_util as bu
from test_pages import _write_db

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")  # closed at the module end: Playwright's sync loop must not outlive it
def browser() -> Iterator[object]:
    try:
        bu.require_chromium()
    except RuntimeError as exc:  # fail, never skip: CI installs Debian's chromium
        pytest.fail(f"browser tests need Chromium: {exc}", pytrace=False)
    with bu.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory, browser) -> Iterator[bu.Server]:
    with bu.streamlit_server(_write_db(tmp_path_factory.mktemp("browser-report"))) as srv:
        yield srv


def _page(browser, width: int = 1440, height: int = 900):
    context = bu.new_context(browser, width=width, height=height)
    page = context.new_page()
    page.set_default_timeout(90_000)
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    return page


def _report_frame(page):
    """The preview iframe's frame once its plotly charts are drawn."""
    preview = page.locator("iframe")  # the page's one iframe (a second one would fail Playwright's strict mode)
    preview.content_frame.locator("main section").first.wait_for(timeout=60_000)
    handle = preview.element_handle().content_frame()
    handle.wait_for_function("""() => { const els = [...document.querySelectorAll('.js-plotly-plot')];
        return els.length > 0 && els.every(el => el.querySelector('.main-svg')); }""", timeout=60_000)
    return handle


def test_report_page_renders_and_previews(browser, server):
    try:
        for width, height, shot in ((1440, 900, "report-1440"), (420, 900, "report-420")):
            page = _page(browser, width, height)
            page.goto(server.url + "report")
            bu.settle(page, heading="Report", timeout=120)
            frame = _report_frame(page)
            sections = frame.eval_on_selector_all("main section", "els => els.map(e => e.id)")
            assert sections[:3] == ["source", "definitions", "positions"], sections
            assert frame.evaluate("document.querySelectorAll('.js-plotly-plot').length") >= 4
            labels = page.eval_on_selector_all("[data-testid='stDownloadButton'] button",
                                               "els => els.map(e => e.innerText.trim())")
            assert any("Report (HTML)" in t for t in labels), labels
            assert bu.exceptions(page) == 0 and not bu.error_texts(page)
            assert not page.errors, page.errors
            bu.screenshot(page, shot)
            page.context.close()
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n--- streamlit output ---\n{server.log(3000)}") from exc


def _open_popover(page) -> None:
    """Open the first chart's (the radar's) "Image" popover."""
    page.locator("[data-testid='stMain'] [data-testid='stPopover']").first.locator("button").first.click()
    page.wait_for_selector("[data-testid='stPopoverBody']")


def test_chart_png_download_has_the_chosen_size(browser, server, tmp_path):
    page = _page(browser)
    try:
        page.goto(server.url + "personas")
        bu.settle(page, 2, heading="Personas")
        _open_popover(page)
        box = page.locator("[data-testid='stPopoverBody']")
        field = box.locator("[data-testid='stSelectbox'] input")
        field.click()
        field.fill("1920")
        page.keyboard.press("Enter")
        bu.settle(page, 2, heading="Personas")
        if not page.locator("[data-testid='stPopoverBody']").is_visible():  # the rerun may close it
            _open_popover(page)
        with page.expect_download(timeout=120_000) as info:
            page.locator("[data-testid='stPopoverBody'] [data-testid='stDownloadButton'] button",
                         has_text="PNG").first.click()
        download = info.value
        path = Path(tmp_path) / download.suggested_filename
        download.save_as(path)
        data = path.read_bytes()
        assert download.suggested_filename.endswith("-1920x1080.png"), download.suggested_filename
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (1920, 1080)
        bu.SCREENS.mkdir(parents=True, exist_ok=True)
        (bu.SCREENS / "downloaded-radar-1920x1080.png").write_bytes(data)
        assert not page.errors, page.errors
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"{exc}\n--- streamlit output ---\n{server.log(3000)}") from exc
    finally:
        page.context.close()
