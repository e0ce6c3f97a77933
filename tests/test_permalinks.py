"""Permalinks and stories in AppTest: a URL reopens the same view, the Link control shows that URL, views
saved as slides play through (Previous / Next / Exit) with each slide's state."""
from __future__ import annotations

import urllib.parse
from collections import Counter
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from chatserver import ChatServer, PolePolicy
from fairpp.probe import Endpoint, ProbeConfig, ProbeRun, RetryPolicy
from fairpp.sources.files import read_files
from fairpp.store import Store
from fairpp.store import stories as db

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


@pytest.fixture
def app_db(wide_csv, db_path, monkeypatch) -> Path:
    """The small fixture dataset in a database the app opens (FAIRPP_DB)."""
    with Store(db_path) as s:
        s.load(read_files([wide_csv]))
    monkeypatch.setenv("FAIRPP_DB", str(db_path))
    return db_path


def _open(page: str, query: list[tuple[str, str]]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    for k, v in grouped.items():
        at.query_params[k] = v if len(v) > 1 else v[0]
    at.switch_page(page)
    at.run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _link(at: AppTest) -> str:
    """The URL the Link control shows."""
    codes = [c.value for c in at.get("code")]
    assert len(codes) == 1, codes
    return codes[0]


def _pairs(link: str) -> tuple[str, Counter]:
    parts = urllib.parse.urlsplit(link)
    return parts.path, Counter(urllib.parse.parse_qsl(parts.query))


PERSONAS_VIEW = [("topic", "fair essentials"), ("dimension", "1"), ("dimension", "2"), ("dimension", "3"),
                 ("respondents", "Civic Pragmatists"), ("respondents", "Loyal Nationals"),
                 ("respondents", "Progressive Activists"), ("personas.section", "Cluster map"),
                 ("personas.unit", "group_name"), ("personas.projection", "UMAP"), ("personas.overlay", "none")]


def _check_personas_view(at: AppTest) -> None:
    assert at.title[0].value == "Personas"
    assert at.multiselect(key="filters.topic").value == ["fair essentials"]
    assert at.multiselect(key="filters.dimension").value == [1, 2, 3]
    assert at.multiselect(key="filters.respondents").value == ["Civic Pragmatists", "Loyal Nationals",
                                                               "Progressive Activists"]
    assert at.selectbox(key="personas.unit").value == "group_name"
    assert at.radio(key="personas.projection").value == "UMAP"
    assert at.radio(key="personas.overlay").value == "none"
    assert any("points over dimensions 1, 2, 3" in c.value for c in at.caption)


def test_url_reopens_the_view_and_the_link_shows_it(app_db):
    at = _open("pages/personas.py", PERSONAS_VIEW)
    _check_personas_view(at)
    path, query = _pairs(_link(at))
    assert path == "/personas" and query == Counter(PERSONAS_VIEW)


def test_changed_view_round_trips_through_the_link(app_db):
    at = _open("pages/personas.py", [("personas.section", "Distances & agreement")])
    at.multiselect(key="filters.group").set_value(["men"]).run()
    at.radio(key="personas.metric").set_value("kappa").run()
    at.selectbox(key="personas.matrix_dim").set_value(2).run()
    _ok(at)
    link = _link(at)  # refreshed after the page's widgets wrote the URL in this very run
    path, query = _pairs(link)
    assert path == "/personas"
    assert query == Counter({("group", "men"): 1, ("personas.section", "Distances & agreement"): 1,
                             ("personas.metric", "kappa"): 1, ("personas.matrix_dim", "2"): 1})
    again = _open("pages/personas.py", list(query.elements()))
    assert again.multiselect(key="filters.group").value == ["men"]
    assert again.radio(key="personas.metric").value == "kappa"
    assert again.selectbox(key="personas.matrix_dim").value == 2
    assert any(c.value.startswith("**Cohen's kappa**") for c in again.caption)
    assert _pairs(_link(again)) == (path, query)


def test_probe_run_selection_is_in_the_link(app_db):
    with Store(app_db, read_only=True) as s:
        policy = PolePolicy.from_questions(s.questions(), {1: 0.2, 2: 0.35, 3: 0.5, 4: 0.65, 5: 0.8})
    runs = []
    with ChatServer(policy) as srv, Store(app_db) as store:
        for model in ("model-one", "model-two", "model-three"):
            cfg = ProbeConfig(Endpoint(srv.url, model, api_key="k", timeout=5.0), n=30,
                              retry=RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.02))
            runs.append(ProbeRun(store, cfg).run()["run_id"])
    view = [("probe.section", "Past runs & packs"), ("probe.compare", runs[2]), ("probe.compare", runs[0])]
    at = _open("pages/probe.py", view)
    assert at.multiselect(key="probe.compare").value == [runs[2], runs[0]]
    path, query = _pairs(_link(at))
    assert path == "/probe" and query == Counter(view)
    at.multiselect(key="probe.compare").set_value([runs[1]]).run()
    _ok(at)
    assert _pairs(_link(at))[1] == Counter([("probe.section", "Past runs & packs"), ("probe.compare", runs[1])])


def _add(at: AppTest, title: str, *, new_story: str | None = None) -> AppTest:
    if new_story is not None:
        at.selectbox(key="link.story").set_value(0).run()
        at.text_input(key="link.new_title").input(new_story)
    at.text_input(key="link.title").input(title)
    at.button(key="link.add").click().run()
    _ok(at)
    assert any("Added as slide" in s.value for s in at.success), [s.value for s in at.success]
    return at


def _slide_bar(at: AppTest) -> tuple[str, str]:
    heading = next(m.value for m in at.markdown if m.value.startswith("### "))
    counter = next(m.value for m in at.markdown if m.value.startswith("**") and " / " in m.value)
    return heading[4:], counter.split(" · ")[0]


def test_views_saved_as_slides_play_through(app_db):
    at = _open("pages/personas.py", PERSONAS_VIEW)
    _add(at, "Clusters by group", new_story="Board meeting")
    at.switch_page("pages/overview.py").run()
    at.multiselect(key="filters.respondents").set_value([]).run()
    at.multiselect(key="filters.dimension").set_value([4, 5]).run()
    at.radio(key="overview.taxonomy").set_value("treemap").run()
    _add(at, "Two dimensions")
    at.switch_page("pages/personas.py").run()
    at.multiselect(key="filters.topic").set_value([]).run()
    at.multiselect(key="filters.dimension").set_value([]).run()
    at.radio(key="personas.overlay").set_value("density").run()
    _ok(at)
    _add(at, "Density, all questions")
    at.switch_page("pages/stories.py").run()
    _ok(at)
    assert at.title[0].value == "Stories"
    assert [t.value for t in at.text_input if t.key.startswith("stories.slide_title_")] == [
        "Clusters by group", "Two dimensions", "Density, all questions"]

    at.button(key="stories.play").click().run()
    _ok(at)
    _check_personas_view(at)
    assert _slide_bar(at) == ("Clusters by group", "**1 / 3**")
    assert at.query_params["story"] and at.query_params["slide"] in ("1", ["1"])

    at.button(key="play.next").click().run()
    _ok(at)
    assert at.title[0].value == "Overview"
    assert _slide_bar(at) == ("Two dimensions", "**2 / 3**")
    assert at.multiselect(key="filters.dimension").value == [4, 5]
    assert at.multiselect(key="filters.topic").value == ["fair essentials"]
    assert at.multiselect(key="filters.respondents").value == []
    assert at.radio(key="overview.taxonomy").value == "treemap"
    assert len(at.get("plotly_chart")) == 2  # taxonomy (treemap) and answer mix

    at.button(key="play.next").click().run()
    _ok(at)
    assert at.title[0].value == "Personas" and _slide_bar(at) == ("Density, all questions", "**3 / 3**")
    assert at.multiselect(key="filters.topic").value == [] and at.multiselect(key="filters.dimension").value == []
    assert at.multiselect(key="filters.respondents").value == []
    assert at.radio(key="personas.overlay").value == "density"  # not slide 1's "none"
    assert at.selectbox(key="personas.unit").value == "group_name"
    assert any("points over dimensions 1, 2, 3, 4, 5" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1  # the cluster map
    assert at.button(key="play.next").disabled

    at.button(key="play.prev").click().run()
    _ok(at)
    assert _slide_bar(at) == ("Two dimensions", "**2 / 3**")
    assert at.multiselect(key="filters.dimension").value == [4, 5]
    at.button(key="play.prev").click().run()
    _ok(at)
    _check_personas_view(at)
    assert _slide_bar(at) == ("Clusters by group", "**1 / 3**") and at.button(key="play.prev").disabled

    at.button(key="play.exit").click().run()
    _ok(at)
    assert at.title[0].value == "Stories"
    assert "story" not in at.query_params and "slide" not in at.query_params
    assert not any(m.value.startswith("### ") for m in at.markdown)


def test_stories_page_edits_and_reorders(app_db):
    with Store(app_db) as s:
        from fairpp.stories import Slide

        sid = db.create_story(s, "Edit me")
        for t in ("one", "two", "three"):
            db.add_slide(s, sid, Slide(t, "overview"))
    at = _open("pages/stories.py", [])
    ids = [int(t.key.rsplit("_", 1)[1]) for t in at.text_input if t.key.startswith("stories.slide_title_")]
    at.button(key=f"stories.down_{ids[0]}").click().run()
    _ok(at)
    assert [t.value for t in at.text_input if t.key.startswith("stories.slide_title_")] == ["two", "one", "three"]
    at.text_input(key=f"stories.slide_title_{ids[2]}").input("third")
    at.text_area(key=f"stories.slide_notes_{ids[2]}").input("the end")
    at.button(key=f"stories.save_{ids[2]}").click().run()
    _ok(at)
    at.button(key=f"stories.del_{ids[1]}").click().run()
    _ok(at)
    at.text_input(key=f"stories.title_{sid}").input("Edited")
    at.button(key="stories.rename").click().run()
    _ok(at)
    assert at.selectbox(key="stories.story").format_func(sid).startswith("Edited (2 slides)")
    assert at.text_area(key=f"stories.slide_notes_{ids[2]}").value == "the end"
    at.text_input(key="stories.link").input("http://somewhere:8501/models?models.labels=1")
    at.button(key="stories.link_add").click().run()
    _ok(at)
    titles = [t.value for t in at.text_input if t.key.startswith("stories.slide_title_")]
    assert titles == ["one", "third", "Regional models"]
    at.text_input(key="stories.link").input("http://somewhere:8501/nowhere")
    at.button(key="stories.link_add").click().run()
    assert any("not a page of this app" in e.value for e in at.error)
