"""The persona lab: define a persona, role-play it against the local server, see it land beside the seven."""
from __future__ import annotations

import pytest
from chatserver import ChatServer
from test_generate import persona_policy
from test_pages import _app, _ok, _write_db

PAGE = "pages/persona_lab.py"
RUN = "persona_lab.active_run"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = _write_db(tmp_path)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    return path


def test_define_run_and_land(db):
    at = _app()
    at.switch_page(PAGE)
    at.run()
    _ok(at)
    assert any("No role-play run" in i.value for i in at.info)
    at.text_input(key="persona_lab.name").input("Young Activists")
    at.text_area(key="persona_lab.portrayal").input("You are like the Progressive Activists, only younger.")
    next(b for b in at.button if b.label == "Save persona").click().run()
    _ok(at)
    assert at.selectbox(key="persona_lab.persona").value == "Young Activists"
    with ChatServer(persona_policy) as srv:
        at.text_input(key="persona_lab.base_url").input(srv.url)
        at.text_input(key="persona_lab.model").input("test-model")
        at.number_input(key="persona_lab.n").set_value(20)
        at.run()
        at.button(key="persona_lab.run").click().run()
        _ok(at)
        run = at.session_state[RUN]
        assert run.wait(60)
        at.run()
        _ok(at)
    assert RUN not in at.session_state
    assert any(m.label == "Answered" and m.value == "20/20" for m in at.metric)
    neighbours = next(d.value for d in at.dataframe if "distance" in d.value.columns)
    assert (neighbours["kind"] == "persona").sum() == 7  # the seven built-in personas (and the models), nearest first
    assert neighbours["distance"].is_monotonic_increasing
    assert len(at.get("plotly_chart")) == 1


def test_bad_endpoint_is_an_error_not_a_crash(db):
    at = _app()
    at.switch_page(PAGE)
    at.run()
    at.text_input(key="persona_lab.base_url").input("not a url")
    at.text_input(key="persona_lab.model").input("m")
    at.run()
    at.button(key="persona_lab.run").click().run()
    assert not at.exception
    assert any("not an http(s) URL" in e.value for e in at.error)


def test_a_run_without_pole_answers_says_so(db):
    at = _app()
    at.switch_page(PAGE)
    at.run()
    at.text_input(key="persona_lab.name").input("Night Owls")  # the policy answers N/A to them
    at.text_area(key="persona_lab.portrayal").input("You are one of the Night Owls.")
    next(b for b in at.button if b.label == "Save persona").click().run()
    with ChatServer(persona_policy) as srv:
        at.text_input(key="persona_lab.base_url").input(srv.url)
        at.text_input(key="persona_lab.model").input("test-model")
        at.run()
        at.button(key="persona_lab.run").click().run()
        assert at.session_state[RUN].wait(60)
        at.run()
    _ok(at)
    assert any("no A/B answers" in i.value for i in at.info)
