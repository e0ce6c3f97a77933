"""Stories in the store and on the command line: persistence, reorder, delete, export/import, bad files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import fairpp.story_cli  # noqa: F401  (registers `fairpp story`)
from conftest import small_wide
from fairpp.cli import main
from fairpp.sources.files import read_files
from fairpp.stories import (Slide, Story, StoryError, dumps, moved, parse_permalink, permalink, read_story,
                            story_from_json, story_to_json)
from fairpp.store import Store
from fairpp.store import stories as db

PAGES = ["overview", "personas", "models", "explore", "stories"]
SLIDES = [
    Slide("Where the personas sit", "personas", (("topic", "fair essentials"), ("personas.show", "A"),
                                                 ("personas.show", "B")), notes="Radar first."),
    Slide("Clusters by group", "personas", (("personas.section", "Cluster map"), ("personas.unit", "group_name"))),
    Slide("Two dimensions only", "overview", (("dimension", "1"), ("dimension", "2")), notes="**bold** note"),
]


@pytest.fixture
def loaded(wide_csv, db_path) -> Path:
    with Store(db_path) as s:
        s.load(read_files([wide_csv]))
    return db_path


def _story(store: Store, title: str = "Findings") -> int:
    sid = db.create_story(store, title)
    for s in SLIDES:
        db.add_slide(store, sid, s)
    return sid


def _rows(path: Path) -> dict[str, list]:
    with Store(path, read_only=True) as s, s.cursor() as cur:
        have = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return {t: sorted(cur.execute(f"SELECT * FROM {t}").fetchall(), key=str) for t in ("stories", "story_slides")
                if t in have}


def test_stories_survive_reopen_and_a_data_reload(loaded, tmp_path):
    with Store(loaded) as s:
        sid = _story(s)
    with Store(loaded, read_only=True) as s:
        story = db.get_story(s, sid)
    assert story == Story("Findings", tuple(SLIDES))
    other = tmp_path / "other.csv"
    small_wide(seed=3, problems=2).to_csv(other, index=False)
    with Store(loaded) as s:
        s.load(read_files([other]))  # replaces the dataset
        assert s.info()["questions"] == 40
        assert db.get_story(s, sid) == story
        assert db.list_stories(s)[["story_id", "title", "slides"]].values.tolist() == [[sid, "Findings", 3]]


def test_reorder_rename_and_delete(loaded):
    with Store(loaded) as s:
        sid = _story(s)
        other = db.create_story(s, "Second")
        ids = db.story_slides(s, sid)["slide_id"].tolist()
        db.move_slide(s, ids[2], -1)
        assert [x.title for x in db.get_story(s, sid).slides] == [SLIDES[0].title, SLIDES[2].title, SLIDES[1].title]
        db.move_slide(s, ids[0], -1)  # already first: stays
        db.move_slide(s, ids[0], 5)  # clamped: goes last
        assert db.story_slides(s, sid)["slide_id"].tolist() == [ids[2], ids[1], ids[0]]
        assert db.story_slides(s, sid)["position"].tolist() == [0, 1, 2]
        db.update_slide(s, ids[1], title="  Clusters  ", notes="new notes")
        assert db.get_story(s, sid).slides[1] == Slide("Clusters", "personas", SLIDES[1].params, "new notes")
        db.delete_slide(s, ids[2])
        left = db.story_slides(s, sid)
        assert left["slide_id"].tolist() == [ids[1], ids[0]] and left["position"].tolist() == [0, 1]
        db.rename_story(s, sid, "Renamed")
        assert db.get_story(s, sid).title == "Renamed"
        with pytest.raises(StoryError, match="empty"):
            db.rename_story(s, sid, "   ")
        db.delete_story(s, sid)
        assert db.list_stories(s)["story_id"].tolist() == [other]
        assert db.story_slides(s, other).empty
        with pytest.raises(StoryError, match=f"no story {sid}"):
            db.get_story(s, sid)
        with pytest.raises(StoryError, match="no slide"):
            db.move_slide(s, ids[0], 1)


def test_export_import_round_trip(loaded, tmp_path):
    with Store(loaded) as s:
        sid = _story(s)
        text = dumps(db.get_story(s, sid))
        new = db.import_story(s, read_story(text.encode()))
        assert new != sid
        assert db.get_story(s, new) == db.get_story(s, sid)
    doc = json.loads(text)
    assert doc["format"] == "fairpp-story" and doc["version"] == 1
    assert doc["slides"][2]["params"] == [["dimension", "1"], ["dimension", "2"]]
    assert story_from_json(story_to_json(Story("x", tuple(SLIDES)))) == Story("x", tuple(SLIDES))


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b"\xff\xfe{", "not UTF-8"),
    (b"[1, 2]", "one JSON object"),
    (b'{"format": "something-else", "version": 1}', "not a Fair-PP story file"),
    (b'{"format": "fairpp-story", "version": 9, "title": "t", "slides": []}', "version 9 is not supported"),
    (b'{"format": "fairpp-story", "version": 1, "title": " ", "slides": []}', "title is empty"),
    (b'{"format": "fairpp-story", "version": 1, "title": "t"}', "has no .slides. list"),
    (b'{"format": "fairpp-story", "version": 1, "title": "t", "slides": [{"title": "a", "page": "personas"},'
     b' {"title": "b", "page": "../etc"}]}', "slide 2: page '../etc' is not a page key"),
    (b'{"format": "fairpp-story", "version": 1, "title": "t", "slides": [{"title": "a", "page": "personas",'
     b' "params": [["topic"]]}]}', r"slide 1: params\[0\] must be a \[name, value\] pair"),
])
def test_a_bad_story_file_is_refused_and_writes_nothing(loaded, tmp_path, content, message):
    with Store(loaded) as s:
        _story(s)
    before = _rows(loaded)
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(StoryError, match=message):
        read_story(content)
    assert main(["story", "import", str(bad), "--db", str(loaded)]) == 2
    assert _rows(loaded) == before


def test_a_failing_import_rolls_back(loaded, monkeypatch):
    with Store(loaded) as s:
        _story(s)
    before = _rows(loaded)
    calls = []
    real = db._insert_slides

    def fail_late(cur, story_id, slides, start):  # the story row is written, then a slide fails
        calls.append(len(slides))
        real(cur, story_id, slides[:1], start)
        raise StoryError("simulated failure after the first slide")

    monkeypatch.setattr(db, "_insert_slides", fail_late)
    with Store(loaded) as s, pytest.raises(StoryError, match="simulated"):
        db.import_story(s, Story("Half", tuple(SLIDES)))
    assert calls == [3]
    assert _rows(loaded) == before


def test_cli_list_export_import(loaded, tmp_path, capsys):
    with Store(loaded) as s:
        sid = _story(s)
    out = tmp_path / "exported" / "story.json"
    assert main(["story", "export", str(sid), str(out), "--db", str(loaded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(out), "title": "Findings", "slides": 3}
    assert main(["story", "import", str(out), "--db", str(loaded), "--json"]) == 0
    new = json.loads(capsys.readouterr().out)["story_id"]
    assert main(["story", "list", "--db", str(loaded), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["stories"]
    assert sorted((r["story_id"], r["title"], r["slides"]) for r in listed) == [(sid, "Findings", 3),
                                                                                (new, "Findings", 3)]
    assert main(["story", "export", "999", str(out), "--db", str(loaded)]) == 2
    assert "no story 999" in capsys.readouterr().err


def test_links_and_moves():
    assert permalink("overview") == "overview"
    assert permalink("personas", SLIDES[0].params) == "personas?topic=fair+essentials&personas.show=A&personas.show=B"
    link = "http://10.0.0.5:8501/personas?topic=fair+essentials&personas.show=A&personas.show=B&story=2&slide=3"
    assert parse_permalink(link, pages=PAGES) == ("personas", SLIDES[0].params)
    assert parse_permalink("/?dimension=1", pages=PAGES) == ("overview", (("dimension", "1"),))
    assert parse_permalink("explore", pages=PAGES) == ("explore", ())
    with pytest.raises(StoryError, match="not a page of this app"):
        parse_permalink("http://host/nowhere?x=1", pages=PAGES)
    with pytest.raises(StoryError, match="empty"):
        parse_permalink("  ", pages=PAGES)
    assert moved([1, 2, 3], 1, -1) == [2, 1, 3]
    with pytest.raises(StoryError, match="out of range"):
        moved([1], 3, 1)
