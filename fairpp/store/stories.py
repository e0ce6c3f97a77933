"""Stories (presentation mode) in the store: titled, ordered lists of saved views.

Two tables, created on first write (documented in ``data/README.md``); a dataset load never touches them:

``stories``
    ``story_id`` (INTEGER key), ``title``, ``created_at``, ``updated_at``.
``story_slides``
    ``slide_id`` (INTEGER key), ``story_id``, ``position`` (0-based order within the story), ``title``,
    ``notes``, ``page`` (the page key), ``params`` (the view's URL parameters as a JSON list of
    ``[name, value]`` pairs), ``created_at``.

Every write runs in one transaction; a bad slide or story file raises :class:`fairpp.stories.StoryError`
and writes nothing.

>>> from fairpp.store import Store
>>> from fairpp.stories import Slide
>>> s = Store(":memory:")
>>> sid = create_story(s, "Findings")
>>> _ = add_slide(s, sid, Slide("Radar", "personas", (("topic", "fair rewards"),)))
>>> get_story(s, sid).slides[0].link
'personas?topic=fair+rewards'
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import duckdb
import pandas as pd

from fairpp.schema import FairppError
from fairpp.stories import Slide, Story, StoryError, check_slide, check_title, moved
from fairpp.store.core import Store

__all__ = ["create_story", "list_stories", "get_story", "story_slides", "rename_story", "delete_story",
           "add_slide", "update_slide", "delete_slide", "move_slide", "import_story"]

_DDL = """
CREATE SEQUENCE IF NOT EXISTS stories_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS story_slides_id_seq START 1;
CREATE TABLE IF NOT EXISTS stories (
    story_id INTEGER PRIMARY KEY DEFAULT nextval('stories_id_seq'), title TEXT NOT NULL,
    created_at TIMESTAMP, updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS story_slides (
    slide_id INTEGER PRIMARY KEY DEFAULT nextval('story_slides_id_seq'), story_id INTEGER NOT NULL,
    position INTEGER NOT NULL, title TEXT NOT NULL, notes TEXT, page TEXT NOT NULL, params TEXT NOT NULL,
    created_at TIMESTAMP
);
"""
_SLIDE_COLUMNS = ["slide_id", "position", "title", "notes", "page", "params"]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _has_tables(store: Store) -> bool:
    """Whether the story tables exist (once they do, they stay: the answer is kept on the store; the app asks on
    every rerun)."""
    if getattr(store, "_stories_tables", False):
        return True
    with store.cursor() as cur:
        rows = cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                           "('stories', 'story_slides')").fetchall()
    store._stories_tables = rows[0][0] == 2
    return store._stories_tables


def _write(store: Store, work: Any) -> Any:
    """Run ``work(cur)`` in one transaction (tables created first); roll back on any error."""
    with store.cursor() as cur:
        cur.execute(_DDL)
        cur.execute("BEGIN TRANSACTION")
        try:
            out = work(cur)
            cur.execute("COMMIT")
        except (duckdb.Error, FairppError):
            cur.execute("ROLLBACK")
            raise
    return out


def _exists(cur: duckdb.DuckDBPyConnection, story_id: int) -> None:
    if not cur.execute("SELECT 1 FROM stories WHERE story_id = ?", [int(story_id)]).fetchall():
        raise StoryError(f"no story {story_id}; list them with `fairpp story list` or on the Stories page.")


def _touch(cur: duckdb.DuckDBPyConnection, story_id: int) -> None:
    cur.execute("UPDATE stories SET updated_at = ? WHERE story_id = ?", [_now(), int(story_id)])


def _insert_slides(cur: duckdb.DuckDBPyConnection, story_id: int, slides: list[Slide], start: int) -> list[int]:
    ids = []
    for i, s in enumerate(slides):
        ids.append(cur.execute(
            "INSERT INTO story_slides (story_id, position, title, notes, page, params, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING slide_id",
            [int(story_id), start + i, s.title, s.notes, s.page, json.dumps([list(p) for p in s.params]), _now()],
        ).fetchall()[0][0])
    return [int(i) for i in ids]


def create_story(store: Store, title: str) -> int:
    """Create an empty story; returns its id."""
    title = check_title(title, "the story's title")
    return _write(store, lambda cur: int(cur.execute(
        "INSERT INTO stories (title, created_at, updated_at) VALUES (?, ?, ?) RETURNING story_id",
        [title, _now(), _now()]).fetchall()[0][0]))


def list_stories(store: Store) -> pd.DataFrame:
    """Every story, most recently changed first: ``story_id, title, slides, created_at, updated_at``.

    >>> list_stories(Store(":memory:")).empty
    True
    """
    cols = ["story_id", "title", "slides", "created_at", "updated_at"]
    if not _has_tables(store):
        return pd.DataFrame(columns=cols)
    with store.cursor() as cur:
        return cur.execute(
            "SELECT s.story_id, s.title, count(l.slide_id) AS slides, s.created_at, s.updated_at FROM stories s"
            " LEFT JOIN story_slides l USING (story_id) GROUP BY ALL ORDER BY s.updated_at DESC, s.story_id DESC"
        ).df()[cols]


def story_slides(store: Store, story_id: int) -> pd.DataFrame:
    """The slides of a story in order: ``slide_id, position, title, notes, page, params`` (JSON text)."""
    if not _has_tables(store):
        raise StoryError(f"no story {story_id}; no story has been saved yet.")
    with store.cursor() as cur:
        _exists(cur, story_id)
        return cur.execute(f"SELECT {', '.join(_SLIDE_COLUMNS)} FROM story_slides WHERE story_id = ?"
                           " ORDER BY position, slide_id", [int(story_id)]).df()


def get_story(store: Store, story_id: int) -> Story:
    """The story as a :class:`fairpp.stories.Story` (what is exported)."""
    slides = story_slides(store, story_id)
    with store.cursor() as cur:
        title = cur.execute("SELECT title FROM stories WHERE story_id = ?", [int(story_id)]).fetchall()[0][0]
    return Story(title=title, slides=tuple(
        Slide(title=r.title, page=r.page, params=tuple(tuple(p) for p in json.loads(r.params)), notes=r.notes or "")
        for r in slides.itertuples()))


def rename_story(store: Store, story_id: int, title: str) -> None:
    """Give a story a new title."""
    title = check_title(title, "the story's title")

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        _exists(cur, story_id)
        cur.execute("UPDATE stories SET title = ?, updated_at = ? WHERE story_id = ?", [title, _now(), int(story_id)])
    _write(store, work)


def delete_story(store: Store, story_id: int) -> None:
    """Delete a story and its slides."""
    def work(cur: duckdb.DuckDBPyConnection) -> None:
        _exists(cur, story_id)
        cur.execute("DELETE FROM story_slides WHERE story_id = ?", [int(story_id)])
        cur.execute("DELETE FROM stories WHERE story_id = ?", [int(story_id)])
    _write(store, work)


def add_slide(store: Store, story_id: int, slide: Slide) -> int:
    """Append a slide to a story; returns the slide's id."""
    slide = check_slide(slide)

    def work(cur: duckdb.DuckDBPyConnection) -> int:
        _exists(cur, story_id)
        n = cur.execute("SELECT count(*) FROM story_slides WHERE story_id = ?", [int(story_id)]).fetchall()[0][0]
        (slide_id,) = _insert_slides(cur, story_id, [slide], int(n))
        _touch(cur, story_id)
        return slide_id
    return _write(store, work)


def _slide_story(cur: duckdb.DuckDBPyConnection, slide_id: int) -> int:
    rows = cur.execute("SELECT story_id FROM story_slides WHERE slide_id = ?", [int(slide_id)]).fetchall()
    if not rows:
        raise StoryError(f"no slide {slide_id}; it may have been deleted (reload the Stories page).")
    return int(rows[0][0])


def update_slide(store: Store, slide_id: int, *, title: str | None = None, notes: str | None = None) -> None:
    """Change a slide's title and/or notes."""
    def work(cur: duckdb.DuckDBPyConnection) -> None:
        story_id = _slide_story(cur, slide_id)
        old = cur.execute("SELECT title, notes, page FROM story_slides WHERE slide_id = ?",
                          [int(slide_id)]).fetchall()[0]
        new = check_slide(Slide(title=old[0] if title is None else title, page=old[2],
                                notes=(old[1] or "") if notes is None else notes))
        cur.execute("UPDATE story_slides SET title = ?, notes = ? WHERE slide_id = ?",
                    [new.title, new.notes, int(slide_id)])
        _touch(cur, story_id)
    _write(store, work)


def _renumber(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> None:
    for pos, sid in enumerate(ids):
        cur.execute("UPDATE story_slides SET position = ? WHERE slide_id = ?", [pos, int(sid)])


def _ordered_ids(cur: duckdb.DuckDBPyConnection, story_id: int) -> list[int]:
    rows = cur.execute("SELECT slide_id FROM story_slides WHERE story_id = ? ORDER BY position, slide_id",
                       [int(story_id)]).fetchall()
    return [int(r[0]) for r in rows]


def delete_slide(store: Store, slide_id: int) -> None:
    """Remove a slide; the others keep their order."""
    def work(cur: duckdb.DuckDBPyConnection) -> None:
        story_id = _slide_story(cur, slide_id)
        cur.execute("DELETE FROM story_slides WHERE slide_id = ?", [int(slide_id)])
        _renumber(cur, _ordered_ids(cur, story_id))
        _touch(cur, story_id)
    _write(store, work)


def move_slide(store: Store, slide_id: int, step: int) -> None:
    """Move a slide ``step`` places (-1: up, 1: down; clamped at the ends)."""
    def work(cur: duckdb.DuckDBPyConnection) -> None:
        story_id = _slide_story(cur, slide_id)
        ids = _ordered_ids(cur, story_id)
        _renumber(cur, moved(ids, ids.index(int(slide_id)), int(step)))
        _touch(cur, story_id)
    _write(store, work)


def import_story(store: Store, story: Story) -> int:
    """Store an imported (already validated) story as a new story; returns its id. All or nothing."""
    title = check_title(story.title, "the story's title")
    slides = [check_slide(s, f"slide {i}") for i, s in enumerate(story.slides, start=1)]

    def work(cur: duckdb.DuckDBPyConnection) -> int:
        story_id = int(cur.execute("INSERT INTO stories (title, created_at, updated_at) VALUES (?, ?, ?)"
                                   " RETURNING story_id", [title, _now(), _now()]).fetchall()[0][0])
        _insert_slides(cur, story_id, slides, 0)
        return story_id
    return _write(store, work)
