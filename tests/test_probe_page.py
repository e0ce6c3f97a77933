"""The Probe page: renders through app.py, offers the presets, runs a probe against a real local chat server,
draws the new point, and never stores the key it was typed (DB file, logs, pack).

The AppTest tests drive the page by widget key; the browser test (``-m browser``) runs a real
``streamlit run`` server and Chromium, fills the form and watches the run finish on the map.
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path

import browser_util as bu
import pytest
from chatserver import ChatServer, PolePolicy
from streamlit.testing.v1 import AppTest
from test_pages import _ok, _write_db

from fairpp.probe import PRESETS, list_runs, pack_bytes
from fairpp.store import Store

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/probe.py"
KEY = "sk-page-NEVER-STORE-4b1d9e07"
P_B = {1: 0.2, 2: 0.35, 3: 0.5, 4: 0.65, 5: 0.8}


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = _write_db(tmp_path)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    return path


@pytest.fixture
def server(db):
    with Store(db, read_only=True) as s:
        policy = PolePolicy.from_questions(s.questions(), P_B)
    with ChatServer(policy, api_key=KEY) as srv:  # the server insists on the key: it must reach it
        yield srv


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(PAGE)
    at.run()
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _files_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


def test_page_renders_with_presets(db):
    at = _open()
    _ok(at)
    assert at.title[0].value == "Probe a model"
    preset = at.selectbox(key="probe.preset")
    assert set(PRESETS) <= set(preset.options)
    assert at.text_input(key="probe.api_key").proto.type == at.text_input(key="probe.api_key").proto.PASSWORD
    preset.set_value("Ollama").run()
    _ok(at)
    assert at.text_input(key="probe.base_url").value == PRESETS["Ollama"]
    at.text_input(key="probe.model").input("llama3.1").run()
    _ok(at)
    assert any("expected 95% interval width" in m.value for m in at.markdown), "no plan shown before the run"


def test_bad_url_is_an_error_not_an_exception(db):
    at = _open()
    at.text_input(key="probe.base_url").input("localhost:8000").run()
    at.text_input(key="probe.model").input("m").run()
    assert not at.exception
    assert any("not an http(s) URL" in e.value for e in at.error)


def test_probe_runs_from_the_page_and_never_stores_the_key(db, server, caplog):
    caplog.set_level(logging.DEBUG)
    at = _open()
    at.text_input(key="probe.base_url").input(server.url).run()
    at.text_input(key="probe.model").input("test-model").run()
    at.text_input(key="probe.api_key").input(KEY).run()
    at.number_input(key="probe.n").set_value(30).run()
    _ok(at)
    at.button(key="probe.test").click().run()
    _ok(at)
    assert any("OK" in s.value for s in at.success), "connection test did not pass"
    at.button(key="probe.start").click().run()
    _ok(at)
    run = at.session_state["probe.run"]
    assert run.wait(60), "the probe did not finish"
    at.run()
    _ok(at)
    assert run.snapshot().status == "complete", run.snapshot()
    assert _metric(at, "Answered") == "30"
    assert _metric(at, "Failed") == "0"
    assert any("**Nearest persona:** " in m.value and "**Nearest persona:** –" not in m.value for m in at.markdown)
    assert at.get("plotly_chart"), "no chart drawn"
    assert server.chat_requests >= 30
    # Past runs list it; the same probe started again asks nothing (resumed from the store).
    runs = list_runs(at.session_state["probe.run"].store)
    assert run.run_id in set(runs["run_id"])
    # The key: sent to the server, but never in the DB file, the logs or the pack.
    store = run.store
    pack = gzip.decompress(pack_bytes(store, run.run_id))
    assert KEY.encode() not in pack
    assert KEY not in caplog.text
    assert KEY.encode() not in _files_bytes(db)


def test_past_runs_tab_renders(db, server):
    at = _open()
    at.text_input(key="probe.base_url").input(server.url).run()
    at.text_input(key="probe.model").input("test-model").run()
    at.text_input(key="probe.api_key").input(KEY).run()
    at.number_input(key="probe.n").set_value(20).run()
    at.button(key="probe.start").click().run()
    assert at.session_state["probe.run"].wait(60)
    at2 = AppTest.from_file(APP, default_timeout=120)
    at2.query_params["probe.section"] = "Past runs & packs"
    at2.switch_page(PAGE)
    at2.run()
    _ok(at2)
    assert at2.multiselect(key="probe.compare").value, "the finished run is not offered for comparison"
    assert at2.get("plotly_chart"), "the comparison map is not drawn"


def test_cancel_stops_a_running_probe(db, tmp_path):
    with Store(db, read_only=True) as s:
        policy = PolePolicy.from_questions(s.questions(), P_B)
    with ChatServer(policy) as srv:
        srv.block_after(3)  # hold every request after the third until released
        at = _open()
        at.text_input(key="probe.base_url").input(srv.url).run()
        at.text_input(key="probe.model").input("test-model").run()
        at.number_input(key="probe.concurrency").set_value(1).run()
        at.button(key="probe.start").click().run()
        _ok(at)
        run = at.session_state["probe.run"]
        assert srv.wait_for(lambda s: s.held >= 1, 30)
        at.button(key="probe.cancel").click().run()
        assert run.wait(30), "cancel did not stop the run"
        srv.release(drop=True)
        at.run()
        _ok(at)
        assert run.snapshot().status == "cancelled"
        assert not at.button(key="probe.start").disabled


def test_env_key_names_are_restricted(db, monkeypatch):
    monkeypatch.setenv("MY_API_KEY", "sk-env-123456")
    at = _open()
    at.text_input(key="probe.model").input("m").run()
    at.radio(key="probe.key_source").set_value("Environment variable").run()
    at.text_input(key="probe.key_name").input("MY_API_KEY").run()
    _ok(at)
    assert any("Key found" in c.value for c in at.caption)
    at.text_input(key="probe.key_name").input("HOME").run()
    assert not at.exception and any("not offered" in e.value for e in at.error)


@pytest.mark.browser
def test_browser_probe_runs_to_completion_and_draws_the_point(tmp_path):
    db = _write_db(tmp_path)
    with Store(db, read_only=True) as s:
        policy = PolePolicy.from_questions(s.questions(), P_B)
    with ChatServer(policy, api_key=KEY, latency=0.05) as chat, bu.streamlit_server(db) as app, \
            bu.chromium() as browser:
        page = bu.new_page(browser)
        page.goto(app.url + "probe")
        bu.settle(page, heading="Probe a model")
        for key, value in (("probe.base_url", chat.url), ("probe.model", "test-model"), ("probe.api_key", KEY)):
            box = page.locator(f".st-key-{key.replace('.', '-')} input")
            box.fill(value)
            box.press("Enter")
            bu.settle(page)
        n = page.locator(".st-key-probe-n input")
        n.fill("30")
        n.press("Enter")
        bu.settle(page)
        page.get_by_role("button", name="Start probe").click()
        page.get_by_text("complete ·").first.wait_for(timeout=90_000)
        bu.settle(page, at_least=True, charts=2)
        assert bu.exceptions(page) == 0
        metrics = bu.metric_values(page)
        assert metrics.get("Answered") == "30", metrics
        names = [n for c in bu.chart_info(page) for n in c["names"]]
        probe_names = [n for n in names if n and n.startswith("test-model · probe-")]
        assert probe_names, f"no probe point on the map; traces: {names}"
        assert chat.chat_requests >= 30
        bu.screenshot(page, "probe-page")
        log = app.log(tail=10**7)
    assert KEY not in log
    assert KEY.encode() not in _files_bytes(db)


HEADER_SECRET = "hdr-NEVER-STORE-8c21"


def test_advanced_fields_reach_the_endpoint_and_the_money_budget_stops_the_run(db, server):
    """Extra headers, a custom system prompt, reply length, seed and prices from the page reach the server;
    a money budget stops the run; header values are never stored."""
    at = _open()
    at.text_input(key="probe.base_url").input(server.url).run()
    at.text_input(key="probe.model").input("test-model").run()
    at.text_input(key="probe.api_key").input(KEY).run()
    at.text_area(key="probe.headers").input(f"X-Title=Fair-PP test\nX-Team-Token: {HEADER_SECRET}").run()
    at.text_area(key="probe.system_prompt").input("Answer as a careful civil servant.").run()
    at.number_input(key="probe.reply_tokens").set_value(7).run()
    at.number_input(key="probe.seed").set_value(1234).run()
    at.number_input(key="probe.n").set_value(40).run()
    at.number_input(key="probe.concurrency").set_value(1).run()
    # 40 prompt tokens a request at 1,000 per million: 0.04 a request, so a budget of 0.2 stops after 5.
    at.number_input(key="probe.price_in").set_value(1000.0).run()
    at.number_input(key="probe.max_cost").set_value(0.2).run()
    _ok(at)
    at.button(key="probe.start").click().run()
    _ok(at)
    run = at.session_state["probe.run"]
    assert run.wait(60), "the probe did not finish"
    at.run()
    _ok(at)
    snap = run.snapshot()
    assert snap.stop_reason == "budget_cost", snap
    assert 5 <= snap.answered < 40, snap
    assert any(m.label == "Cost" for m in at.metric)
    chats = [b for b in server.bodies if "messages" in b]
    assert chats and all(b["max_tokens"] == 7 and b.get("seed") == 1234 for b in chats)
    assert all(b["messages"][0] == {"role": "system", "content": "Answer as a careful civil servant."} for b in chats)
    sent = [h for h in server.seen_headers if "x-team-token" in h]
    assert sent and all(h["x-team-token"] == HEADER_SECRET and h["x-title"] == "Fair-PP test" for h in sent)
    card = list_runs(run.store).set_index("run_id").loc[run.run_id]
    assert HEADER_SECRET not in str(card.to_dict())
    assert HEADER_SECRET.encode() not in gzip.decompress(pack_bytes(run.store, run.run_id))
    assert HEADER_SECRET.encode() not in _files_bytes(db)


def test_contradicting_fields_are_an_error_not_an_exception(db):
    at = _open()
    at.text_input(key="probe.model").input("m").run()
    at.selectbox(key="probe.persona").set_value(at.selectbox(key="probe.persona").options[1]).run()
    at.text_area(key="probe.system_prompt").input("Be brief.").run()
    assert not at.exception
    assert any("not both" in e.value for e in at.error)
    at.text_area(key="probe.system_prompt").input("").run()
    at.number_input(key="probe.max_cost").set_value(5.0).run()
    assert not at.exception
    assert any("needs a price" in e.value for e in at.error)
    at.number_input(key="probe.max_cost").set_value(0.0).run()
    at.text_area(key="probe.headers").input("no separator here").run()
    assert not at.exception
    assert any("NAME=VALUE" in e.value for e in at.error)
    assert "probe.start" not in [b.key for b in at.button], "a run can start from contradicting fields"
