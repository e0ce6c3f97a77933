"""App benchmark: the real dashboard in headless Chromium on the full-size synthetic demo, against the floor.

Measured on the app (``streamlit run app.py`` on a temporary database holding ``build_demo()``), for each view
(a page, or a tab of a page: only the open tab runs):

- **start**: from launching the server process to the first chart drawn on the first page (Overview), each
  time on a fresh server;
- **switch**: clicking the page in the sidebar (or the tab) until the view has finished and drawn all its
  charts; the first visit computes the view's data and is shown apart, the repeats (served from the cache)
  are compared with the floor;
- **filter**: choosing a topic in the sidebar filter until the first chart is redrawn and until the whole
  view has finished again (a topic not chosen before on that view, so its numbers are computed);
- **memory**: the server's peak and current resident memory (``VmHWM`` / ``VmRSS`` from ``/proc``).

The floor is the framework itself, measured in the same run and interleaved with the app's measurements (so
both see the same machine load): a bare Streamlit app (written to a temporary file) drawing one plotly scatter
with as many points as the view's largest chart, with a sidebar multiselect that moves the points and two
pages to switch between. Each app number is printed with its ratio to the floor for the same number of points.
Targets: every ratio <= 2; server memory < 600 MB. Exit status 1 when a target is missed.

Run: ``python3 bench/bench_app.py [--repeat 5]`` (needs playwright and Debian's chromium at /usr/bin/chromium).
Medians of 5 by default: the floors alone vary from 0.19 to 0.30 s between runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from fairpp.sources.demo import build_demo
from fairpp.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _browser_util() -> Any:
    """``tests/browser_util.py`` (the server and browser helpers the browser tests use)."""
    spec = importlib.util.spec_from_file_location("browser_util", ROOT / "tests" / "browser_util.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["browser_util"] = module
    spec.loader.exec_module(module)
    return module


bu = _browser_util()

PAGES = [("overview", "Overview"), ("personas", "Personas"), ("models", "Regional models"),
         ("explore", "Slices & questions"), ("data", "Data")]
# Views in visiting order: (page title, tab or None for the page's default view). Only a page's open tab runs, so
# a tab is measured like a page: switching to it (a click on the tab) and changing a filter on it.
VIEWS = [("Overview", None), ("Personas", None), ("Personas", "Cluster map"), ("Personas", "Distances & agreement"),
         ("Regional models", None), ("Regional models", "Per-dimension comparison"), ("Slices & questions", None),
         ("Data", None)]
FIRST_TAB = {"Personas": "Positions", "Regional models": "Map & nearest persona"}
TOPICS = ["fair essentials", "fair exchange", "fair treatment", "fair opportunities", "fair rewards"]

FLOOR_APP = '''"""The floor: a bare Streamlit app drawing one plotly scatter of n points (?n=...), two pages, one filter."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

if "n" not in st.session_state:
    st.session_state.n = int(st.query_params.get("n", 1000))


def draw(title: str, seed: int) -> None:
    st.title(title)
    picked = st.sidebar.multiselect("Topic", [f"t{i}" for i in range(10)], key="topic", placeholder="All")
    shift = sum(int(p[1:]) for p in picked)
    xy = np.random.default_rng(seed + shift).normal(size=(max(st.session_state.n, 1), 2)) + shift
    st.plotly_chart(go.Figure(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers")), key="chart")


st.navigation([st.Page(lambda: draw("Floor A", 1), title="Floor A", url_path="a", default=True),
               st.Page(lambda: draw("Floor B", 2), title="Floor B", url_path="b")]).run()
'''


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- interactions (shared by the app and the floor) ----------------------------------------------------------------
def cold_start(db: Path, script: Path, cwd: Path, url_suffix: str, browser: Any) -> tuple[float, dict[str, int]]:
    """Seconds from launching a fresh server to the first chart drawn at ``url_suffix``; the server's memory."""
    with bu.streamlit_server(db, script=script, cwd=cwd) as srv:
        page = bu.new_page(browser)
        try:
            page.goto(srv.url + url_suffix)
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some("
                                   "el => el.calcdata && el.querySelector('.main-svg'))", polling="raf",
                                   timeout=120_000)
            elapsed = time.monotonic() - srv.started
        finally:
            page.context.close()
        return elapsed, srv.memory()


def switch(page: Any, title: str, charts: int | None, tab: str | None = None) -> float:
    """Click ``title`` in the sidebar navigation (or ``tab`` on the page shown); seconds until the page finished
    with its charts drawn (``charts=None``: whatever charts it has)."""
    if tab is None:
        target = page.locator("[data-testid='stSidebarNav'] a", has_text=title).first
    else:
        target = page.locator("[role=tab]", has_text=tab).first
    t0 = time.monotonic()
    target.click()
    if tab is not None:
        page.wait_for_selector(f"[role=tab][aria-selected=true]:has-text('{tab}')")
    return bu.settle(page, charts, heading=title, polling="raf", timeout=120) - t0


def view_name(title: str, tab: str | None) -> str:
    key = dict((t, k) for k, t in PAGES)[title]
    return key if tab is None else f"{key}:{tab.split()[0].lower()}"


def pick_topic(page: Any, key_css: str, value: str, charts: int) -> tuple[float, float]:
    """Choose ``value`` in a sidebar multiselect; seconds to the first chart redrawn and to the page settled.

    The rerun is recognised by a chart drawn with new data; on a page without charts, by a finished run
    (a run counter in the page: only runs long enough to be rendered as running are seen, fine for a page).
    """
    box = page.locator(f".{key_css} input").first
    box.click()
    box.fill(value)
    bu.mark_charts(page)
    before = bu.runs(page)
    t0 = time.monotonic()
    page.keyboard.press("Enter")
    first = bu.wait_redrawn(page) - t0 if charts else float("nan")
    done = bu.settle(page, charts, after_runs=None if charts else before, polling="raf") - t0
    page.keyboard.press("Escape")
    return first, done


def clear_topic(page: Any, key_css: str, charts: int) -> None:
    """Remove the chosen values of a sidebar multiselect and wait for the page to finish again."""
    for button in page.locator(f".{key_css} .react-aria-ComboBox [data-tag] button").all():
        bu.mark_charts(page)
        before = bu.runs(page)
        button.click()
        if charts:
            bu.wait_redrawn(page)
        bu.settle(page, charts, after_runs=None if charts else before)


# -- the run: app and floor interleaved, so both see the same machine load ----------------------------------------
class Floor:
    """The floor server with one page (its own session) per chart size, each already showing ``Floor A``."""

    def __init__(self, url: str, context: Any) -> None:
        self.url, self.context, self.pages, self.shown = url, context, {}, {}

    def page(self, n: int) -> Any:
        if n not in self.pages:
            page = bu.new_page(self.context)
            page.goto(f"{self.url}?n={n}")
            bu.settle(page, 1, heading="Floor A", timeout=120)
            switch(page, "Floor B", 1)  # draw both pages once
            switch(page, "Floor A", 1)
            self.pages[n], self.shown[n] = page, "Floor A"
        page = self.pages[n]
        page.bring_to_front()
        return page

    def switch(self, n: int) -> float:
        page = self.page(n)
        self.shown[n] = "Floor B" if self.shown[n] == "Floor A" else "Floor A"
        return switch(page, self.shown[n], 1)

    def filter(self, n: int, i: int) -> tuple[float, float]:
        page = self.page(n)
        result = pick_topic(page, "st-key-topic", f"t{i + 1}", 1)
        clear_topic(page, "st-key-topic", 1)
        return result


def run(db: Path, floor_script: Path, browser: Any, repeat: int, log: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {"views": {}, "floor": {}, "start": [], "floor_start": []}
    floor_rec = lambda n: out["floor"].setdefault(n, {"switch": [], "filter_first": [], "filter_done": []})  # noqa: E731
    with bu.streamlit_server(db) as srv, \
            bu.streamlit_server(db, script=floor_script, cwd=floor_script.parent) as fsrv:
        context = bu.new_context(browser)
        floor = Floor(fsrv.url, context)
        page = bu.new_page(context)
        page.goto(srv.url)
        bu.settle(page, at_least=True, charts=1, timeout=120)
        switch(page, "Data", None)

        def tour(record: Callable[[str, float], None], charts: Callable[[str], int | None]) -> None:
            """Every view in order; a page left on another tab is put back on its first tab (not timed)."""
            page.bring_to_front()
            for title, tab in VIEWS:
                name = view_name(title, tab)
                record(name, switch(page, title, charts(name), tab))
                if tab is not None and (title, tab) == [v for v in VIEWS if v[0] == title][-1]:
                    switch(page, title, None, FIRST_TAB[title])

        def first(name: str, seconds: float) -> None:
            info = bu.chart_info(page)
            out["views"][name] = {"charts": len(info), "traces": [len(c["types"]) for c in info],
                                  "points": max(max([c["points"] for c in info], default=0), 1),
                                  "first_visit": seconds, "switch": [], "filter_first": [], "filter_done": []}
            log(f"first visit {name}: {seconds:.2f} s, traces {out['views'][name]['traces']}, "
                f"largest chart {out['views'][name]['points']} points")

        tour(first, lambda name: None)  # first visits: data computed, charts counted
        sizes = sorted({v["points"] for v in out["views"].values()})
        for n in sizes:
            floor.page(n)
        for r in range(repeat):
            tour(lambda name, sec: out["views"][name]["switch"].append(sec), lambda name: out["views"][name]["charts"])
            for n in sizes:
                floor_rec(n)["switch"].append(floor.switch(n))
            log(f"switch round {r + 1} done")
        for title, tab in VIEWS:
            name = view_name(title, tab)
            v = out["views"][name]
            page.bring_to_front()
            switch(page, title, v["charts"], tab)
            for i in range(repeat):
                page.bring_to_front()
                first_chart, done = pick_topic(page, "st-key-filters-topic", TOPICS[i % len(TOPICS)], v["charts"])
                v["filter_first"].append(first_chart)
                v["filter_done"].append(done)
                clear_topic(page, "st-key-filters-topic", v["charts"])
                f_first, f_done = floor.filter(v["points"], len(floor_rec(v["points"])["filter_done"]))
                floor_rec(v["points"])["filter_first"].append(f_first)
                floor_rec(v["points"])["filter_done"].append(f_done)
            log(f"filter {name}: first chart {median(v['filter_first']):.2f} s, page {median(v['filter_done']):.2f} s")
            if tab is not None:
                page.bring_to_front()
                switch(page, title, None, FIRST_TAB[title])
        context.close()
        out["memory"], out["floor_memory"] = srv.memory(), fsrv.memory()
    start_n = out["views"]["overview"]["points"]
    for i in range(repeat):  # fresh servers, one at a time
        out["start"].append(cold_start(db, ROOT / "app.py", ROOT, "", browser)[0])
        out["floor_start"].append(cold_start(db, floor_script, floor_script.parent, f"?n={start_n}", browser)[0])
        log(f"start #{i + 1}: app {out['start'][-1]:.2f} s, floor {out['floor_start'][-1]:.2f} s")
    return out


# -- report ----------------------------------------------------------------------------------------------------------
def report(res: dict[str, Any], repeat: int) -> bool:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:5.2f}x" if b and b == b and a == a else "   - "

    ok = True
    start_ratio = median(res["start"]) / median(res["floor_start"])
    ok &= start_ratio <= 2
    print(f"\nApp benchmark: full-size synthetic demo, headless Chromium, medians of {repeat}; seconds.")
    print(f"\nstart (server launch -> first chart on Overview): app {median(res['start']):.2f}  "
          f"floor {median(res['floor_start']):.2f}  ratio {start_ratio:.2f}x")
    head = (f"{'view':<21} {'traces':<10} {'points':>6} | {'1st visit':>9} {'switch':>7} {'floor':>6} "
            f"{'ratio':>6} | {'filter 1st':>10} {'page':>6} {'floor':>6} {'ratio':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for name, v in res["views"].items():
        f = res["floor"][v["points"]]
        sw, fsw = median(v["switch"]), median(f["switch"])
        fd, ffd = median(v["filter_done"]), median(f["filter_done"])
        ok &= sw / fsw <= 2 and fd / ffd <= 2
        traces = "/".join(map(str, v["traces"])) or "-"
        print(f"{name:<21} {traces:<10} {v['points']:>6} | {v['first_visit']:>9.2f} "
              f"{sw:>7.2f} {fsw:>6.2f} {ratio(sw, fsw):>6} | {median(v['filter_first']):>10.2f} {fd:>6.2f} "
              f"{ffd:>6.2f} {ratio(fd, ffd):>6}")
    print("\n'switch' (a sidebar click, or a tab click for page:tab views) and 'filter page' (a topic chosen in the "
          "sidebar until\nthe page finished) are compared with the floor for the view's largest chart (ratio, target "
          "<= 2x);\n'1st visit' is the first switch to a view (its data computed, uncached); 'filter 1st' is the time "
          "to the first redrawn chart.")
    mem, fmem = res["memory"], res["floor_memory"]
    mb = 2 ** 20
    ok &= mem["hwm"] < 600 * mb
    print(f"\nserver memory: app peak {mem['hwm'] / mb:.0f} MB, now {mem['rss'] / mb:.0f} MB "
          f"({mem['processes']} process(es)); floor peak {fmem['hwm'] / mb:.0f} MB; target < 600 MB")
    print("\nALL TARGETS MET" if ok else "\nSOME TARGETS MISSED")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="repeats of each measurement (medians are reported)")
    ap.add_argument("--quiet", action="store_true", help="print only the table")
    a = ap.parse_args(argv)
    log = (lambda s: None) if a.quiet else (lambda s: print(s, flush=True))
    t0 = time.monotonic()
    try:
        bu.require_chromium()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fairpp-bench-app-") as tmp:
        db = Path(tmp) / "demo.duckdb"
        with Store(db) as store:
            store.load(build_demo())
        floor_script = Path(tmp) / "floor" / "floor.py"
        floor_script.parent.mkdir()
        floor_script.write_text(FLOOR_APP)
        log(f"demo database built in {time.monotonic() - t0:.1f} s")
        with bu.chromium() as browser:
            res = run(db, floor_script, browser, a.repeat, log)
    ok = report(res, a.repeat)
    print(f"(bench ran {time.monotonic() - t0:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
