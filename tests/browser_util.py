"""Drive the real app: a ``streamlit run`` server on a given database and headless Chromium (Playwright).

Used by ``tests/test_browser.py`` and ``bench/bench_app.py``. Nothing here imports streamlit or the app:
the server is a subprocess, the browser talks to it over HTTP/WebSocket.

- :func:`streamlit_server` starts ``python -m streamlit run`` on a free port in its own process group,
  waits on ``/_stcore/health`` and kills the group on exit; the server's output is kept for failure messages.
- :func:`chromium` launches Debian's chromium (``/usr/bin/chromium``) with the flags that work as root in a
  container; :func:`require_chromium` says how to install it when it is missing.
- :func:`settle` waits until Streamlit finished running the script and the expected plotly charts are drawn;
  :func:`charts` / :func:`trace_counts` / :func:`exceptions` count what is on screen; :func:`screenshot`
  writes ``artifacts/screens/<name>.png``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

ROOT = Path(__file__).resolve().parents[1]
SCREENS = ROOT / "artifacts" / "screens"
CHROMIUM = os.environ.get("FAIRPP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("Install Debian's chromium (`apt-get install -y chromium`, which provides /usr/bin/chromium) "
                "or point FAIRPP_CHROMIUM at a Chromium binary. Do not run `playwright install`.")

T = TypeVar("T")

__all__ = ["ROOT", "SCREENS", "CHROMIUM", "CHROMIUM_FLAGS", "INSTALL_HINT", "free_port", "wait_until", "Server",
           "streamlit_server", "require_chromium", "chromium", "new_context", "new_page", "runs", "settle", "PageError", "charts",
           "trace_counts", "chart_info", "exceptions", "error_texts", "metric_values", "wait_for_metric", "nav_links", "screenshot",
           "mark_charts", "wait_redrawn", "process_memory"]


# -- waiting -----------------------------------------------------------------------------------------------------
def wait_until(predicate: Callable[[], T], timeout: float, *, interval: float = 0.05,
               message: str | Callable[[], str] = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or raise ``TimeoutError`` after ``timeout`` s.

    Only for conditions with no event to wait on (the server's health URL); in a page, use Playwright's own waits
    (``locator.wait_for``, ``page.wait_for_function``, :func:`wait_for_metric`).

    >>> wait_until(lambda: 3, 1.0)
    3
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"waited {timeout:g} s for {text}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server --------------------------------------------------------------------------------------------------
@dataclass
class Server:
    """A running ``streamlit run``: its URL, process and captured output."""

    url: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)  # monotonic time of the Popen call

    def log(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of the server's stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return text[-tail:]

    def memory(self) -> dict[str, int]:
        """Resident memory of the server and its children in bytes: ``rss`` (now) and ``hwm`` (peak).

        Read from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``) over the process tree; ``hwm`` sums each
        process's own peak, an upper bound of the tree's peak.
        """
        return process_memory(self.proc.pid)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def process_memory(pid: int) -> dict[str, int]:
    """``{"rss": bytes, "hwm": bytes, "processes": n}`` of ``pid`` and its descendants (from ``/proc``)."""
    total = {"rss": 0, "hwm": 0, "processes": 0}
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        for key, name in (("rss", "VmRSS"), ("hwm", "VmHWM")):
            if name in fields:
                total[key] += int(fields[name].split()[0]) * 1024
        total["processes"] += 1
        todo += _children(p)
    return total


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


@contextlib.contextmanager
def streamlit_server(db: str | Path, *, script: str | Path = "app.py", cwd: str | Path = ROOT,
                     env: Mapping[str, str] | None = None, timeout: float = 90.0) -> Iterator[Server]:
    """Run ``python -m streamlit run <script>`` with ``FAIRPP_DB=<db>`` on a free port; yield a :class:`Server`.

    Waits until ``/_stcore/health`` answers; raises ``RuntimeError`` with the server's output if it exits or
    does not become healthy within ``timeout`` s. On exit the whole process group is terminated (then killed).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    full_env = {**os.environ, "FAIRPP_DB": str(db), "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("STREAMLIT_SERVER_PORT", None)
    log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    log_path = Path(log.name)
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=str(cwd), env=full_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    server = Server(url=url, port=port, proc=proc, log_path=log_path, started=started)
    try:
        try:
            wait_until(lambda: proc.poll() is not None or _healthy(url), timeout,
                       message=f"streamlit health at {url}")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; server output:\n{server.log()}") from None
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; output:\n{server.log()}")
        yield server
    finally:
        _stop(proc)
        with contextlib.suppress(OSError):
            log_path.unlink()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:  # the leader is gone; children in its group may not be
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


# -- the browser -------------------------------------------------------------------------------------------------
def require_chromium() -> str:
    """The Chromium binary; raises ``RuntimeError`` saying how to install it when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise RuntimeError(f"Chromium not found at {CHROMIUM}. {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("the Python package playwright is missing: `pip install playwright` "
                           f"(the package only; {INSTALL_HINT})") from exc
    return CHROMIUM


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Launch headless Chromium through Playwright; yield the ``Browser`` (closed on exit)."""
    from playwright.sync_api import sync_playwright

    exe = require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


# Counts the script runs the page saw end (``data-test-script-state`` turning to ``notRunning``), see runs().
_RUN_COUNTER_JS = """(() => {
  window.__fairppRuns = 0;
  let last = null;
  const seen = () => {
    const app = document.querySelector("[data-testid='stApp']");
    const state = app && app.getAttribute('data-test-script-state');
    if (state !== last && state === 'notRunning') window.__fairppRuns++;
    last = state;
  };
  new MutationObserver(seen).observe(document, {subtree: true, childList: true, attributes: true,
                                                attributeFilter: ['data-test-script-state']});
})();"""


def new_context(browser: Any, *, width: int = 1440, height: int = 900) -> Any:
    """A browser context (its own HTTP cache) whose pages count script runs (see :func:`runs`)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(_RUN_COUNTER_JS)
    return context


def new_page(browser_or_context: Any, *, width: int = 1440, height: int = 900) -> Any:
    """A fresh page at the given viewport; every page is a Streamlit session of its own.

    Given a browser, the page gets a new context (close it with ``page.context.close()``); given a context
    from :func:`new_context`, the page shares its HTTP cache (the app's JavaScript, plotly's ~4 MB bundle
    included, is then parsed from cache instead of downloaded again; close it with ``page.close()``).
    """
    if hasattr(browser_or_context, "new_context"):
        context = new_context(browser_or_context, width=width, height=height)
    else:
        context = browser_or_context
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.set_default_timeout(60_000)
    return page


# -- what is on screen -------------------------------------------------------------------------------------------
# A chart counts as drawn once plotly computed it (``calcdata``) and rendered its SVG root.
_DRAWN_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(
    el => el.calcdata && el._fullLayout && el.querySelector('.main-svg')).length"""

_SETTLED_JS = """([want, atLeast, heading, afterRuns]) => {
  if (afterRuns !== null && !(window.__fairppRuns > afterRuns)) return false;
  const app = document.querySelector("[data-testid='stApp']");
  if (heading !== null && ![...document.querySelectorAll('h1')].some(h => h.innerText.trim() === heading)) return false;
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (document.querySelector("[data-testid='stStatusWidget']")) return false;
  if (document.querySelector("[data-stale='true']")) return false;
  if (document.querySelector("[data-testid='stSkeleton']")) return false;  // a lazily loaded element still loading
  if (document.querySelector("[data-testid='stException']")) return 'exception';
  const all = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = all.filter(el => el.calcdata && el._fullLayout && el.querySelector('.main-svg'));
  if (drawn.length !== all.length) return false;
  if (want === null) return true;
  return atLeast ? drawn.length >= want : drawn.length === want;
}"""


def runs(page: Any) -> int:
    """How many script runs the page has seen finish (pass it to :func:`settle` before an interaction).

    A run so short that React never rendered the "running" state is not seen: prefer waiting for a heading
    or a redrawn chart (:func:`wait_redrawn`) and use this for pages without either.
    """
    return int(page.evaluate("() => window.__fairppRuns ?? 0"))


def settle(page: Any, charts: int | None = None, *, at_least: bool = False, heading: str | None = None,
           after_runs: int | None = None, timeout: float = 60.0, quiet: float = 0.3,
           polling: int | str = 50) -> float:
    """Wait until the script has finished, every element is rendered and the plotly charts are drawn.

    Rendered: no stale element and no ``stSkeleton`` (Streamlit draws a skeleton while an element's code,
    e.g. ``st.metric`` or ``st.plotly_chart``, is still loading in the browser, even after the run ended).

    ``charts``: the number of charts expected (``None``: whatever is there, all drawn; ``at_least``: that many
    or more); ``heading``: an ``h1`` with this text must be shown (after a page switch); ``after_runs``: more
    script runs than this must have finished (from :func:`runs` before an interaction). The condition must
    hold for ``quiet`` seconds in a row (Streamlit may rerun right after a run, e.g. when a widget writes the
    URL). Returns the ``time.monotonic()`` at which it first held in that final window (``polling``: ms or
    ``"raf"``). On timeout raises ``TimeoutError`` with what was on screen; raises :class:`PageError` when the
    settled page shows an exception box.
    """
    deadline = time.monotonic() + timeout
    args = [charts, at_least, heading, after_runs]
    while True:
        left = max(0.1, deadline - time.monotonic())
        try:
            page.wait_for_function(_SETTLED_JS, arg=args, timeout=left * 1000, polling=polling)
        except Exception as exc:  # playwright's TimeoutError: report what the page shows
            raise TimeoutError(f"page {page.url} did not settle with {charts} chart(s) in {timeout:g} s: "
                               f"{_state(page)}") from exc
        at = time.monotonic()
        stable = True
        while time.monotonic() < at + quiet:
            if not page.evaluate(_SETTLED_JS, args):
                stable = False
                break
            page.wait_for_timeout(50)
        if stable:
            if texts := _exception_texts(page):
                raise PageError(f"page {page.url} shows an exception: {texts}")
            return at
        if time.monotonic() >= deadline:
            raise TimeoutError(f"page {page.url} kept changing for {timeout:g} s: {_state(page)}")


class PageError(AssertionError):
    """The app showed an exception box (its text is in the message)."""


def _exception_texts(page: Any) -> list[str]:
    return [e.inner_text()[:1500] for e in page.query_selector_all("[data-testid='stException']")]


def _state(page: Any) -> str:
    try:
        return str(page.evaluate("""() => {
          const app = document.querySelector("[data-testid='stApp']");
          return {script: app && app.getAttribute('data-test-script-state'),
                  connection: app && app.getAttribute('data-test-connection-state'),
                  charts: document.querySelectorAll('.js-plotly-plot').length,
                  exceptions: [...document.querySelectorAll("[data-testid='stException']")]
                               .map(e => e.innerText.slice(0, 300))};
        }"""))
    except Exception as exc:  # the page may be gone
        return f"(page state unavailable: {exc})"


def charts(page: Any) -> int:
    """Number of plotly charts drawn on the page."""
    return int(page.evaluate(_DRAWN_JS))


def trace_counts(page: Any) -> list[int]:
    """Traces of each plotly chart, in document order (``el.data.length``)."""
    return list(page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(el => (el.data || []).length)"))


def chart_info(page: Any) -> list[dict[str, Any]]:
    """Per chart: trace ``types`` and ``names``, ``points`` drawn (markers/bars/sectors; heatmap cells)."""
    return list(page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
        types: (el._fullData || []).map(t => t.type),
        names: (el.data || []).map(t => t.name ?? null),
        points: (el._fullData || []).reduce((n, t, i) => n + (t.type === 'heatmap' && t.z
            ? t.z.length * ((t.z[0] && t.z[0].length) || 1) : (((el.calcdata || [])[i]) || []).length), 0),
        visible: (el._fullData || []).filter(t => t.visible === true).length,
    }))"""))


def exceptions(page: Any) -> int:
    """Number of Streamlit exception boxes on the page."""
    return len(page.query_selector_all("[data-testid='stException']"))


def error_texts(page: Any) -> list[str]:
    """Texts of the ``st.error`` boxes (and exception boxes) on the page."""
    return [e.inner_text() for e in page.query_selector_all("[data-testid='stAlertContentError'], "
                                                             "[data-testid='stException']")]


def metric_values(page: Any) -> dict[str, str]:
    """``{label: value}`` of every ``st.metric`` on the page."""
    return dict(page.evaluate("""() => [...document.querySelectorAll("[data-testid='stMetric']")].map(m => [
        (m.querySelector("[data-testid='stMetricLabel']") || {}).innerText?.trim(),
        (m.querySelector("[data-testid='stMetricValue']") || {}).innerText?.trim()])"""))


def wait_for_metric(page: Any, label: str, value: str, timeout: float) -> None:
    """Wait (in the browser, no polling here) until the ``st.metric`` labelled ``label`` shows ``value``; on timeout
    the error lists every metric on the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("""([label, value]) => [...document.querySelectorAll("[data-testid='stMetric']")].some(m =>
            (m.querySelector("[data-testid='stMetricLabel']") || {}).innerText?.trim() === label
            && (m.querySelector("[data-testid='stMetricValue']") || {}).innerText?.trim() === value)""",
                               arg=[label, value], timeout=timeout * 1000)
    except PlaywrightTimeout:
        raise TimeoutError(f"waited {timeout:g} s for metric {label!r} = {value!r}; metrics {metric_values(page)}") \
            from None


def nav_links(page: Any) -> list[str]:
    """The URLs of the pages in the sidebar navigation, in order."""
    return list(page.eval_on_selector_all(
        "[data-testid='stSidebarNav'] a", "els => [...new Set(els.map(e => e.href))]"))


# The content's height: the main area, and the sidebar while it is shown (it collapses on narrow screens).
_SCROLL_HEIGHT_JS = """() => {
  const main = document.querySelector("[data-testid='stMain']");
  const side = document.querySelector("[data-testid='stSidebarContent']");
  const shown = side && side.getBoundingClientRect().right > 1;
  return Math.max(main ? main.scrollHeight : 0, shown ? side.scrollHeight : 0,
                  document.documentElement.clientHeight);
}"""


def screenshot(page: Any, name: str, *, full_page: bool = True, max_height: int = 8000) -> Path:
    """Save ``artifacts/screens/<name>.png`` (created as needed); returns the path.

    Streamlit scrolls inside its main container, so a plain full-page screenshot shows one viewport only;
    with ``full_page`` the viewport is stretched to the content's height (at most ``max_height``) for the shot
    and restored afterwards.
    """
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    size = page.viewport_size
    if full_page and size:
        height = min(max_height, int(page.evaluate(_SCROLL_HEIGHT_JS)))
        if height > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": height})
            try:
                page.wait_for_timeout(300)  # let plotly's resize handler relayout
                page.screenshot(path=str(path), full_page=True)
            finally:
                page.set_viewport_size(size)
            return path
    page.screenshot(path=str(path), full_page=full_page)
    return path


# -- redraws -----------------------------------------------------------------------------------------------------
def mark_charts(page: Any) -> None:
    """Remember the figure data of every chart now on screen (see :func:`wait_redrawn`)."""
    page.evaluate("""() => { window.__fairppMarks = new WeakMap();
        document.querySelectorAll('.js-plotly-plot').forEach(el => window.__fairppMarks.set(el, el.data)); }""")


_REDRAWN_JS = """(sel) => {
  const marks = window.__fairppMarks;
  if (!marks) return false;
  if (document.querySelector("[data-testid='stException']")) return 'exception';
  const els = [...document.querySelectorAll(sel)];
  return els.some(el => el.calcdata && el.querySelector('.main-svg') && (!marks.has(el) || marks.get(el) !== el.data));
}"""


def wait_redrawn(page: Any, *, selector: str = ".js-plotly-plot", timeout: float = 60.0) -> float:
    """Wait until a chart matching ``selector`` was replotted with new data since :func:`mark_charts`.

    Returns the ``time.monotonic()`` when it was seen.
    """
    try:
        page.wait_for_function(_REDRAWN_JS, arg=selector, timeout=timeout * 1000, polling="raf")
        at = time.monotonic()
    except Exception as exc:
        raise TimeoutError(f"no chart redrawn on {page.url} within {timeout:g} s: {_state(page)}") from exc
    if texts := _exception_texts(page):
        raise PageError(f"page {page.url} shows an exception instead of a redrawn chart: {texts}")
    return at
